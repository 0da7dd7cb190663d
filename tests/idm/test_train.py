"""A few real Lightning steps into a run folder, then a resume that continues the step count."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("pytorch_lightning")

from idm import checkpoint  # noqa: E402
from idm.config import IDMConfig  # noqa: E402
from idm.model import FRAMES, TOKENS, EventIDM  # noqa: E402
from idm.train import fit  # noqa: E402


class ToyWindows(torch.utils.data.Dataset):
    """Brightness of frame 0 decides the token sequence: learnable in a few steps."""

    def __len__(self) -> int:
        return 16

    def __getitem__(self, i: int) -> dict:
        frames = np.full((4, 32, 32, 3), 40 if i % 2 else 220, np.uint8)
        return {FRAMES: frames, TOKENS: [1, 5, 6, 2] if i % 2 else [1, 7, 8, 9, 2]}


def test_fit_writes_a_checkpoint_and_resumes(tmp_path: Path) -> None:
    cfg = IDMConfig(image_size=32, frames=4, d_model=32, heads=2, encoder_layers=1, decoder_layers=1, max_tokens=16,
                    vocab_size=12, batch_size=4, max_steps=6, warmup_steps=1, dropout=0.0)
    summary = fit(cfg, ToyWindows(), ToyWindows(), tmp_path, labels={"vocab": "toy"}, progress=False)
    assert summary["steps"] == 6 and (tmp_path / "model.safetensors").exists()
    assert (tmp_path / "training_state" / "last.ckpt").exists() and (tmp_path / "logs").exists()
    model = EventIDM(checkpoint.load_config(tmp_path), 0)
    checkpoint.load_state(tmp_path, model)
    cfg.max_steps = 10
    again = fit(cfg, ToyWindows(), None, tmp_path, labels={"vocab": "toy"}, progress=False)
    assert again["steps"] == 10  # continued from step 6, not restarted
