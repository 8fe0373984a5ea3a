"""Classifier datasets, loaded once into memory: MNIST, Fashion-MNIST (IDX files), CIFAR-10.

Accepted layouts (``--data PATH`` or the standard locations, see ``candidate_paths``):
  IDX       a folder with train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-... files,
            also torchvision's ROOT/MNIST/raw and ROOT/FashionMNIST/raw
  zip       ImageFolder layout inside a zip: train/<class>/*.jpg and test/<class>/*.jpg
  folder    the same ImageFolder layout on disk
  batches   torchvision's ROOT/cifar-10-batches-py (python pickles)

Every loader returns images as uint8 tensors (N, C, H, W), RGB or gray, values 0..255, and int64 labels.
Decoded image folders are cached as .npz under ~/.cache/stylecam/datasets (never in the project).

Validation: ``hold_out_validation`` moves a fixed set of training images (the same for every run) into
a validation split. Every choice (sweeps, epoch-by-epoch looks) uses it; the test set is for the one
final measurement of a finished model.
"""
from __future__ import annotations

import gzip
import os
import pickle
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from stylecam.errors import UserError
from stylecam.fileout import atomic_output

DATASETS = ("mnist", "fashion-mnist", "cifar10")
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                   "Bag", "Ankle boot"]
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
#: training images held out for validation, by dataset (of 60,000 MNIST / Fashion-MNIST, 50,000 CIFAR-10)
DEFAULT_VAL_SIZE = {"mnist": 5000, "fashion-mnist": 5000, "cifar10": 5000}
#: seed of the permutation that picks the validation images: one fixed split for every run
VAL_SEED = 0
#: IDX element type code -> numpy dtype (big-endian)
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
HOW_TO_GET = {
    "mnist": "get the four IDX files (train-images-idx3-ubyte.gz ...) into a folder and pass --data FOLDER, "
             "or run python -c \"import torchvision; torchvision.datasets.MNIST('data', download=True)\"",
    "fashion-mnist": "apt-get install dataset-fashion-mnist (Debian/Ubuntu), or run python -c \"import "
                     "torchvision; torchvision.datasets.FashionMNIST('data', download=True)\"",
    "cifar10": "run python -c \"import torchvision; torchvision.datasets.CIFAR10('data', download=True)\", or pass "
               "--data with a zip or folder holding train/<class>/*.jpg and test/<class>/*.jpg",
}


@dataclass
class Dataset:
    """A dataset in memory. Images uint8 (N, C, H, W) 0..255, RGB or gray; labels int64 (N,)."""
    name: str
    classes: list[str]
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    source: str                   # where it was read from
    val_x: torch.Tensor | None = None   # validation images held out of the training set (hold_out_validation)
    val_y: torch.Tensor | None = None

    @property
    def val_size(self) -> int:
        return 0 if self.val_y is None else len(self.val_y)

    @property
    def channels(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def size(self) -> tuple[int, int]:
        return int(self.train_x.shape[2]), int(self.train_x.shape[3])

    def normalisation(self) -> dict:
        """The runtime normalisation: input = ((pixel * scale) - mean) / std per channel (train-set stats)."""
        step = max(1, len(self.train_x) // 20000)  # a strided subset: folders are sorted by class
        x = self.train_x[::step].float() / 255.0
        mean = x.mean(dim=(0, 2, 3)).tolist()
        std = x.std(dim=(0, 2, 3)).tolist()
        h, w = self.size
        return {"height": h, "width": w, "channels": "GRAY" if self.channels == 1 else "RGB",
                "scale": 1.0 / 255.0, "mean": [round(m, 4) for m in mean], "std": [round(s, 4) for s in std]}


def hold_out_validation(data: Dataset, size: int, seed: int = VAL_SEED) -> Dataset:
    """A copy of ``data`` whose training images are split in two: ``size`` images picked by a permutation
    seeded with ``seed`` (so the same ones every run) become the validation split, the others stay for
    training, in their order. The test split is not touched. ``size`` 0 gives an empty validation split.
    Raises UserError when ``size`` would leave no training image."""
    n = len(data.train_y)
    if size < 0 or size >= n:
        raise UserError(f"a validation split of {size} images does not fit {n} training images",
                        f"use --val-size from 0 to {max(n - 1, 0)}")
    picked = torch.zeros(n, dtype=torch.bool)
    picked[torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:size]] = True
    return Dataset(data.name, data.classes, data.train_x[~picked], data.train_y[~picked], data.test_x,
                   data.test_y, data.source, data.train_x[picked], data.train_y[picked])


# ----------------------------------------------------------------------------- IDX

def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzip or raw, detected by content) -> numpy array of the stored shape and type."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise UserError(f"{path} is a damaged gzip file ({err})", "download it again") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise UserError(f"{path} is not an IDX file (bad magic {raw[:4].hex()})",
                        "expected MNIST-style IDX: 0x00 0x00 <type> <ndim>")
    dtype, ndim = np.dtype(_IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise UserError(f"{path}: IDX header says shape {shape} ({expected} bytes) but the file holds "
                        f"{len(raw) - header} bytes", "the file is truncated or damaged; download it again")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike, array: np.ndarray, compress: bool = False) -> None:
    """Write ``array`` (uint8 or int32) as an IDX file; the reader's inverse (used by tests and tools)."""
    codes = {np.dtype(np.uint8): 0x08, np.dtype(np.int32): 0x0C}
    array = np.ascontiguousarray(array)
    code = codes[array.dtype]
    data = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data += array.astype(">i4").tobytes() if code == 0x0C else array.tobytes()
    Path(path).write_bytes(gzip.compress(data) if compress else data)


def _idx_file(folder: Path, stem: str) -> Path | None:
    """The first file in ``folder`` whose name starts with ``stem`` (raw, .gz, .rebuilt.gz ...)."""
    if not folder.is_dir():
        return None
    hits = sorted(p for p in folder.iterdir() if p.is_file() and p.name.startswith(stem))
    return hits[0] if hits else None


def _idx_folder(path: Path, torchvision_name: str) -> Path | None:
    """``path`` itself, path/raw, or torchvision's path/<Name>/raw when it holds the IDX files."""
    for folder in (path, path / "raw", path / torchvision_name / "raw"):
        if all(_idx_file(folder, s) for s in ("train-images-idx3", "train-labels-idx1",
                                                "t10k-images-idx3", "t10k-labels-idx1")):
            return folder
    return None


def load_idx_folder(folder: Path, splits: tuple[str, ...] = ("train", "t10k")
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """train_x, train_y, test_x, test_y from an IDX folder; images (N, 1, H, W) uint8. A split left out of
    ``splits`` is not read (empty tensors)."""
    out = []
    for split in ("train", "t10k"):
        if split not in splits:
            out += [None, None]
            continue
        images = read_idx(_idx_file(folder, f"{split}-images-idx3"))
        labels = read_idx(_idx_file(folder, f"{split}-labels-idx1"))
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise UserError(f"{folder}: {split} images {images.shape} and labels {labels.shape} do not match",
                            "expected images (N, H, W) and labels (N,)")
        out += [torch.from_numpy(images.astype(np.uint8)).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))]
    return tuple(_fill_empty(out))


# ----------------------------------------------------------------------------- image folders

def _decode(data: bytes, size: tuple[int, int] | None) -> np.ndarray:
    """Encoded image bytes -> uint8 (H, W, 3) RGB, resized to ``size`` (h, w) when given and different."""
    import cv2

    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("cannot decode")
    if size is not None and image.shape[:2] != size:
        image = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return image[:, :, ::-1]


def _folder_entries(names: list[str]) -> dict[str, list[tuple[str, str]]]:
    """Paths like split/class/file.jpg -> {split: [(class, path), ...]} sorted (ImageFolder order)."""
    out: dict[str, list[tuple[str, str]]] = {"train": [], "test": []}
    for name in sorted(names):
        parts = name.replace("\\", "/").strip("/").split("/")
        if len(parts) >= 3 and parts[-3] in out and name.lower().endswith(IMAGE_SUFFIXES):
            out[parts[-3]].append((parts[-2], name))
    return out


def load_image_folder(path: str | os.PathLike, cache_dir: str | os.PathLike | None = None,
                      splits: tuple[str, ...] = ("train", "test")):
    """A zip or folder with train/<class>/*.jpg and test/<class>/*.jpg -> tensors and class names.

    Returns (train_x, train_y, test_x, test_y, classes); images uint8 (N, 3, H, W) RGB, all resized to
    the size of the first image. Zips are decoded once and cached as .npz in ``cache_dir``.
    ``splits`` ("test",) decodes the test images only (from the cache when there is one, else without
    writing one); the training tensors are then empty.
    """
    from tqdm import tqdm

    path = Path(path)
    cache = None
    if path.is_file():
        stat = path.stat()
        cache = Path(cache_dir or default_cache_dir()) / f"{path.stem}-{stat.st_size}-{int(stat.st_mtime)}.npz"
        if cache.is_file():
            with np.load(cache) as z:
                keys = [f"{split}_{a}" for split in ("train", "test") for a in "xy"]
                arrays = [torch.from_numpy(z[k]) if k[:-2] in splits else None for k in keys]
                classes = [str(c) for c in z["classes"]]
            return (*_fill_empty(arrays), classes)
        try:
            archive = zipfile.ZipFile(path)
        except zipfile.BadZipFile:
            raise UserError(f"{path} is not a zip file", "pass a zip or folder with train/ and test/ inside") from None
        entries = _folder_entries(archive.namelist())
        read = archive.read
    else:
        archive = None
        entries = _folder_entries([str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()])
        read = lambda name: (path / name).read_bytes()  # noqa: E731
    classes = sorted({c for c, _ in entries["train"]})
    if not entries["train"] or not entries["test"]:
        raise UserError(f"{path} has no train/<class>/*.jpg or no test/<class>/*.jpg images",
                        "expected the ImageFolder layout train/<class>/*.jpg and test/<class>/*.jpg")
    unknown = sorted({c for c, _ in entries["test"]} - set(classes))
    if unknown:
        raise UserError(f"{path}: test classes {unknown} have no training images", "check the folder names")
    index = {c: i for i, c in enumerate(classes)}
    size = None
    result = []
    for split in ("train", "test"):
        if split not in splits:
            result += [None, None]
            continue
        images, labels = [], []
        for cls, name in tqdm(entries[split], desc=f"decoding {path.name} {split}", unit="img",
                              leave=False, mininterval=1.0):
            try:
                image = _decode(read(name), size)
            except ValueError:
                raise UserError(f"cannot decode image {name} in {path}", "remove or replace that file") from None
            size = size or image.shape[:2]
            images.append(image)
            labels.append(index[cls])
        result += [torch.from_numpy(np.stack(images).transpose(0, 3, 1, 2).copy()),
                   torch.tensor(labels, dtype=torch.int64)]
    if archive is not None:
        archive.close()
    if len(splits) < 2:
        return (*_fill_empty(result), classes)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(cache) as tmp:                  # the name ends in .npz: numpy adds nothing
            np.savez(tmp, train_x=result[0].numpy(), train_y=result[1].numpy(), test_x=result[2].numpy(),
                     test_y=result[3].numpy(), classes=np.array(classes))
    return (*result, classes)


class ArraysOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain values and numpy arrays only (what a CIFAR-10 batch holds): any other object is
    refused, so a crafted batch file cannot run code."""
    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a data file")
        if module == "numpy.core.multiarray" and hasattr(np, "_core"):
            module = "numpy._core.multiarray"           # numpy 2's name (files written by numpy 1)
        return super().find_class(module, name)


def _fill_empty(arrays: list) -> list:
    """[train_x, train_y, test_x, test_y] with the splits not loaded (None) as empty tensors of the right shape."""
    shape = next(a.shape[1:] for a in arrays[::2] if a is not None)
    for i, a in enumerate(arrays):
        if a is None:
            arrays[i] = torch.zeros((0, *shape), dtype=torch.uint8) if i % 2 == 0 else torch.zeros(0, dtype=torch.int64)
    return arrays


def load_cifar_batches(folder: Path, test_only: bool = False):
    """torchvision's cifar-10-batches-py folder -> (train_x, train_y, test_x, test_y), uint8 (N, 3, 32, 32);
    ``test_only`` leaves the training batches unread (empty tensors)."""
    def read(names):
        xs, ys = [], []
        for name in names:
            try:
                with open(folder / name, "rb") as f:
                    d = ArraysOnlyUnpickler(f, encoding="bytes").load()
            except (pickle.UnpicklingError, EOFError, ValueError) as err:
                raise UserError(f"cannot read CIFAR-10 batch {folder / name}: {err}",
                                "replace it with the file from the CIFAR-10 python archive") from None
            xs.append(np.asarray(d[b"data"], np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(d[b"labels"], np.int64))
        return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))
    train = (None, None) if test_only else read([f"data_batch_{i}" for i in range(1, 6)])
    return tuple(_fill_empty([*train, *read(["test_batch"])]))


# ----------------------------------------------------------------------------- locating

def default_cache_dir() -> Path:
    """~/.cache/stylecam/datasets (or $XDG_CACHE_HOME/stylecam/datasets)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "stylecam" / "datasets"


def candidate_paths(name: str) -> list[Path]:
    """Where ``name`` is looked for when --data is not given, in order.

    $STYLECAM_DATA/<name>, the shared data folder next to the project (../shared/data/<name>),
    the Debian dataset package path, and torchvision roots (./data, ~/data, ~/.torch, ~/.cache/torchvision).
    """
    repo = Path(__file__).resolve().parents[1]
    folder = {"mnist": "mnist", "fashion-mnist": "fashion-mnist", "cifar10": "cifar10"}[name]
    roots = []
    if os.environ.get("STYLECAM_DATA"):
        roots.append(Path(os.environ["STYLECAM_DATA"]) / folder)
    for base in dict.fromkeys([repo.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]):
        roots.append(base / folder)
    if name == "fashion-mnist":
        roots.append(Path("/usr/share/datasets/fashion-mnist"))
    if name == "cifar10":
        roots = [r / "cifar10_jpg.zip" for r in roots] + roots
    home = Path.home()
    roots += [Path("data"), home / "data", home / ".torch", home / ".torch" / "datasets", home / ".cache" / "torchvision"]
    return list(dict.fromkeys(roots))


def _match(name: str, path: Path) -> tuple[str, Path] | None:
    """(layout, location) when ``path`` holds dataset ``name`` in a layout we read."""
    if name in ("mnist", "fashion-mnist"):
        folder = _idx_folder(path, "MNIST" if name == "mnist" else "FashionMNIST")
        return ("idx", folder) if folder else None
    if path.is_file() and path.suffix.lower() == ".zip":
        return "imagefolder", path
    for batches in (path, path / "cifar-10-batches-py"):
        if (batches / "data_batch_1").is_file() and (batches / "test_batch").is_file():
            return "batches", batches
    if (path / "train").is_dir() and (path / "test").is_dir():
        return "imagefolder", path
    return None


def locate(name: str, data: str | os.PathLike | None = None) -> tuple[str, Path]:
    """(layout, path) of dataset ``name``: ``data`` when given, else the first standard location that has it."""
    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r}", f"use one of {', '.join(DATASETS)}")
    places = [Path(data).expanduser()] if data else candidate_paths(name)
    for place in places:
        if place.exists():
            found = _match(name, place)
            if found:
                return found
    looked = ", ".join(str(p) for p in places)
    what = f"{name} not found in {looked}" if data else f"{name} not found; looked in {looked}"
    raise UserError(what, HOW_TO_GET[name])


def load_dataset(name: str, data: str | os.PathLike | None = None,
                 cache_dir: str | os.PathLike | None = None, test_only: bool = False) -> Dataset:
    """Find and load dataset ``name`` (mnist | fashion-mnist | cifar10) into memory.

    ``test_only``: read the test split alone (the training tensors are empty), e.g. to measure a model."""
    layout, path = locate(name, data)
    if layout == "idx":
        arrays = load_idx_folder(path, ("t10k",) if test_only else ("train", "t10k"))
        classes = FASHION_CLASSES if name == "fashion-mnist" else [str(i) for i in range(10)]
    elif layout == "batches":
        arrays, classes = load_cifar_batches(path, test_only), CIFAR10_CLASSES
    else:
        *arrays, classes = load_image_folder(path, cache_dir, ("test",) if test_only else ("train", "test"))
    train_x, train_y, test_x, test_y = arrays
    n = len(classes)
    for split, y in (("train", train_y), ("test", test_y)):
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= n):
            raise UserError(f"{path}: {split} labels go up to {int(y.max())} but there are {n} classes",
                            "the labels do not belong to this dataset")
    return Dataset(name, list(classes), train_x, train_y, test_x, test_y, str(path))
