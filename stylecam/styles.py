"""The style registry: every style model found in a weights folder, described by its ONNX metadata.

File names are never parsed; the name, variant and padding mode come from the metadata keys of
``stylecam.contract``. Classifier models (``classifiers/`` or kind "classifier") and the study's
features model (``features/`` or kind "features") are skipped.
"""
from __future__ import annotations

import difflib
import importlib.metadata
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from stylecam import contract
from stylecam.errors import UserError

log = logging.getLogger("stylecam")

GET_STYLES_HINT = ("train one with `stylecam-train style --style-image PAINTING.jpg --name NAME`, "
                   "point --weights-dir / STYLECAM_WEIGHTS at a folder of style models, "
                   "or pass a model file with --style FILE.onnx")


INSTALLED_WEIGHTS = ("share", "stylecam", "weights")   # where a wheel install puts the shipped models


def default_weights_dir() -> Path:
    """Where the style models are looked up when no folder is given.

    $STYLECAM_WEIGHTS; else the checkout's ``weights/`` beside the package (a source tree or an
    editable install); else ``<prefix>/share/stylecam/weights`` written by a wheel install
    (``pip install .`` or ``pip install git+URL``); else the checkout path (found empty).
    """
    env = os.environ.get("STYLECAM_WEIGHTS")
    return Path(env) if env else shipped_weights_dir()


def shipped_weights_dir() -> Path:
    """The models that come with stylecam: the checkout's ``weights/`` beside the package, else
    ``<prefix>/share/stylecam/weights`` of a wheel install, else the checkout path (found empty)."""
    checkout = Path(__file__).resolve().parents[1] / "weights"
    if checkout.is_dir():
        return checkout
    return installed_weights_dir() or checkout


def installed_weights_dir() -> Path | None:
    """The folder the installed stylecam distribution put its models in, or None (not installed,
    or installed without them)."""
    try:
        dist = importlib.metadata.distribution("stylecam")
    except importlib.metadata.PackageNotFoundError:
        return None
    return weights_dir_in_record(dist.files or [], dist.locate_file)


def weights_dir_in_record(files, locate) -> Path | None:
    """The ``share/stylecam/weights`` folder among a distribution's recorded files.

    files: paths relative to the site folder, as in a wheel's RECORD (data files read
    ``../../../share/stylecam/weights/wave.lite.onnx``); locate: maps one to an absolute path
    (``Distribution.locate_file``). Returns the resolved folder if it exists, else None.
    """
    for file in files:
        parts = PurePath(file).parts
        for i in range(len(parts) - len(INSTALLED_WEIGHTS) + 1):
            if parts[i:i + len(INSTALLED_WEIGHTS)] == INSTALLED_WEIGHTS:
                folder = Path(locate(PurePath(*parts[:i + len(INSTALLED_WEIGHTS)]))).resolve()
                return folder if folder.is_dir() else None
    return None


@dataclass(frozen=True)
class StyleEntry:
    """One style model file and what its metadata says about it."""
    name: str
    variant: str            # "full" or "lite"
    padding: str            # "reflect", "zero" or "replicate"
    path: Path
    painting: str = ""
    artist: str = ""
    year: str = ""
    licence: str = ""
    size_bytes: int = 0
    metadata: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def precision(self) -> str:
        """Number format of the weights: "fp32" (default), "fp16" or "int8"."""
        return self.metadata.get("stylecam.precision", "fp32")

    @property
    def label(self) -> str:
        """Short label for HUDs and contact sheets, e.g. ``wave`` or ``wave (zero)``."""
        return self.name if self.padding == "reflect" else f"{self.name} ({self.padding})"


def read_onnx_metadata(path: str | Path) -> dict[str, str]:
    """Custom metadata of an ONNX file (reads the protobuf, builds no session).

    Raises UserError when the file does not exist or is not ONNX.
    """
    import onnx

    path = Path(path)
    if not path.is_file():
        raise UserError(f"model file not found: {path}", "check the path, or run `stylecam --list-styles`")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise UserError(f"cannot read ONNX model {path}: {first[:160]}",
                        "the file is corrupt or not an ONNX model; re-export or re-download it") from None
    return {p.key: p.value for p in model.metadata_props}


def entry_from_metadata(path: str | Path, metadata: dict[str, str]) -> StyleEntry:
    """Validate ``metadata`` against the style contract and build the entry.

    Raises UserError naming the problems when the file is not a stylecam style model.
    """
    path = Path(path)
    kind = metadata.get(contract.KEY_KIND)
    if kind == "classifier":
        raise UserError(f"{path} is a classifier model, not a style",
                        "use it with --classify, and pick a style with --style")
    problems = contract_problems_for(metadata)
    if problems:
        shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
        raise UserError(f"{path} is not a stylecam style model: {shown}",
                        "export style models with `stylecam-train export`, which writes the metadata")
    return StyleEntry(
        name=metadata[contract.KEY_NAME], variant=metadata[contract.KEY_VARIANT],
        padding=metadata[contract.KEY_PADDING], path=path,
        painting=metadata.get(contract.KEY_PAINTING, ""), artist=metadata.get(contract.KEY_ARTIST, ""),
        year=metadata.get(contract.KEY_YEAR, ""), licence=metadata.get(contract.KEY_LICENCE, ""),
        size_bytes=path.stat().st_size, metadata=dict(metadata))


def contract_problems_for(metadata: dict[str, str]) -> list[str]:
    """contract.contract_problems, with a clearer first line for files that have no metadata at all."""
    if not any(k.startswith("stylecam.") for k in metadata):
        return ["it carries no stylecam metadata"]
    return contract.contract_problems(metadata)


def load_entry(path: str | Path) -> StyleEntry:
    """Read and validate one model file given by path."""
    return entry_from_metadata(path, read_onnx_metadata(path))


def is_path_like(spec: str) -> bool:
    """True when ``spec`` names a model file rather than a registry name."""
    return spec.lower().endswith(".onnx") or os.sep in spec or "/" in spec


def classifier_files(weights_dir: str | Path | None = None) -> list[Path]:
    """The classifier models shipped in ``<weights>/classifiers/`` (sorted; [] when there is none)."""
    root = Path(weights_dir) if weights_dir else default_weights_dir()
    return sorted((root / "classifiers").glob("*.onnx"))


def find_classifier(spec: str, weights_dir: str | Path | None = None) -> Path:
    """A classifier model file: ``spec`` itself when it is a file, else the shipped
    ``<weights>/classifiers/<spec>.onnx`` (``cifar10``, ``mnist``, ...). UserError otherwise."""
    if Path(spec).is_file():
        return Path(spec)
    shipped = {p.stem: p for p in classifier_files(weights_dir)}
    if not is_path_like(spec) and spec in shipped:
        return shipped[spec]
    hint = (f"give a classifier .onnx file or a shipped name: {', '.join(shipped)}" if shipped
            else "give a classifier .onnx file, e.g. one written by `stylecam-train classifier`")
    raise UserError(f"classifier model not found: {spec}", hint)


SKIPPED_FOLDERS = ("classifiers", "features")   # models in a weights folder that are not styles
SKIPPED_KINDS = ("classifier", "features")


class Registry:
    """Style models in one folder (recursively; ``classifiers/`` and ``features/`` are skipped).

    ``problems`` lists files that were found but are not valid style models.
    """

    def __init__(self, weights_dir: str | Path | None = None):
        explicit = weights_dir or os.environ.get("STYLECAM_WEIGHTS")
        self.root = Path(weights_dir) if weights_dir else default_weights_dir()
        if explicit and not self.root.is_dir():
            source = "--weights-dir" if weights_dir else "STYLECAM_WEIGHTS"
            raise UserError(f"no such weights folder: {self.root} (from {source})",
                            "give a folder that holds style models (.onnx), or leave it out to use the shipped ones")
        self.entries: list[StyleEntry] = []
        self.problems: list[tuple[Path, str]] = []
        if self.root.is_dir():
            for path in sorted(self.root.rglob("*.onnx")):
                if any(part in SKIPPED_FOLDERS for part in path.relative_to(self.root).parts[:-1]):
                    continue
                try:
                    meta = read_onnx_metadata(path)
                    if meta.get(contract.KEY_KIND) in SKIPPED_KINDS:
                        continue
                    self.entries.append(entry_from_metadata(path, meta))
                except UserError as err:
                    self.problems.append((path, err.message))
            # when several files claim the same (name, variant, padding, precision), the one nearest
            # the root wins; float32 first (int8 copies are picked by find(precision="int8"), fp16
            # exports only by path)
            self.entries.sort(key=lambda e: (e.precision != "fp32",
                                             len(e.path.relative_to(self.root).parts), str(e.path)))

    def names(self) -> list[str]:
        """Style names, sorted, each once."""
        return sorted({e.name for e in self.entries})

    def variants(self, name: str, padding: str = "reflect") -> list[str]:
        return sorted({e.variant for e in self.entries if e.name == name and e.padding == padding})

    def find(self, name: str, variant: str | None = None, padding: str = "reflect",
             prefer: str = "full", precision: str = "fp32") -> StyleEntry:
        """The entry for ``name`` with ``padding``.

        variant None picks ``prefer`` when it exists, else the other one. An explicit variant
        that does not exist falls back to the other one too (with the choice visible in the
        entry). precision "int8" picks the int8 copy of that model when there is one, else the
        float32 model (with a warning). Unknown names raise UserError with a did-you-mean suggestion.
        """
        entry = self._find(name, variant, padding, prefer)
        if precision == entry.precision:
            return entry
        for e in self.entries:
            if (e.name, e.variant, e.padding, e.precision) == (entry.name, entry.variant, entry.padding, precision):
                return e
        log.warning("WARNING: no %s copy of %s (%s); running it in %s. Make one with "
                    "`stylecam-train quantize %s --photos PHOTOS/ --eval-photos HELD_OUT/`",
                    precision, entry.name, entry.variant, entry.precision, entry.path)
        return entry

    def _find(self, name: str, variant: str | None, padding: str, prefer: str) -> StyleEntry:
        same_name = [e for e in self.entries if e.name == name and e.precision == "fp32"] or \
            [e for e in self.entries if e.name == name]
        if not same_name:
            raise self.unknown(name)
        same_pad = [e for e in same_name if e.padding == padding]
        if not same_pad:
            have = sorted({e.padding for e in same_name})
            raise UserError(f"style {name!r} has no {padding!r}-padding model",
                            f"available padding modes for {name}: {', '.join(have)}")
        wanted = variant or prefer
        for v in (wanted, "lite" if wanted == "full" else "full"):
            for e in same_pad:
                if e.variant == v:
                    return e
        return same_pad[0]

    def unknown(self, name: str) -> UserError:
        """The error for a style name that is not in this folder."""
        names = self.names()
        if not names:
            return UserError(f"unknown style {name!r}: no style models found in {self.root}", GET_STYLES_HINT)
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        hint = (f"did you mean {' or '.join(repr(c) for c in close)}? " if close else "") + \
            f"available styles: {', '.join(names)}"
        return UserError(f"unknown style {name!r}", hint)

    def resolve(self, spec: str, variant: str | None = None, padding: str = "reflect",
                prefer: str = "full", precision: str = "fp32") -> StyleEntry:
        """A style name (looked up here) or a path to an .onnx file (validated on its own, used as is)."""
        if is_path_like(spec) or (Path(spec).is_file() and spec not in self.names()):
            return load_entry(spec)
        return self.find(spec, variant=variant, padding=padding, prefer=prefer, precision=precision)

    def table(self) -> list[dict]:
        """One row per model: name, painting, artist, variant, network, padding, size (MB), path."""
        return [{"name": e.name, "painting": e.painting, "artist": e.artist, "year": e.year,
                 "variant": e.variant, "network": network_name(e.metadata.get(contract.KEY_CONFIG)),
                 "padding": e.padding, "precision": e.precision,
                 "size_mb": round(e.size_bytes / 1e6, 2), "path": str(e.path)}
                for e in sorted(self.entries, key=lambda e: (e.name, e.padding != "reflect", e.padding,
                                                             e.variant, e.precision != "fp32", e.precision))]


def network_name(config_json: str | None) -> str:
    """Name of the style network described by a model's ``stylecam.config`` metadata (JSON text).

    "lite" (half-resolution ends, tied x2 steps), "lite-fr" (lite with a full-resolution head),
    "lite-shuffle", "lite-v1" (8/16/32 channels),
    "full" (32/64/128), "custom" for any other configuration, "-" when the key is missing or unreadable.
    """
    import json
    try:
        config = json.loads(config_json) if config_json else None
    except ValueError:
        config = None
    if not isinstance(config, dict):
        return "-"
    if config.get("half_res_ends"):
        if not config.get("tied_upsampling"):
            return "lite-shuffle"
        return "lite-fr" if config.get("full_res_head") else "lite"
    return {(8, 16, 32): "lite-v1", (32, 64, 128): "full"}.get(tuple(config.get("channels") or ()), "custom")


def format_table(rows: list[dict]) -> str:
    """Plain-text table of ``Registry.table()`` rows."""
    cols = [("name", "NAME"), ("painting", "PAINTING"), ("artist", "ARTIST"), ("variant", "VARIANT"),
            ("network", "NETWORK"), ("padding", "PADDING"), ("precision", "PRECISION"), ("size_mb", "MB")]
    cells = [[h for _, h in cols]] + [[str(r[k]) for k, _ in cols] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cols))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells)


def describe(entry: StyleEntry) -> dict:
    """JSON-friendly description of one entry (for --json and `stylecam info`)."""
    return {"name": entry.name, "variant": entry.variant, "padding": entry.padding, "path": str(entry.path),
            "network": network_name(entry.metadata.get(contract.KEY_CONFIG)),
            "painting": entry.painting, "artist": entry.artist, "licence": entry.licence}

