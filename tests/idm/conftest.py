"""A tiny trained-looking run folder, written the way ``d2e idm train`` writes one."""

from __future__ import annotations

from pathlib import Path

import pytest


def write_run(folder: Path, *, seed: int = 0, **fields) -> Path:
    """A run folder with random weights: configs, vocabulary and weights (``fields``: any config setting)."""
    import torch

    from core.run import RunFolder
    from core.tokens import Vocabulary
    from idm.config import configs_from
    from idm.model import build_model

    base = dict(kind="ticks", image_size=32, frames=4, d_model=32, heads=2, encoder_layers=1, keys=[0x57, 0x41])
    cfg, data, train = configs_from({**base, **fields})
    torch.manual_seed(seed)
    run = RunFolder(folder)
    run.save_configs(cfg, data, train)
    run.save_vocab(Vocabulary.default())
    run.save_weights(build_model(cfg, data))
    return folder


@pytest.fixture(scope="module")
def tick_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    return write_run(tmp_path_factory.mktemp("model"))
