"""stylecam.fileout: unique temporary names, whole files under concurrent writers, the same-file check."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from stylecam import fileout, sinks
from stylecam.errors import UserError
from tests.fakes.media import decode_frames, needs_ffmpeg

REPO = Path(__file__).resolve().parents[1]


def leftovers(folder: Path) -> list[Path]:
    return sorted(folder.glob(".*partial*"))


def usual_mode() -> int:
    return 0o666 & ~fileout.current_umask()


# ----- temporary names and atomic writes ----------------------------------------------------------

def test_temp_path_is_unique_hidden_and_keeps_the_extension_last(tmp_path):
    final = tmp_path / "clip.final.mp4"
    names = [fileout.temp_path(final) for _ in range(50)]
    assert len(set(names)) == 50 and all(p.is_file() and p.stat().st_size == 0 for p in names)
    assert all(p.parent == tmp_path and p.name.startswith(".clip.final.") and p.name.endswith(".partial.mp4")
               for p in names)
    assert not final.exists()


def test_atomic_output_replaces_the_target_with_the_usual_mode(tmp_path):
    final = tmp_path / "out.bin"
    final.write_bytes(b"old")
    with fileout.atomic_output(final) as tmp:
        tmp.write_bytes(b"new contents")
        assert final.read_bytes() == b"old"                 # nothing visible before the block ends
    assert final.read_bytes() == b"new contents"
    assert final.stat().st_mode & 0o777 == usual_mode()
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("failure", [ValueError("boom"), KeyboardInterrupt()])
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, failure):
    final = tmp_path / "out.bin"
    final.write_bytes(b"old")
    with pytest.raises(type(failure)):
        with fileout.atomic_output(final) as tmp:
            tmp.write_bytes(b"half")
            raise failure
    assert final.read_bytes() == b"old" and leftovers(tmp_path) == []


def test_unwritable_folder_raises_oserror(tmp_path):
    with pytest.raises(OSError):
        fileout.atomic_write_bytes(tmp_path / "missing" / "x.bin", b"x")


def _payload(tag: int, size: int = 1 << 20) -> bytes:
    return bytes([tag]) * size


def test_two_threads_writing_one_path_leave_one_whole_file(tmp_path):
    """Each writer streams 24 chunks; they interleave. The file is then one of the two, whole."""
    final = tmp_path / "shared.bin"
    start = threading.Barrier(2)
    errors = []

    def writer(tag: int) -> None:
        try:
            start.wait()
            with fileout.atomic_output(final) as tmp, open(tmp, "wb") as fh:
                for _ in range(24):
                    fh.write(_payload(tag, 1 << 16))
                    fh.flush()
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(tag,)) for tag in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    data = final.read_bytes()
    assert data in (_payload(1, 24 << 16), _payload(2, 24 << 16))
    assert leftovers(tmp_path) == []


WRITER = """
import sys, time
from stylecam.fileout import atomic_output
path, tag, go = sys.argv[1], int(sys.argv[2]), sys.argv[3]
import os
while not os.path.exists(go):
    time.sleep(0.005)
with atomic_output(path) as tmp, open(tmp, "wb") as fh:
    for _ in range(16):
        fh.write(bytes([tag]) * (1 << 16)); fh.flush(); time.sleep(0.005)
"""


def test_two_processes_writing_one_path_leave_one_whole_file(tmp_path):
    final, go = tmp_path / "shared.bin", tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(final), str(tag), str(go)], cwd=REPO)
             for tag in (1, 2)]
    go.touch()
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    assert final.read_bytes() in (bytes([1]) * (16 << 16), bytes([2]) * (16 << 16))
    assert leftovers(tmp_path) == []


@needs_ffmpeg
def test_two_video_writers_to_one_path_each_finish_a_whole_file(tmp_path):
    """Before each writer had its own temporary name, both encoders wrote into one file and the
    second rename failed. Now the last rename wins and the file plays: 8 bright frames."""
    out = tmp_path / "x.mp4"
    first, second = sinks.VideoWriter(out, 10, (64, 48)), sinks.VideoWriter(out, 10, (64, 48))
    assert first.tmp != second.tmp
    for i in range(12):
        first.write(np.full((48, 64, 3), 40, np.uint8))
        if i < 8:
            second.write(np.full((48, 64, 3), 200, np.uint8))
    first.close()
    assert out.is_file()
    second.close()
    frames = decode_frames(out)
    assert len(frames) == 8 and all(abs(float(f.mean()) - 200) < 6 for f in frames)
    assert out.stat().st_mode & 0o777 == usual_mode()
    assert leftovers(tmp_path) == []


def test_video_writer_that_cannot_start_leaves_no_temporary(tmp_path, monkeypatch):
    monkeypatch.setattr(sinks, "ffmpeg_exe", lambda: None)
    monkeypatch.setattr(sinks, "OpenCVEncoder", lambda *args: (_ for _ in ()).throw(UserError("cannot write video")))
    with pytest.raises(UserError):
        sinks.VideoWriter(tmp_path / "x.mp4", 10, (64, 48))
    assert list(tmp_path.iterdir()) == []


# ----- same file ---------------------------------------------------------------------------------

def aliases(target: Path) -> dict[str, str]:
    """Other names of ``target``: the same path, one through '..', a symlink and a hard link."""
    (target.parent / "sub").mkdir(exist_ok=True)
    symlink, hardlink = target.with_name("sym-" + target.name), target.with_name("hard-" + target.name)
    symlink.symlink_to(target)
    os.link(target, hardlink)
    return {"same": str(target), "dotdot": str(target.parent / "sub" / ".." / target.name),
            "symlink": str(symlink), "hardlink": str(hardlink)}


def test_same_file_sees_dotdot_symlinks_and_hard_links(tmp_path):
    target = tmp_path / "in.png"
    target.write_bytes(b"x")
    other = tmp_path / "other.png"
    other.write_bytes(b"x")
    for kind, name in aliases(target).items():
        assert fileout.same_file(name, target), kind
        assert not fileout.same_file(name, other), kind
    assert not fileout.same_file(tmp_path / "new.png", target)
    assert fileout.same_file(tmp_path / "new.png", tmp_path / "sub" / ".." / "new.png")   # neither exists yet


def test_refuse_overwriting_inputs_names_the_input_and_the_option(tmp_path):
    target = tmp_path / "ck.pt"
    target.write_bytes(b"x")
    names = aliases(target)
    with pytest.raises(UserError, match=r"output .*ck.pt would overwrite its input \(choose another -o\)"):
        fileout.refuse_overwriting_inputs(target, [str(target)])
    with pytest.raises(UserError, match=r"would overwrite the input .*ck.pt \(given as --init\)"):
        fileout.refuse_overwriting_inputs(names["hardlink"], {"--style-image": None, "--init": target}, "--out")
    fileout.refuse_overwriting_inputs(tmp_path / "new.pt", [target, None, ""])   # nothing to refuse


# ----- images: the one writer -------------------------------------------------------------------

def test_write_image_writes_opencvs_encoding_with_the_params_given(tmp_path):
    frame = np.random.default_rng(1).integers(0, 256, (12, 20, 3), dtype=np.uint8)
    path = fileout.write_image(tmp_path / "new" / "deep" / "sheet.jpg", frame, (cv2.IMWRITE_JPEG_QUALITY, 40))
    assert path == tmp_path / "new" / "deep" / "sheet.jpg"                 # its folder made
    assert path.read_bytes() == cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 40])[1].tobytes()
    assert fileout.write_image(tmp_path / "x.png", frame).read_bytes() == cv2.imencode(".png", frame)[1].tobytes()
    assert fileout.write_image(tmp_path / "noext", frame).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "x.png").stat().st_mode & 0o777 == usual_mode() and leftovers(tmp_path) == []
    grey = fileout.encode_image(".pgm", frame)
    assert cv2.imdecode(np.frombuffer(grey, np.uint8), cv2.IMREAD_UNCHANGED).shape == (12, 20)
    assert fileout.encode_image(".nosuchformat", frame) is None


def test_write_image_errors_are_one_line_and_name_the_option(tmp_path):
    frame = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(UserError, match=r"cannot encode an image as \.xyz") as err:
        fileout.write_image(tmp_path / "x.xyz", frame)
    assert err.value.hint == "use .png or .jpg" and list(tmp_path.iterdir()) == []
    (tmp_path / "file").write_text("in the way")
    with pytest.raises(UserError, match="a file is in the way of its folder") as err:
        fileout.write_image(tmp_path / "file" / "x.png", frame, flag="--out")
    assert err.value.hint == "choose an --out in a folder you can write to"


def test_images_are_encoded_only_by_stylecam_fileout():
    """Every image file of the runtime and the trainer goes through fileout.write_image / encode_image."""
    modules = [p for p in sorted((REPO / "stylecam").glob("*.py")) + sorted((REPO / "trainer").rglob("*.py"))
               if p.name != "fileout.py"]
    encoding = []
    for module in modules:
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in ("imencode", "imwrite", "fromarray"):  # OpenCV, Pillow
                encoding.append(f"{module.relative_to(REPO)}:{node.lineno}")
    assert encoding == []
