"""Both IDM kinds: a few real optimisation steps, bit-exact save/load, config validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from capture.errors import D2EError  # noqa: E402
from core.data.dataset import FRAMES, TOKENS  # noqa: E402
from core.nn.heads import BUTTONS, KEYS, MOUSE, MOUSE_VALUE, mu_law_bin, mu_law_value  # noqa: E402
from core.nn.motion import MotionCue  # noqa: E402
from core.run import RunFolder  # noqa: E402
from core.tokens import Vocabulary  # noqa: E402
from idm.config import SAVED_BEFORE_FIELD_EXISTED, IDMConfig, configs_from, preset  # noqa: E402
from idm.model import EventIDM, GroundingBias, TickIDM, with_edge_mask  # noqa: E402

V = Vocabulary.default()


def _cfgs(**kw):
    base = dict(image_size=32, frames=4, d_model=32, heads=2, encoder_layers=1, decoder_layers=1, max_tokens=64,
                dropout=0.0)
    return configs_from({**base, **kw})


def _cfg(**kw) -> IDMConfig:
    return _cfgs(**kw)[0]


def _events(**kw) -> EventIDM:
    cfg, data, _train = _cfgs(**kw)
    return EventIDM(cfg, data, V)


def _ticks(**kw) -> TickIDM:
    cfg, data, _train = _cfgs(kind="ticks", **kw)
    return TickIDM(cfg, data)


def _generate(model: EventIDM, frames, prefix, grammar, **kw):
    """One window through the batched decoder."""
    [(ids, probs)] = model.generate_batch(model.encoder(frames), prefix, [grammar], **kw)
    return ids, probs


def _frames(b: int, t: int, s: int) -> torch.Tensor:
    return torch.randint(0, 255, (b, t, s, s, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def test_event_idm_learns_a_fixed_sequence() -> None:
    torch.manual_seed(0)
    model = _events()
    batch = {FRAMES: _frames(2, 4, 32), TOKENS: torch.tensor([[1, 5, 6, 7, 8, 2, 0, 0], [1, 9, 9, 3, 2, 0, 0, 0]])}
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for _ in range(60):
        loss, metrics = model(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first if first is not None else metrics["loss"]
    assert metrics["loss"] < first / 4 and metrics["token_acc"] > 0.9
    model.eval()
    out, probs = _generate(model, batch[FRAMES][:1], [1], lambda toks: None if toks[-1] == 2 else list(range(1, 40)),
                           max_new=10)
    assert out == [1, 5, 6, 7, 8, 2] and all(0 < p <= 1 for p in probs)


def test_windows_longer_than_max_tokens_are_reported_not_silently_cut() -> None:
    model = _events(max_tokens=6)
    batch = {FRAMES: _frames(2, 4, 32), TOKENS: torch.tensor([[1, 5, 6, 7, 8, 9, 3, 2], [1, 9, 3, 2, 0, 0, 0, 0]])}
    with pytest.warns(UserWarning, match="1 of 2 windows have more than max_tokens=6"):
        _loss, metrics = model(batch)
    assert metrics["cut_windows"] == 0.5
    _loss, metrics = model({FRAMES: batch[FRAMES][1:], TOKENS: batch[TOKENS][1:]})
    assert metrics["cut_windows"] == 0.0


def test_event_type_tokens_weigh_more_in_the_loss_when_asked() -> None:
    """The token after <EVENT_START> (id 3) counts ``event_type_weight`` times; the logged token loss stays plain."""
    torch.manual_seed(0)
    model = _events(event_type_weight=4.0)
    batch = {FRAMES: _frames(2, 4, 32), TOKENS: torch.tensor([[1, 3, 5, 6, 3, 9, 2], [1, 3, 7, 2, 0, 0, 0]])}
    loss, metrics = model(batch)
    loss = loss.detach()
    target = batch[TOKENS][:, 1:]
    with torch.no_grad():
        logits = model.decode(batch[TOKENS][:, :-1], model.encoder(batch[FRAMES]))
    ce = torch.nn.functional.cross_entropy(logits.transpose(1, 2), target, reduction="none")
    w = target.ne(0).float() * torch.where(batch[TOKENS][:, :-1].eq(3), 4.0, 1.0)
    assert float(loss) == pytest.approx(float((ce * w).sum() / w.sum()), rel=1e-5)
    assert metrics["token_loss"] == pytest.approx(float((ce * target.ne(0)).sum() / target.ne(0).sum()), rel=1e-5)
    assert float(loss) != pytest.approx(metrics["token_loss"], rel=1e-5)  # so the first check tells them apart


@pytest.mark.parametrize(("tau_ms", "rows"), [(100, [2, 3]), (0, [0, 1])])
def test_tick_context_gives_each_token_the_frames_that_show_its_event(tau_ms: int, rows: list[int]) -> None:
    """With NEP-tau 100 ms a token of frame i reads frames i-2 and i-1; with tau 0, frames i and i+1."""
    torch.manual_seed(0)
    model = _events(frames=4, keys=[65, 68], tick_context=True, tau_ms=tau_ms).eval()
    cfg = model.cfg
    memory = torch.randn(1, 4 * cfg.patch_grid ** 2, cfg.d_model)
    changed = memory.clone()
    patches = cfg.patch_grid ** 2
    changed[:, patches:2 * patches] += 1.0  # frame 1 only
    with torch.no_grad():
        diff = (model.frame_table(changed) - model.frame_table(memory)).abs().sum(-1)[0]
    assert torch.nonzero(diff > 1e-6).flatten().tolist() == rows
    with pytest.raises(D2EError, match="tick_aux_weight"):
        _cfg(tick_context=True, tick_aux_weight=0.0)


def test_event_idm_trains_the_tick_heads_beside_its_decoder() -> None:
    model = _events(keys=[65, 68], tick_aux_weight=0.5)
    batch = {FRAMES: _frames(2, 4, 32), TOKENS: torch.tensor([[1, 5, 6, 2], [1, 9, 2, 0]]),
             KEYS: torch.zeros(2, 4, 2, dtype=torch.bool), BUTTONS: torch.zeros(2, 4, 5, dtype=torch.bool),
             MOUSE: torch.tensor([[[3, -1], [0, 0], [40, 2], [-200, 7]]] * 2)}
    loss, metrics = model(batch)
    tick_loss, _ = model.ticks.tick_loss(model.ticks.predict(model.encoder.per_frame(model.encoder(batch[FRAMES]))),
                                         with_edge_mask(batch, 2))  # the last two ticks see no future frames
    assert float(loss.detach()) == pytest.approx(metrics["token_loss"] + 0.5 * float(tick_loss.detach()), rel=1e-4)
    loss.backward()
    assert model.ticks.mouse.weight.grad.abs().sum() > 0
    _loss, metrics = model({FRAMES: batch[FRAMES], TOKENS: batch[TOKENS]})  # hand-made batches without ticks
    assert "mouse_loss" not in metrics
    assert not any(name.startswith("ticks.") for name in _events(tick_aux_weight=0.0, mouse_value_head=False,
                                                                 events_from_ticks=False).state_dict())
    with pytest.raises(D2EError, match="mouse_value_head=false"):
        _cfg(tick_aux_weight=0.0, events_from_ticks=False)
    with pytest.raises(D2EError, match="events_from_ticks=false"):
        _cfg(tick_aux_weight=0.0, mouse_value_head=False)


def test_the_mouse_value_head_regresses_counts_from_features_and_the_image_shift() -> None:
    torch.manual_seed(0)
    model = _events(keys=[65], motion_cue_peak=True, motion_cue_peak_global=True)
    frames = _frames(2, 4, 32)
    batch = {FRAMES: frames, TOKENS: torch.tensor([[1, 5, 6, 2], [1, 9, 2, 0]]),
             KEYS: torch.zeros(2, 4, 1, dtype=torch.bool), BUTTONS: torch.zeros(2, 4, 5, dtype=torch.bool),
             MOUSE: torch.tensor([[[30, -10], [0, 0], [40, 2], [-200, 7]]] * 2)}
    with torch.no_grad():
        model.ticks.value_gain.bias.fill_(0.2)
    memory, shift = model.encoder.encode(frames)
    values = model.tick_outputs(memory, shift)[MOUSE_VALUE]
    h = model.encoder.per_frame(memory)
    float_frames = frames.permute(0, 1, 4, 2, 3).float() / 255  # the layout the cue takes
    torch.testing.assert_close(shift, model.encoder.cue.peak(model.encoder.cue.correlation(float_frames)))
    gain = model.ticks.GAIN_STEP * 0.2  # the gain's bias, at its faster step
    torch.testing.assert_close(values, (model.ticks.value(h) + gain * shift) * model.ticks.VALUE_UNIT)
    loss, metrics = model(batch)
    valid = slice(0, 2)  # the last two of the 4 ticks see no future frames: out of the loss (edge_ticks=2)
    expected = torch.nn.functional.smooth_l1_loss(values[:, valid] / 10, batch[MOUSE][:, valid].float() / 10)
    assert metrics["mouse_value_loss"] == pytest.approx(float(expected.detach()), rel=1e-5)
    loss.backward()
    assert model.ticks.value.weight.grad.abs().sum() > 0 and model.ticks.value_gain.weight.grad.abs().sum() > 0
    assert MOUSE_VALUE not in _events(mouse_value_head=False).tick_outputs(memory, shift)


def test_the_mouse_value_head_can_read_the_image_shift_alone() -> None:
    torch.manual_seed(0)
    model = _events(keys=[65], mouse_value_features=False)
    assert model.ticks.value is None and not any(k.startswith("ticks.value.") for k in model.state_dict())
    frames = _frames(2, 4, 32)
    with torch.no_grad():
        model.ticks.value_gain.bias.fill_(0.2)
        memory, shift = model.encoder.encode(frames)
        values = model.tick_outputs(memory, shift)[MOUSE_VALUE]
    torch.testing.assert_close(values, model.ticks.GAIN_STEP * 0.2 * shift * model.ticks.VALUE_UNIT)
    with pytest.raises(D2EError, match="motion_cue_peak"):
        _cfg(mouse_value_features=False, motion_cue_peak=False)


def test_grounding_bias_points_each_token_at_the_frames_that_show_its_event() -> None:
    # tau 100 ms = 2 frames: an event written after frame 5's screen event happened between frames 3 and 4
    bias = GroundingBias(heads=4, patches=4, tau_ms=100)(torch.tensor([[5, 0]]), memory_len=8 * 4)
    assert bias.shape == (1, 4, 2, 32)
    per_frame = bias[0, :, :, ::4]  # one value per frame (its 4 patch tokens share it)
    assert per_frame[0, 0].topk(2).indices.sort().values.tolist() == [3, 4]
    torch.testing.assert_close(per_frame[0, 0, 3], per_frame[0, 0, 4])
    assert per_frame[0, 1].argmax() == 0  # frame 0's tokens: the window start is the nearest frame
    assert per_frame[:3].std(-1).gt(0).all() and per_frame[3].eq(0).all()  # three local heads, one global
    assert GroundingBias(heads=4, patches=1, tau_ms=0)(torch.tensor([[5]]), 8)[0, 0, 0].topk(2).indices.sort(
    ).values.tolist() == [5, 6]  # without NEP-tau: the frame itself and the next one


def test_kv_cache_steps_match_the_full_decoder_and_batched_greedy_matches_one_by_one() -> None:
    torch.manual_seed(1)
    model = _events(decoder_layers=2, frames=4, frame_context=True, tick_context=True, keys=[65, 68]).eval()
    frames = _frames(3, 4, 32)
    tokens = torch.randint(1, 40, (3, 20), generator=torch.Generator().manual_seed(2))
    tokens[:, [3, 9, 14]] = model.screen_id  # tokens of several frames: each row's frame context moves on
    with torch.no_grad():
        memory = model.encoder(frames)
        full = model.decode(tokens, memory)
        cache = model.start_cache(memory)
        steps = torch.stack([model.step(tokens[:, i], i, cache) for i in range(tokens.shape[1])], 1)
    torch.testing.assert_close(steps, full, atol=1e-4, rtol=1e-4)

    def grammar(toks: list[int]) -> list[int] | None:  # rows stop at different lengths; some steps forced
        if len(toks) >= 12 or toks[-1] == 2:
            return None
        return [7] if len(toks) % 4 == 0 else list(range(2, 40))

    batched = model.generate_batch(memory, [1], [grammar] * 3)
    for row in range(3):
        ids, probs = batched[row]
        alone_ids, alone_probs = _generate(model, frames[row:row + 1], [1], grammar)
        assert alone_ids == ids and alone_probs == pytest.approx(probs, abs=1e-5)
        # greedy reference without the cache: argmax of the full decoder over the allowed tokens
        for i in range(1, len(ids)):
            allowed = grammar(ids[:i])
            logits = model.decode(torch.tensor([ids[:i]]), memory[row:row + 1])[0, -1]
            best = allowed[int(logits[allowed].argmax())] if len(allowed) > 1 else allowed[0]
            assert ids[i] == best and 0 < probs[i - 1] <= 1


@pytest.mark.parametrize(("dy", "dx"), [(0, 0), (1, 2), (-3, 0), (2, -4)])
def test_motion_cue_peaks_at_the_shift_between_frames(dy: int, dx: int) -> None:
    torch.manual_seed(0)
    image = torch.nn.functional.avg_pool2d(torch.rand(3, 64, 64), 3, 1, 1)  # texture, like a game wall
    moved = torch.roll(image, shifts=(dy, dx), dims=(-2, -1))
    cue = MotionCue(radius=4, d_model=16)
    frames = torch.stack([image, moved])[None]
    surface = cue.patch(cue.correlation(frames)).flatten(-2)  # (1, 2, 81)
    row, col = divmod(int(surface[0, 0].argmax()), 9)
    assert (row - 4, col - 4) == (dy, dx)
    assert divmod(int(surface[0, 1].argmax()), 9) == (4, 4)  # the last frame has no next one: no motion
    embedding, shift = cue(frames)
    assert embedding.shape == (1, 2, 1, 16) and shift is None
    peak = MotionCue(radius=4, d_model=16, peak=True)
    embedding, shift = peak(frames)
    assert embedding.shape == (1, 2, 1, 16)
    assert shift[0].flatten().tolist() == pytest.approx([dx, dy, 0, 0], abs=0.05)


def test_motion_cue_global_peak_finds_shifts_beyond_the_patch() -> None:
    """A fast turn moves the image further than the cue's radius: only the whole surface has its peak."""
    torch.manual_seed(0)
    image = torch.nn.functional.avg_pool2d(torch.rand(3, 64, 64), 3, 1, 1)
    frames = torch.stack([image, torch.roll(image, shifts=(-2, 9), dims=(-2, -1))])[None]
    cue = MotionCue(radius=4, d_model=16, peak=True, peak_global=True)
    corr = cue.correlation(frames)
    assert cue.peak(corr)[0, 0].tolist() == pytest.approx([9, -2], abs=0.05)
    assert cue.peak(cue.patch(corr))[0, 0].tolist() != pytest.approx([9, -2], abs=1)  # the patch cannot see it
    assert torch.equal(cue(frames)[1], cue.peak(corr))  # the shift the cue embeds is the whole surface's


@pytest.mark.parametrize("shift", [0.25, -0.4])
def test_motion_cue_peak_resolves_shifts_below_a_pixel(shift: float) -> None:
    """A camera turn usually moves the image a fraction of a pixel at model size: the peak must say so."""
    torch.manual_seed(0)
    big = torch.nn.functional.avg_pool2d(torch.rand(1, 3, 256, 256), 5, 1, 2)
    moved = torch.roll(big, shifts=round(shift * 4), dims=-1)  # whole pixels at 4x, a fraction after pooling
    frames = torch.nn.functional.avg_pool2d(torch.cat([big, moved]), 4)[None]  # (1, 2, 3, 64, 64)
    cue = MotionCue(radius=4, d_model=8, peak=True)
    dx, dy = cue.peak(cue.patch(cue.correlation(frames)))[0, 0].tolist()
    assert cue.peak(cue.correlation(frames))[0, 0].tolist() == pytest.approx([dx, dy], abs=1e-6)
    assert dx == pytest.approx(shift, abs=0.15) and abs(dy) < 0.1


def test_tick_idm_step_and_mu_law() -> None:
    torch.manual_seed(0)
    model = _ticks(keys=[0x57, 0x41])
    batch = {FRAMES: _frames(2, 4, 32), KEYS: torch.zeros(2, 4, 2, dtype=torch.bool),
             BUTTONS: torch.zeros(2, 4, 5, dtype=torch.bool), MOUSE: torch.tensor([[[3.0, -1]] * 4] * 2)}
    loss, metrics = model(batch)
    loss.backward()
    assert torch.isfinite(loss) and set(metrics) >= {"key_acc", "mouse_loss"}
    x = torch.tensor([-400.0, -20, 0, 5, 400])
    b = mu_law_bin(x, 11, 400)
    assert b.tolist()[0] == 0 and b.tolist()[2] == 5 and b.tolist()[-1] == 10
    assert mu_law_value(torch.tensor([0, 5, 10]), 11, 400).tolist() == pytest.approx([-400, 0, 400])


@pytest.mark.parametrize("kind", ["events", "ticks"])
def test_save_load_is_bit_exact(tmp_path: Path, kind: str) -> None:
    cfg, data, train = _cfgs(kind=kind, keys=[1, 2, 3])
    model = EventIDM(cfg, data, V) if kind == "events" else TickIDM(cfg, data)
    run = RunFolder(tmp_path)
    run.save_configs(cfg, data, train)
    run.save_weights(model)
    cfg2, data2, train2 = run.load_configs(IDMConfig)
    assert (cfg2, data2, train2) == (cfg, data, train)
    model2 = EventIDM(cfg2, data2, V) if kind == "events" else TickIDM(cfg2, data2)
    run.load_weights(model2)
    for (n1, p1), (n2, p2) in zip(model.state_dict().items(), model2.state_dict().items(), strict=True):
        assert n1 == n2 and torch.equal(p1, p2)
    wrong = _ticks(d_model=64, keys=[1, 2, 3]) if kind == "ticks" else _events(d_model=64)
    with pytest.raises(Exception):  # noqa: B017 - shape mismatch is torch's own error
        run.load_weights(wrong)


def test_config_validation_names_the_problem(tmp_path: Path) -> None:
    with pytest.raises(D2EError, match="divisible by heads"):
        IDMConfig(d_model=30, heads=4)
    with pytest.raises(D2EError, match="encoder_path"):
        IDMConfig(encoder="pretrained")
    with pytest.raises(D2EError, match="unknown config field 'bogus'"):
        configs_from({"d_model": 32, "bogus": 1})
    (tmp_path / "config.json").write_text('{"d_model": 32, "bogus": 1}')
    with pytest.raises(D2EError, match="unknown config field 'bogus'"):
        RunFolder(tmp_path).load_configs(IDMConfig)
    assert preset("base")[2].precision == "bf16-mixed" and preset("base")[1].image_size == 128


LEGACY_CONFIG = {  # a config.json as 'd2e idm train' wrote it before the configs were split (2026-12-02)
    "name": "idm-tiny", "kind": "events", "encoder": "cnn", "encoder_path": None, "image_size": 64, "frames": 8,
    "patch_grid": 4, "motion_input": True, "motion_cue_radius": 4, "motion_cue_peak": True,
    "motion_cue_peak_global": True, "frame_context": False, "grounding_bias": True, "tick_aux_weight": 1.0,
    "tick_context": False, "mouse_value_head": True, "mouse_value_features": True, "event_type_weight": 1.0,
    "d_model": 128, "encoder_layers": 2, "decoder_layers": 2, "heads": 4, "dropout": 0.1, "max_tokens": 768,
    "tau_ms": 100, "merge_motion_ms": 50, "mouse_bins": 11, "mouse_max": 400, "keys": [32, 37, 39, 65],
    "lr": 0.0003, "weight_decay": 0.01, "batch_size": 8, "max_steps": 40, "warmup_steps": 100, "precision": "32",
    "compile": False, "seed": 0, "vocab_size": 298}


def test_an_old_run_folder_loads_and_labels_as_before(tmp_path: Path) -> None:
    """One flat config.json and the vocabulary and keys in labels.json, as older runs wrote them."""
    import json

    from idm.predict import load_model

    cfg, data, _train = configs_from({**SAVED_BEFORE_FIELD_EXISTED, **LEGACY_CONFIG})  # the model it describes
    assert (cfg.motion_frames, cfg.onset_head, cfg.edge_ticks) == (1, False, 0)
    torch.manual_seed(0)
    model = EventIDM(cfg, data, V)
    old = RunFolder(tmp_path)
    old.save_weights(model)  # the parameter names did not change with the split
    (tmp_path / "config.json").write_text(json.dumps(LEGACY_CONFIG))
    (tmp_path / "labels.json").write_text(json.dumps({"vocab": V.to_json(), "vks": [32, 37, 39, 65]}))
    loaded, cfg2, data2, vocab = load_model(tmp_path)
    assert vocab == V and data2.keys == [32, 37, 39, 65] and data2.tau_ms == 100 and cfg2.d_model == 128
    assert (data2.frames, data2.image_size, data2.merge_motion_ms) == (8, 64, 50)
    frames = _frames(1, 8, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval().encoder(frames), model.eval().encoder(frames), rtol=0, atol=0)


def test_a_config_saved_before_later_fields_existed_rebuilds_that_model(tmp_path: Path) -> None:
    run = RunFolder(tmp_path)
    (tmp_path / "config.json").write_text('{"d_model": 32, "heads": 2}')  # written before the cue, context, merge, bias
    cfg, data, _ = run.load_configs(IDMConfig, SAVED_BEFORE_FIELD_EXISTED)
    assert (cfg.motion_cue_radius, cfg.motion_cue_peak, cfg.frame_context, data.merge_motion_ms, cfg.grounding_bias,
            cfg.tick_aux_weight, cfg.motion_cue_peak_global, cfg.mouse_value_head) == (0, False, False, 0, False, 0.0,
                                                                                      False, False)
    (tmp_path / "config.json").write_text('{"d_model": 32, "heads": 2, "motion_cue_peak": true}')
    assert not run.load_configs(IDMConfig, SAVED_BEFORE_FIELD_EXISTED)[0].motion_cue_peak_global  # keeps the patch
    new, new_data, _ = preset("tiny")
    assert new_data.merge_motion_ms == 50 and new.motion_cue_radius > 0  # new runs get them
    assert new.grounding_bias and new.tick_aux_weight > 0 and new.motion_cue_peak
    assert new.motion_cue_peak_global and new.mouse_value_head
    assert run.load_configs(IDMConfig, SAVED_BEFORE_FIELD_EXISTED)[0].mouse_value_features


def test_pretrained_encoder_loads_from_a_local_folder_only(tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    vit = transformers.ViTModel(transformers.ViTConfig(image_size=32, patch_size=8, hidden_size=24, num_hidden_layers=1,
                                                       num_attention_heads=2, intermediate_size=32))
    vit.save_pretrained(tmp_path / "vit")
    model = _events(encoder="pretrained", encoder_path=str(tmp_path / "vit"))
    loss, _ = model({FRAMES: _frames(1, 4, 32), TOKENS: torch.tensor([[1, 5, 6, 2]])})
    loss.backward()
    assert model.encoder.stem.backbone.embeddings.patch_embeddings.projection.weight.grad is not None
    with pytest.raises(OSError):
        _events(encoder="pretrained", encoder_path=str(tmp_path / "missing"))


@pytest.mark.parametrize("name", ["base", pytest.param("large", marks=pytest.mark.heavy)])
def test_gpu_presets_take_optimisation_steps(name: str) -> None:
    """The GPU presets at their real size: two AdamW steps in fp32 on the CPU (bf16/compile are GPU settings)."""
    torch.manual_seed(0)
    cfg, data, _train = preset(name, dropout=0.0)
    model = EventIDM(cfg, data, V)
    frames = _frames(1, data.frames, data.image_size)
    tokens = torch.randint(1, 298, (1, 64), generator=torch.Generator().manual_seed(0))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    losses = []
    for _ in range(2):
        loss, _m = model({FRAMES: frames, TOKENS: tokens})
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert all(torch.isfinite(torch.tensor(losses))) and losses[1] < losses[0]


def _moving_square_batch(rng, b: int = 16, t: int = 8, size: int = 32) -> dict:
    """A 4-pixel square that key 0 moves right and key 1 moves left by 2 pixels per frame."""
    frames = np.zeros((b, t, size, size, 3), np.uint8)
    keys = np.zeros((b, t, 2), bool)
    for i in range(b):
        x, y = rng.integers(4, size - 8, 2)
        for j in range(t):
            frames[i, j, y:y + 4, x:x + 4] = 255
            action = rng.integers(0, 3)
            if action:
                keys[i, j, action - 1] = True
                x = min(size - 6, x + 2) if action == 1 else max(2, x - 2)
    return {FRAMES: torch.from_numpy(frames), KEYS: torch.from_numpy(keys),
            BUTTONS: torch.zeros(b, t, 5, dtype=torch.bool), MOUSE: torch.zeros(b, t, 2)}


def test_tick_idm_learns_which_key_moved_a_small_square() -> None:
    """Guards the encoder against losing small moving objects (it once sat at chance on this task)."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    cfg, data, _train = configs_from(dict(kind="ticks", keys=[1, 2], dropout=0.0, image_size=32, patch_grid=2,
                                          d_model=64, encoder_layers=1))
    model = TickIDM(cfg, data)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(200):
        _loss, metrics = model(_moving_square_batch(rng))
        opt.zero_grad()
        _loss.backward()
        opt.step()
        losses.append(metrics["key_loss"])
    assert np.mean(losses[:20]) > 0.55 and np.mean(losses[-20:]) < 0.35  # chance (p = 1/3) is 0.64
