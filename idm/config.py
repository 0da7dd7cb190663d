"""``IDMConfig``: the model settings of an inverse dynamics model, saved as ``config.json`` beside its weights.

With the run's ``DataConfig`` (frames, image size, NEP-tau, keys) it rebuilds the exact model, so a run folder
alone evaluates, labels and resumes. Why each option is set as it is, with the measurements:
``docs/idm-ablations.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from capture.errors import D2EError
from core.config import DataConfig, EncoderConfig, TrainConfig, route_fields


@dataclass
class IDMConfig(EncoderConfig):
    """Model settings of an IDM (the encoder's are inherited from ``EncoderConfig``).

    Attributes:
        name: Free-form id recorded in pseudo-labels (with the config hash).
        kind: ``events`` (D2E-style event-token decoder) or ``ticks`` (VPT-style per-50 ms heads).
        frame_context: Each decoder token also gets the pooled features of frames i-3..i+1 (off: it made the
            decoder ignore the frames).
        grounding_bias: Each event token's cross-attention is biased toward the frames that show its event (its
            frame minus NEP-tau), one learned slope per head; without it mouse deltas followed the token position.
        tick_aux_weight: The event IDM's encoder also trains per-tick heads with this loss weight (dense labels
            for every frame; the token loss alone gives a few mouse digits per window). 0 disables.
        tick_context: Each event token also gets the tick heads' key/button logits around its event (off: no gain).
        mouse_value_head: Mouse dx/dy of each decoded mouse event come from a regression head beside the tick
            heads (forced into the digits by the grammar) instead of being chosen digit by digit.
        mouse_value_features: The value head also reads the per-frame features, beside its gain on the image shift.
        event_type_weight: Loss weight of the token after each ``<EVENT_START>`` (which event, or the next frame).
        onset_head: The per-tick heads also predict whether each key went down in the tick (press onsets):
            presses are read from its peaks, which time them better than changes of the held state.
        key_pos_weight: Key, onset and button losses weigh positives by the inverse of their rate in the training
            data (keys are held a third of the time, onsets a few percent: unweighted, neither crosses 0.5).
        edge_ticks: The last ticks of each window are left out of the per-tick losses: their evidence lies in
            frames after the window.
        events_from_ticks: The event IDM writes the events its calibrated per-tick heads find (key presses at
            onset peaks, button changes, the value head's mouse motion) and its decoder stamps and orders them;
            otherwise it decides events token by token, which greedy decoding never did for keys (teacher-forced,
            P(keyboard) 0.25-0.29 where a key came vs 0.19-0.21 elsewhere) and which babbles mouse events in games
            without a mouse.
        decoder_layers: Transformer layers of the autoregressive event decoder.
        max_tokens: Longest event-token sequence per window; longer ones are cut (training warns and logs
            ``cut_windows``).
        mouse_bins: Per-axis bins of the tick heads' mouse (mu-law, as VPT).
        mouse_max: Largest |dx| per tick the binned mouse can express (counts).
        vocab_size: Filled from the token vocabulary when the model is built.
    """

    name: str = "idm-tiny"
    kind: str = "events"
    frame_context: bool = False
    grounding_bias: bool = True
    tick_aux_weight: float = 1.0
    tick_context: bool = False
    mouse_value_head: bool = True
    mouse_value_features: bool = True
    event_type_weight: float = 1.0
    onset_head: bool = True
    key_pos_weight: bool = True
    edge_ticks: int = 2
    events_from_ticks: bool = True
    decoder_layers: int = 2
    max_tokens: int = 768
    mouse_bins: int = 11
    mouse_max: int = 400
    vocab_size: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.kind not in ("events", "ticks"):
            raise D2EError(f"kind must be 'events' or 'ticks', got {self.kind!r}")
        if self.kind == "events" and self.events_from_ticks and (self.tick_aux_weight <= 0 or not self.onset_head):
            raise D2EError("events_from_ticks reads the onset head of the tick heads, which needs onset_head=true and "
                           "tick_aux_weight > 0", fix="set events_from_ticks=false to let the decoder write events")
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


# Value of each later-added field that means "behave as before it existed" (for older run folders).
SAVED_BEFORE_FIELD_EXISTED: dict[str, Any] = {"motion_cue_radius": 0, "motion_cue_peak": False,
                                               "motion_cue_peak_global": False,
                                               "frame_context": False, "merge_motion_ms": 0,
                                               "grounding_bias": False, "tick_aux_weight": 0.0,
                                               "tick_context": False, "event_type_weight": 1.0,
                                               "mouse_value_head": False, "mouse_value_features": True,
                                               "motion_frames": 1, "onset_head": False, "key_pos_weight": False,
                                               "edge_ticks": 0, "events_from_ticks": False, "balance_games": False,
                                               "calib_fraction": 0.0}

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


def preset(name: str, **overrides: Any) -> tuple[IDMConfig, DataConfig, TrainConfig]:
    """The three configs of a preset, with ``overrides`` (any field of any of them, by name)."""
    if name not in PRESETS:
        raise D2EError(f"unknown preset {name!r}", fix=f"choose one of {sorted(PRESETS)}")
    return configs_from({**PRESETS[name], **overrides}, source=f"preset {name}")


def configs_from(flat: dict[str, Any], source: str = "config") -> tuple[IDMConfig, DataConfig, TrainConfig]:
    model, data, train = route_fields(flat, IDMConfig, DataConfig, TrainConfig, source=source)
    return (IDMConfig.from_dict(model, source), DataConfig.from_dict(data, source),
            TrainConfig.from_dict(train, source))
