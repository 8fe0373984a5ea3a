"""The `stylecam` command line: help, listing, info, demo, JSON, and every bad input -> exit code 2."""
from __future__ import annotations

import json
import os
import sys

import cv2
import numpy as np
import pytest

from stylecam import argtypes, cli, contract
from stylecam.sinks import ffmpeg_exe
from tests.fakes.onnx_models import make_classifier_model, make_plain_model, make_style_model


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    cv2.imwrite(str(path), np.full((10, 6, 3), 100, np.uint8))
    return path


def run_cli(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_help_explains_chain_and_repeat(capsys):
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0
    assert "stylecam --chain wave,muse --repeat 3" in out and "six passes" in out
    assert "--list-styles" in out and "--save-steps" in out and "--prepad" in out


def test_list_styles_table_and_json(capsys, weights):
    code, out, _ = run_cli(capsys, "--list-styles", "--weights-dir", weights)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "PAINTING", "ARTIST", "VARIANT", "NETWORK", "PADDING", "PRECISION", "MB"]
    assert sum(line.startswith("wave") for line in lines) == 2
    code, out, _ = run_cli(capsys, "--list-styles", "--json", "--weights-dir", weights)
    data = json.loads(out)
    assert {(s["name"], s["variant"]) for s in data["styles"]} == {
        ("wave", "full"), ("wave", "lite"), ("muse", "full"), ("muse", "lite")}


def test_list_styles_empty_folder_says_how_to_get_styles(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "--list-styles", "--weights-dir", tmp_path)
    assert code == 0 and "no style models" in out and "stylecam-train style" in out


def test_info(capsys, weights):
    code, out, _ = run_cli(capsys, "info", "--weights-dir", weights, "--json")
    data = json.loads(out)
    assert code == 0 and "CPUExecutionProvider" in data["providers_available"]
    assert data["providers_used"][-1] == "CPUExecutionProvider" and len(data["styles"]) == 4
    # every GPU provider offered is either used or explained
    for provider in set(data["providers_available"]) - {"CPUExecutionProvider"}:
        assert provider in data["providers_used"] or data["providers_unusable"][provider]
    code, out, _ = run_cli(capsys, "info", "--weights-dir", weights)
    assert "providers used (auto)" in out and "muse, wave" in out
    for provider in data["providers_unusable"]:
        assert f"{provider} not usable: " in out


def test_image_with_chain_repeat_and_json(capsys, weights, photo, tmp_path):
    out_path = tmp_path / "out.png"
    code, out, err = run_cli(capsys, photo, "-o", out_path, "--chain", "wave,muse", "--repeat", "2",
                             "--weights-dir", weights, "--device", "cpu", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["stylecam"]["chain"] == ["wave", "muse"] and summary["stylecam"]["passes"] == 4
    assert summary["stylecam"]["providers"] == ["CPUExecutionProvider"]
    assert (cv2.imread(str(out_path)) == 32).all()
    code, out, err = run_cli(capsys, photo, "-o", out_path, "--workers", "3", "--weights-dir", weights,
                             "--device", "cpu", "--json")
    assert code == 0, err
    summary = json.loads(out)["stylecam"]
    assert summary["workers"] == 3 and summary["threads"] == max(1, (os.cpu_count() or 1) // 3)


def test_style_given_as_a_file(capsys, tmp_path, photo):
    model = make_style_model(tmp_path / "m" / "mine.onnx", "mine", effect="invert")
    code, _, err = run_cli(capsys, photo, "--style", model, "-o", tmp_path / "x.png", "--device", "cpu")
    assert code == 0, err
    assert (cv2.imread(str(tmp_path / "x.png")) == 155).all()


@pytest.mark.skipif(ffmpeg_exe() is None, reason="no ffmpeg")
def test_demo_runs_headless(capsys, weights, tmp_path):
    code, out, err = run_cli(capsys, "demo", "--weights-dir", weights, "-o", tmp_path / "demo", "--max-frames", "6",
                             "--no-progress", "--json", "--device", "cpu")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["frames"] == 6 and summary["stylecam"]["passes"] == 6
    video = tmp_path / "demo" / "demo_wave-muse_x3.mp4"
    cap = cv2.VideoCapture(str(video))
    ok, frame = cap.read()
    assert ok and frame.shape == (360, 480, 3)
    sheet = cv2.imread(str(tmp_path / "demo" / "demo_steps.png"))
    assert sheet is not None and sheet.shape[1] > sheet.shape[0]


def test_demo_without_styles_says_how_to_get_them(capsys, tmp_path):
    code, _, err = run_cli(capsys, "demo", "--weights-dir", tmp_path, "-o", tmp_path / "demo")
    assert code == 2
    assert err.startswith("stylecam: error: the demo needs the styles wave and muse")
    assert "stylecam-train style" in err and "--weights-dir" in err


def test_subcommands_are_a_table_of_modules():
    from stylecam import demo, info, study
    assert cli.COMMANDS == {"info": info, "demo": demo, "study": study}
    for name, module in cli.COMMANDS.items():
        parser = cli.build_command_parser(name)
        assert parser.prog == f"stylecam {name}" and parser.description == module.DESCRIPTION


def test_study_dispatch_to_module(monkeypatch):
    from stylecam import study
    monkeypatch.setattr(study, "run", lambda args: 7 if args.images == ["a.jpg"] else 0)
    assert cli.main(["study", "a.jpg"]) == 7


def _bad_inputs(tmp_path, weights, photo):
    plain = make_plain_model(tmp_path / "plain.onnx")
    classifier = make_classifier_model(tmp_path / "clf.onnx")
    broken = make_style_model(tmp_path / "broken.onnx", "broken", metadata={contract.KEY_VARIANT: "huge"})
    w = ["--weights-dir", str(weights), "--device", "cpu"]
    (tmp_path / "empty").mkdir(exist_ok=True)
    return [
        ([str(photo), "--style", "wav", *w], "unknown style 'wav'"),
        ([str(photo), "--chain", "wave,nope", *w], "unknown style 'nope'"),
        ([str(photo), "--chain", "wave,,muse", *w], "expected style names separated by commas"),
        ([str(photo), "--repeat", "0", *w], "expected a whole number within 1..100"),
        ([str(photo), "--repeat", "two", *w], "expected a whole number within 1..100"),
        ([str(photo), "--strength", "1.5", *w], "expected a number within 0..1"),
        ([str(photo), "--stabilize", "2", *w], "expected a number within 0..1"),
        ([str(photo), "--size", "4", *w], "at least 8 pixels"),
        ([str(photo), "--workers", "0", *w], "expected a whole number ≥ 1"),
        ([str(photo), "--workers", "many", *w], "expected a whole number ≥ 1 or 'auto'"),
        ([str(photo), "--batch", "0", *w], "expected a whole number ≥ 1 or 'auto'"),
        ([str(photo), "--prepad", "-3", *w], "expected a whole number ≥ 0"),
        ([str(photo), "--device", "npu", *w], "invalid choice"),
        ([str(photo), "--lite", "--full", *w], "not allowed with argument"),
        ([str(photo), "--style", "wave", "--chain", "wave,muse", *w], "not allowed with argument"),
        ([str(tmp_path / "missing.mp4"), *w], "no such file, folder or camera"),
        ([str(tmp_path / "*.mov"), *w], "no files match"),
        ([str(photo), "--style", str(tmp_path / "missing.onnx"), *w], "model file not found"),
        ([str(photo), "--style", str(plain), *w], "not a stylecam style model"),
        ([str(photo), "--style", str(classifier), *w], "classifier model, not a style"),
        ([str(photo), "--style", str(broken), *w], "stylecam.variant is 'huge'"),
        ([str(photo), "-o", str(photo), *w], "would overwrite its input"),
        (["0", "--no-window", *w], "needs -o"),
        (["0", "--no-window", "-o", "live.png", *w], "a camera is recorded as a video"),
        ([str(photo), "-o", str(tmp_path / "out.xyz"), *w], "cannot write image"),
        ([str(photo), str(photo), "-o", str(tmp_path / "one.png"), *w], "several inputs cannot all be written"),
        ([str(photo), "--padding", "replicate", *w], "no 'replicate'-padding model"),
        ([str(photo), "--classify", str(tmp_path / "nope.onnx"), *w], None),
        ([str(photo), "--weights-dir", str(tmp_path / "empty")], "no style models found"),
        ([str(photo), "--weights-dir", str(tmp_path / "absent")], "no such weights folder"),
        (["--bogus"], "unrecognized arguments"),
    ]


def test_every_bad_input_gives_one_line_error_and_exit_code_2(capsys, tmp_path, weights, photo):
    for argv, message in _bad_inputs(tmp_path, weights, photo):
        code, out, err = run_cli(capsys, *argv)
        assert code == 2, (argv, err)
        last = err.strip().splitlines()[-1]
        assert last.startswith("stylecam: error:") or last.startswith("stylecam info: error:"), (argv, err)
        if message:
            assert message in err, (argv, err)
        assert "Traceback" not in err


def test_camera_that_does_not_exist(capsys, weights, monkeypatch):
    class Closed:
        def isOpened(self):
            return False

        def release(self):
            pass

    monkeypatch.setattr(cv2, "VideoCapture", lambda *a, **k: Closed())
    code, _, err = run_cli(capsys, "7", "--weights-dir", weights, "--device", "cpu", "--no-window", "-o", "x.mp4")
    assert code == 2 and "cannot open camera 7 (tried index 7)" in err and "no camera opened" in err


def test_output_piped_into_a_reader_that_stops_early_is_not_an_error(capsys, weights, monkeypatch):
    from stylecam import info

    def closed_pipe(*_args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(info, "list_styles", closed_pipe)
    code, _, err = run_cli(capsys, "--list-styles", "--weights-dir", weights)
    assert code == 0 and err == ""


def test_unreadable_video_is_one_line_without_ffmpeg_chatter(tmp_path, weights):
    """A fresh process, so OpenCV's FFmpeg backend starts with the level the CLI sets."""
    import subprocess
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    env = {k: v for k, v in os.environ.items() if k != "OPENCV_FFMPEG_LOGLEVEL"}
    result = subprocess.run([sys.executable, "-c", "import sys; from stylecam.cli import main; sys.exit(main())",
                             str(broken), "--weights-dir", str(weights), "--device", "cpu", "--no-progress"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"stylecam: skipped {broken}: cannot open video {broken}",
                                          "stylecam: 1 of 1 files could not be read"]


def test_stabilize_flag_in_either_spelling_reaches_the_run_config():
    parse = lambda *argv: cli.config_from_args(cli.build_parser().parse_args(list(argv))).stabilize
    assert parse() == 0.0 and parse("--stabilize", "0.8") == 0.8 and parse("--stabilise", "0.5") == 0.5


def test_old_stabilise_spelling_is_hidden_from_help_and_checked_like_the_new_one(capsys):
    help_text = cli.build_parser().format_help()
    assert "--stabilize A" in help_text and "stabilise" not in help_text
    assert cli.main(["--stabilise", "2"]) == 2
    assert "argument --stabilise: expected a number within 0..1" in capsys.readouterr().err


def test_mirror_flag_reaches_the_run_config():
    assert cli.config_from_args(cli.build_parser().parse_args(["--mirror"])).mirror
    assert not cli.config_from_args(cli.build_parser().parse_args([])).mirror
    assert "m mirror" in cli.build_parser().format_help()


@pytest.mark.parametrize("text, expected", [("1280x720", (1280, 720)), (" 640X480", (640, 480))])
def test_camera_size_flag_reaches_the_run_config(text, expected):
    assert cli.config_from_args(cli.build_parser().parse_args(["--camera-size", text])).camera_size == expected
    assert cli.config_from_args(cli.build_parser().parse_args([])).camera_size is None


@pytest.mark.parametrize("text", ["1280", "1280x", "0x720", "8x8", "99999x720", "wide"])
def test_bad_camera_size_is_refused(text, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.build_parser().parse_args(["--camera-size", text])
    assert exit_.value.code == 2 and "expected WIDTHxHEIGHT with each side within 16..8192" in capsys.readouterr().err


def test_virtual_camera_flags_reach_the_run_config():
    parse = lambda *argv: cli.config_from_args(cli.build_parser().parse_args(list(argv)))
    assert (parse("--virtual-camera").virtual_camera, parse("--virtual-camera").virtual_camera_device) == (True, None)
    assert (parse("--virtual-camera-device", "/dev/video9").virtual_camera,
            parse("--virtual-camera-device", "/dev/video9").virtual_camera_device) == (True, "/dev/video9")
    assert not parse().virtual_camera


def test_size_auto_reaches_the_run_config_and_only_the_main_command_takes_it(capsys):
    config = cli.config_from_args(cli.build_parser().parse_args(["--size", "auto"]))
    assert config.auto_size and config.engine.size is None
    config = cli.config_from_args(cli.build_parser().parse_args(["--size", "480"]))
    assert not config.auto_size and config.engine.size == 480
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["--size", "automatic"])
    assert run_cli(capsys, "demo", "--size", "auto")[0] == 2


def test_camera_fps_and_format_flags_reach_the_run_config(capsys):
    config = cli.config_from_args(cli.build_parser().parse_args(["--camera-fps", "15", "--camera-format", "mjpg"]))
    assert (config.camera_fps, config.camera_format) == (15.0, "MJPG")
    config = cli.config_from_args(cli.build_parser().parse_args([]))
    assert (config.camera_fps, config.camera_format) == (None, None)
    for argv, expected in ((["--camera-format", "MJPEG"], "four-character pixel format"),
                           (["--camera-fps", "0"], "within 1..240")):
        with pytest.raises(SystemExit):
            cli.build_parser().parse_args(argv)
        assert expected in capsys.readouterr().err


def test_fullscreen_flag_reaches_the_run_config():
    assert cli.config_from_args(cli.build_parser().parse_args(["--fullscreen"])).fullscreen
    assert not cli.config_from_args(cli.build_parser().parse_args([])).fullscreen
    assert "f fullscreen" in cli.build_parser().format_help()


@pytest.mark.parametrize("value", ["0", "-1", "many"])
def test_demo_max_frames_is_checked_when_parsing(capsys, weights, tmp_path, monkeypatch, value):
    from stylecam import demo as demo_module
    monkeypatch.setattr(demo_module, "run", lambda args: pytest.fail("parsed"))
    code, _, err = run_cli(capsys, "demo", "--weights-dir", weights, "-o", tmp_path / "demo", "--max-frames", value)
    assert code == 2 and "Traceback" not in err
    assert f"argument --max-frames: expected a whole number ≥ 1, got '{value}'" in err


@pytest.mark.parametrize("command", [[], ["demo"]])
def test_huge_size_is_refused_when_parsing(capsys, weights, photo, monkeypatch, command):
    from stylecam import demo as demo_module, runner
    monkeypatch.setattr(demo_module, "run", lambda args: pytest.fail("parsed"))  # never stylize at 100000 px
    monkeypatch.setattr(runner, "run", lambda config: pytest.fail("parsed"))
    argv = [*command, *([] if command else [photo]), "--weights-dir", weights, "--max-frames", "1"]
    code, _, err = run_cli(capsys, *argv, "--size", "100000")
    assert code == 2 and f"argument --size: expected a long side of at most {argtypes.MAX_SIZE} pixels, got '100000'" in err
    assert argtypes.MAX_SIZE == 8192 and argtypes.long_side("8192") == 8192


class ReportingCapture:
    """cv2.VideoCapture stand-in: cameras 0 and 2 open; 0 reports 640x480 at 30 FPS, 2 reports nothing."""

    def __init__(self, index):
        self.index = index

    def isOpened(self):
        return self.index in (0, 2)

    def get(self, prop):
        return {cv2.CAP_PROP_FRAME_WIDTH: 640.0, cv2.CAP_PROP_FRAME_HEIGHT: 480.0,
                cv2.CAP_PROP_FPS: 30.0}.get(prop, 0.0) if self.index == 0 else 0.0

    def release(self):
        pass


def test_info_lists_the_cameras_that_open(capsys, weights, monkeypatch):
    monkeypatch.setattr(cv2, "VideoCapture", ReportingCapture)
    code, out, _ = run_cli(capsys, "info", "--weights-dir", weights, "--json")
    assert code == 0 and json.loads(out)["cameras"] == [{"index": 0, "size": "640x480", "fps": 30.0},
                                                        {"index": 2, "size": None, "fps": None}]
    code, out, _ = run_cli(capsys, "info", "--weights-dir", weights)
    assert "cameras: 0 (640x480, 30 FPS), 2\n" in out
    code, out, _ = run_cli(capsys, "info", "--weights-dir", weights, "--no-cameras", "--json")
    assert "cameras" not in json.loads(out)
    monkeypatch.setattr(cv2, "VideoCapture", lambda i: ReportingCapture(9))
    code, out, _ = run_cli(capsys, "info", "--weights-dir", weights)
    assert "cameras: none opened at indices 0..4" in out


def test_info_help_explains_every_option(capsys):
    code, out, _ = run_cli(capsys, "info", "--help")
    assert code == 0
    assert "providers to report" in out and "folder of style models" in out and "as JSON on stdout" in out
    assert "do not look for cameras" in out


def test_padding_with_a_style_file_warns_once_that_the_file_is_used_as_is(capsys, tmp_path, photo):
    model = make_style_model(tmp_path / "m" / "mine.onnx", "mine", effect="invert")
    code, _, err = run_cli(capsys, photo, "--chain", f"{model},{model}", "--padding", "zero",
                           "-o", tmp_path / "x.png", "--device", "cpu")
    assert code == 0, err
    warning = f"--padding applies to styles given by name; {model} (reflect padding) is used as is"
    assert err.count(warning) == 1
    assert (cv2.imread(str(tmp_path / "x.png")) == 100).all()  # inverted twice: the file itself, both passes
    zero = make_style_model(tmp_path / "m" / "mine.zero.onnx", "mine", effect="invert", padding="zero")
    for argv in (["--padding", "zero"], []):  # its own mode, or the default: nothing to warn about
        code, _, err = run_cli(capsys, photo, "--style", zero, *argv, "-o", tmp_path / "y.png", "--device", "cpu")
        assert code == 0 and "--padding applies" not in err, err


def _clip(path):
    """A 10-frame 64x48 H.264 clip."""
    import subprocess
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
                    "-i", "testsrc=size=64x48:rate=10:duration=1", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                    str(path)], check=True)
    return path


@pytest.mark.parametrize("flags", [["-q"], ["--quiet"], ["-qo"]])
def test_quiet_means_no_progress_bars_also_in_combined_flags(flags):
    args = cli.build_parser().parse_args(["clip.mp4", *flags, *(["x.mp4"] if flags == ["-qo"] else [])])
    assert args.quiet and cli.config_from_args(args).progress is False
    assert cli.config_from_args(cli.build_parser().parse_args(["clip.mp4"])).progress is True


@pytest.mark.skipif(ffmpeg_exe() is None, reason="no ffmpeg")
def test_quiet_video_run_prints_nothing_on_stderr(capsys, weights, tmp_path):
    clip = _clip(tmp_path / "clip.mp4")
    code, _, err = run_cli(capsys, clip, "-qo", tmp_path / "out.mp4", "--weights-dir", weights, "--device", "cpu",
                           "--style", str(weights / "wave.onnx"), "--int8")
    assert code == 0 and err == "", err
    code, _, err = run_cli(capsys, clip, "-o", tmp_path / "out2.mp4", "--weights-dir", weights, "--device", "cpu")
    assert code == 0 and "frame/s" in err  # without -q: a progress bar


@pytest.mark.skipif(ffmpeg_exe() is None, reason="no ffmpeg")
def test_demo_quiet_prints_nothing_on_stderr(capsys, weights, tmp_path):
    code, _, err = run_cli(capsys, "demo", "-q", "--weights-dir", weights, "-o", tmp_path / "demo",
                           "--max-frames", "2", "--device", "cpu")
    assert code == 0 and err == "", err


def test_study_accepts_quiet_and_turns_off_its_progress_bar(monkeypatch):
    from stylecam import study
    seen = {}
    monkeypatch.setattr(study, "run", lambda args: seen.update(progress=study.config_from_args(args).progress) or 0)
    assert cli.main(["study", "a.jpg", "-q"]) == 0 and seen == {"progress": False}
    assert cli.main(["study", "a.jpg"]) == 0 and seen == {"progress": True}
    assert cli.main(["study", "a.jpg", "--no-progress"]) == 0 and seen == {"progress": False}


def test_int8_with_a_style_file_warns_and_the_json_tells_the_real_precision(capsys, tmp_path, photo):
    model = make_style_model(tmp_path / "m" / "mine.onnx", "mine")
    code, out, err = run_cli(capsys, photo, "--style", model, "--int8", "--json", "-o", tmp_path / "x.png",
                             "--device", "cpu")
    assert code == 0, err
    assert err.count(f"--int8 applies to styles given by name; {model} (fp32) is used as is") == 1
    summary = json.loads(out)["stylecam"]
    assert summary["int8"] is False and summary["models"][0]["precision"] == "fp32"


def test_pgm_input_gets_a_grey_pgm_output_without_opencv_errors(capfd, weights, tmp_path):
    cv2.imwrite(str(tmp_path / "g.pgm"), np.full((8, 12), 80, np.uint8))
    code = cli.main([str(tmp_path / "g.pgm"), "--weights-dir", str(weights), "--device", "cpu"])
    err = capfd.readouterr().err
    assert code == 0 and "ERROR" not in err and "cannot encode" not in err, err
    written = cv2.imread(str(tmp_path / "g_stylised.pgm"), cv2.IMREAD_UNCHANGED)
    assert written.shape == (8, 12) and (written == 90).all()  # wave = +10


@pytest.mark.skipif(ffmpeg_exe() is None, reason="no ffmpeg")
def test_video_with_audio_to_webm(capsys, weights, tmp_path):
    import subprocess
    clip = tmp_path / "a.mp4"
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
                    "-i", "testsrc=size=64x48:rate=10:duration=1", "-f", "lavfi", "-i", "sine=duration=1",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(clip)], check=True)
    code, _, err = run_cli(capsys, clip, "-o", tmp_path / "x.webm", "--weights-dir", weights, "--device", "cpu",
                           "--no-progress")
    assert code == 0, err
    from stylecam.sinks import probe_text
    assert "Audio: opus" in probe_text(tmp_path / "x.webm") and not list(tmp_path.glob(".*partial*"))
