"""Fine-tuning a policy on demonstrations: HDF5 demos in (ours or LIBERO's official ones), a run folder out.

Every step of every demo becomes a sample: the last ``history`` frames of each camera (resized to the policy's
size), the proprio state, the instruction, and the next ``chunk`` actions (the chunk is padded past a demo's
end and the padding masked out of the loss). The same budget (steps, batch, learning rate) serves every arm of
an experiment; ``pretrained`` picks the arm: a pretraining run's trunk, or None for scratch.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from capture.errors import D2EError
from core.config import DataConfig, TrainConfig
from core.run import RunFolder

from .policy import ACTION_MASK, ACTIONS, IMAGES, STATE, WORDS, TransferConfig, TransferPolicy, words_of


def resize(images: np.ndarray, size: int) -> np.ndarray:
    """(..., H, W, 3) uint8 -> (..., size, size, 3) by area averaging (H and W multiples of ``size``) or
    nearest sampling otherwise."""
    h, w = images.shape[-3:-1]
    if (h, w) == (size, size):
        return images
    if h % size == 0 and w % size == 0:
        fh, fw = h // size, w // size
        shaped = images.reshape(*images.shape[:-3], size, fh, size, fw, 3).astype(np.float32)
        return shaped.mean((-4, -2)).round().astype(np.uint8)
    rows, cols = (np.arange(size) * h // size), (np.arange(size) * w // size)
    return images[..., rows[:, None], cols[None, :], :]


def demo_observations(simulator: str, obs: dict[str, np.ndarray], cameras: Sequence[str]) -> dict[str, np.ndarray]:
    """A demo's stored observations as the policy sees them in its simulator (LIBERO's are stored upside down)."""
    if simulator == "libero":
        from .envs.libero import CAMERAS, demo_policy_obs

        names = [name for name, (_cam, key) in CAMERAS.items() if key in cameras]
        return demo_policy_obs(obs, names)
    missing = [k for k in [*cameras, "state"] if k not in obs]
    if missing:
        raise D2EError(f"the demo has no obs/{missing[0]}", fix=f"observations present: {sorted(obs)}")
    return {k: obs[k] for k in [*cameras, "state"]}


class DemoSteps:
    """Every step of a set of demo files as training samples (held in memory at the policy's image size)."""

    def __init__(self, files: Sequence[str | Path], cfg: TransferConfig, policy_words: dict[str, int] | None = None):
        from .demos.store import open_demos, read_demos

        self.cfg = cfg
        self.episodes: list[dict[str, Any]] = []
        for path in files:
            info = open_demos(path)
            for demo in read_demos(path):
                obs = demo_observations(cfg.simulator, demo.obs, cfg.cameras)
                self.episodes.append({
                    "images": np.stack([resize(obs[c], cfg.image_size) for c in cfg.cameras], 1),  # (N, cams, ...)
                    "state": obs["state"].astype(np.float32), "actions": demo.actions,
                    "instruction": info.instruction})
        if not self.episodes:
            raise D2EError("no demonstrations found", path=", ".join(str(f) for f in files[:3]),
                           fix="generate them with 'd2e transfer libero|nav generate-demos' or pass LIBERO's HDF5")
        self.index = [(e, t) for e, ep in enumerate(self.episodes) for t in range(len(ep["actions"]))]
        self.words = policy_words

    def instructions(self) -> list[str]:
        return sorted({ep["instruction"] for ep in self.episodes})

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, Any]:
        e, t = self.index[i]
        ep, cfg = self.episodes[e], self.cfg
        frames = [max(0, t - k) for k in range(cfg.history - 1, -1, -1)]  # oldest first; the first frame repeats
        sample = {IMAGES: ep["images"][frames].transpose(1, 0, 2, 3, 4), STATE: ep["state"][t],
                  WORDS: _word_ids(ep["instruction"], self.words or {})}
        if cfg.action == "chunk":
            steps = [min(t + k, len(ep["actions"]) - 1) for k in range(cfg.chunk)]
            sample[ACTIONS] = ep["actions"][steps].astype(np.float32)
            sample[ACTION_MASK] = np.array([t + k < len(ep["actions"]) for k in range(cfg.chunk)])
        else:
            sample[ACTIONS] = np.int64(ep["actions"][t])
        return sample


def _word_ids(instruction: str, index: dict[str, int], length: int = 24) -> np.ndarray:
    ids = [index.get(w, 0) for w in words_of(instruction)][:length] or [0]
    return np.array(ids + [-1] * (length - len(ids)), np.int64)


def demo_files(paths: Sequence[str]) -> list[str]:
    from capture.storage import expand_inputs

    files = expand_inputs(list(paths), (".hdf5", ".h5"))
    if not files:
        raise D2EError("no demo files (.hdf5) found", path=" ".join(paths), fix="pass demo files or folders")
    return files


def finetune(demos: Sequence[str], run: RunFolder, cfg: TransferConfig, train: TrainConfig, *,
             val_fraction: float = 0.1, num_workers: int = 0, accelerator: str = "auto", devices: Any = "auto",
             strategy: str = "auto", progress: bool = True, log: Any = sys.stderr) -> dict[str, Any]:
    """Fine-tune (or train from scratch, ``cfg.pretrained=None``) on ``demos`` into ``run``; resumable."""
    import torch

    from core.train import fit

    from .policy import load_trunk

    files = demo_files(demos)
    all_steps = DemoSteps(files, cfg)
    if not cfg.words:
        cfg.words = sorted({w for text in all_steps.instructions() for w in words_of(text)})
    index = {w: i + 1 for i, w in enumerate(cfg.words)}
    all_steps.words = index
    rng = np.random.default_rng(train.seed)  # whole demos out for validation
    order = rng.permutation(len(all_steps.episodes))
    n_val = max(1, round(len(order) * val_fraction)) if len(order) > 4 else 0
    val_eps = set(order[:n_val].tolist())
    train_ds = EpisodeSubset(all_steps, lambda e: e not in val_eps)
    val_ds = EpisodeSubset(all_steps, lambda e: e in val_eps)
    run.save_configs(cfg, DataConfig(frames=cfg.history, image_size=cfg.image_size, tau_ms=0), train)
    run.write_json("demos.json", {"files": files, "episodes": len(all_steps.episodes), "steps": len(all_steps),
                                  "validation_episodes": n_val, "instructions": all_steps.instructions()})
    if log is not None:
        arm = f"from {cfg.pretrained}" if cfg.pretrained else "from scratch"
        print(f"fine-tuning {cfg.name} ({arm}) on {len(all_steps.episodes) - n_val} demos / {len(train_ds)} steps "
              f"of {len(all_steps.instructions())} tasks -> {run.path}", file=log)

    def build() -> torch.nn.Module:
        policy = TransferPolicy(cfg)
        if cfg.pretrained:
            load_trunk(policy, cfg.pretrained)
        return policy

    return fit(build, train, train_ds, val_ds if len(val_ds) else None, run, num_workers=num_workers,
               accelerator=accelerator, devices=devices, strategy=strategy, progress=progress, desc="fine-tuning",
               config_hash=cfg.hash())


class EpisodeSubset:
    """The steps of the demos ``keep`` accepts (a train/validation split by whole demos)."""

    def __init__(self, steps: DemoSteps, keep: Any):
        self.steps = steps
        self.rows = [i for i, (e, _t) in enumerate(steps.index) if keep(e)]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.steps[self.rows[i]]
