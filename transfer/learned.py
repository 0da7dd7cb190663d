"""A fine-tuned run as a ``transfer.sim.Policy``: what ``d2e transfer libero|nav eval --model RUN`` runs.

It keeps the last ``history`` frames of each camera, asks the model for a chunk of actions and executes the
first ``execute`` of them open loop before looking again (continuous actions), or takes the likeliest of the
discrete actions at every step (navigation). It reads only the frames a decision will see, so an env that
renders on demand (LIBERO) skips the others. Built inside each evaluation worker from the run folder alone.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from core.run import RunFolder

from .finetune import resize
from .policy import TransferConfig, TransferPolicy


def load_policy_model(folder: str | Path) -> TransferPolicy:
    run = RunFolder(folder)
    cfg, _data, _train = run.load_configs(TransferConfig)
    model = TransferPolicy(cfg)
    run.load_weights(model)
    return model.eval()


class LearnedPolicy:
    """``reset(instruction)`` / ``act(obs)`` over a fine-tuned run (``PolicyFactory``: ``LearnedPolicy(run)(env)``)."""

    def __init__(self, folder: str | Path, env: Any = None):
        import torch

        torch.set_num_threads(1)  # evaluation runs one policy per worker process
        self.model = load_policy_model(folder)
        self.cfg: TransferConfig = self.model.cfg
        self.frames: deque[np.ndarray] = deque(maxlen=self.cfg.history)
        self.queue: deque[Any] = deque()
        self.words: Any = None

    def reset(self, instruction: str) -> None:
        self.frames.clear()
        self.queue.clear()
        self.words = self.model.word_ids(instruction)[None]

    def act(self, obs: dict[str, np.ndarray]) -> Any:
        import torch

        if len(self.queue) < self.cfg.history:  # one of the frames the next decision sees: only these are read,
            # so an env that renders on demand skips the rest (2 of every 4 with history 2, execute 4)
            self.frames.append(np.stack([resize(obs[c], self.cfg.image_size) for c in self.cfg.cameras]))
        if self.queue:
            return self.queue.popleft()
        while len(self.frames) < self.cfg.history:  # the first frame stands in for the ones before it
            self.frames.appendleft(self.frames[0])
        history = np.stack(self.frames, 1)[None]  # (1, cams, T, S, S, 3)
        with torch.no_grad():
            out = self.model.predict(torch.from_numpy(history), torch.from_numpy(obs["state"][None].astype(np.float32)),
                                     self.words)[0].numpy()
        if self.cfg.action == "discrete":
            return int(out.argmax())
        self.queue.extend(out[1:self.cfg.execute])
        return out[0]


def learned_policy_factory(folder: str | Path):
    """A picklable ``PolicyFactory`` for ``transfer.evaluate``."""
    import functools

    return functools.partial(LearnedPolicy, str(folder))
