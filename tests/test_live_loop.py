"""live.LiveLoop: the camera loop keeps what changes during a run in attributes of its own."""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np

from stylecam import live
from stylecam.pipeline import Stylizer
from tests.fakes.onnx_models import make_weights_dir


class CountingCamera:
    """A CameraSource stand-in: ``frames`` grey frames (uint8 BGR 24x32) numbered by their value, then the end."""

    def __init__(self, frames: int):
        self.index, self.fps, self.dropped, self.failure, self.captured_at = 0, 30.0, 0, None, 0.0
        self.left, self.closed = frames, False

    def read(self, timeout=None):
        if self.left == 0:
            return None
        self.left -= 1
        return np.full((24, 32, 3), 100 + self.left, np.uint8)

    @property
    def ended(self):
        return self.left == 0

    def close(self):
        self.closed = True


def test_run_live_has_no_closure_state():
    tree = ast.parse(Path(live.__file__).read_text(encoding="utf-8"))
    assert not [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Nonlocal)]
    run_live = next(node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "run_live")
    assert not [node.name for node in ast.walk(run_live) if isinstance(node, ast.FunctionDef) and node is not run_live]


def test_the_loop_state_after_a_run_is_what_the_summary_reports(tmp_path):
    camera = CountingCamera(frames=6)
    stylizer = Stylizer(["wave"], weights_dir=make_weights_dir(tmp_path / "weights"), device="cpu")
    state = live.initial_state(["wave"], ["wave"], mirror=True)
    loop = live.LiveLoop(camera, stylizer, state, window=None, record_to=None, overlay=None, max_frames=4,
                         snapshot_dir=tmp_path, stabilize=0.0, clock=lambda: 0.0, workers=1, virtual_camera=None,
                         auto_size=True)
    summary = loop.run()
    assert summary["frames"] == loop.frames == 4 and summary["stopped"] == "max frames" == loop.reason
    assert loop.frames_read == 4 and camera.left == 2 and camera.closed     # nothing read past max_frames
    assert loop.settings == (("wave",), 1, 1.0, True) and len(loop.latencies) == 4
    assert summary["auto_size"] == loop.sizes_used == [{"from_frame": 1, "size": None}]
    assert int(loop.shown[0, 0, 0]) == 102 + 10                            # the 4th frame, +10 by the fake "wave"
    assert summary["recordings"] == [] and summary["snapshots"] == [] and not summary["interrupted"]
