"""Atari 2600 games through ALE (``ale-py``, ROMs bundled), played with the arrow keys and space.

The emulator's 128 bytes of RAM are the privileged state (``state()``, recorded on the ``state`` topic):
intent players steer by them and ``idm.oracle`` reads the true motion from them.

Settings that keep labels true (DESIGN section 2): sticky actions off (``repeat_action_probability=0``;
the v5 default repeats the previous action 25 % of the time, so the recorded key would not be the one
the game saw) and one emulator frame per step (60 Hz). The recording captures every third frame,
i.e. exactly 20 fps, while key changes happen at any of the 60 Hz frames.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import D2EError, require
from .policy import HumanLikePolicy, Intent, Policy

# Which keyboard key plays which joystick direction/button.
KEY_MAP = {"up": "UP", "down": "DOWN", "left": "LEFT", "right": "RIGHT", "space": "FIRE"}


def rom_id(game: str) -> str:
    """'Breakout', 'ms_pacman', 'MsPacman' -> ALE's rom id ('breakout', 'ms_pacman')."""
    import re

    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", game).lower().replace("-", "_")


def available_games() -> list[str]:
    roms = require("ale_py.roms", "sources")
    return sorted(roms.get_all_rom_ids())


class AleEnv:
    native_hz = 60.0
    state_names = [f"ram_{i}" for i in range(128)]

    def __init__(self, game: str):
        ale_py = require("ale_py", "sources")
        roms = ale_py.roms
        self.name = rom_id(game)
        if self.name not in roms.get_all_rom_ids():
            raise D2EError(f"unknown ALE game {game!r}", fix="see 'd2e generate ale --list' for the bundled games")
        self._ale_py = ale_py
        self._rom = roms.get_rom_path(self.name)
        self._ale = None
        actions = [a.name for a in self._make(0).getMinimalActionSet()]
        self.keys = [k for k, part in KEY_MAP.items() if any(part in a for a in actions)]

    def _make(self, seed: int):
        self._ale_py.ALEInterface.setLoggerMode(self._ale_py.LoggerMode.Error)  # before the banner
        ale = self._ale_py.ALEInterface()
        ale.setInt("random_seed", seed)
        ale.setFloat("repeat_action_probability", 0.0)
        ale.setInt("frame_skip", 1)
        ale.loadROM(self._rom)
        self._ale = ale
        return ale

    def reset(self, seed: int) -> None:
        self._make(seed).reset_game()
        self.score = 0.0  # the game's own reward summed since reset (recorded in the end info)

    def state(self) -> list[int]:
        return self._ale.getRAM().tolist()

    def screen(self) -> np.ndarray:
        return self._ale.getScreenRGB()

    def action_for(self, keys: frozenset[str]) -> Any:
        vertical = ("UP" if "up" in keys and "down" not in keys
                    else "DOWN" if "down" in keys and "up" not in keys else "")
        horizontal = ("RIGHT" if "right" in keys and "left" not in keys
                      else "LEFT" if "left" in keys and "right" not in keys else "")
        name = vertical + horizontal + ("FIRE" if "space" in keys else "")
        return self._ale_py.Action[name or "NOOP"]

    def step(self, intent: Intent) -> bool:
        self.score += self._ale.act(self.action_for(intent.keys))
        if self._ale.game_over():
            self._ale.reset_game()
            return True
        return False

    def describe(self) -> dict[str, Any]:
        return {"key_map": {k: KEY_MAP[k] for k in self.keys}, "repeat_action_probability": 0.0,
                "frame_skip": 1, "ale_version": self._ale_py.__version__}


def default_policy(env: AleEnv) -> Policy:
    """The game's intent player where there is one (``atari_players``), else the random human-like one."""
    from .atari_players import PLAYERS

    player = PLAYERS.get(env.name)
    return player() if player is not None else random_policy(env)


def random_policy(env: AleEnv) -> HumanLikePolicy:
    """Random keys with human timing (no intent): the ground truth before intent players existed."""
    directions = [k for k in env.keys if k != "space"]
    chords = [(d, "space") for d in directions] if "space" in env.keys else []
    return HumanLikePolicy(keys=env.keys, chord_keys=chords, press_rate=3.0)
