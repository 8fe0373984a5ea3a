"""Hostile inputs given to `stylecam` and `stylecam-train`: huge pictures, huge camera indices, named
pipes, out-of-range flags, colliding outputs, runs that fail their checks.

Every case checks the exit code (2 for a bad request, 1 when some files of a batch could not be
read), the exact stderr lines (one for a bad request), no traceback, no leftover ``.partial*``
file or empty folder, and every file that existed before byte-identical afterwards.
Media are made on the fly and tiny.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from stylecam import cli, folders, limits
from stylecam.errors import InputRefused, UserError
from stylecam.pipeline import Stylizer
from stylecam.sources import camera_index, expand_sources, special_file
from tests.fakes.onnx_models import make_weights_dir
from tests.test_imageheader import png_claiming

REPO = Path(__file__).resolve().parents[1]


# ----- the checks every case shares ------------------------------------------------------------

def file_hashes(root: Path) -> dict[Path, str]:
    """sha256 of every file under ``root``."""
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def assert_clean_failure(root: Path, before: dict[Path, str], code: int, err: str, expected_code: int,
                         lines: list[str]) -> None:
    """The exit code, stderr exactly ``lines`` (each a substring of its line), no traceback, no
    leftover partial file or empty folder under ``root``, every file of ``before`` unchanged."""
    got = err.strip().splitlines()
    assert code == expected_code, err
    assert "Traceback" not in err
    assert len(got) == len(lines), got
    for line, expected in zip(got, lines):
        assert expected in line, (expected, line)
    assert [p for p in root.rglob("*") if ".partial" in p.name] == []
    assert [p for p in root.rglob("*") if p.is_dir() and not any(p.iterdir())] == []
    after = file_hashes(root)
    assert {p: after.get(p) for p in before} == before


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def photo(tmp_path) -> Path:
    path = tmp_path / "in" / "photo.png"
    path.parent.mkdir(exist_ok=True)
    cv2.imwrite(str(path), np.full((12, 20, 3), 100, np.uint8))
    return path


@pytest.fixture
def huge_png(tmp_path) -> Path:
    """A 70-byte PNG whose header claims 50000 x 50000 pixels (2500 MP)."""
    path = tmp_path / "in" / "huge.png"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(png_claiming(50000, 50000))
    return path


def tiny_video(path: Path, frames: int = 4, size: tuple[int, int] = (32, 24)) -> Path:
    from stylecam.sinks import VideoWriter
    path.parent.mkdir(exist_ok=True)
    writer = VideoWriter(path, 10, size)
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), 40 * i, np.uint8))
    writer.close()
    return path


def engine_args(weights: Path) -> list:
    return ["--weights-dir", weights, "--device", "cpu", "--no-progress"]


# ----- pixel limit -----------------------------------------------------------------------------

def test_a_huge_png_alone_is_refused_in_one_line_before_decoding(capsys, tmp_path, weights, huge_png):
    before = file_hashes(tmp_path)
    code, out, err = run_cli(capsys, huge_png, "-o", tmp_path / "new" / "out.png", *engine_args(weights))
    assert_clean_failure(tmp_path, before, code, err, 2,
                         ["stylecam: error: " + f"{huge_png} is 50000x50000 pixels (2500 MP), above the limit of "
                          "50 MP (raise it with --max-pixels 2500000000"])
    assert not (tmp_path / "new").exists()


def test_a_huge_png_in_a_folder_is_skipped_and_the_rest_is_done(capsys, tmp_path, weights, huge_png, photo):
    before = file_hashes(tmp_path)
    code, out, err = run_cli(capsys, huge_png.parent, "-o", tmp_path / "styled", *engine_args(weights), "--json")
    assert_clean_failure(tmp_path, before, code, err, 1,
                         [f"stylecam: skipped {huge_png}: {huge_png} is 50000x50000 pixels",
                          "stylecam: 1 of 2 files could not be read"])
    summary = json.loads(out)
    assert [f["input"] for f in summary["failed"]] == [str(huge_png)]
    assert "above the limit of 50 MP" in summary["failed"][0]["error"]
    assert [Path(d["output"]).name for d in summary["done"]] == ["photo.png"]
    assert cv2.imread(str(tmp_path / "styled" / "photo.png")).shape == (12, 20, 3)


def test_max_pixels_is_a_documented_flag_that_also_limits_real_pictures(capsys, tmp_path, weights, photo):
    before = file_hashes(tmp_path)
    code, out, err = run_cli(capsys, photo, "-o", tmp_path / "out.png", "--max-pixels", "239", *engine_args(weights))
    assert_clean_failure(tmp_path, before, code, err, 2, [f"{photo} is 20x12 pixels (240 pixels), above the limit "
                                                          "of 239 pixels"])
    code, _, err = run_cli(capsys, photo, "-o", tmp_path / "out.png", "--max-pixels", "240", *engine_args(weights))
    assert code == 0, err
    assert "--max-pixels" in run_cli(capsys, "--help")[1]


def test_max_pixels_limits_video_frames_before_any_is_written(capsys, tmp_path, weights):
    clip = tiny_video(tmp_path / "in" / "clip.mp4")
    before = file_hashes(tmp_path)
    code, out, err = run_cli(capsys, clip, "-o", tmp_path / "out.mp4", "--max-pixels", "700", *engine_args(weights))
    assert_clean_failure(tmp_path, before, code, err, 2, [f"{clip} is 32x24 pixels (768 pixels), above the limit"])
    assert not (tmp_path / "out.mp4").exists()


def test_study_refuses_a_huge_png_alone_and_leaves_no_folder(capsys, tmp_path, weights, huge_png):
    before = file_hashes(tmp_path)
    code, out, err = run_cli(capsys, "study", huge_png, "-o", tmp_path / "study", "--weights-dir", weights,
                             "--device", "cpu", "--no-vgg", "--no-progress")
    assert_clean_failure(tmp_path, before, code, err, 2, [f"stylecam: error: {huge_png} is 50000x50000 pixels"])
    assert not (tmp_path / "study").exists()


def test_study_skips_a_huge_png_in_a_folder_and_studies_the_rest(capsys, tmp_path, weights, huge_png):
    cv2.imwrite(str(huge_png.parent / "small.png"), np.full((64, 64, 3), 90, np.uint8))
    before = file_hashes(tmp_path)
    code, out, err = run_cli(capsys, "study", huge_png.parent, "-o", tmp_path / "study", "--weights-dir", weights,
                             "--styles", "wave", "--repeat", "1", "--size", "64", "--margin", "8", "--band", "4",
                             "--device", "cpu", "--no-vgg", "--no-progress")
    assert_clean_failure(tmp_path, before, code, err, 1,
                         [f"stylecam: warning: skipped {huge_png}: {huge_png} is 50000x50000 pixels",
                          "stylecam: 1 of 2 images could not be read"])
    doc = json.loads((tmp_path / "study" / "metrics.json").read_text())
    assert doc["unreadable"] == [str(huge_png)] and [i["name"] for i in doc["images"]] == ["small"]


def test_study_max_pixels_flag(capsys, tmp_path, weights, photo):
    before = file_hashes(tmp_path)
    code, out, err = run_cli(capsys, "study", photo, "-o", tmp_path / "study", "--weights-dir", weights,
                             "--max-pixels", "100", "--device", "cpu", "--no-vgg", "--no-progress")
    assert_clean_failure(tmp_path, before, code, err, 2, [f"{photo} is 20x12 pixels (240 pixels), above the limit"])


# ----- memory ----------------------------------------------------------------------------------

def test_inference_above_the_memory_stops_with_a_size_hint(capsys, tmp_path, weights, monkeypatch):
    photo = tmp_path / "in" / "big.png"
    photo.parent.mkdir()
    cv2.imwrite(str(photo), np.full((256, 256, 3), 80, np.uint8))   # lite: 256*256*128 B = 8.4 MB needed
    monkeypatch.setattr(limits, "available_memory", lambda: 10_000_000)
    before = file_hashes(tmp_path)
    code, out, err = run_cli(capsys, photo, "-o", tmp_path / "out.png", *engine_args(weights))
    assert_clean_failure(tmp_path, before, code, err, 2,
                         ["stylecam: error: stylizing 256x256 pixels needs about 8.0 MiB of memory, more than 80% "
                          "of the 9.5 MiB available (stylize it smaller, e.g. --size 240)"])
    code, out, err = run_cli(capsys, photo, "-o", tmp_path / "out.png", "--size", "240", *engine_args(weights))
    assert code == 0 and cv2.imread(str(tmp_path / "out.png")).shape == (256, 256, 3)


def test_memory_needed_and_the_size_that_fits():
    assert limits.inference_bytes(1000, ["lite"]) == 1000 * (64 + 64)
    assert limits.inference_bytes(1000, ["lite", "full"]) == 1000 * (1300 + 64)   # passes run one after another
    limits.check_memory(100, 100, 1, ["lite"], None)                            # unknown memory: no check
    limits.check_memory(100, 100, 1, ["lite"], 10**9)
    with pytest.raises(InputRefused, match=r"e.g. --size \d+, or with the lite models \(--lite\)"):
        limits.check_memory(20000, 20000, 1, ["full"], 16 * 2**30)
    side = limits.fitting_long_side(20000, 10000, 1, ["full"], 16 * 2**30)
    assert side % 16 == 0 and limits.inference_bytes(side * side // 2, ["full"]) <= 0.8 * 16 * 2**30
    assert limits.inference_bytes((side + 64) * (side + 64) // 2, ["full"]) > 0.8 * 16 * 2**30
    assert limits.available_memory() is None or limits.available_memory() > 0


def test_onnxruntime_out_of_memory_becomes_one_line_with_a_size_hint(tmp_path):
    from tests.fakes.onnx_models import make_broken_style_model
    model = make_broken_style_model(tmp_path / "greedy.onnx", "greedy", "huge_allocation_wider_than_20")
    stylizer = Stylizer([str(model)], device="cpu")          # passes the probe at 20 px wide
    with pytest.raises(InputRefused, match=r"out of memory while stylizing 32x24 pixels \(stylize it smaller, "
                                           r"e.g. --size 16\)"):
        stylizer(np.zeros((24, 32, 3), np.uint8))


# ----- --repeat, --size ------------------------------------------------------------------------

def test_repeat_has_an_upper_bound_everywhere(capsys, tmp_path, weights, photo):
    before = file_hashes(tmp_path)
    code, out, err = run_cli(capsys, photo, "--repeat", "101", *engine_args(weights))
    assert_clean_failure(tmp_path, before, code, err, 2,
                         ["stylecam: error: argument --repeat: expected a whole number within 1..100, got '101' "
                          "(see `stylecam --help`)"])
    code, out, err = run_cli(capsys, "study", photo, "--repeat", "101", "-o", tmp_path / "study",
                             "--weights-dir", weights, "--no-vgg")
    assert_clean_failure(tmp_path, before, code, err, 2, ["stylecam: error: --repeat must be within 1..100"])
    with pytest.raises(UserError, match=r"within 1..100"):
        Stylizer(["wave"], repeat=limits.MAX_REPEAT + 1, weights_dir=weights, device="cpu")
    assert Stylizer(["wave"], repeat=limits.MAX_REPEAT, weights_dir=weights, device="cpu").repeat == 100


def test_size_does_not_upscale_smaller_frames_unless_asked(capsys, tmp_path, weights, photo):
    frame = np.zeros((12, 20, 3), np.uint8)
    plain = Stylizer(["wave"], size=64, weights_dir=weights, device="cpu")
    assert plain._to_inference(frame[None]).shape == (1, 3, 12, 20)
    assert plain._to_inference(np.zeros((1, 120, 200, 3), np.uint8)).shape == (1, 3, 38, 64)   # shrinking stays
    upscaling = Stylizer(["wave"], size=64, upscale=True, weights_dir=weights, device="cpu")
    assert upscaling._to_inference(frame[None]).shape == (1, 3, 38, 64)
    # on the command line: --size 64 on a 20x12 photo gives what no --size gives; --upscale changes it
    blur = make_weights_dir(tmp_path / "blur", styles={"wave": {"effect": "blur"}})
    outputs = {}
    for name, extra in (("own", []), ("size", ["--size", "64"]), ("upscale", ["--size", "64", "--upscale"])):
        code, out, err = run_cli(capsys, photo, "-o", tmp_path / f"{name}.png", *engine_args(blur), "--json", *extra)
        assert code == 0, err
        outputs[name] = cv2.imread(str(tmp_path / f"{name}.png"))
        assert json.loads(out)["stylecam"]["upscale"] is (name == "upscale")
    assert np.array_equal(outputs["own"], outputs["size"])
    assert not np.array_equal(outputs["own"], outputs["upscale"])


# ----- cameras, named pipes --------------------------------------------------------------------

def test_a_huge_camera_index_is_one_line_in_a_real_process(tmp_path, weights):
    before = file_hashes(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "stylecam", "99999999999999999999", "--weights-dir", str(weights),
                           "--device", "cpu"], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert_clean_failure(tmp_path, before, proc.returncode, proc.stderr, 2,
                         ["stylecam: error: no camera 999999...999 (20 digits): camera indices are 0..9999"])


def test_camera_index_bounds():
    assert camera_index("0") == 0 and camera_index("9999") == 9999 and camera_index("0007") == 7
    with pytest.raises(UserError, match="no camera 10000: camera indices are 0..9999"):
        camera_index("10000")
    assert expand_sources(["3"])[0][0].location == "3"
    with pytest.raises(UserError, match="no camera"):
        expand_sources(["2147483648"])


def test_a_fifo_is_called_a_named_pipe_and_never_opened(tmp_path, weights, photo):
    fifo = tmp_path / "in" / "stream.mp4"
    os.mkfifo(fifo)
    assert special_file(fifo) == "a named pipe (FIFO)" and special_file(photo) is None
    before = file_hashes(tmp_path)
    run = lambda *argv: subprocess.run([sys.executable, "-m", "stylecam", *map(str, argv)], capture_output=True,
                                       text=True, timeout=120, cwd=tmp_path,
                                       env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    proc = run(fifo, *engine_args(weights))   # opening it would wait for a writer forever
    assert_clean_failure(tmp_path, before, proc.returncode, proc.stderr, 2,
                         [f"stylecam: error: {fifo} is a named pipe (FIFO), not a regular file"])
    proc = run(photo.parent, "-o", tmp_path / "styled", *engine_args(weights))   # in a folder: skipped, said so
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip().splitlines() == [f"stylecam: skipped {fifo}: a named pipe (FIFO), not a regular file"]
    assert sorted(p.name for p in (tmp_path / "styled").iterdir()) == ["photo.png"]
    proc = run("study", fifo, "-o", tmp_path / "study", "--weights-dir", weights, "--no-vgg")
    assert_clean_failure(tmp_path, file_hashes(tmp_path), proc.returncode, proc.stderr, 2,
                         [f"{fifo} is a named pipe (FIFO), not a regular file"])


# ----- outputs that collide, folders left behind -----------------------------------------------

def test_colliding_outputs_in_an_output_folder_do_not_suggest_an_output_folder(capsys, tmp_path, weights):
    for sub in ("a", "b"):
        (tmp_path / "in" / sub).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "in" / sub / "x.png"), np.zeros((8, 8, 3), np.uint8))
    before = file_hashes(tmp_path)
    code, out, err = run_cli(capsys, tmp_path / "in" / "a" / "x.png", tmp_path / "in" / "b" / "x.png",
                             "-o", tmp_path / "styled", *engine_args(weights))
    assert_clean_failure(tmp_path, before, code, err, 2,
                         [f"would both be written to {tmp_path / 'styled' / 'x.png'} (rename one of them, or stylize "
                          "them in separate runs, each with its own -o)"])
    assert "give -o a folder" not in err
    code, out, err = run_cli(capsys, tmp_path / "in" / "a" / "x.png", tmp_path / "in" / "a" / "x.png",
                             "-o", tmp_path / "styled", *engine_args(weights))
    assert_clean_failure(tmp_path, before, code, err, 2, [f"{tmp_path / 'in' / 'a' / 'x.png'} is given twice "
                                                          "(name each input once)"])


def test_a_study_that_fails_its_checks_leaves_no_folder(capsys, tmp_path, weights, photo):
    before = file_hashes(tmp_path)
    code, out, err = run_cli(capsys, "study", photo, "-o", tmp_path / "new" / "study", "--styles", "wavy",
                             "--weights-dir", weights, "--no-vgg")
    assert_clean_failure(tmp_path, before, code, err, 2, ["unknown style 'wavy'"])
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("argv, message", [
    (["export", "{tmp}/missing.pt", "-o", "{tmp}/new/deeper/x.onnx"], "checkpoint not found"),
    (["gatys", "--content", "{tmp}/missing.jpg", "--style", "{tmp}/missing.jpg", "--out", "{tmp}/new/x.png"],
     "image not found"),
    (["classifier", "--dataset", "mnist", "--data", "{tmp}/nothing", "--out", "{tmp}/new/run"], "mnist not found"),
])
def test_trainer_runs_that_fail_their_checks_leave_no_folder(capsys, tmp_path, argv, message):
    from trainer import cli as trainer_cli
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "file.txt").write_text("kept")
    before = file_hashes(tmp_path)
    code = trainer_cli.main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    err = capsys.readouterr().err
    assert_clean_failure(tmp_path, before, code, err, 2, [f"stylecam-train: error: {message}"])
    assert not (tmp_path / "new").exists()


def test_new_folders_are_removed_only_while_empty(tmp_path):
    (tmp_path / "old").mkdir()
    with pytest.raises(RuntimeError):
        with folders.removed_if_empty_on_failure():
            folders.make_dirs(tmp_path / "old" / "a" / "b" / "c")
            folders.make_dirs(tmp_path / "full" / "x")
            (tmp_path / "full" / "x" / "result.txt").write_text("written")
            raise RuntimeError("the run failed")
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == \
        ["full", "full/x", "full/x/result.txt", "old"]
    with folders.removed_if_empty_on_failure():   # a run that succeeds keeps its empty folders
        folders.make_dirs(tmp_path / "kept")
    assert (tmp_path / "kept").is_dir() and folders.remove_new_empty_folders() == []


# ----- --json ----------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, error", [
    (["{tmp}/missing.png"], "no such file, folder or camera: {tmp}/missing.png"),
    (["{photo}", "--repeat", "0"], "argument --repeat: expected a whole number within 1..100, got '0'"),
    (["{huge}"], "{huge} is 50000x50000 pixels (2500 MP), above the limit of 50 MP"),
])
def test_json_writes_an_error_object_for_exit_2(capsys, tmp_path, weights, photo, huge_png, argv, error):
    fill = lambda text: text.replace("{tmp}", str(tmp_path)).replace("{photo}", str(photo)).replace("{huge}", str(huge_png))
    before = file_hashes(tmp_path)
    code, out, err = run_cli(capsys, *map(fill, argv), *engine_args(weights), "--json")
    assert_clean_failure(tmp_path, before, code, err, 2, [fill(error)])
    data = json.loads(out)
    assert data["error"] == fill(error) and data["exit_code"] == 2
    assert data["hint"] is None or data["hint"] in err
    code, out, err = run_cli(capsys, *map(fill, argv), *engine_args(weights))   # without --json: stdout empty
    assert code == 2 and out == ""


def test_json_flag_detection():
    assert cli.wants_json(["a.png", "--json"]) and not cli.wants_json(["--", "--json"])
    assert not cli.wants_json(["a.png"])


# ----- the argparse types behind the new flags -------------------------------------------------

def test_pixel_count_flag_values():
    from stylecam.argtypes import pixel_count
    assert [pixel_count(t) for t in ("50000000", "50M", "12.5MP", "1")] == [50_000_000, 50_000_000, 12_500_000, 1]
    for text in ("0", "-5", "lots", "1e9", "M"):
        with pytest.raises(Exception, match="expected a number of pixels"):
            pixel_count(text)
