import math

import numpy as np
import pytest

from capture.errors import D2EError
from transfer.envs.navgrid import NavMap, inflate, path_length

pytest.importorskip("scipy")


def corridor_map() -> NavMap:
    """10 m x 5 m at 0.1 m cells; a wall at x = 5 m with a door at 2.0-2.5 m; the goal in the far corner."""
    free = np.ones((50, 100), bool)
    free[:, 50] = False
    free[20:25, 50] = True
    goal = np.zeros_like(free)
    goal[45:, 95:] = True
    return NavMap(free, goal, (0.0, 0.0), 0.1)


def test_open_field_is_straight_and_euclidean():
    free = np.ones((40, 40), bool)
    goal = np.zeros_like(free)
    goal[35, 35] = True
    m = NavMap(free, goal, (0.0, 0.0), 0.1)
    path = m.shortest_path(0.05, 0.05)
    assert len(path) == 2  # string pulled to one straight segment
    assert path_length(path) == pytest.approx(math.hypot(3.5, 3.5), abs=1e-6)
    # the 8-connected field overestimates a diagonal-free direction by at most 8 %
    assert m.field[0, 0] == pytest.approx(35 * math.sqrt(2) * 0.1)
    assert m.geodesic_distance(3.55, 3.55) == 0.0


def test_path_goes_through_the_door():
    m = corridor_map()
    path = m.shortest_path(0.55, 0.55)
    assert path[0] == (0.55, 0.55) and m.goal[m.to_cell(*path[-1])]
    # where the path crosses the wall's column (x 5.0-5.1), it is in the door
    crossing = [a[1] + (5.05 - a[0]) * (b[1] - a[1]) / (b[0] - a[0]) for a, b in zip(path, path[1:])
                if min(a[0], b[0]) <= 5.05 <= max(a[0], b[0])]
    assert len(crossing) == 1 and 2.0 <= crossing[0] <= 2.5
    for a, b in zip(path, path[1:]):
        assert m.line_of_sight(a, b)
    # shorter than the grid's staircase, longer than the straight line through the wall
    assert math.hypot(9.5 - 0.55, 4.5 - 0.55) < path_length(path) < m.geodesic_distance(0.55, 0.55)


def test_closed_door_and_snapping():
    m = corridor_map()
    m.free[20:25, 50] = False
    m = NavMap(m.free, m.goal, m.origin, m.cell)
    assert m.shortest_path(0.55, 0.55) == [] and m.geodesic_distance(0.55, 0.55) == math.inf
    # a point just off the free cells (inside a safety margin) snaps to them; one behind the wall does not
    open_map = corridor_map()
    open_map.free[:20, 48:50] = open_map.free[25:, 48:50] = False  # a thicker wall (a safety margin)
    open_map = NavMap(open_map.free, open_map.goal, open_map.origin, open_map.cell, snap=0.25)
    assert math.isfinite(open_map.geodesic_distance(4.85, 1.02))  # 0.15 m into the margin
    assert open_map.nearest_reachable(4.85, 1.02) == (10, 47)
    # with the door shut the left side is cut off: the reachable cells beyond the wall are farther than snap
    open_map.free[20:25, 48:51] = False
    shut = NavMap(open_map.free, open_map.goal, open_map.origin, open_map.cell, snap=0.25)
    assert shut.nearest_reachable(4.85, 1.02) is None and shut.geodesic_distance(4.85, 1.02) == math.inf


def test_no_corner_cutting():
    free = np.ones((3, 3), bool)
    free[0, 1] = free[1, 0] = False  # the diagonal (1,1)-(0,0) passes between two blocked cells
    goal = np.zeros_like(free)
    goal[0, 0] = True
    m = NavMap(free, goal, (0.0, 0.0), 1.0)
    assert m.field[1, 1] == math.inf


def test_blocked_copy_replans_around():
    m = corridor_map()
    before = m.shortest_path(0.55, 0.55)
    blocked = m.blocked_copy(5.05, 2.25, 0.3)  # shut the door
    assert blocked.shortest_path(0.55, 0.55) == [] and before
    assert m.free[22, 50], "the original map is untouched"


def test_inflate_keeps_clearance():
    obstacle = np.zeros((21, 21), bool)
    obstacle[10, 10] = True
    free = inflate(obstacle, 0.1, 0.4)
    zs, xs = np.mgrid[0:21, 0:21]
    dist = np.hypot(zs - 10, xs - 10) * 0.1 - 0.05
    assert (free == (dist > 0.4)).all()
    assert inflate(np.zeros((3, 3), bool), 0.1, 1.0).all()


def test_bad_maps_are_clear_errors():
    with pytest.raises(D2EError, match="one shape"):
        NavMap(np.ones((2, 3), bool), np.ones((3, 2), bool), (0, 0), 0.1)
    with pytest.raises(D2EError, match="positive"):
        NavMap(np.ones((2, 2), bool), np.ones((2, 2), bool), (0, 0), 0.0)
