"""Demonstrations on disk: LIBERO's official HDF5 layout, for LIBERO and navigation alike.

One file holds the successful episodes of one task, in the layout of the official LIBERO (robomimic)
files, so a user's downloaded demos and the ones our scripted experts make are read by the same code::

    data                      attrs: env_args (JSON: simulator, suite, task, camera, ...),
                                     problem_info (JSON: {"language_instruction": ...}), total
      demo_0                  attrs: num_samples, plus whatever the expert records (seed, init state, spl)
        actions               (N, A) float32 (LIBERO, 7-D) or (N,) int64 (discrete navigation actions)
        obs/<name>            (N, ...) per step: agentview_rgb, eye_in_hand_rgb, ... (uint8 images)
        states, rewards, dones  optional, as in the official files

Writers are context managers that write to a temp file beside the target and rename it into place only
when the block succeeds, so an interrupted generation never leaves a file that looks finished; a rerun
skips finished files (the generators' resume unit is one task).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from capture.errors import D2EError, require
from capture.storage import atomic_output


@dataclass
class Demo:
    """One episode: what the expert did and saw, step by step."""

    name: str
    actions: np.ndarray
    obs: dict[str, np.ndarray]
    attrs: dict[str, Any] = field(default_factory=dict)
    states: np.ndarray | None = None
    rewards: np.ndarray | None = None
    dones: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.actions)


def _attr(value: Any) -> Any:
    """HDF5 attributes hold scalars, strings and arrays; anything else is stored as JSON text."""
    if isinstance(value, (str, int, float, bool, np.integer, np.floating, np.ndarray)):
        return value
    return json.dumps(value)


class DemoWriter:
    """Writes one task's demos to ``path`` (HDF5), atomically.

    ``env_args`` describe the environment (stored as JSON in ``data.attrs["env_args"]``); ``instruction``
    is the task's language instruction (``problem_info``), as in the official files.
    """

    def __init__(self, path: str | Path, *, env_args: dict[str, Any], instruction: str, overwrite: bool = False):
        self.path = Path(path)
        self.env_args, self.instruction, self.overwrite = env_args, instruction, overwrite
        self._ctx: Any = None
        self._file: Any = None
        self.count = 0

    def __enter__(self) -> DemoWriter:
        h5py = require("h5py", "libero")
        self._ctx = atomic_output(self.path, overwrite=self.overwrite)
        tmp = self._ctx.__enter__()
        self._file = h5py.File(tmp, "w")
        data = self._file.create_group("data")
        data.attrs["env_args"] = json.dumps(self.env_args)
        data.attrs["problem_info"] = json.dumps({"language_instruction": self.instruction})
        return self

    def add(self, demo: Demo) -> str:
        """Append one episode; returns its group name (``demo_<k>``)."""
        if len(demo) == 0:
            raise D2EError("a demo needs at least one step", path=self.path)
        for key, value in demo.obs.items():
            if len(value) != len(demo):
                raise D2EError(f"obs/{key} has {len(value)} steps, actions have {len(demo)}", path=self.path)
        name = f"demo_{self.count}"
        group = self._file["data"].create_group(name)
        group.attrs["num_samples"] = len(demo)
        for key, value in demo.attrs.items():
            group.attrs[key] = _attr(value)
        group.create_dataset("actions", data=demo.actions)
        for key in ("states", "rewards", "dones"):
            value = getattr(demo, key)
            if value is not None:
                group.create_dataset(key, data=value)
        obs = group.create_group("obs")
        for key, value in demo.obs.items():
            image = value.dtype == np.uint8 and value.ndim == 4
            obs.create_dataset(key, data=value, **({"compression": "gzip", "compression_opts": 4,
                                                   "chunks": (1, *value.shape[1:])} if image else {}))
        self.count += 1
        return name

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self._file["data"].attrs["total"] = int(sum(self._file["data"][k].attrs["num_samples"]
                                                    for k in self._file["data"]))
        self._file.close()
        self._ctx.__exit__(exc_type, exc, tb)


@dataclass
class DemoFile:
    """What a demo file says about its task."""

    path: Path
    env_args: dict[str, Any]
    instruction: str
    names: list[str]


def _read_attrs(attrs: Any) -> dict[str, Any]:
    out = {}
    for key, value in attrs.items():
        if isinstance(value, bytes):
            value = value.decode()
        if isinstance(value, str) and value[:1] in "[{":
            try:
                value = json.loads(value)
            except ValueError:
                pass
        out[key] = value.item() if isinstance(value, np.generic) else value
    return out


def open_demos(path: str | Path) -> DemoFile:
    """The task facts and demo names of a file (official LIBERO files or ours)."""
    h5py = require("h5py", "libero")
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            data = f["data"]
            attrs = _read_attrs(data.attrs)
            names = sorted(data.keys(), key=lambda n: int(n.split("_")[-1]) if n.split("_")[-1].isdigit() else 0)
    except (OSError, KeyError) as exc:
        raise D2EError(f"not a demo file ({exc})", path=path, fix="pass LIBERO HDF5 demos or a generate-demos output"
                       ) from exc
    problem = attrs.get("problem_info") or {}
    env_args = attrs.get("env_args") or {}
    return DemoFile(path, env_args if isinstance(env_args, dict) else {},
                    str(problem.get("language_instruction", "")) if isinstance(problem, dict) else "", names)


def read_demos(path: str | Path, obs_keys: list[str] | None = None) -> Iterator[Demo]:
    """Each demo of a file, with only ``obs_keys`` loaded (all observations when None)."""
    h5py = require("h5py", "libero")
    with h5py.File(Path(path), "r") as f:
        for name in open_demos(path).names:
            group = f["data"][name]
            obs = group.get("obs", {})
            keys = list(obs.keys()) if obs_keys is None else obs_keys
            missing = [k for k in keys if k not in obs]
            if missing:
                raise D2EError(f"{name} has no obs/{missing[0]}", path=path,
                               fix=f"observations present: {sorted(obs.keys())}")
            yield Demo(name, group["actions"][()], {k: obs[k][()] for k in keys}, _read_attrs(group.attrs),
                       *(group[k][()] if k in group else None for k in ("states", "rewards", "dones")))
