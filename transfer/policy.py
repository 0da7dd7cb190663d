"""The fine-tuned policy: the pretrained trunk (or none, for scratch) with a language token, a proprio token and
an action head, the same for LIBERO and navigation.

Each camera's last ``history`` frames go through the trunk's causal frame encoder (``core.nn.encoder``, the
pretrained one), the task instruction through a small word-embedding bag trained here, the proprio state
through a linear layer; ``chunk`` learned action queries then run through the trunk's decoder blocks
(``core.nn.decoder``) cross-attending to all of it. LIBERO reads a chunk of 7-D actions out with an L1 loss
(OpenVLA-OFT's recipe); navigation reads one of four discrete actions with cross-entropy. ``forward(batch)``
returns ``(loss, metrics)``; ``act`` gives the actions for one observation history.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from capture.errors import D2EError
from core.config import EncoderConfig
from core.nn.trunk import PolicyTrunk, pretrained_trunk

IMAGES, STATE, WORDS, ACTIONS, ACTION_MASK = "images", "state", "words", "actions", "action_mask"
UNKNOWN_WORD = "<unk>"


@dataclass
class TransferConfig(EncoderConfig):
    """Settings of a fine-tuned policy (the encoder's come from the pretrained run when there is one).

    Attributes:
        name: Free-form id.
        simulator: ``libero`` or ``nav``: which observations and actions.
        cameras: Observation keys of the images the policy looks at, in order.
        image_size: Square image size the policy sees (demos and renders are resized to it).
        history: Frames of each camera the policy sees (the current one and the ones before).
        state_dim: Length of the proprio/pose vector ``state``.
        action: ``chunk`` (continuous actions, L1) or ``discrete`` (one of ``action_dim`` choices, CE).
        action_dim: 7 for LIBERO's OSC_POSE deltas + gripper; 4 navigation actions.
        chunk: Actions predicted per step (continuous); the policy executes ``execute`` of them before
            looking again.
        execute: Actions of each predicted chunk executed open loop.
        decoder_layers: Decoder blocks the action queries run through (the pretrained trunk's).
        pretrained: The pretraining run the trunk came from (None: trained from scratch).
        words: The instruction vocabulary (filled from the training demos).
    """

    name: str = "transfer"
    simulator: str = "libero"
    cameras: list[str] = field(default_factory=lambda: ["agentview_rgb", "eye_in_hand_rgb"])
    image_size: int = 64
    history: int = 2
    state_dim: int = 8
    action: str = "chunk"
    action_dim: int = 7
    chunk: int = 8
    execute: int = 4
    decoder_layers: int = 2
    pretrained: str | None = None
    words: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.action not in ("chunk", "discrete"):
            raise D2EError(f"action must be 'chunk' or 'discrete', got {self.action!r}")
        if not 1 <= self.execute <= self.chunk:
            raise D2EError(f"execute must be between 1 and chunk ({self.chunk}), got {self.execute}")
        if not self.cameras:
            raise D2EError("a policy needs at least one camera", fix="e.g. cameras=['agentview_rgb']")


def words_of(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


class TransferPolicy(nn.Module):
    """Observation history + instruction -> actions."""

    def __init__(self, cfg: TransferConfig):
        super().__init__()
        self.cfg = cfg
        self.trunk = PolicyTrunk(cfg, cfg.decoder_layers, cfg.history)
        d = cfg.d_model
        self.camera = nn.Parameter(torch.zeros(len(cfg.cameras), 1, d))
        self.word = nn.EmbeddingBag(len(cfg.words) + 1, d, mode="mean")
        self.state = nn.Sequential(nn.Linear(cfg.state_dim, d), nn.GELU(), nn.Linear(d, d))
        queries = cfg.chunk if cfg.action == "chunk" else 1
        self.queries = nn.Parameter(torch.zeros(queries, d))
        self.out = nn.Linear(d, cfg.action_dim)
        for p in (self.camera, self.queries):
            nn.init.normal_(p, std=0.02)
        self.index = {w: i + 1 for i, w in enumerate(cfg.words)}  # 0: unknown words

    def word_ids(self, instruction: str, length: int = 24) -> torch.Tensor:
        ids = [self.index.get(w, 0) for w in words_of(instruction)][:length] or [0]
        return torch.tensor(ids + [-1] * (length - len(ids)))

    def memory(self, images: torch.Tensor, state: torch.Tensor, words: torch.Tensor) -> torch.Tensor:
        """(B, cams, T, S, S, 3) uint8, (B, state_dim), (B, L) word ids (-1 pads) -> (B, M, d)."""
        b, cams, t = images.shape[:3]
        encoded = self.trunk.encoder(images.flatten(0, 1))  # (B*cams, T*P, d)
        encoded = encoded.reshape(b, cams, -1, encoded.shape[-1]) + self.camera[None]
        return torch.cat([encoded.flatten(1, 2), self._bag(words)[:, None], self.state(state.float())[:, None]], 1)

    def _bag(self, words: torch.Tensor) -> torch.Tensor:
        """Mean word embedding of each instruction (pads left out)."""
        mask = words.ge(0)
        known = self.word.num_embeddings
        offsets, flat = [], []
        for row, keep in zip(words, mask):
            offsets.append(len(flat))
            flat += [i if i < known else 0 for i in row[keep].tolist()] or [0]  # 0: an unknown word
        return self.word(torch.tensor(flat, device=words.device), torch.tensor(offsets, device=words.device))

    def predict(self, images: torch.Tensor, state: torch.Tensor, words: torch.Tensor) -> torch.Tensor:
        """Continuous: (B, chunk, action_dim) actions; discrete: (B, action_dim) logits."""
        memory = self.memory(images, state, words)
        x = self.queries[None].expand(images.shape[0], -1, -1)
        out = self.out(self.trunk.decoder(x, memory))
        return out if self.cfg.action == "chunk" else out[:, 0]

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        pred = self.predict(batch[IMAGES], batch[STATE], batch[WORDS])
        if self.cfg.action == "chunk":
            mask = batch[ACTION_MASK].float()[..., None]
            loss = (F.l1_loss(pred, batch[ACTIONS].float(), reduction="none") * mask).sum() \
                / (mask.sum() * pred.shape[-1]).clamp(min=1)
            first = F.l1_loss(pred[:, 0], batch[ACTIONS][:, 0].float())
            return loss, {"loss": float(loss.detach()), "l1_first": float(first.detach())}
        loss = F.cross_entropy(pred, batch[ACTIONS].long())
        acc = pred.argmax(-1).eq(batch[ACTIONS].long()).float().mean()
        return loss, {"loss": float(loss.detach()), "action_acc": float(acc)}


def load_trunk(policy: TransferPolicy, pretrained: str) -> None:
    """The pretrained run's frame encoder and decoder blocks into ``policy`` (strict for those parts)."""
    state = pretrained_trunk(pretrained)
    own = policy.trunk.state_dict()
    if state["encoder.time"].shape[0] < own["encoder.time"].shape[0]:
        raise D2EError(f"the pretrained encoder saw {state['encoder.time'].shape[0]} frames, the policy wants "
                       f"{own['encoder.time'].shape[0]}", path=pretrained, fix="lower history")
    state["encoder.time"] = state["encoder.time"][: own["encoder.time"].shape[0]]  # the first frames' embeddings
    policy.trunk.load_state_dict(state)
