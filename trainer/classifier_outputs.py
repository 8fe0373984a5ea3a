"""What a classifier run writes: the training curves and the confusion matrix (PNG), the checkpoint,
and the ONNX model with the classifier metadata of stylecam/contract.py (checked against PyTorch).

Every file is written whole (a temporary name, then renamed). Images given to the models are
float32 (N, C, H, W), normalised with the dataset's mean and std (trainer/train_classifier.py).
"""
from __future__ import annotations

import copy
import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from stylecam import contract
from stylecam.errors import UserError
from stylecam.fileout import atomic_output
from trainer.checkpoints import atomic_save, read_checkpoint
from trainer.nets.classifier import Classifier, ClassifierConfig


def plot_curves(history: list[dict], evals: list[dict], path: str | os.PathLike, title: str = "") -> None:
    """Training loss and accuracy (running mean; ``history``: TrainResult.history) and validation accuracy
    (``evals``: TrainResult.evals) against training seconds -> PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8, 3), dpi=80)
    t = [h["seconds"] for h in history]
    ax1.plot(t, [h["train_loss"] for h in history], color="tab:red")
    ax1.set(xlabel="training time (s)", ylabel="train loss", title="loss")
    ax2.plot(t, [h["train_accuracy"] for h in history], label="train (running)")
    ax2.plot([e["seconds"] for e in evals], [e["val_accuracy"] for e in evals], "o-", label="validation")
    ax2.set(xlabel="training time (s)", ylabel="accuracy", title="accuracy")
    ax2.legend(loc="lower right", fontsize=8)
    ax2.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    _save_figure(fig, path)
    plt.close(fig)


def plot_confusion(cm: np.ndarray, classes: list[str], path: str | os.PathLike, title: str = "") -> None:
    """Confusion matrix (rows true, columns predicted) with counts -> PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(classes)
    fig, ax = plt.subplots(figsize=(1.6 + 0.45 * k, 1.2 + 0.45 * k), dpi=80)
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(k), classes, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(k), classes, fontsize=7)
    ax.set(xlabel="predicted", ylabel="true")
    top = cm.max() if cm.size else 0
    for i in range(k):
        for j in range(k):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=6,
                        color="white" if cm[i, j] > top / 2 else "black")
    if title:
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    _save_figure(fig, path)
    plt.close(fig)


def atomic_target(path: str | os.PathLike):
    """fileout.atomic_output for ``path``, its folder created if needed: yields the temporary file to
    write, which replaces ``path`` on success and is removed on any failure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_output(path)


def _save_figure(fig, path) -> None:
    with atomic_target(path) as tmp:
        fig.savefig(tmp, format="png")


def save_classifier(path: str | os.PathLike, model: Classifier, payload: dict) -> None:
    """Atomically save weights, the network config and ``payload`` (classes, normalisation, ...) as a
    checkpoint of plain values (trainer.checkpoints)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_save({"config": model.config.to_dict(), "state_dict": model.state_dict(), **payload}, path)


def load_classifier(path: str | os.PathLike, vgg_extractor: nn.Module | None = None) -> tuple[Classifier, dict]:
    """Rebuild a classifier from its checkpoint (loaded weights-only) -> (model in eval mode, checkpoint dict)."""
    ckpt = read_checkpoint(path, required=("config", "state_dict"), written_by="stylecam-train classifier")
    try:
        config = ClassifierConfig.from_dict(ckpt["config"])
    except Exception as err:  # noqa: BLE001 - any malformed config means the same to the user
        raise UserError(f"cannot read classifier checkpoint {path}: {type(err).__name__}",
                        "pass the checkpoint.pt written by stylecam-train classifier") from None
    if vgg_extractor is None and config.arch.startswith("vgg16:"):
        # Same topology as VGG-16 (width 64 = the real one); the weights come from the state dict.
        from trainer.nets.vgg import random_vgg_standin
        width = int(ckpt["state_dict"]["body.vgg.extractor.features.0.weight"].shape[0])
        vgg_extractor = random_vgg_standin([config.arch.split("-")[0][6:]], width=width)
    model = Classifier(config, vgg_extractor)
    model.load_state_dict(ckpt["state_dict"])
    return model.eval(), ckpt


def export_onnx(model: Classifier, path: str | os.PathLike, name: str, classes: list[str],
                normalisation: dict, accuracy: float | None, training: dict | None = None,
                atol: float = 1e-4) -> Path:
    """Export to ONNX (input "image" float32 (N, C, H, W) normalised, output "logits" (N, classes)).

    Runs the ONNX checker, compares onnxruntime with PyTorch on random inputs (raises when the largest
    difference exceeds ``atol``) and writes the classifier metadata of stylecam.contract. Atomic write.
    """
    path = Path(path)
    model = copy.deepcopy(model).to(memory_format=torch.contiguous_format).eval()
    cfg = model.config
    dummy = torch.randn(2, cfg.in_channels, cfg.height, cfg.width, generator=torch.Generator().manual_seed(0))
    with atomic_target(path) as tmp:
        _export_checked(model, dummy, tmp, name, classes, normalisation, accuracy, training, atol)
    return path


def _export_checked(model: Classifier, dummy: torch.Tensor, tmp: Path, name: str, classes: list[str],
                    normalisation: dict, accuracy: float | None, training: dict | None, atol: float) -> None:
    """export_onnx's work on the temporary file ``tmp``: export, metadata, checker, parity with PyTorch."""
    import onnx

    from stylecam.session import load_model

    cfg = model.config
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (dummy,), str(tmp), input_names=[contract.CLASSIFIER_INPUT],
                          output_names=[contract.CLASSIFIER_OUTPUT], opset_version=17, dynamo=False,
                          dynamic_axes={contract.CLASSIFIER_INPUT: {0: "N"}, contract.CLASSIFIER_OUTPUT: {0: "N"}})
    proto = onnx.load(str(tmp))
    meta = {
        contract.KEY_KIND: "classifier",
        contract.KEY_FORMAT: contract.FORMAT_VERSION,
        contract.KEY_NAME: name,
        contract.KEY_CLASSES: json.dumps(list(classes)),
        contract.KEY_NORMALISATION: json.dumps(normalisation),
        contract.KEY_CONFIG: json.dumps(cfg.to_dict()),
    }
    if accuracy is not None:
        meta[contract.KEY_ACCURACY] = f"{accuracy:.4f}"
    if training is not None:
        meta[contract.KEY_TRAINING] = json.dumps(training)
    del proto.metadata_props[:]
    for key, value in meta.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(tmp))
    session = load_model(str(tmp), device="cpu").session
    with torch.no_grad():
        expected = model(dummy).numpy()
    got = session.run([contract.CLASSIFIER_OUTPUT], {contract.CLASSIFIER_INPUT: dummy.numpy()})[0]
    diff = float(np.abs(got - expected).max())
    if diff > atol:
        raise UserError(f"ONNX export of {name} differs from PyTorch by {diff:.2e} (> {atol:.0e})",
                        "report this; the exported file was not written")
