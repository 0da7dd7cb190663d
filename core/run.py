"""A run folder: the one owner of where a trained model's files live, so any run resumes or evaluates from
its directory alone (LeRobot's habit)::

    config.json          the stage's model config (e.g. IDMConfig)
    data.json            DataConfig: how frames and labels were prepared (labeling reads it too)
    train.json           TrainConfig
    model.safetensors    weights, loaded strictly (a mismatch fails loudly: VPT's strict=False lesson)
    vocab.json           the token vocabulary
    labels.json          what the model's outputs mean beyond the configs (e.g. calibrated thresholds)
    split.json           which recordings trained and validated it
    train_summary.json   steps, time, last metrics
    training_state/      Lightning's last.ckpt (optimiser, step) for resuming
    logs/                CSV metrics

Older IDM folders kept every setting in one flat ``config.json`` and the vocabulary and key list in
``labels.json``; they load through ``load_configs`` and ``vocab`` unchanged.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, TypeVar

from capture.errors import D2EError, require
from capture.storage import atomic_output

from .config import Config, DataConfig, TrainConfig, route_fields
from .tokens import Vocabulary

M = TypeVar("M", bound=Config)

MODEL_CONFIG, DATA_CONFIG, TRAIN_CONFIG = "config.json", "data.json", "train.json"
WEIGHTS, VOCAB, LABELS, SPLIT, SUMMARY = "model.safetensors", "vocab.json", "labels.json", "split.json", \
    "train_summary.json"


class RunFolder:
    """Reads and writes one run's files; every write is atomic and private to the user (0600)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def state_dir(self) -> Path:
        return self.path / "training_state"

    @property
    def last_checkpoint(self) -> Path:
        return self.state_dir / "last.ckpt"

    def has_weights(self) -> bool:
        return self.file(WEIGHTS).exists()

    def _write(self, name: str, text: str) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        with atomic_output(self.file(name), overwrite=True) as tmp:
            tmp.write_text(text)
            os.chmod(tmp, 0o600)

    def write_json(self, name: str, data: Any) -> None:
        self._write(name, json.dumps(data, indent=1))

    def read_json(self, name: str, default: Any = None) -> Any:
        path = self.file(name)
        if not path.exists():
            return default
        try:
            return json.loads(path.read_text())
        except ValueError as exc:
            raise D2EError(f"unreadable JSON ({exc})", path=path, fix="the run folder is damaged; retrain or "
                           "restore it") from exc

    # -- configs ---------------------------------------------------------------------------------------
    def save_configs(self, model: Config, data: DataConfig, train: TrainConfig | None = None) -> None:
        self._write(MODEL_CONFIG, model.to_json())
        self._write(DATA_CONFIG, data.to_json())
        if train is not None:
            self._write(TRAIN_CONFIG, train.to_json())

    def load_configs(self, model_cls: type[M], legacy_defaults: dict[str, Any] | None = None,
                     ) -> tuple[M, DataConfig, TrainConfig]:
        """The three configs. A field missing from a saved config takes its ``legacy_defaults`` value (the one
        that reproduces a model saved before the field existed); a legacy flat ``config.json`` is split by name."""
        raw = self.read_json(MODEL_CONFIG)
        if raw is None:
            raise D2EError("no config.json", path=self.path, fix="pass a run folder written by a d2e training command")
        source = str(self.file(MODEL_CONFIG))
        old = route_fields(legacy_defaults or {}, model_cls, DataConfig, TrainConfig, source="legacy defaults")
        if self.file(DATA_CONFIG).exists():
            saved = [raw, self.read_json(DATA_CONFIG), self.read_json(TRAIN_CONFIG, {})]
        else:  # one flat file from before the configs were split
            saved = route_fields(raw, model_cls, DataConfig, TrainConfig, source=source)
            labels = self.read_json(LABELS, {})
            if labels.get("vks"):
                saved[1]["keys"] = labels["vks"]
        model_d, data_d, train_d = ({**defaults, **given} for defaults, given in zip(old, saved))
        return (model_cls.from_dict(model_d, source), DataConfig.from_dict(data_d, str(self.file(DATA_CONFIG))),
                TrainConfig.from_dict(train_d, str(self.file(TRAIN_CONFIG))))

    def resumed_configs(self, model_cls: type[M], overrides: dict[str, Any],
                        legacy_defaults: dict[str, Any] | None = None) -> tuple[M, DataConfig, TrainConfig]:
        """The run's own configs with ``overrides`` (any field of any of them, by name) applied: what a
        resumed training continues with (e.g. ``--set max_steps=4000`` to train further)."""
        configs = self.load_configs(model_cls, legacy_defaults)
        routed = route_fields(overrides, model_cls, DataConfig, TrainConfig, source="--set")
        model, data, train = (type(c).from_dict({**c.to_dict(), **r}, str(self.path)) for c, r in zip(configs, routed))
        return model, data, train

    # -- vocabulary, labels, split, summaries ----------------------------------------------------------
    def save_vocab(self, vocab: Vocabulary) -> None:
        self.write_json(VOCAB, vocab.to_json())

    def vocab(self) -> Vocabulary:
        data = self.read_json(VOCAB) or self.read_json(LABELS, {}).get("vocab")
        return Vocabulary.from_json(data) if data else Vocabulary.default()

    def labels(self) -> dict[str, Any]:
        return self.read_json(LABELS, {})

    def save_labels(self, labels: dict[str, Any]) -> None:
        self.write_json(LABELS, labels)

    def save_split(self, train: list[str], val: list[str], train_games: list[str], held_out: list[str]) -> None:
        self.write_json(SPLIT, {"train": train, "val": val, "train_games": sorted(train_games),
                                "held_out_games": sorted(held_out)})

    def split(self) -> dict[str, Any]:
        return self.read_json(SPLIT, {})

    # -- weights ----------------------------------------------------------------------------------------
    def save_weights(self, model: Any, config_hash: str = "") -> None:
        """Weights as safetensors; a tied output layer is stored once (safetensors refuses shared tensors)."""
        safetensors = require("safetensors.torch", "train")
        state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
        for name, tied in getattr(model, "TIED", {}).items():
            if name in state and tied in state:
                state.pop(name)
        self.path.mkdir(parents=True, exist_ok=True)
        with atomic_output(self.file(WEIGHTS), overwrite=True) as tmp:
            safetensors.save_file(state, str(tmp), metadata={"config_hash": config_hash})
            os.chmod(tmp, 0o600)

    def load_weights(self, model: Any) -> None:
        safetensors = require("safetensors.torch", "train")
        path = self.file(WEIGHTS)
        if not path.exists():
            raise D2EError("no model.safetensors", path=self.path, fix="pass a run folder whose training finished")
        state = safetensors.load_file(str(path))
        for name, tied in getattr(model, "TIED", {}).items():
            if tied in state and name not in state:
                state[name] = state[tied]
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise D2EError(f"weights do not match the config (missing {missing[:3]}, unexpected {unexpected[:3]})",
                           path=path, fix="the folder mixes files from different runs")

    def weights_hash(self) -> str | None:
        import hashlib

        path = self.file(WEIGHTS)
        if not path.exists():
            return None
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()[:12]
