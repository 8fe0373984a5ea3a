"""ImageFolder-inside-zip (and on disk) and torchvision's CIFAR-10 batches, on tiny hand-made files."""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from stylecam.errors import UserError
from trainer import data as D

COLORS = {"blue": (255, 0, 0), "red": (0, 0, 255), "green": (0, 255, 0)}   # BGR


def png(color_bgr, size=8) -> bytes:
    image = np.zeros((size, size, 3), np.uint8)
    image[:] = color_bgr
    return cv2.imencode(".png", image)[1].tobytes()


def make_zip(path: Path, per_class=(3, 2)) -> Path:
    """train/<color>/i.png and test/<color>/i.png, PNG so the pixels are exact."""
    with zipfile.ZipFile(path, "w") as z:
        for split, n in zip(("train", "test"), per_class):
            for name, bgr in COLORS.items():
                for i in range(n):
                    z.writestr(f"{split}/{name}/{i:04d}.png", png(bgr))
        z.writestr("README.txt", "not an image")
    return path


def test_zip_loader_decodes_rgb_and_sorts_classes(tmp_path):
    path = make_zip(tmp_path / "tiny.zip")
    train_x, train_y, test_x, test_y, classes = D.load_image_folder(path, tmp_path / "cache")
    assert classes == ["blue", "green", "red"]
    assert train_x.shape == (9, 3, 8, 8) and test_x.shape == (6, 3, 8, 8)
    assert train_y.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    red = train_x[train_y == 2][0]
    assert red[0].min() == 255 and red[1].max() == 0 and red[2].max() == 0   # channel 0 is R


def test_zip_is_cached_once(tmp_path):
    path = make_zip(tmp_path / "tiny.zip")
    first = D.load_image_folder(path, tmp_path / "cache")
    caches = list((tmp_path / "cache").glob("*.npz"))
    assert len(caches) == 1 and caches[0].name.startswith("tiny-")
    second = D.load_image_folder(path, tmp_path / "cache")
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(first[:4], second[:4]))
    assert second[4] == first[4]


def test_load_dataset_cifar10_from_zip_and_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    ds = D.load_dataset("cifar10", make_zip(tmp_path / "c.zip"))
    assert ds.classes == ["blue", "green", "red"] and ds.normalisation()["channels"] == "RGB"
    assert list((tmp_path / "xdg" / "stylecam" / "datasets").glob("c-*.npz"))
    folder = tmp_path / "folder"
    with zipfile.ZipFile(tmp_path / "c.zip") as z:
        z.extractall(folder)
    ds2 = D.load_dataset("cifar10", folder)
    assert np.array_equal(ds2.train_x.numpy(), ds.train_x.numpy())


def test_mixed_sizes_are_resized_to_the_first(tmp_path):
    path = tmp_path / "m.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("train/a/0.png", png((1, 2, 3), 8))
        z.writestr("train/b/0.png", png((1, 2, 3), 16))
        z.writestr("test/a/0.png", png((1, 2, 3), 4))
    train_x, _, test_x, _, _ = D.load_image_folder(path, tmp_path / "cache")
    assert train_x.shape == (2, 3, 8, 8) and test_x.shape == (1, 3, 8, 8)


@pytest.mark.parametrize("entries, message", [
    ({"train/a/0.png": None}, "no test"),
    ({"train/a/0.png": None, "test/z/0.png": None}, "test classes"),
    ({"train/a/0.png": b"not a png", "test/a/0.png": None}, "cannot decode"),
])
def test_bad_zips(tmp_path, entries, message):
    path = tmp_path / "bad.zip"
    with zipfile.ZipFile(path, "w") as z:
        for name, content in entries.items():
            z.writestr(name, content if content is not None else png((0, 0, 0)))
    with pytest.raises(UserError, match=message):
        D.load_image_folder(path, tmp_path / "cache")


def test_not_a_zip(tmp_path):
    (tmp_path / "x.zip").write_bytes(b"hello")
    with pytest.raises(UserError, match="not a zip"):
        D.load_image_folder(tmp_path / "x.zip", tmp_path / "cache")


def test_torchvision_cifar_batches(tmp_path):
    folder = tmp_path / "root" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        d = {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), b"labels": [0, 3, 9, 1]}
        (folder / name).write_bytes(pickle.dumps(d))
    ds = D.load_dataset("cifar10", tmp_path / "root")
    assert ds.train_x.shape == (20, 3, 32, 32) and ds.test_x.shape == (4, 3, 32, 32)
    assert ds.classes[9] == "truck" and ds.test_y.tolist() == [0, 3, 9, 1]
    raw = pickle.loads((folder / "test_batch").read_bytes())[b"data"]
    assert ds.test_x[0, 1, 0, 0] == raw[0, 1024]   # channel-major rows: R plane, G plane, B plane


class _OpensAFile:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("protocol", [2, 4])
def test_cifar_batches_are_unpickled_without_running_code(tmp_path, protocol):
    folder = tmp_path / "root" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        d = {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), b"labels": [0, 3, 9, 1]}
        (folder / name).write_bytes(pickle.dumps(d, protocol=protocol))
    assert D.load_dataset("cifar10", tmp_path / "root").test_x.shape == (4, 3, 32, 32)   # real batches still load
    marker = tmp_path / "MARKER"
    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": _OpensAFile(marker), b"labels": []}, protocol=protocol))
    with pytest.raises(UserError, match=r"cannot read CIFAR-10 batch .*data_batch_3: io.open is not allowed"):
        D.load_dataset("cifar10", tmp_path / "root")
    assert not marker.exists()


@pytest.mark.parametrize("cached", [False, True])
def test_test_only_decodes_the_test_images_alone(tmp_path, cached):
    path = make_zip(tmp_path / "tiny.zip")
    if cached:
        full = D.load_image_folder(path, tmp_path / "cache")
    else:
        full = D.load_image_folder(make_zip(tmp_path / "copy.zip"), tmp_path / "other")
    train_x, train_y, test_x, test_y, classes = D.load_image_folder(path, tmp_path / "cache", ("test",))
    assert train_x.shape == (0, 3, 8, 8) and len(train_y) == 0 and classes == full[4]
    assert np.array_equal(test_x.numpy(), full[2].numpy()) and test_y.tolist() == full[3].tolist()
    assert len(list((tmp_path / "cache").glob("*.npz"))) == (1 if cached else 0)   # no half cache written


def test_test_only_from_torchvision_batches_skips_the_training_batches(tmp_path):
    folder = tmp_path / "root" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    (folder / "data_batch_1").write_bytes(b"never read")
    d = {b"data": np.zeros((2, 3072), dtype=np.uint8), b"labels": [4, 5]}
    (folder / "test_batch").write_bytes(pickle.dumps(d))
    ds = D.load_dataset("cifar10", tmp_path / "root", test_only=True)
    assert ds.test_y.tolist() == [4, 5] and ds.train_x.shape == (0, 3, 32, 32)
