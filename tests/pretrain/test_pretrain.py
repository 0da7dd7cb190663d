"""VAPT pretraining: causality of the policy, a few real steps on recordings + pseudo-labels, resume."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("pytorch_lightning")

from core.data.dataset import FRAMES, TOKENS  # noqa: E402
from core.run import RunFolder  # noqa: E402
from core.tokens import Vocabulary  # noqa: E402
from pretrain.config import PolicyConfig, configs_from  # noqa: E402
from pretrain.policy import build_policy  # noqa: E402

V = Vocabulary.default()
TINY = dict(image_size=32, frames=4, d_model=32, heads=2, encoder_layers=1, decoder_layers=1, max_tokens=64,
            dropout=0.0, tau_ms=0)


def test_a_token_sees_only_the_frames_shown_up_to_it() -> None:
    torch.manual_seed(0)
    cfg, data, _ = configs_from(TINY)
    model = build_policy(cfg, data, V).eval()
    s = V.id("<SCREEN>")
    tokens = torch.tensor([[1, 3, s, 4, 3, 6, 4, 3, s, 4, 3, 5, 4, 3, s, 4]])  # frames 0, 1, 2 begin at 2, 8, 14
    frames = torch.randint(0, 255, (1, 4, 32, 32, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    later = frames.clone()
    later[:, 2:] = 255 - later[:, 2:]  # change frames 2 and 3 only
    with torch.no_grad():
        a = model.logits(tokens, model.trunk.encoder(frames))
        b = model.logits(tokens, model.trunk.encoder(later))
    assert torch.allclose(a[:, :14], b[:, :14], atol=1e-5)  # before frame 2's screen event: unchanged
    assert not torch.allclose(a[:, 14:], b[:, 14:], atol=1e-3)  # from it on, the new frame is seen
    earlier = frames.clone()
    earlier[:, 0] = 255 - earlier[:, 0]
    with torch.no_grad():
        c = model.logits(tokens, model.trunk.encoder(earlier))
    assert not torch.allclose(a[:, :2], c[:, :2], atol=1e-3)  # the BOS already sees frame 0


def test_config_presets_and_validation() -> None:
    from capture.errors import D2EError
    from pretrain.config import preset

    cfg, data, train = preset("base")
    assert data.tau_ms == 0 and train.precision == "bf16-mixed" and cfg.d_model == 384
    with pytest.raises(D2EError, match="unknown config field"):
        configs_from({"bogus": 1})
    with pytest.raises(D2EError, match="max_tokens"):
        PolicyConfig(max_tokens=4)


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from capture.synthetic import write_synthetic_recording

    folder = tmp_path_factory.mktemp("rec")
    for seed in (1, 2, 3):
        write_synthetic_recording(folder / f"rec{seed}.mcap", seconds=3, seed=seed)
    return folder


def _pretrain(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "d2e.cli", "pretrain", *args, "--quiet", "--json"],
                          capture_output=True, text=True, timeout=600)


def test_pretrain_command_trains_mixes_and_resumes(recordings: Path, tmp_path: Path) -> None:
    run = tmp_path / "vapt"
    sets = [arg for k, v in {**TINY, "max_steps": 4, "batch_size": 4, "warmup_steps": 1}.items()
            for arg in ("--set", f"{k}={v}")]
    first = _pretrain(str(recordings / "rec1.mcap"), str(recordings / "rec2.mcap"), "--pseudo",
                      str(recordings / "rec3.mcap"), "--pseudo-weight", "0.3", "--min-confidence", "0.5",
                      "--out", str(run), *sets)
    assert first.returncode == 0, first.stderr[-3000:]
    summary = json.loads(first.stdout)
    assert summary["steps"] == 4 and summary["parameters"] > 0
    folder = RunFolder(run)
    assert folder.has_weights() and json.loads((run / "mixture.json").read_text())["pseudo_weight"] == 0.3
    cfg, data, _train = folder.load_configs(PolicyConfig)
    model = build_policy(cfg, data, folder.vocab())
    folder.load_weights(model)  # strict: the folder alone rebuilds the policy
    again = _pretrain(str(recordings / "rec1.mcap"), str(recordings / "rec2.mcap"), "--out", str(run),
                      "--set", "max_steps=6")
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads(again.stdout)["steps"] == 6  # resumed from step 4
    assert "GPU available" not in first.stderr + again.stderr  # no Lightning banners


def test_policy_forward_reports_next_event_metrics(recordings: Path) -> None:
    from core.data.dataset import WindowDataset
    from core.data.index import index_recordings
    from core.data.loader import collate

    cfg, data, _ = configs_from(TINY)
    ds = WindowDataset(index_recordings([str(recordings / "rec1.mcap")]), data)
    batch = collate([ds[0], ds[1]])
    with pytest.warns(UserWarning, match="max_tokens=64"):  # these windows are longer: cut, and said so once
        loss, metrics = build_policy(cfg, data, V)({FRAMES: batch[FRAMES], TOKENS: batch[TOKENS]})
    loss.backward()
    assert torch.isfinite(loss) and 0 <= metrics["token_acc"] <= 1 and 0 <= metrics["event_type_acc"] <= 1
    assert metrics["cut_windows"] == 1.0
