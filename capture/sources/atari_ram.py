"""Where the objects of each Atari game live in its 128 bytes of RAM: what the intent policies steer by and
what the state oracle (``idm.oracle``) reads.

Addresses come from the AtariARI annotations (mila-iqia/atari-representation-learning,
``ram_annotations.py``) and were checked on ALE 0.12.1's bundled ROMs: from ~200 cloned states of random
play, each key was applied for 6 frames against NOOP and the RAM bytes that differed were listed with
their first frame of difference; positions were also matched against the objects' pixels on screen:

- breakout: paddle x (72) moves one frame after LEFT/RIGHT, range 55-191, coasts ~4 frames after a
  release, frozen while a lost ball is reset; on screen the paddle's left column is x - 47 and the ball's
  column ball_x - 49, its row ball_y + 9 (the paddle's row 189 is ball_y 180); the ball appears in the
  state after the step FIRE is pressed; ball_y 0 = no ball in play.
- pong: the player's paddle is on the right; RIGHT moves it up (51 decreases), LEFT down, range 38-203,
  updated every second frame with momentum, so a press shows 2-6 frames later. FIRE changes nothing seen.
- space_invaders: player x (28) moves 1 px every second frame, range 35-117 (measured); FIRE launches a
  missile only when none is in flight. Not annotated: byte 85 is the player's missile y (246 = no missile),
  found by diffing cloned branches with and without FIRE (``missiles_y``, byte 9, interleaves the player's
  and the invaders' missiles from frame to frame).
- seaquest: player x (70), y (97); FIRE sets the torpedo x (103) when no torpedo is out.
- ms_pacman: player x (10), y (16) and direction (56); a direction key turns her at the next opening,
  so a press is often seen later than 100 ms (the game's own ambiguity).
- enduro: not annotated. The player's car x is byte 46 read as a signed byte (left positive): over 4000
  frames of random steering, the on-screen car column (rows 144-154, colour 192,192,192) fitted
  ``x = 85.1 - 0.564 * int8(ram[46])`` with correlation 0.996 (no other byte above 0.5), and in cloned
  branches byte 46 is the one that answers LEFT/RIGHT in the same frame. Byte 22 is the speed (FIRE
  accelerates, DOWN brakes).

Bytes that follow the joystick itself (breakout 70, pong 4 and 60, space_invaders 110, seaquest 4) change
in the very frame of an input, also when nothing moves on screen (a paddle against a wall); the oracle
must never read them, or its "ceiling" would see inputs no video shows.
"""

from __future__ import annotations

RAM: dict[str, dict[str, int]] = {
    "breakout": {"ball_x": 99, "ball_y": 101, "player_x": 72, "blocks_hit_count": 77, "score": 84},
    "pong": {"player_y": 51, "player_x": 46, "enemy_y": 50, "enemy_x": 45, "ball_x": 49, "ball_y": 54,
             "enemy_score": 13, "player_score": 14},
    "space_invaders": {"invaders_left_count": 17, "player_score": 104, "num_lives": 73, "player_x": 28,
                       "enemies_x": 26, "missiles_y": 9, "enemies_y": 24, "player_missile_y": 85},
    "ms_pacman": {"enemy_sue_x": 6, "enemy_inky_x": 7, "enemy_pinky_x": 8, "enemy_blinky_x": 9,
                  "enemy_sue_y": 12, "enemy_inky_y": 13, "enemy_pinky_y": 14, "enemy_blinky_y": 15,
                  "player_x": 10, "player_y": 16, "fruit_x": 11, "fruit_y": 17, "ghosts_count": 19,
                  "player_direction": 56, "dots_eaten_count": 119, "player_score": 120, "num_lives": 123},
    "seaquest": {"enemy_obstacle_x0": 30, "enemy_obstacle_x1": 31, "enemy_obstacle_x2": 32, "enemy_obstacle_x3": 33,
                 "player_x": 70, "player_y": 97, "enemy_missile_x0": 71, "enemy_missile_x1": 72,
                 "enemy_missile_x2": 73, "enemy_missile_x3": 74, "player_direction": 86,
                 "player_missile_direction": 87, "oxygen_meter_value": 102, "player_missile_x": 103,
                 "score_hi": 57, "score_lo": 58, "num_lives": 59, "divers_collected_count": 62},
    "enduro": {"player_x": 46, "speed": 22},
}
GHOSTS = (("enemy_sue_x", "enemy_sue_y"), ("enemy_inky_x", "enemy_inky_y"), ("enemy_pinky_x", "enemy_pinky_y"),
          ("enemy_blinky_x", "enemy_blinky_y"))


def signed(byte: int) -> int:
    """A RAM byte read as a two's complement number."""
    return byte - 256 if byte >= 128 else byte


class Ram:
    """Named reads of one game's RAM snapshot: ``Ram("breakout", ram).ball_x``."""

    __slots__ = ("addresses", "ram")

    def __init__(self, game: str, ram: list[int]):
        self.addresses = RAM[game]
        self.ram = ram

    def __getattr__(self, name: str) -> int:
        try:
            return int(self.ram[self.addresses[name]])
        except KeyError:
            raise AttributeError(name) from None
