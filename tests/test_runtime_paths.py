"""Which files a run reads and the names it writes: folders, globs, output names and formats checked
before any work, outputs that would overwrite an input, and runs repeated over their own outputs."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from stylecam import runner, sinks
from stylecam.config import RunConfig
from stylecam.errors import UserError
from stylecam.sources import SourceError, VideoFileSource, expand_sources
from tests.fakes.engine import engine
from tests.fakes.media import count_frames, make_clip, needs_ffmpeg


# ----- inputs: folders and globs --------------------------------------------------------------

def test_expand_sources_and_bad_inputs(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "b.txt").write_text("x")
    items, notes = expand_sources([str(tmp_path), "0", str(tmp_path / "*.png")])
    assert [i.kind for i in items] == ["image", "camera", "image"]
    assert any("b.txt" in n for n in notes)
    with pytest.raises(UserError, match="no such file"):
        expand_sources([str(tmp_path / "missing.mp4")])
    with pytest.raises(UserError, match="no files match"):
        expand_sources([str(tmp_path / "*.mov")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no images or videos"):
        expand_sources([str(tmp_path / "empty")])
    with pytest.raises(SourceError):
        VideoFileSource(tmp_path / "b.txt")


@needs_ffmpeg
def test_folder_of_mixed_files_skips_unreadable_and_exits_1(tmp_path, weights):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    cv2.imwrite(str(folder / "a.png"), np.full((10, 14, 3), 100, np.uint8))
    cv2.imwrite(str(folder / "sub" / "b.jpg"), np.full((9, 9, 3), 100, np.uint8))
    (folder / "broken.png").write_bytes(b"not a png")
    (folder / "broken.mp4").write_bytes(b"not a video")
    (folder / "notes.txt").write_text("ignored")
    make_clip(folder / "sub" / "clip.mp4", frames=5, audio=False)
    out = tmp_path / "out"
    code, summary = runner.run(RunConfig(engine=engine(weights, "wave", "muse"), sources=(str(folder),),
                                         output=str(out), progress=False))
    assert code == 1
    assert sorted(Path(f["input"]).name for f in summary["failed"]) == ["broken.mp4", "broken.png"]
    assert (cv2.imread(str(out / "a.png")) == 55).all()          # (100 + 10) * 0.5, mirrored names
    assert cv2.imread(str(out / "sub" / "b.jpg")).shape == (9, 9, 3)
    assert count_frames(out / "sub" / "clip.mp4") == 5


def test_an_existing_path_with_glob_characters_is_taken_as_it_is(tmp_path):
    folder = tmp_path / "br"
    folder.mkdir()
    cv2.imwrite(str(folder / "shot[1].png"), np.zeros((4, 4, 3), np.uint8))
    items, _ = expand_sources([str(folder / "shot[1].png")])
    assert [i.location for i in items] == [str(folder / "shot[1].png")]
    cv2.imwrite(str(folder / "shot1.png"), np.zeros((4, 4, 3), np.uint8))  # what the pattern would match
    items, _ = expand_sources([str(folder / "shot[1].png")])
    assert [i.location for i in items] == [str(folder / "shot[1].png")]
    assert [i.location for i in expand_sources([str(folder / "shot[0-9].png")])[0]] == [str(folder / "shot1.png")]


def test_a_glob_matching_no_images_or_videos_is_a_user_error(tmp_path):
    (tmp_path / "n1.txt").write_text("x")
    with pytest.raises(UserError, match="no images or videos among the 1 file") as err:
        expand_sources([str(tmp_path / "n*.txt")])
    assert err.value.exit_code == 2


# ----- outputs: names, formats, overwrites ----------------------------------------------------

def test_output_names():
    from stylecam.sources import SourceItem
    video = SourceItem("video", "in/clip.avi")
    assert runner.output_for(video, None, False) == Path("in/clip_stylised.avi")
    assert runner.output_for(SourceItem("video", "a/b.gif"), None, False) == Path("a/b_stylised.gif")
    assert runner.output_for(SourceItem("video", "a/b.flv"), None, False) == Path("a/b_stylised.mp4")
    assert runner.output_for(video, "out.mp4", False) == Path("out.mp4")
    assert runner.output_for(video, "outdir", False) == Path("outdir/clip.avi")
    nested = SourceItem("image", "photos/x/y.jpg", root="photos")
    assert runner.output_for(nested, "styled", True) == Path("styled/x/y.jpg")
    assert runner.output_for(nested, "styled.v2", True) == Path("styled.v2/x/y.jpg")  # not a media name
    with pytest.raises(UserError, match="several inputs cannot all be written to one file"):
        runner.output_for(nested, "styled.png", True)
    assert runner.output_for(video, "still.png", False) == Path("still.png")  # refused by check_outputs


def test_output_formats_are_checked_before_any_work():
    from stylecam.sources import SourceItem
    image, video = SourceItem("image", "a.jpg"), SourceItem("video", "b.mp4")
    runner.check_outputs([(image, Path("a.webp")), (video, Path("b.mkv"))])
    for item, out, message in [(image, "a.xyz", "cannot write image a.jpg as .xyz"),
                               (image, "a", "as a file without extension"),
                               (image, "a.mp4", "cannot write image a.jpg to a video file"),
                               (video, "b.png", "cannot write video b.mp4 to an image file")]:
        with pytest.raises(UserError, match=message):
            runner.check_outputs([(item, Path(out))])


def test_video_output_names_must_be_writable_containers():
    from stylecam.sources import SourceItem
    video = SourceItem("video", "b.mp4")
    for name in ("x.txt", "x.flv"):
        with pytest.raises(UserError, match=rf"cannot write video b.mp4 as \{name[1:]}.*\.mkv"):
            runner.check_outputs([(video, runner.output_for(video, name, False))])
    flv = SourceItem("video", "in/a.flv", root="in")
    assert runner.output_for(flv, "outdir", False) == Path("outdir/a.mp4")  # made-up names still go to .mp4


def test_outputs_that_cannot_be_created_are_user_errors(tmp_path, weights):
    blocker = tmp_path / "a_file"
    blocker.write_bytes(b"x")
    frame = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(UserError, match="cannot write .*a file is in the way"):
        sinks.write_image(blocker / "x.png", frame)
    with pytest.raises(UserError, match="cannot write .*a file is in the way"):
        sinks.VideoWriter(blocker / "x.mp4", 10, (8, 8))
    image = tmp_path / "in.png"
    cv2.imwrite(str(image), np.full((16, 16, 3), 100, np.uint8))
    with pytest.raises(UserError, match="choose an -o in a folder you can write to"):
        runner.run(RunConfig(engine=engine(weights), sources=(str(image),), output=str(blocker / "sub" / "o.png"),
                             progress=False))


def test_output_would_overwrite_input(tmp_path, weights):
    image = tmp_path / "photo.png"
    cv2.imwrite(str(image), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(UserError, match="overwrite its input"):
        runner.run(RunConfig(engine=engine(weights), sources=(str(image),), output=str(image), progress=False))


def test_output_folder_equal_to_the_input_folder_is_still_refused_as_an_overwrite(tmp_path, weights):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(UserError, match="overwrite its input"):
        runner.run(RunConfig(engine=engine(weights), sources=(str(tmp_path),), output=str(tmp_path), progress=False))


# ----- runs repeated over their own outputs ---------------------------------------------------

def test_running_again_on_a_folder_skips_stylecam_outputs(tmp_path, weights, caplog):
    caplog.set_level("INFO", logger="stylecam")
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "marker.png"), np.full((6, 6, 3), 50, np.uint8))
    cv2.imwrite(str(folder / "run_steps.png"), np.full((6, 6, 3), 50, np.uint8))  # the user's own file
    config = RunConfig(engine=engine(weights), sources=(str(folder),), save_steps=True, progress=False)
    for _ in range(2):
        code, summary = runner.run(config)
        assert code == 0
        assert sorted(Path(d["input"]).name for d in summary["done"]) == ["marker.png", "run_steps.png"]
    assert not list(folder.rglob("*_stylised_stylised*")) and not list(folder.rglob("*_steps_steps*"))
    assert "skipped 8 file(s) in" in caplog.text  # 2 results, 2 sheets, 2 x 2 steps
    caplog.clear()
    inside = RunConfig(engine=engine(weights), sources=(str(folder),), output=str(folder / "out"), progress=False)
    for _ in range(2):
        code, summary = runner.run(inside)
        assert code == 0 and len(summary["done"]) == 2
    assert sorted(p.name for p in (folder / "out").iterdir()) == ["marker.png", "run_steps.png"]
    assert "skipped 10 file(s) in" in caplog.text and "under -o" in caplog.text


def test_a_glob_run_twice_skips_its_own_outputs(tmp_path, weights):
    shots = tmp_path / "shots"
    shots.mkdir()
    cv2.imwrite(str(shots / "a.png"), np.full((12, 12, 3), 100, np.uint8))
    config = RunConfig(engine=engine(weights), sources=(str(shots / "*.png"),), progress=False)
    for _ in range(2):
        code, summary = runner.run(config)
        assert code == 0 and [d["input"] for d in summary["done"]] == [str(shots / "a.png")]
    assert sorted(p.name for p in shots.iterdir()) == ["a.png", "a_stylised.png"]
    # asked for by name, an output is processed like any image
    code, summary = runner.run(RunConfig(engine=engine(weights), sources=(str(shots / "*_stylised.png"),),
                                         progress=False))
    assert code == 0 and (shots / "a_stylised_stylised.png").is_file()


def test_summary_keys_are_also_written_in_their_first_spelling():
    summary = runner.with_old_key_spellings({"frames": 3, "stylize_ms": 1.5, "stabilize": 0.8})
    assert summary == {"frames": 3, "stylize_ms": 1.5, "stylise_ms": 1.5, "stabilize": 0.8, "stabilise": 0.8}
    assert runner.with_old_key_spellings({"frames": 1}) == {"frames": 1}
