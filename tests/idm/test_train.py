"""A few real Lightning steps into a run folder, then a resume that continues the step count."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("pytorch_lightning")

from core.data.dataset import FRAMES, TOKENS  # noqa: E402
from core.run import RunFolder  # noqa: E402
from core.tokens import Vocabulary  # noqa: E402
from core.train import fit  # noqa: E402
from idm.config import IDMConfig, configs_from  # noqa: E402
from idm.model import EventIDM  # noqa: E402


class ToyWindows(torch.utils.data.Dataset):
    """Brightness of frame 0 decides the token sequence: learnable in a few steps."""

    def __len__(self) -> int:
        return 16

    def __getitem__(self, i: int) -> dict:
        frames = np.full((4, 32, 32, 3), 40 if i % 2 else 220, np.uint8)
        return {FRAMES: frames, TOKENS: [1, 5, 6, 2] if i % 2 else [1, 7, 8, 9, 2]}


def test_fit_writes_a_run_folder_and_resumes(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    cfg, data, train = configs_from(dict(image_size=32, frames=4, d_model=32, heads=2, encoder_layers=1,
                                         decoder_layers=1, max_tokens=16, batch_size=4, max_steps=6, warmup_steps=1,
                                         dropout=0.0))
    run = RunFolder(tmp_path)
    run.save_configs(cfg, data, train)
    vocab = Vocabulary.default()
    summary = fit(lambda: EventIDM(cfg, data, vocab), train, ToyWindows(), ToyWindows(), run, progress=False)
    assert summary["steps"] == 6 and run.has_weights() and run.read_json("train_summary.json")["steps"] == 6
    assert run.last_checkpoint.exists() and (tmp_path / "logs").exists()
    model = EventIDM(*run.load_configs(IDMConfig)[:2], vocab)
    run.load_weights(model)
    train.max_steps = 10
    again = fit(lambda: EventIDM(cfg, data, vocab), train, ToyWindows(), None, run, progress=False)
    assert again["steps"] == 10  # continued from step 6, not restarted
    out, err = capfd.readouterr()
    for noise in ("GPU available", "Tip", "litlogger", "deprecated", "LeafSpec", "Warning"):
        assert noise not in out + err, noise  # Lightning's banners and warnings do not reach the user
