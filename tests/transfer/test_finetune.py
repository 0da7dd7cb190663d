"""Fine-tuning end to end on real MiniWorld demos: scratch and pretrained trunks, the learned policy in eval."""

from __future__ import annotations

import importlib.util  # noqa: E402
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
if importlib.util.find_spec("miniworld") is None:  # importing it without a display fails: only look it up
    pytest.skip("miniworld is not installed (pip install 'd2e[nav]')", allow_module_level=True)

from core.run import RunFolder  # noqa: E402
from transfer.finetune import resize  # noqa: E402
from transfer.policy import TransferConfig, TransferPolicy  # noqa: E402


def d2e(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "d2e.cli", *args], capture_output=True, text=True, timeout=600)


def test_resize_averages_blocks_and_samples_otherwise() -> None:
    img = np.arange(4 * 4 * 3, dtype=np.uint8).reshape(4, 4, 3)
    half = resize(img, 2)
    assert half.shape == (2, 2, 3) and half[0, 0, 0] == round(np.mean([0, 3, 12, 15]))
    assert resize(img, 3).shape == (3, 3, 3) and resize(img, 4) is img


def test_policy_shapes_and_losses() -> None:
    torch.manual_seed(0)
    chunk = TransferPolicy(TransferConfig(d_model=32, heads=2, encoder_layers=1, decoder_layers=1, image_size=32,
                                          words=["pick", "bowl"]))
    batch = {"images": torch.randint(0, 255, (2, 2, 2, 32, 32, 3), dtype=torch.uint8),
             "state": torch.zeros(2, 8), "words": torch.tensor([[1, 2, -1], [0, -1, -1]]),
             "actions": torch.ones(2, 8, 7), "action_mask": torch.tensor([[True] * 8, [True] * 3 + [False] * 5])}
    loss, metrics = chunk(batch)
    loss.backward()
    assert torch.isfinite(loss) and "l1_first" in metrics
    assert chunk.predict(batch["images"], batch["state"], batch["words"]).shape == (2, 8, 7)
    discrete = TransferPolicy(TransferConfig(d_model=32, heads=2, encoder_layers=1, decoder_layers=1, image_size=32,
                                             cameras=["rgb"], state_dim=4, action="discrete", action_dim=4, chunk=1,
                                             execute=1))
    loss, metrics = discrete({"images": batch["images"][:, :1], "state": torch.zeros(2, 4),
                              "words": batch["words"], "actions": torch.tensor([0, 3])})
    assert torch.isfinite(loss) and 0 <= metrics["action_acc"] <= 1


def test_a_chunked_policy_reads_only_the_frames_its_decisions_see(tmp_path: Path) -> None:
    """Executing 4 actions of each chunk with 2 frames of history, the policy reads the images of steps
    0, 3, 4, 7, 8, ...: an env that renders on demand (LIBERO) renders half the frames."""
    from collections.abc import Mapping

    from core.config import DataConfig
    from transfer.learned import LearnedPolicy

    cfg = TransferConfig(d_model=32, heads=2, encoder_layers=1, decoder_layers=1, image_size=16, words=["pick"])
    run = RunFolder(tmp_path)
    run.save_configs(cfg, DataConfig(frames=cfg.history, image_size=cfg.image_size, tau_ms=0))
    run.save_weights(TransferPolicy(cfg))
    reads: list[int] = []

    class Observation(Mapping):
        def __init__(self, step: int):
            self.step = step

        def __getitem__(self, key: str) -> np.ndarray:
            if key == "state":
                return np.zeros(8, np.float32)
            reads.append(self.step)
            return np.full((16, 16, 3), self.step, np.uint8)

        def __iter__(self):
            return iter([*cfg.cameras, "state"])

        def __len__(self) -> int:
            return len(cfg.cameras) + 1

    policy = LearnedPolicy(tmp_path)
    policy.reset("pick")
    for step in range(12):
        assert np.asarray(policy.act(Observation(step))).shape == (7,)
        if step == 8:
            assert [frame[0, 0, 0, 0] for frame in policy.frames] == [7, 8]  # what the decision at 8 saw
    assert sorted(set(reads)) == [0, 3, 4, 7, 8, 11]


@pytest.fixture(scope="module")
def nav_demos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("nav")
    run = d2e("transfer", "nav", "generate-demos", "--env", "fourrooms", "--episodes", "3", "--out", str(out),
              "--workers", "1")
    assert run.returncode == 0, run.stderr[-2000:]
    return out / "fourrooms"


def test_finetune_scratch_and_pretrained_then_evaluate(nav_demos: Path, tmp_path: Path) -> None:
    from capture.synthetic import write_synthetic_recording

    rec = write_synthetic_recording(tmp_path / "rec" / "a.mcap", seconds=2)
    tiny = ["--set", "d_model=32", "--set", "heads=2", "--set", "encoder_layers=1", "--set", "decoder_layers=1",
            "--set", "image_size=32"]
    pre = d2e("pretrain", str(rec), "--out", str(tmp_path / "vapt"), "--set", "max_steps=2", "--set", "batch_size=2",
              "--set", "frames=4", *tiny, "--quiet")
    assert pre.returncode == 0, pre.stderr[-2000:]
    steps = ["--set", "max_steps=3", "--set", "batch_size=4", "--quiet", "--json"]
    scratch = d2e("transfer", "nav", "finetune", str(nav_demos), "--out", str(tmp_path / "scratch"), *tiny, *steps)
    assert scratch.returncode == 0, scratch.stderr[-2000:]
    warm = d2e("transfer", "nav", "finetune", str(nav_demos), "--pretrained", str(tmp_path / "vapt"), "--out",
               str(tmp_path / "warm"), *steps)
    assert warm.returncode == 0, warm.stderr[-2000:]
    assert json.loads(scratch.stdout)["parameters"] == json.loads(warm.stdout)["parameters"]  # the same model
    cfg, _d, _t = RunFolder(tmp_path / "warm").load_configs(TransferConfig)
    assert cfg.pretrained == str(tmp_path / "vapt") and cfg.d_model == 32 and cfg.words
    ev = d2e("transfer", "nav", "eval", "--model", str(tmp_path / "warm"), "--env", "fourrooms", "--split", "unseen",
             "--episodes", "2", "--workers", "1", "--max-steps", "10", "--out", str(tmp_path / "eval"), "--json")
    assert ev.returncode == 0, ev.stderr[-2000:]
    assert json.loads(ev.stdout)["overall"]["episodes"] == 2
