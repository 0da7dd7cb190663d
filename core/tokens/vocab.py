"""Token strings and the vocabulary: strings <-> ids in a fixed order, saved beside every model that uses it."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PAD, BOS, EOS = "<PAD>", "<BOS>", "<EOS>"
START, END = "<EVENT_START>", "<EVENT_END>"
KEYBOARD, MOUSE, SCREEN = "<KEYBOARD>", "<MOUSE>", "<SCREEN>"
IMG, IMG_END, IMG_TOKEN = "<img>", "</img>", "<IMG_CONTEXT>"
PRESS, RELEASE = "<press>", "<release>"
PLUS, MINUS, SCROLL = "<+>", "<->", "<SCROLL>"
DIGITS = [f"<{d}>" for d in range(10)]
HEX = [f"<0x{d:X}>" for d in range(16)]
VKS = [f"<VK_{i}>" for i in range(256)]


@dataclass(frozen=True)
class Vocabulary:
    """Token strings <-> ids, in a fixed order."""

    tokens: tuple[str, ...]

    @classmethod
    def default(cls) -> Vocabulary:
        fixed = [PAD, BOS, EOS, START, END, KEYBOARD, MOUSE, SCREEN, IMG, IMG_END, IMG_TOKEN, PRESS, RELEASE,
                 PLUS, MINUS, SCROLL]
        return cls(tuple(fixed + DIGITS + HEX + VKS))

    def __post_init__(self) -> None:
        object.__setattr__(self, "_ids", {t: i for i, t in enumerate(self.tokens)})

    def __len__(self) -> int:
        return len(self.tokens)

    def id(self, token: str) -> int:
        return self._ids[token]  # type: ignore[attr-defined]

    def ids(self, tokens: Iterable[str]) -> list[int]:
        ids = self._ids  # type: ignore[attr-defined]
        return [ids[t] for t in tokens]

    def token(self, i: int) -> str:
        return self.tokens[i]

    @property
    def pad_id(self) -> int:
        return self.id(PAD)

    def to_json(self) -> dict[str, Any]:
        return {"format": "d2e-event-tokens", "version": 1, "tokens": list(self.tokens)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Vocabulary:
        return cls(tuple(data["tokens"]))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json()))

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        return cls.from_json(json.loads(Path(path).read_text()))
