"""IDX reader and dataset location on tiny hand-made files (never the real datasets)."""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from stylecam.errors import UserError
from trainer import data as D


def make_pattern_images(n: int, size: int = 12, classes: int = 4, seed: int = 0):
    """uint8 (n, size, size) images with a bright square in the quadrant of the class, and labels (n,)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    images = rng.integers(0, 40, (n, size, size)).astype(np.uint8)
    half = size // 2
    for i, k in enumerate(labels):
        r, c = divmod(int(k) % 4, 2)
        images[i, r * half:(r + 1) * half, c * half:(c + 1) * half] += 200
    return images, labels.astype(np.uint8)


def make_idx_folder(folder: Path, n_train: int = 64, n_test: int = 32, size: int = 12,
                    compress: bool = True, train_suffix: str = "") -> Path:
    """MNIST-style IDX files (train-*, t10k-*) of the pattern images in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    ext = ".gz" if compress else ""
    for split, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        images, labels = make_pattern_images(n, size, seed=seed)
        suffix = train_suffix if split == "train" else ""
        D.write_idx(folder / f"{split}-images-idx3-ubyte{suffix}{ext}", images, compress)
        D.write_idx(folder / f"{split}-labels-idx1-ubyte{ext}", labels, compress)
    return folder


def test_read_idx_hand_written_bytes(tmp_path):
    raw = bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 2, 2, 3) + bytes(range(12))
    (tmp_path / "a").write_bytes(raw)
    (tmp_path / "a.gz").write_bytes(gzip.compress(raw))
    for name in ("a", "a.gz"):
        arr = D.read_idx(tmp_path / name)
        assert arr.shape == (2, 2, 3) and arr.dtype == np.uint8
        assert arr[1, 1, 2] == 11 and arr[0, 1, 0] == 3


def test_read_idx_int32_big_endian(tmp_path):
    raw = bytes([0, 0, 0x0C, 1]) + struct.pack(">I", 3) + struct.pack(">3i", 1, -2, 70000)
    (tmp_path / "b").write_bytes(raw)
    assert D.read_idx(tmp_path / "b").tolist() == [1, -2, 70000]


def test_write_idx_roundtrip(tmp_path):
    images, labels = make_pattern_images(5, 6)
    D.write_idx(tmp_path / "x.gz", images, compress=True)
    assert np.array_equal(D.read_idx(tmp_path / "x.gz"), images)


@pytest.mark.parametrize("raw, message", [
    (b"\x01\x02\x08\x01" + b"\x00" * 8, "not an IDX"),
    (bytes([0, 0, 0x08, 2]) + struct.pack(">2I", 4, 4) + bytes(10), "truncated"),
    (b"\x1f\x8b\x08\x00garbage", "damaged gzip"),
])
def test_read_idx_bad_files(tmp_path, raw, message):
    (tmp_path / "bad").write_bytes(raw)
    with pytest.raises(UserError, match=message):
        D.read_idx(tmp_path / "bad")


def test_load_idx_folder_with_rebuilt_name(tmp_path):
    folder = make_idx_folder(tmp_path / "mnist", train_suffix=".rebuilt")
    ds = D.load_dataset("mnist", folder)
    assert ds.train_x.shape == (64, 1, 12, 12) and ds.test_x.shape == (32, 1, 12, 12)
    assert ds.train_x.dtype.is_floating_point is False and ds.train_y.tolist()[:5] == [0, 1, 2, 3, 0]
    assert ds.classes == [str(i) for i in range(10)]
    norm = ds.normalisation()
    assert norm["height"] == 12 and norm["width"] == 12 and norm["channels"] == "GRAY"
    assert norm["scale"] == pytest.approx(1 / 255)
    assert norm["mean"][0] == pytest.approx(float(ds.train_x.float().mean()) / 255, abs=1e-3)


def test_torchvision_roots(tmp_path):
    make_idx_folder(tmp_path / "root" / "FashionMNIST" / "raw", compress=False)
    ds = D.load_dataset("fashion-mnist", tmp_path / "root")
    assert ds.classes[0] == "T-shirt/top" and len(ds.classes) == 10 and len(ds.train_y) == 64
    make_idx_folder(tmp_path / "root2" / "MNIST" / "raw")
    assert D.locate("mnist", tmp_path / "root2") == ("idx", tmp_path / "root2" / "MNIST" / "raw")


def test_default_locations_cover_shared_debian_and_torchvision():
    places = [str(p) for p in D.candidate_paths("fashion-mnist")]
    assert "/usr/share/datasets/fashion-mnist" in places
    assert any(p.endswith("shared/data/fashion-mnist") for p in places)
    assert any(p.endswith(".torch") for p in places)
    assert any(p.endswith("cifar10_jpg.zip") for p in map(str, D.candidate_paths("cifar10")))


def test_missing_dataset_says_where_it_looked_and_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(D, "candidate_paths", lambda name: [tmp_path / "nowhere", tmp_path / "empty"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError) as err:
        D.load_dataset("fashion-mnist")
    text = str(err.value)
    assert "nowhere" in text and "empty" in text and "apt-get install dataset-fashion-mnist" in text
    with pytest.raises(UserError, match="mnist not found in .*missing"):
        D.load_dataset("mnist", tmp_path / "missing")


def test_env_variable_location(tmp_path, monkeypatch):
    make_idx_folder(tmp_path / "mnist")
    monkeypatch.setenv("STYLECAM_DATA", str(tmp_path))
    assert D.locate("mnist")[1] == tmp_path / "mnist"


def test_unknown_dataset():
    with pytest.raises(UserError, match="unknown dataset"):
        D.locate("imagenet")


def test_test_only_reads_the_test_files_alone(tmp_path):
    folder = make_idx_folder(tmp_path / "mnist")
    full = D.load_dataset("mnist", folder)
    (folder / "train-images-idx3-ubyte.gz").write_bytes(b"not read")      # a broken training file
    ds = D.load_dataset("mnist", folder, test_only=True)
    assert ds.train_x.shape == (0, 1, 12, 12) and len(ds.train_y) == 0
    assert np.array_equal(ds.test_x.numpy(), full.test_x.numpy()) and ds.test_y.tolist() == full.test_y.tolist()
    with pytest.raises(UserError, match="not an IDX"):
        D.load_dataset("mnist", folder)
