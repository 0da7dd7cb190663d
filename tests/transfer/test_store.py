import numpy as np
import pytest

from capture.errors import D2EError
from transfer.demos.store import Demo, DemoWriter, open_demos, read_demos

pytest.importorskip("h5py")


def test_round_trip_in_official_layout(tmp_path):
    path = tmp_path / "task_demo.hdf5"
    images = np.arange(4 * 8 * 8 * 3, dtype=np.uint8).reshape(4, 8, 8, 3)
    with DemoWriter(path, env_args={"type": "libero", "suite": "libero_object"}, instruction="pick up the bowl") as w:
        w.add(Demo("", np.ones((4, 7), np.float32), {"agentview_rgb": images}, {"seed": 3, "init": [1, 2]}))
        w.add(Demo("", np.arange(2), {"agentview_rgb": images[:2]}, rewards=np.array([0.0, 1.0])))
    info = open_demos(path)
    assert info.instruction == "pick up the bowl" and info.env_args["suite"] == "libero_object"
    assert info.names == ["demo_0", "demo_1"]
    first, second = read_demos(path)
    assert np.array_equal(first.obs["agentview_rgb"], images) and first.actions.shape == (4, 7)
    assert first.attrs == {"seed": 3, "init": [1, 2], "num_samples": 4}
    assert second.actions.dtype.kind == "i" and list(second.rewards) == [0.0, 1.0]


def test_interrupted_writer_leaves_no_file(tmp_path):
    path = tmp_path / "task_demo.hdf5"
    with pytest.raises(RuntimeError), DemoWriter(path, env_args={}, instruction="x") as w:
        w.add(Demo("", np.zeros((1, 7)), {"rgb": np.zeros((1, 4, 4, 3), np.uint8)}))
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_mismatched_lengths_and_missing_obs_are_clear_errors(tmp_path):
    path = tmp_path / "t.hdf5"
    with DemoWriter(path, env_args={}, instruction="x") as w:
        with pytest.raises(D2EError, match="obs/rgb has 2 steps"):
            w.add(Demo("", np.zeros((3, 7)), {"rgb": np.zeros((2, 4, 4, 3), np.uint8)}))
        w.add(Demo("", np.zeros((1, 7)), {"rgb": np.zeros((1, 4, 4, 3), np.uint8)}))
    with pytest.raises(D2EError, match="no obs/depth"):
        list(read_demos(path, ["depth"]))
    (tmp_path / "bad.hdf5").write_bytes(b"not hdf5")
    with pytest.raises(D2EError, match="not a demo file"):
        open_demos(tmp_path / "bad.hdf5")
