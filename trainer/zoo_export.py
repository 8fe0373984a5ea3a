"""`stylecam-train zoo-export`: every style of a zoo bundle to a checked ONNX model, and its Gatys references.

Each style becomes WEIGHTS_DIR/NAME.onnx (NAME.lite.onnx for a lite bundle): a float32 graph
whose weights are stored as float16 (trainer/onnx_weights.py; onnxruntime turns them back into
float32 when it loads the file), with the parity check of trainer/export.py and the complete
metadata of a trained style. The training record names the photo folder and the painting
(``--data-as`` / ``--paintings-as`` give the folders the carried copies were made from), the
crops each style saw, the styles trained together and the bundle's sha256.

``--gatys-tar`` unpacks a zoo run's gatys.tar (NAME/NN.jpg, gatys.json) into
REPORTS_DIR/NAME/gatys/, where `stylecam-train report` uses the images as its references.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import tarfile
from pathlib import Path

from stylecam import contract
from stylecam.errors import UserError
from stylecam.fileout import atomic_write_bytes, refuse_overwriting_inputs
from stylecam.folders import make_dirs
from trainer.export import export_network
from trainer.metadata import style_metadata
from trainer.nets.transformer import TransformerConfig, transformer_from_config
from trainer.zoo_bundle import load_bundle, part_paths, weights_for_training

GATYS_MEMBER = re.compile(r"^([A-Za-z0-9_][A-Za-z0-9_.-]*)/(\d\d)\.jpg$")


def bundle_files(path: str | Path) -> list[Path]:
    """The file(s) a bundle is read from: PATH, or its parts PATH.part00 ..."""
    path = Path(path)
    return [path] if path.is_file() else part_paths(path)


def bundle_sha256(path: str | Path) -> str:
    """sha256 of the bundle's bytes (the parts joined, for a split bundle)."""
    digest = hashlib.sha256()
    for part in bundle_files(path):
        digest.update(part.read_bytes())
    return digest.hexdigest()


def style_checkpoint(bundle: dict, name: str, data_as: str | None, paintings_as: str | None) -> dict:
    """A style checkpoint dict (as `stylecam-train style` writes) for one style of a zoo bundle."""
    entry, run = bundle["styles"][name], bundle["settings"]
    settings = entry["settings"]
    painting = Path(settings["style_image"])
    config = {
        "name": name, "variant": run["variant"], "data": data_as or run["data"],
        "style_image": str(Path(paintings_as) / painting.name) if paintings_as else str(painting),
        "size": run["size"], "batch_size": run["batch_size"], "iterations": bundle["step"], "lr": run["lr"],
        "seed": run["seed"], "holdout": run["holdout"], "precision": run["precision"],
        "content_weight": settings["content_weight"], "style_weight": settings["style_weight"],
        "tv_weight": settings["tv_weight"], "style_size": settings["style_size"], "content_layer": "relu2_2",
        "style_layers": dict(settings["style_layers"]), "init": "",
    }
    return {"kind": "stylecam-style", "config": config, "network": entry["network"], "step": bundle["step"],
            "history": list(entry["history"]), "model": weights_for_training(entry["weights"])}


def zoo_metadata(ckpt: dict, bundle: dict, name: str, sha256: str) -> dict[str, str]:
    """The style metadata of ``ckpt`` with the zoo run's facts added to its training record."""
    metadata = style_metadata(ckpt, ckpt["network"].get("padding", "reflect"), "fp32")
    training = json.loads(metadata[contract.KEY_TRAINING])
    training.update({"method": "zoo (styles trained together in one process, one data pipeline)",
                     "styles_trained_together": sorted(bundle["styles"]),
                     "crops_seen": int(bundle["styles"][name]["crops_seen"]),
                     "max_zoom": bundle["settings"].get("max_zoom"), "bundle_sha256": sha256,
                     "seconds_trained": round(float(bundle.get("seconds", 0.0)), 1)})
    metadata[contract.KEY_TRAINING] = json.dumps(training, default=str)
    return metadata


def export_zoo(bundle_path: str | Path, weights_dir: str | Path, names: list[str] | None = None,
               data_as: str | None = None, paintings_as: str | None = None) -> list[dict]:
    """Export the styles ``names`` (default: all) of a bundle; returns export_network's report per style."""
    bundle = load_bundle(bundle_path)
    chosen = names or sorted(bundle["styles"])
    unknown = [n for n in chosen if n not in bundle["styles"]]
    if unknown:
        raise UserError(f"the bundle has no style {', '.join(unknown)}",
                        f"styles in it: {', '.join(sorted(bundle['styles']))}")
    sha256 = bundle_sha256(bundle_path)
    suffix = "" if bundle["settings"]["variant"] == "full" else ".lite"
    outputs = {n: Path(weights_dir) / f"{n}{suffix}.onnx" for n in chosen}
    for out in outputs.values():                       # every check before the first export
        refuse_overwriting_inputs(out, bundle_files(bundle_path), "--weights-dir")
    make_dirs(Path(weights_dir))
    reports = []
    for name in chosen:
        ckpt = style_checkpoint(bundle, name, data_as, paintings_as)
        net = transformer_from_config(TransformerConfig.from_dict(ckpt["network"]))
        net.load_state_dict(ckpt["model"])
        reports.append({"style": name, **export_network(net.eval(), zoo_metadata(ckpt, bundle, name, sha256),
                                                        outputs[name], weights_fp16=True)})
    return reports


def unpack_gatys(tar_path: str | Path, reports_dir: str | Path, names: list[str] | None = None) -> dict[str, int]:
    """NAME/NN.jpg of a zoo run's gatys.tar -> REPORTS_DIR/NAME/gatys/NN.jpg (and that style's part of
    gatys.json as gatys/gatys.json); other members are ignored, never written. Returns images per style."""
    try:
        archive = tarfile.open(tar_path)
    except (OSError, tarfile.TarError) as err:
        raise UserError(f"cannot read {tar_path}: {type(err).__name__}", "pass the gatys.tar of a zoo run") from None
    counts: dict[str, int] = {}
    with archive:
        members = {m.name: m for m in archive.getmembers() if m.isfile()}
        record = json.loads(archive.extractfile(members["gatys.json"]).read()) if "gatys.json" in members else {}
        for member_name, member in sorted(members.items()):
            match = GATYS_MEMBER.match(member_name)
            if not match or (names and match.group(1) not in names):
                continue
            style, index = match.groups()
            folder = make_dirs(Path(reports_dir) / style / "gatys")
            atomic_write_bytes(folder / f"{index}.jpg", archive.extractfile(member).read())
            counts[style] = counts.get(style, 0) + 1
    for style in counts:
        mine = {**{k: v for k, v in record.items() if k != "photos"},
                "photos": [{**p, "terms": p["terms"].get(style)} for p in record.get("photos", [])]}
        atomic_write_bytes(Path(reports_dir) / style / "gatys" / "gatys.json", json.dumps(mine, indent=2).encode())
    return counts


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle", metavar="BUNDLE", help="the zoo.pt of a zoo run (or its zoo.pt.part00 ...)")
    p.add_argument("--weights-dir", default="weights", metavar="DIR", help="where NAME.onnx goes")
    p.add_argument("--styles", type=lambda t: [n for n in t.split(",") if n], default=None, metavar="A,B",
                   help="export only these styles (default: all in the bundle)")
    p.add_argument("--data-as", default=None, metavar="DIR",
                   help="the photo folder to record (the bundle's own, e.g. a carried copy, by default)")
    p.add_argument("--paintings-as", default=None, metavar="DIR",
                   help="the painting folder to record (the bundle's own by default)")
    p.add_argument("--gatys-tar", default=None, metavar="TAR",
                   help="also unpack this gatys.tar of the same run into REPORTS_DIR/NAME/gatys/")
    p.add_argument("--reports-dir", default=None, metavar="DIR", help="default: WEIGHTS_DIR/reports")


def run(args: argparse.Namespace) -> int:
    reports = export_zoo(args.bundle, args.weights_dir, args.styles, args.data_as, args.paintings_as)
    for r in reports:
        print(f"stylecam-train: wrote {r['path']} (float16 weights; max abs diff vs PyTorch {r['max_abs_diff']:.3g})")
    if args.gatys_tar:
        reports_dir = Path(args.reports_dir or Path(args.weights_dir) / "reports")
        counts = unpack_gatys(args.gatys_tar, reports_dir, args.styles)
        print(f"stylecam-train: Gatys references into {reports_dir}: "
              + (", ".join(f"{n} {c}" for n, c in sorted(counts.items())) or "none found"))
    return 0


