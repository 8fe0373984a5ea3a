"""Image files: default output names and saved steps, transparency kept where the format holds it,
EXIF orientation, and images whose extension OpenCV does not know."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from stylecam import runner
from stylecam.config import RunConfig
from stylecam.pipeline import Stylizer
from tests.fakes.engine import engine


def test_image_default_output_and_save_steps(tmp_path, weights):
    image = tmp_path / "photo.png"
    cv2.imwrite(str(image), np.full((7, 9, 3), 100, np.uint8))
    code, summary = runner.run(RunConfig(engine=engine(weights, "wave", "muse", repeat=2), sources=(str(image),),
                                         save_steps=True, progress=False))
    assert code == 0
    out = cv2.imread(str(tmp_path / "photo_stylised.png"))
    assert out.shape == (7, 9, 3) and (out == 32).all()
    steps = sorted(p.name for p in (tmp_path / "photo_stylised_steps").iterdir())
    assert steps == ["00_original.png", "01_wave.png", "02_muse.png", "03_wave.png", "04_muse.png"]
    assert cv2.imread(str(tmp_path / "photo_stylised_steps.png")) is not None
    assert len(summary["done"][0]["steps"]) == 5


def test_images_with_unknown_extensions_are_images(tmp_path, weights):
    jpeg = cv2.imencode(".jpg", np.full((8, 10, 3), 100, np.uint8))[1].tobytes()
    (tmp_path / "pic.jfif").write_bytes(jpeg)
    (tmp_path / "photo").write_bytes(jpeg)
    (tmp_path / "logo.img").write_bytes(cv2.imencode(".png", np.full((8, 10, 3), 100, np.uint8))[1].tobytes())
    sources = tuple(str(tmp_path / n) for n in ("pic.jfif", "photo", "logo.img"))
    code, summary = runner.run(RunConfig(engine=engine(weights), sources=sources, progress=False))
    assert code == 0 and [d["kind"] for d in summary["done"]] == ["image"] * 3
    assert [Path(d["output"]).name for d in summary["done"]] == ["pic_stylised.jpg", "photo_stylised.jpg",
                                                                 "logo_stylised.png"]
    assert cv2.imread(str(tmp_path / "logo_stylised.png")).shape == (8, 10, 3)
    code, summary = runner.run(RunConfig(engine=engine(weights), sources=(str(tmp_path),),
                                         output=str(tmp_path / "out"), progress=False))
    assert code == 0 and sorted(p.name for p in (tmp_path / "out").iterdir()) == ["logo.png", "photo.jpg", "pic.jpg"]


def test_transparency_of_images_is_kept_where_the_output_format_can_hold_it(tmp_path, weights):
    from stylecam.sources import read_alpha
    rgba = np.zeros((6, 10, 4), np.uint8)
    rgba[..., :3] = 100
    rgba[..., 3] = np.arange(10, dtype=np.uint8)[None, :] * 25  # a horizontal fade
    cv2.imwrite(str(tmp_path / "logo.png"), rgba)
    for name in ("logo_out.png", "logo_out.webp", "logo_out.jpg"):
        code, _ = runner.run(RunConfig(engine=engine(weights), sources=(str(tmp_path / "logo.png"),),
                                       output=str(tmp_path / name), progress=False))
        assert code == 0
        written = cv2.imread(str(tmp_path / name), cv2.IMREAD_UNCHANGED)
        if name.endswith(".jpg"):
            assert written.shape == (6, 10, 3)
            continue
        assert written.shape == (6, 10, 4)
        assert np.array_equal(written[..., 3], rgba[..., 3])
        assert (written[..., :3][rgba[..., 3] > 0] == 110).all()  # wave = +10 (WebP blanks fully clear pixels)
    runner.process_image(str(tmp_path / "logo.png"), tmp_path / "pair.png",
                         Stylizer(["wave"], weights_dir=weights, device="cpu"), show_original=True)
    assert cv2.imread(str(tmp_path / "pair.png"), cv2.IMREAD_UNCHANGED).shape == (6, 20, 3)  # side by side
    deep = np.full((4, 4, 4), 65535, np.uint16)
    deep[0, 0, 3] = 0
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    alpha = read_alpha(tmp_path / "deep.png")
    assert alpha.dtype == np.uint8 and alpha[0, 0] == 0 and alpha[1, 1] == 255
    cv2.imwrite(str(tmp_path / "opaque.png"), rgba[..., :3])
    assert read_alpha(tmp_path / "opaque.png") is None and read_alpha(tmp_path / "x.jpg") is None


def save_rgba_with_orientation(path: Path, rgba: np.ndarray, orientation: int) -> Path:
    """Write uint8 RGBA (H, W, 4) with Pillow (PNG or lossless WebP by extension) and an EXIF orientation."""
    image_module = pytest.importorskip("PIL.Image")
    image = image_module.fromarray(rgba, "RGBA")
    exif = image.getexif()
    exif[0x0112] = orientation
    image.save(path, exif=exif, **({"lossless": True} if path.suffix == ".webp" else {}))
    return path


def ramp_rgba(height: int, width: int) -> np.ndarray:
    """uint8 RGBA (H, W, 4) whose red channel equals its alpha: a ramp that no flip or turn leaves unchanged."""
    ys, xs = np.mgrid[0:height, 0:width]
    ramp = ((ys * 7 + xs * 3) % 200 + 20).astype(np.uint8)
    return np.dstack([ramp, np.full_like(ramp, 60), np.full_like(ramp, 90), ramp])


@pytest.mark.parametrize("ext", [".png", ".webp"])
def test_exif_rotated_transparent_image_keeps_alpha_with_its_picture(tmp_path, weights, ext):
    from stylecam.sources import exif_orientation, read_alpha, read_image
    source = save_rgba_with_orientation(tmp_path / f"al_exif{ext}", ramp_rgba(150, 200), 6)
    assert exif_orientation(source.read_bytes()) == 6
    out = tmp_path / f"o{ext}"
    code, _ = runner.run(RunConfig(engine=engine(weights, size=64), sources=(str(source),), output=str(out),
                                   progress=False))
    written = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert code == 0 and written.shape[2] == 4 and written.shape[:2] == read_image(source).shape[:2]
    for orientation in range(1, 9):  # square too: the alpha turns exactly like the color OpenCV decodes
        square = save_rgba_with_orientation(tmp_path / f"sq{orientation}{ext}", ramp_rgba(40, 40), orientation)
        np.testing.assert_array_equal(read_alpha(square), read_image(square)[..., 2])


def test_alpha_of_a_plain_colored_picture_follows_the_exif_orientation(tmp_path):
    from stylecam.sources import orient, read_alpha, read_image
    rgba = ramp_rgba(30, 40)
    rgba[..., :3] = 80  # the color cannot tell which of the quarter turns and flips was applied; EXIF does
    source = save_rgba_with_orientation(tmp_path / "plain.png", rgba, 6)
    turned = read_image(source).shape[:2] == (40, 30)  # OpenCV applies PNG orientation (recent versions)
    np.testing.assert_array_equal(read_alpha(source), orient(rgba[..., 3], 6) if turned else rgba[..., 3])
