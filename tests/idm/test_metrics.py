"""Hand-computed cases for each metric."""

from __future__ import annotations

import math

import numpy as np
import pytest

from capture.schema import RI_LEFT_DOWN, RI_LEFT_UP, KeyboardEvent, MouseEvent, RawMouseEvent
from idm.metrics import (
    Window,
    aggregate,
    count_match_accuracy,
    evaluate_events,
    key_state_ticks,
    mouse_metrics,
    press_f1,
)

MS = 1_000_000
W = Window(0, 500 * MS)  # 10 bins of 50 ms


def key(t_ms: float, vk: int, action: str = "press") -> KeyboardEvent:
    return KeyboardEvent(round(t_ms * MS), action, "k", vk)


def test_count_match_accuracy_by_hand() -> None:
    truth = [(10 * MS, "65", "press"), (20 * MS, "65", "press"), (120 * MS, "66", "press")]
    pred = [(30 * MS, "65", "press"), (40 * MS, "65", "press"), (260 * MS, "66", "press")]
    # cells: (65,press,0): 2 vs 2 match; (66,press,2): 1 vs 0; (66,press,5): 0 vs 1 -> 1/3
    acc, cells = count_match_accuracy(truth, pred, W)
    assert cells == 3 and acc == pytest.approx(1 / 3)
    assert count_match_accuracy(truth, [], W)[0] == 0.0  # predicting nothing scores 0
    assert count_match_accuracy([], [], W) == (None, 0)  # empty on both sides: excluded


def test_count_match_uses_exact_counts_and_actions() -> None:
    truth = [(10 * MS, "65", "press"), (20 * MS, "65", "press")]
    pred = [(10 * MS, "65", "press"), (30 * MS, "65", "release")]
    # (65,press,0): 2 vs 1 -> 0; (65,release,0): 0 vs 1 -> 0
    assert count_match_accuracy(truth, pred, W)[0] == 0.0


def test_mouse_pearson_only_over_moving_bins_and_scale_ratio() -> None:
    truth = np.array([[0, 0], [10, 5], [20, -5], [0, 0], [30, 0]], float)
    pred = 2 * truth
    m = mouse_metrics(truth, pred)
    assert m["pearson_x"] == pytest.approx(1.0) and m["pearson_y"] == pytest.approx(1.0)
    assert m["moving_bins"] == 3 and m["scale_ratio"] == pytest.approx(2.0)
    assert mouse_metrics(truth, truth / 4)["scale_ratio"] == pytest.approx(4.0)  # reported >= 1
    # a bin where only the prediction moves counts too
    pred2 = truth.copy()
    pred2[0] = [5, 0]
    m2 = mouse_metrics(truth, pred2)
    assert m2["moving_bins"] == 4
    t_x = np.array([0, 10, 20, 30.0])
    p_x = np.array([5, 10, 20, 30.0])
    assert m2["pearson_x"] == pytest.approx(np.corrcoef(t_x, p_x)[0, 1])


def test_press_f1_tolerance_and_one_to_one() -> None:
    truth = [(100 * MS, "65", "press"), (300 * MS, "65", "press"), (200 * MS, "66", "press")]
    pred = [(140 * MS, "65", "press"), (145 * MS, "65", "press"), (360 * MS, "65", "press"),
            (200 * MS, "67", "press")]
    # 100 matches 140 (40 ms); 145 cannot reuse it; 300 vs 360 is 60 ms > 50; 66/67 differ
    r = press_f1(truth, pred, W)
    tp, fp, fn = 1, 3, 2
    assert r["press_f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert r["press_precision"] == pytest.approx(1 / 4) and r["press_recall"] == pytest.approx(1 / 3)


def test_key_state_ticks_marks_taps_within_a_tick() -> None:
    items = [(10 * MS, "65", "press"), (30 * MS, "65", "release"), (120 * MS, "66", "press")]
    state = key_state_ticks(items, W, ["65", "66"])
    assert state[:, 0].tolist() == [True] + [False] * 9
    assert state[:, 1].tolist() == [False, False] + [True] * 8  # held to the end


def test_evaluate_events_perfect_and_empty_predictions() -> None:
    truth = [key(10, 65), key(160, 65, "release"), key(200, 87), key(420, 87, "release"),
             RawMouseEvent(5 * MS, 3, 1), RawMouseEvent(70 * MS, -2, 4), RawMouseEvent(130 * MS, 6, -1),
             RawMouseEvent(140 * MS, 0, 0, RI_LEFT_DOWN), RawMouseEvent(260 * MS, 0, 0, RI_LEFT_UP)]
    perfect = evaluate_events(truth, truth, W)
    for name in ("keyboard_accuracy", "button_accuracy", "press_f1", "per_key_f1", "vpt_key_accuracy",
                 "pearson_x", "pearson_y", "scale_ratio", "vpt_mouse_r2"):
        assert perfect[name] == pytest.approx(1.0), name
    nothing = evaluate_events(truth, [], W)
    assert nothing["keyboard_accuracy"] == 0.0 and nothing["button_accuracy"] == 0.0
    assert nothing["press_f1"] == 0.0 and nothing["per_key_f1"] == 0.0
    assert nothing["scale_ratio"] is None and nothing["pearson_x"] is None
    # VPT per-tick accuracy rewards predicting nothing: key 65 down 4 of 10 ticks, 87 down 5 of 10
    assert nothing["vpt_key_accuracy"] == pytest.approx(1 - (4 + 5) / 20)


def test_buttons_from_pointer_events_when_no_raw() -> None:
    truth = [MouseEvent(10 * MS, "press", 1, 1, "left"), MouseEvent(90 * MS, "release", 1, 1, "left")]
    pred = [MouseEvent(20 * MS, "press", 1, 1, "left")]
    assert evaluate_events(truth, pred, W)["button_accuracy"] == pytest.approx(0.5)


def test_aggregate_skips_undefined_and_weights() -> None:
    out = aggregate([{"a": 1.0, "b": None}, {"a": 0.0, "b": 0.5}], weights=[3, 1])
    assert out["a"] == pytest.approx(0.75) and out["b"] == pytest.approx(0.5)
    assert math.isclose(aggregate([{"a": 0.2}])["a"], 0.2)
