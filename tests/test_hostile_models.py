"""Style models that break the pixel contract: refused when they load (one tiny probe run), and a
NaN output at run time is an error for that file, never a black picture or video.

Each command-line case checks the exit code, the exact stderr lines, no traceback, no leftover
``.partial*`` file or empty folder, and every file that existed before byte-identical afterwards.
"""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from stylecam.errors import InputRefused, UserError
from stylecam.pipeline import Stylizer
from stylecam.session import probe_style_model
from tests.fakes.cameras import FakeCapture
from tests.fakes.onnx_models import make_broken_style_model, make_style_model
from tests.test_hostile_inputs import assert_clean_failure, file_hashes, run_cli, tiny_video


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "in" / "photo.png"
    path.parent.mkdir(exist_ok=True)
    cv2.imwrite(str(path), np.full((24, 32, 3), 100, np.uint8))
    return path


@pytest.mark.parametrize("fault, problem", [
    ("fixed_size", "has a fixed input size of 32x32 pixels; stylecam stylizes frames of any size"),
    ("four_input_channels", "takes 4-channel images; a style model takes 3 channels (RGB)"),
    ("four_output_channels", "returns 4 channels; a style model returns 3 (RGB)"),
    ("half_size", "returns 10x8 pixels for a 20x16 frame; the output must have the input's size"),
    ("nan", "returns NaN or infinite values for a 20x16 test frame"),
    ("inf", "returns NaN or infinite values for a 20x16 test frame"),
])
def test_a_broken_model_is_refused_at_load_naming_the_model(capsys, tmp_path, photo, fault, problem):
    model = make_broken_style_model(tmp_path / "models" / f"{fault}.onnx", "broken", fault)
    before = file_hashes(tmp_path)
    code, out, err = run_cli(capsys, photo, "--style", model, "-o", tmp_path / "new" / "out.png", "--device", "cpu")
    assert_clean_failure(tmp_path, before, code, err, 2, [f"stylecam: error: style model broken ({model}) {problem}"])
    assert not (tmp_path / "new").exists()
    with pytest.raises(UserError, match="style model broken"):   # the Python API refuses it the same way
        Stylizer([str(model)], device="cpu")


def test_the_probe_passes_good_models_and_remembers_them(tmp_path):
    model = make_style_model(tmp_path / "good.onnx", "good", effect="blur")
    probe_style_model(str(model), "good")
    probe_style_model(str(model), "good")         # cached: no second session
    make_broken_style_model(model, "good", "half_size")   # the same path, rewritten: probed again
    with pytest.raises(UserError, match="returns 10x8 pixels"):
        probe_style_model(str(model), "good")


def test_a_chain_with_one_broken_model_is_refused_before_any_output(capsys, tmp_path, photo):
    good = make_style_model(tmp_path / "models" / "good.onnx", "good")
    bad = make_broken_style_model(tmp_path / "models" / "bad.onnx", "bad", "four_output_channels")
    before = file_hashes(tmp_path)
    code, out, err = run_cli(capsys, photo, "--chain", f"{good},{bad}", "-o", tmp_path / "out.png", "--device", "cpu",
                             "--json")
    assert_clean_failure(tmp_path, before, code, err, 2, [f"style model bad ({bad}) returns 4 channels"])
    assert json.loads(out)["error"].startswith(f"style model bad ({bad}) returns 4 channels")


@pytest.mark.parametrize("fault", ["nan_wider_than_20", "inf_wider_than_20"])
def test_nan_or_inf_at_run_time_refuses_an_image_instead_of_writing_black_or_white(capsys, tmp_path, photo, fault):
    model = make_broken_style_model(tmp_path / "models" / "late.onnx", "late", fault)
    before = file_hashes(tmp_path)
    code, out, err = run_cli(capsys, photo, "--style", model, "-o", tmp_path / "out.png", "--device", "cpu")
    assert_clean_failure(tmp_path, before, code, err, 2,
                         ["stylecam: error: the style late returned NaN or infinite values for a 32x24 frame"])
    assert not (tmp_path / "out.png").exists()


def test_nan_at_run_time_refuses_a_video_and_leaves_no_partial_file(capsys, tmp_path):
    model = make_broken_style_model(tmp_path / "models" / "late.onnx", "late", "nan_wider_than_20")
    clip = tiny_video(tmp_path / "in" / "clip.mp4")
    before = file_hashes(tmp_path)
    code, out, err = run_cli(capsys, clip, "--style", model, "-o", tmp_path / "out.mp4", "--device", "cpu",
                             "--no-progress")
    assert_clean_failure(tmp_path, before, code, err, 2, ["returned NaN or infinite values for a 32x24 frame"])
    assert not (tmp_path / "out.mp4").exists()


def test_nan_for_one_file_of_a_folder_skips_that_file(capsys, tmp_path, photo):
    cv2.imwrite(str(photo.parent / "narrow.png"), np.full((24, 20, 3), 50, np.uint8))   # 20 px wide: finite
    model = make_broken_style_model(tmp_path / "models" / "late.onnx", "late", "nan_wider_than_20")
    before = file_hashes(tmp_path)
    code, out, err = run_cli(capsys, photo.parent, "--style", model, "-o", tmp_path / "styled", "--device", "cpu",
                             "--no-progress")
    assert_clean_failure(tmp_path, before, code, err, 1,
                         [f"stylecam: skipped {photo}: the style late returned NaN or infinite values",
                          "stylecam: 1 of 2 files could not be read"])
    assert sorted(p.name for p in (tmp_path / "styled").iterdir()) == ["narrow.png"]


def test_run_float_checks_every_collected_state(tmp_path):
    model = make_broken_style_model(tmp_path / "late.onnx", "late", "nan_wider_than_20")
    stylizer = Stylizer([str(model)], repeat=2, device="cpu")
    x = np.zeros((1, 3, 16, 20), np.float32)
    assert all(np.isfinite(s).all() for s in stylizer.run_float(x, collect=True))
    with pytest.raises(InputRefused, match="for a 24x16 frame"):
        stylizer.run_float(np.zeros((1, 3, 16, 24), np.float32), collect=True)


def test_nan_at_run_time_ends_a_camera_run_with_a_user_error(tmp_path):
    from stylecam import runner
    from stylecam.config import EngineConfig, RunConfig
    model = make_broken_style_model(tmp_path / "models" / "late.onnx", "late", "nan_wider_than_20")
    config = RunConfig(engine=EngineConfig(styles=(str(model),), device="cpu"), sources=("0",),
                       output=str(tmp_path / "rec" / "live.mp4"), window=False, progress=False, workers=1)
    before = file_hashes(tmp_path)
    with pytest.raises(InputRefused, match="the style late returned NaN or infinite values for a 32x24 frame"):
        runner.run(config, camera_opener=lambda i: FakeCapture(), camera_retry_s=0.2)
    assert_clean_failure(tmp_path, before, 2, "", 2, [])
    assert not (tmp_path / "rec" / "live.mp4").exists()
