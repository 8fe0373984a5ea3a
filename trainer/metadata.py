"""The metadata a style model carries, built from the checkpoint that made it.

``style_metadata`` (a `stylecam-train style` checkpoint) and ``distilled_metadata`` (a
`stylecam-train distill` checkpoint) give the contract metadata of stylecam/contract.py: a dict
of strings, written into the ONNX file by trainer/export.py. Its "stylecam.training" value is the
training record of the run (``training_record`` / ``distillation_record``), which names the
weights a run started from and how those were made (``init_provenance``, trainer/provenance.py).
"""
from __future__ import annotations

import json

import onnx

from stylecam import contract
from stylecam.errors import UserError
from trainer.checkpoints import read_checkpoint
from trainer.nets.transformer import runtime_variant
from trainer.paintings import painting_metadata
from trainer.provenance import init_record, portable_path

#: metadata key of the precision the graph computes in: "fp32" | "fp16"
KEY_PRECISION = "stylecam.precision"
#: the style-training settings a training record keeps
TRAINING_KEYS = ("size", "batch_size", "iterations", "content_weight", "style_weight", "tv_weight", "style_size",
                 "content_layer", "style_layers", "lr", "seed", "holdout", "stability_weight", "stability_noise",
                 "precision")
#: the painting settings of a style-training config (--painting, --artist, ...), "" when not given
PAINTING_KEYS = ("painting", "artist", "year", "source", "licence")


def init_provenance(init: str) -> dict:
    """For a run started with --init: {"init": portable path, "init_sha256", ["init_commit"], "init_training":
    the whole training chain of those weights} (trainer.provenance); {} for a run from random weights."""
    if not init:
        return {}
    made = {}
    try:
        if init.endswith(".onnx"):
            model = onnx.load(init, load_external_data=False)
            made = json.loads({p.key: p.value for p in model.metadata_props}.get(contract.KEY_TRAINING, "{}"))
        else:
            ckpt = read_checkpoint(init, required=())
            if ckpt.get("kind") == "stylecam-distilled":
                made = distillation_record(ckpt)
            else:
                made = training_record(ckpt)
    except (OSError, ValueError, RuntimeError, KeyError, AttributeError, UserError):
        pass  # the weights were loaded once already; provenance is informative only
    return {**init_record(init), "init_training": made}


def training_record(ckpt: dict) -> dict:
    """The training stage a style checkpoint records (stylecam.training): its settings, the painting and
    photo folder (portable paths), the steps, the final losses and, for a run started from other weights,
    their own chain (init_provenance)."""
    raw = ckpt["config"]
    final = ckpt["history"][-1] if ckpt.get("history") else {}
    return {**{k: raw.get(k) for k in TRAINING_KEYS}, "steps_trained": ckpt["step"],
            "style_image": portable_path(str(raw.get("style_image", ""))),
            "data": portable_path(str(raw.get("data", ""))), "final_losses": final,
            **({"init": ""} if not raw.get("init") else init_provenance(raw["init"]))}


def distillation_record(ckpt: dict) -> dict:
    """The training stage a distilled checkpoint records: the teacher (portable path, its network and its
    own training chain), the photo folder, the settings, steps, final losses and PSNR against the teacher."""
    meta, cfg = ckpt["teacher_metadata"], ckpt["config"]
    return {"method": "distillation", "teacher": portable_path(cfg["teacher"]),
            "teacher_variant": meta.get(contract.KEY_VARIANT),
            "teacher_network": json.loads(meta.get(contract.KEY_CONFIG, "null")),
            "teacher_training": json.loads(meta.get(contract.KEY_TRAINING, "{}")),
            "data": portable_path(cfg.get("data", "")),
            **{k: cfg.get(k) for k in ("size", "batch_size", "iterations", "lr", "edge_weight", "seed", "holdout")},
            "steps_trained": ckpt["step"], "final_losses": ckpt["history"][-1] if ckpt.get("history") else {},
            "psnr_vs_teacher_db": ckpt.get("psnr_vs_teacher_db")}


def style_metadata(ckpt: dict, padding: str, precision: str) -> dict[str, str]:
    """The contract metadata for a style checkpoint (all values strings)."""
    raw = ckpt["config"]
    info = painting_metadata(raw["name"], raw["style_image"], **{k: raw.get(k, "") for k in PAINTING_KEYS})
    training = training_record(ckpt)
    return {
        contract.KEY_KIND: "style", contract.KEY_FORMAT: contract.FORMAT_VERSION, contract.KEY_NAME: raw["name"],
        contract.KEY_PAINTING: info["painting"], contract.KEY_ARTIST: info["artist"], contract.KEY_YEAR: info["year"],
        contract.KEY_SOURCE: info["source"], contract.KEY_LICENCE: info["licence"],
        contract.KEY_VARIANT: runtime_variant(raw.get("variant", "full")),
        contract.KEY_PADDING: padding, contract.KEY_PIXEL_CONTRACT: json.dumps(contract.STYLE_PIXEL_CONTRACT),
        contract.KEY_CONFIG: json.dumps(ckpt["network"]), contract.KEY_TRAINING: json.dumps(training, default=str),
        KEY_PRECISION: precision,
    }


def distilled_metadata(ckpt: dict, padding: str, precision: str) -> dict[str, str]:
    """Contract metadata of a distilled checkpoint: the teacher's painting data, the student's network."""
    meta = dict(ckpt["teacher_metadata"])
    cfg = ckpt["config"]
    training = distillation_record(ckpt)
    meta.update({contract.KEY_VARIANT: runtime_variant(cfg["variant"]), contract.KEY_PADDING: padding,
                 contract.KEY_CONFIG: json.dumps(ckpt["network"]), contract.KEY_TRAINING: json.dumps(training, default=str),
                 KEY_PRECISION: precision})
    return meta


def checkpoint_metadata(ckpt: dict, padding: str, precision: str) -> dict[str, str]:
    """The metadata of a style or distilled checkpoint, whichever it is."""
    if ckpt.get("kind") == "stylecam-distilled":
        return distilled_metadata(ckpt, padding, precision)
    return style_metadata(ckpt, padding, precision)
