"""Doom (ViZDoom, Freedoom WADs bundled) played with WASD + mouse, as a first-person gamer plays it.

Turning and looking use ViZDoom's delta buttons, so the recorded raw mouse motion is exactly what the
game received: ``TURN_LEFT_RIGHT_DELTA = dx / sensitivity`` and ``LOOK_UP_DOWN_DELTA = dy /
sensitivity`` (degrees; ``sensitivity`` mouse counts per degree). Attack is the left mouse button.
The game runs at its native 35 tics per second; the video is captured on the 20 fps grid.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import numpy as np

from ..errors import D2EError, require
from .policy import HumanLikePolicy, Intent

KEY_BUTTONS = {"w": "MOVE_FORWARD", "s": "MOVE_BACKWARD", "a": "MOVE_LEFT", "d": "MOVE_RIGHT",
               "shift": "SPEED", "e": "USE"}
MOUSE_BUTTONS = {"left": "ATTACK"}
DELTA_BUTTONS = ("TURN_LEFT_RIGHT_DELTA", "LOOK_UP_DOWN_DELTA")


def available_scenarios() -> list[str]:
    vizdoom = require("vizdoom", "sources")
    return sorted(f[:-4] for f in os.listdir(vizdoom.scenarios_path) if f.endswith(".cfg"))


class DoomEnv:
    native_hz = 35.0

    def __init__(self, scenario: str = "health_gathering", *, sensitivity: float = 8.0,
                 resolution: str = "RES_320X240", wad: str | None = None, doom_map: str | None = None):
        self._vzd = require("vizdoom", "sources")
        cfg = os.path.join(self._vzd.scenarios_path, f"{scenario}.cfg")
        if not os.path.exists(cfg):
            raise D2EError(f"unknown ViZDoom scenario {scenario!r}",
                           fix=f"choose one of {', '.join(available_scenarios())}")
        self.name, self.scenario, self.sensitivity = scenario, cfg, sensitivity
        self.resolution, self.wad, self.doom_map = resolution, wad, doom_map
        self.keys = list(KEY_BUTTONS)
        self._game = None

    def reset(self, seed: int) -> None:
        vzd = self._vzd
        if self._game is not None:
            self._game.close()
        game = vzd.DoomGame()
        game.load_config(self.scenario)
        # ViZDoom writes its ini file to the working directory unless told otherwise
        game.set_doom_config_path(os.path.join(tempfile.gettempdir(), "d2e_vizdoom.ini"))
        if self.wad:
            game.set_doom_scenario_path(self.wad)
        if self.doom_map:
            game.set_doom_map(self.doom_map)
        game.set_window_visible(False)
        game.set_sound_enabled(False)
        game.set_mode(vzd.Mode.PLAYER)
        game.set_screen_format(vzd.ScreenFormat.RGB24)
        game.set_screen_resolution(getattr(vzd.ScreenResolution, self.resolution))
        game.set_render_hud(True)
        self._buttons = [*KEY_BUTTONS.values(), *MOUSE_BUTTONS.values(), *DELTA_BUTTONS]
        game.set_available_buttons([getattr(vzd.Button, b) for b in self._buttons])
        game.set_episode_timeout(0)
        game.set_seed(seed)
        game.init()
        game.new_episode()
        self._game = game
        self._last = None

    def screen(self) -> np.ndarray:
        state = self._game.get_state()
        if state is not None:
            self._last = state.screen_buffer
        return self._last

    def step(self, intent: Intent) -> bool:
        action = [float(k in intent.keys) for k in KEY_BUTTONS]
        action += [float(b in intent.buttons) for b in MOUSE_BUTTONS]
        # whole device counts, exactly what the recording logs (a policy may produce fractions)
        action += [int(intent.dx) / self.sensitivity, int(intent.dy) / self.sensitivity]
        self._game.make_action(action, 1)
        if self._game.is_episode_finished():
            self._game.new_episode()
            return True
        return False

    def describe(self) -> dict[str, Any]:
        mouse = {f"mouse_{k}": v for k, v in MOUSE_BUTTONS.items()}
        return {"scenario": self.name, "key_map": {**KEY_BUTTONS, **mouse},
                "mouse_sensitivity_counts_per_degree": self.sensitivity, "resolution": self.resolution,
                "vizdoom_version": self._vzd.__version__, "wad": self.wad, "map": self.doom_map}


def default_policy(env: DoomEnv) -> HumanLikePolicy:
    return HumanLikePolicy(keys=["w", "a", "s", "d", "shift", "e"], chord_keys=[("w", "a"), ("w", "d"), ("w", "shift")],
                           press_rate=2.5, mouse=True, sweep_speed=300.0, click_rate=0.8)
