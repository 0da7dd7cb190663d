"""Doom (ViZDoom, Freedoom WADs bundled) played with WASD + mouse, as a first-person gamer plays it.

Turning and looking use ViZDoom's delta buttons, so the recorded raw mouse motion is exactly what the
game received: ``TURN_LEFT_RIGHT_DELTA = dx / sensitivity`` and ``LOOK_UP_DOWN_DELTA = dy /
sensitivity`` (degrees; ``sensitivity`` mouse counts per degree). Attack is the left mouse button.
The game runs at its native 35 tics per second; the video is captured on the 20 fps grid.

The privileged state (``state()``, recorded on the ``state`` topic) is the player's game variables
(position, view angle and pitch in degrees, velocity in map units per tic, health, ammo, ...) and the
nearest *visible* enemy and pickup from ViZDoom's labels buffer (what is on screen, not what is behind
walls): intent players aim and walk by it, ``idm.oracle`` reads the true turns and thrusts from it.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import numpy as np

from ..errors import D2EError, require
from .policy import HumanLikePolicy, Intent, Policy

KEY_BUTTONS = {"w": "MOVE_FORWARD", "s": "MOVE_BACKWARD", "a": "MOVE_LEFT", "d": "MOVE_RIGHT",
               "shift": "SPEED", "e": "USE"}
MOUSE_BUTTONS = {"left": "ATTACK"}
DELTA_BUTTONS = ("TURN_LEFT_RIGHT_DELTA", "LOOK_UP_DOWN_DELTA")
GAME_VARIABLES = ("POSITION_X", "POSITION_Y", "POSITION_Z", "ANGLE", "PITCH", "VELOCITY_X", "VELOCITY_Y",
                  "VELOCITY_Z", "HEALTH", "ARMOR", "SELECTED_WEAPON_AMMO", "KILLCOUNT", "ATTACK_READY", "DEAD")
SEEN = ("enemy_visible", "enemy_x", "enemy_y", "enemy_z", "item_visible", "item_x", "item_y")
ENEMY_CATEGORIES = ("Monster", "Player")  # labels' object_category ("Self" is the player itself)
ITEM_CATEGORIES = ("Health", "Armor", "Ammo", "Weapon")
STATE_NAMES = (*GAME_VARIABLES, "episode_tic", *SEEN)  # episode_tic restarts at each new episode


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
        self.state_names = list(STATE_NAMES)
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
        game.set_labels_buffer_enabled(True)  # what is on screen, for state(); the screen itself is unchanged
        self._buttons = [*KEY_BUTTONS.values(), *MOUSE_BUTTONS.values(), *DELTA_BUTTONS]
        game.set_available_buttons([getattr(vzd.Button, b) for b in self._buttons])
        game.set_episode_timeout(0)
        game.set_seed(seed)
        game.init()
        game.new_episode()
        self._game = game
        self._last = None
        self.score = 0.0  # the scenario's reward summed since reset (recorded in the end info)
        self._variables = [getattr(vzd.GameVariable, v) for v in GAME_VARIABLES]
        self._last_seen = [0.0] * len(SEEN)

    def screen(self) -> np.ndarray:
        state = self._game.get_state()
        if state is not None:
            self._last = state.screen_buffer
        return self._last

    def state(self) -> list[float]:
        game = self._game
        values = [float(game.get_game_variable(v)) for v in self._variables] + [float(game.get_episode_time())]
        st = game.get_state()
        if st is not None:
            x, y = values[0], values[1]
            enemy = self._nearest(st.labels, ENEMY_CATEGORIES, x, y)
            item = self._nearest(st.labels, ITEM_CATEGORIES, x, y)
            self._last_seen = [float(enemy is not None), *(enemy or (0.0, 0.0, 0.0)),
                               float(item is not None), *(item or (0.0, 0.0, 0.0))[:2]]
        return values + self._last_seen

    @staticmethod
    def _nearest(labels: Any, categories: tuple[str, ...], x: float, y: float) -> tuple[float, float, float] | None:
        found = [(lb.object_position_x, lb.object_position_y, lb.object_position_z) for lb in labels
                 if lb.object_category in categories]
        return min(found, key=lambda p: (p[0] - x) ** 2 + (p[1] - y) ** 2) if found else None

    def step(self, intent: Intent) -> bool:
        action = [float(k in intent.keys) for k in KEY_BUTTONS]
        action += [float(b in intent.buttons) for b in MOUSE_BUTTONS]
        # whole device counts, exactly what the recording logs (a policy may produce fractions)
        action += [int(intent.dx) / self.sensitivity, int(intent.dy) / self.sensitivity]
        self.score += self._game.make_action(action, 1)
        if self._game.is_episode_finished():
            self._game.new_episode()
            return True
        return False

    def describe(self) -> dict[str, Any]:
        mouse = {f"mouse_{k}": v for k, v in MOUSE_BUTTONS.items()}
        return {"scenario": self.name, "key_map": {**KEY_BUTTONS, **mouse},
                "mouse_sensitivity_counts_per_degree": self.sensitivity, "resolution": self.resolution,
                "vizdoom_version": self._vzd.__version__, "wad": self.wad, "map": self.doom_map}


def default_policy(env: DoomEnv) -> Policy:
    """The intent player (``doom_player``): aims at what it sees, walks, strafes and shoots."""
    from .doom_player import DoomPlayer

    return DoomPlayer(sensitivity=env.sensitivity)


def random_policy(env: DoomEnv) -> HumanLikePolicy:
    """Random keys and mouse with human timing (no intent): the ground truth before intent players existed."""
    return HumanLikePolicy(keys=["w", "a", "s", "d", "shift", "e"], chord_keys=[("w", "a"), ("w", "d"), ("w", "shift")],
                           press_rate=2.5, mouse=True, sweep_speed=300.0, click_rate=0.8)
