"""``IDMConfig``: everything that defines an IDM, saved as ``config.json`` beside its weights.

One dataclass selects the vision encoder, the frame window, the decoder size, NEP-tau and the token
vocabulary, so a checkpoint folder alone rebuilds the exact model (no pickles, no module constants).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from capture.errors import D2EError


@dataclass
class IDMConfig:
    """Model and data settings of an inverse dynamics model.

    Attributes:
        name: Free-form id recorded in pseudo-labels (with the config hash).
        kind: ``"events"`` (D2E-style event-token decoder) or ``"ticks"`` (VPT-style per-50 ms heads).
        encoder: ``"cnn"`` (small CNN trained from scratch) or ``"pretrained"`` (a local
            ``transformers``/``timm`` vision model at ``encoder_path``; never downloaded).
        encoder_path: Folder of a local pretrained vision model when ``encoder="pretrained"``.
        image_size: Frames are resized to this square size (pixels) by the dataset.
        frames: Frames per window (20 Hz): the IDM sees all of them (non-causal).
        patch_grid: Each frame becomes ``patch_grid**2`` tokens after the CNN (spatial detail for clicks).
        motion_input: The CNN also sees each frame's difference to the next one (small moving objects
            survive pooling). Ignored by pretrained encoders, which take plain RGB.
        motion_cue_radius: The encoder also sees the phase-correlation surface between consecutive
            frames within this many pixels of zero shift (global camera motion, sub-pixel); 0 disables.
        motion_cue_peak: The cue also carries that surface's peak refined to sub-pixel (the optical-flow
            shift); most camera turns move the image less than a pixel at model size. In the IDM benchmark
            the tick model's held-out mouse Pearson x went 0.399 -> 0.500, the event model's seen 0.06 -> 0.26.
        motion_cue_peak_global: That peak is searched over the whole correlation surface (shifts up to half
            the image), not only the cue's patch: fast turns move a 64 px image 5-10 px per frame, and a peak
            confined to +-radius then lands on a wrong neighbour (on health_gathering the patch peak read the
            mouse at Pearson 0.65, the whole-surface one 0.85, the optical-flow baseline's number).
        frame_context: Each decoder token also gets the pooled features of the frames around the one it
            belongs to (counted by screen events, from 3 before to 1 after). Off by default: in the IDM
            benchmark (1500 steps) it made the decoder lean on its token prior and emit no key presses
            (press F1 0.07 -> 0.00 on seen games) while mouse stayed unlearned; kept as an option.
        grounding_bias: Each event token's cross-attention to the frames is biased toward the frames
            around the moment its event happened (its frame minus NEP-tau), with one learned slope per head
            (ALiBi-style; one head stays global). Without it the decoder has to count screen events to know
            which frames to look at; its mouse deltas followed the window position instead of the image.
            Together with ``tick_aux_weight`` held-out mouse Pearson x went 0.01 -> 0.37 (IDM benchmark).
        tick_aux_weight: The event IDM's encoder also trains the tick model's per-50 ms heads (keys,
            buttons, binned mouse) with this loss weight; the heads are not used for output. The token loss
            alone gives the encoder a few mouse digits per window to learn motion from; the dense ticks give
            it every frame (with the grounding bias alone, mouse stayed unlearned). 0 disables.
        tick_context: Each event token also gets the tick heads' key and button logits of the two frames
            that show its event and their change (needs ``tick_aux_weight > 0``): the decoder's own
            attention hardly told key events from frame boundaries (P(keyboard) 0.28 vs 0.21, teacher-forced).
            Off by default: in the IDM benchmark (1500 steps) it did not sharpen that (0.22 vs 0.16), emitted a
            few key events (seen per-key F1 0.000 -> 0.013) and lost mouse (held-out Pearson x 0.36 -> 0.21).
        mouse_value_head: The event IDM writes the dx/dy of each mouse event from a regression head beside
            the tick heads (a linear read of the per-frame features plus a per-frame gain times the motion
            cue's image shift, Huber loss; needs ``tick_aux_weight > 0``) instead of choosing the digits token
            by token; the decoder still decides which events there are, when, and their buttons. The digits
            are forced by the grammar, so the token stream keeps D2E's format. Why: digit by digit, greedy
            decoding turned motion the encoder had (its tick heads read it at Pearson 0.59) into 0.39; with
            the head, 0.81 (held-out health_gathering, IDM benchmark). The tick model is unaffected (its binned
            mouse is the VPT baseline).
        mouse_value_features: The value head's linear read of the per-frame features, beside the gain on
            the image shift. Off, the head is only that gain (needs the cue's peak): held-out Pearson x 0.805
            -> 0.833 but y 0.313 -> -0.03, seen x 0.370 -> 0.357 and y 0.171 -> 0.022 (IDM benchmark, 1500
            steps, one run each), so it stays on: the features carry the vertical motion the shift does not.
        event_type_weight: Loss weight of the token after each ``<EVENT_START>`` (keyboard, mouse or the
            next frame: where the decoder decides that an input happened) against 1 for the others, most
            of which the grammar or the timestamps nearly fix. 5 was measured (IDM benchmark, 1500 steps): still
            no key events, mouse unchanged; so 1 (plain cross-entropy) by default.
        d_model: Width of the frame encoder and the event decoder.
        encoder_layers: Transformer layers over all frame tokens of the window.
        decoder_layers: Transformer layers of the autoregressive event decoder.
        heads: Attention heads (``d_model`` must divide by it).
        dropout: Dropout in the transformers.
        max_tokens: Longest event-token sequence per window; longer ones are cut (training warns and logs
            the fraction as ``cut_windows``).
        tau_ms: NEP-tau: actions are shifted this much later before interleaving with frames (D2E: 100-150).
        merge_motion_ms: Raw mouse motion is summed per slot of this length in the token labels, so the
            decoder writes at most one motion event per slot (the 50 ms metric bins lose nothing); 1 kHz
            raw input unmerged would overflow ``max_tokens`` within a frame or two. 0 keeps every event.
        mouse_bins: Per-axis bins of the ticks model's mouse head (mu-law, as VPT).
        mouse_max: Largest |dx| per tick the ticks model can express (pixels/counts).
        keys: VK codes the ticks model predicts (empty: learned from the training data).
        lr, weight_decay, batch_size, max_steps, warmup_steps: Optimisation.
        precision: Lightning precision (``"32"`` on CPU; ``"bf16-mixed"`` on GPU).
        compile: Wrap the model with ``torch.compile`` (GPU runs).
        seed: Seed for initialisation and data order.
    """

    name: str = "idm-tiny"
    kind: str = "events"
    encoder: str = "cnn"
    encoder_path: str | None = None
    image_size: int = 64
    frames: int = 8
    patch_grid: int = 4
    motion_input: bool = True
    motion_cue_radius: int = 4
    motion_cue_peak: bool = True
    motion_cue_peak_global: bool = True
    frame_context: bool = False
    grounding_bias: bool = True
    tick_aux_weight: float = 1.0
    tick_context: bool = False
    mouse_value_head: bool = True
    mouse_value_features: bool = True
    event_type_weight: float = 1.0
    d_model: int = 128
    encoder_layers: int = 2
    decoder_layers: int = 2
    heads: int = 4
    dropout: float = 0.1
    max_tokens: int = 768
    tau_ms: int = 100
    merge_motion_ms: int = 50
    mouse_bins: int = 11
    mouse_max: int = 400
    keys: list[int] = field(default_factory=list)
    lr: float = 3e-4
    weight_decay: float = 0.01
    batch_size: int = 16
    max_steps: int = 2000
    warmup_steps: int = 100
    precision: str = "32"
    compile: bool = False
    seed: int = 0
    vocab_size: int = 0  # filled from the token vocabulary when the model is built

    def __post_init__(self) -> None:
        if self.kind not in ("events", "ticks"):
            raise D2EError(f"kind must be 'events' or 'ticks', got {self.kind!r}")
        if self.encoder not in ("cnn", "pretrained"):
            raise D2EError(f"encoder must be 'cnn' or 'pretrained', got {self.encoder!r}")
        if self.encoder == "pretrained" and not self.encoder_path:
            raise D2EError("encoder='pretrained' needs encoder_path (a local folder; nothing is downloaded)")
        if self.d_model % self.heads:
            raise D2EError(f"d_model ({self.d_model}) must be divisible by heads ({self.heads})")
        if self.frames < 2:
            raise D2EError(f"frames must be >= 2 (an IDM needs the frame after an action), got {self.frames}")
        if self.tick_context and self.tick_aux_weight <= 0:
            raise D2EError("tick_context reads the tick heads, which train only with tick_aux_weight > 0")
        if self.kind == "events" and self.mouse_value_head and self.tick_aux_weight <= 0:
            raise D2EError("mouse_value_head trains beside the tick heads, which need tick_aux_weight > 0",
                           fix="set mouse_value_head=false to let the decoder write mouse digits itself")
        if self.kind == "events" and self.mouse_value_head and not self.mouse_value_features and not (
                self.motion_cue_radius > 0 and self.motion_cue_peak):
            raise D2EError("mouse_value_features=false leaves the value head only the motion cue's image shift, "
                           "which needs motion_cue_radius > 0 and motion_cue_peak=true",
                           fix="turn the cue's peak on, or set mouse_value_features=true")
        if self.image_size % 16:
            raise D2EError(f"image_size must be a multiple of 16, got {self.image_size}")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    def save(self, folder: str | Path) -> None:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / "config.json").write_text(self.to_json())

    @classmethod
    def load(cls, folder_or_file: str | Path) -> IDMConfig:
        path = Path(folder_or_file)
        if path.is_dir():
            path = path / "config.json"
        if not path.exists():
            raise D2EError("no config.json", path=path, fix="pass a checkpoint folder written by 'd2e idm train'")
        # a field added after a checkpoint was saved takes the value that reproduces that checkpoint
        return cls.from_dict({**SAVED_BEFORE_FIELD_EXISTED, **json.loads(path.read_text())}, source=str(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> IDMConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise D2EError(f"unknown config fields {unknown}", path=source, fix=f"valid fields: {sorted(known)}")
        return cls(**data)

    def hash(self) -> str:
        import hashlib

        return hashlib.sha256(self.to_json().encode()).hexdigest()[:12]


# Value of each later-added field that means "behave as before it existed" (for older config.json files).
SAVED_BEFORE_FIELD_EXISTED: dict[str, Any] = {"motion_cue_radius": 0, "motion_cue_peak": False,
                                               "motion_cue_peak_global": False,
                                               "frame_context": False, "merge_motion_ms": 0,
                                               "grounding_bias": False, "tick_aux_weight": 0.0,
                                               "tick_context": False, "event_type_weight": 1.0,
                                               "mouse_value_head": False, "mouse_value_features": True}

PRESETS: dict[str, dict[str, Any]] = {
    # Trains to useful accuracy on a 2-core CPU in minutes.
    "tiny": {},
    # Meant for a GPU: bf16, bigger frames and window.
    "base": {"name": "idm-base", "image_size": 128, "frames": 16, "patch_grid": 4, "d_model": 384,
             "encoder_layers": 6, "decoder_layers": 6, "heads": 6, "batch_size": 32, "max_steps": 50_000,
             "precision": "bf16-mixed", "max_tokens": 1536},
    "large": {"name": "idm-large", "image_size": 224, "frames": 32, "patch_grid": 7, "d_model": 768,
              "encoder_layers": 12, "decoder_layers": 12, "heads": 12, "batch_size": 32, "max_steps": 200_000,
              "precision": "bf16-mixed", "max_tokens": 3072, "compile": True},
}


def preset(name: str, **overrides: Any) -> IDMConfig:
    if name not in PRESETS:
        raise D2EError(f"unknown preset {name!r}", fix=f"choose one of {sorted(PRESETS)}")
    return IDMConfig.from_dict({**PRESETS[name], **overrides})
