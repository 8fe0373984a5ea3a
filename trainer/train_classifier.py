"""`stylecam-train classifier`: train a small CNN (or a VGG-16 head) on MNIST / Fashion-MNIST / CIFAR-10.

The whole dataset sits in memory as uint8 tensors; batches are normalised and augmented on the fly
(random shift by padding + crop, horizontal flip where it makes sense). The learning rate follows one
cycle (linear warm-up, linear decay to zero) over the epochs or over ``--time-budget`` seconds of
training wall time; evaluation time is not counted in the budget.

Protocol: ``--val-size`` training images (a fixed split, trainer.data.hold_out_validation) are held out;
the accuracy looked at during training, and every choice made from it (sweep ranking), is on them. The
test set is measured once, on the finished model, and never during training. Outputs in --out:
checkpoint.pt, curves.png, confusion.png (test set), report.json and the ONNX model with class names,
normalisation and the test accuracy in its metadata (trainer/classifier_outputs.py).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from stylecam.argtypes import (file_stem, float_in, int_at_least, non_negative_float, non_negative_int,
                               positive_float, positive_int)
from stylecam.errors import UserError
from stylecam.fileout import refuse_overwriting_inputs
from trainer.checkpoints import ensure_writable_dir, ensure_writable_file
from trainer.classifier_outputs import atomic_target, export_onnx, plot_confusion, plot_curves, save_classifier
from trainer.data import DATASETS, DEFAULT_VAL_SIZE, Dataset, hold_out_validation, load_dataset
from trainer.nets.classifier import PRESETS, Classifier, build_classifier, format_summary

OPTIMIZERS = ("sgd", "adam", "adamw")
DEFAULT_LR = {"sgd": 0.05, "adam": 2e-3, "adamw": 2e-3}
DEFAULT_WEIGHT_DECAY = {"sgd": 5e-4, "adam": 0.0, "adamw": 0.05}
#: datasets whose images may be mirrored left-right by --augment (digits may not)
FLIP_OK = {"cifar10": True, "fashion-mnist": True, "mnist": False}


class TrainingDiverged(UserError):
    """The loss became NaN or infinite (the learning rate is too high for this setup)."""


@dataclass(frozen=True)
class TrainConfig:
    epochs: float = 5.0               # passes over the training set (ignored with time_budget)
    time_budget: float | None = None  # seconds of training wall time; overrides epochs
    lr: float | None = None           # peak learning rate; None: DEFAULT_LR of the optimizer
    batch_size: int = 128
    optimizer: str = "sgd"            # sgd (Nesterov momentum 0.9) | adam | adamw
    weight_decay: float | None = None  # None: DEFAULT_WEIGHT_DECAY of the optimizer
    warmup: float = 0.15              # fraction of the run spent ramping the learning rate up
    label_smoothing: float = 0.1
    augment: bool = False             # random shift (pad + crop), and flips where FLIP_OK
    flip: bool = False                # horizontal flips (set from the dataset when augmenting)
    channels_last: bool = True        # NHWC memory format (faster convolutions on CPU)
    bf16: bool = False                # bfloat16 autocast on CPU (training and epoch evals; final evaluations in fp32)
    eval_every: int = 1               # validation accuracy every N epochs (0: only at the end)
    seed: int = 0

    @property
    def peak_lr(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]


@dataclass
class TrainResult:
    val_accuracy: float | None        # final model on the validation split (None: no validation split)
    train_seconds: float              # training wall time, evaluation excluded
    epochs: float                     # passes over the training set actually done
    steps: int
    longest_step_seconds: float = 0.0                   # the slowest training step (a budget may overrun by one)
    history: list[dict] = field(default_factory=list)   # periodic train loss / accuracy / lr
    evals: list[dict] = field(default_factory=list)     # validation accuracy after epochs
    val_predictions: np.ndarray | None = None           # validation predictions of the final model


# ----------------------------------------------------------------------------- batches

def normalise(pixels: torch.Tensor, mean: list[float], std: list[float]) -> torch.Tensor:
    """float (N, C, H, W) 0..255 -> ((pixels / 255) - mean) / std per channel."""
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return (pixels / 255.0 - m) / s


def augment_batch(pixels: torch.Tensor, pad: int, flip: bool, gen: torch.Generator) -> torch.Tensor:
    """Random shift of up to ``pad`` pixels (zero or reflect padding by channel count) and optional mirror.

    pixels: float (N, C, H, W) 0..255 -> same shape. Gray images are padded with black, RGB by reflection.
    """
    n, c, h, w = pixels.shape
    if pad:
        mode = "constant" if c == 1 else "reflect"
        padded = F.pad(pixels, (pad, pad, pad, pad), mode=mode)
        dy = torch.randint(0, 2 * pad + 1, (n, 1), generator=gen)
        dx = torch.randint(0, 2 * pad + 1, (n, 1), generator=gen)
        rows = (dy + torch.arange(h)).view(n, 1, h, 1)
        cols = (dx + torch.arange(w)).view(n, 1, 1, w)
        pixels = padded[torch.arange(n).view(n, 1, 1, 1), torch.arange(c).view(1, c, 1, 1), rows, cols]
    if flip:
        mirror = torch.rand(n, generator=gen) < 0.5
        pixels = torch.where(mirror.view(n, 1, 1, 1), pixels.flip(3), pixels)
    return pixels


def one_cycle(progress: float, peak: float, warmup: float) -> float:
    """Learning rate at ``progress`` (0..1): linear 0.1*peak -> peak over ``warmup``, then linear to 0."""
    progress = min(max(progress, 0.0), 1.0)
    if progress < warmup:
        return peak * (0.1 + 0.9 * progress / warmup)
    return peak * (1.0 - progress) / max(1.0 - warmup, 1e-9)


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """SGD with Nesterov momentum, Adam or AdamW over the trainable parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    wd = cfg.weight_decay if cfg.weight_decay is not None else DEFAULT_WEIGHT_DECAY[cfg.optimizer]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.peak_lr, momentum=0.9, nesterov=True, weight_decay=wd)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.peak_lr, weight_decay=wd)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.peak_lr, weight_decay=wd)
    raise UserError(f"unknown optimizer {cfg.optimizer!r}", f"use one of {', '.join(OPTIMIZERS)}")


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, mean, std, batch_size: int = 500,
            channels_last: bool = False, bf16: bool = False) -> torch.Tensor:
    """uint8 (N, C, H, W) 0..255 -> predicted class indices (N,) int64, model in eval mode."""
    was = model.training
    model.eval()
    out = []
    for i in range(0, len(images), batch_size):
        x = normalise(images[i:i + batch_size].float(), mean, std)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out.append(model(x).argmax(1))
    model.train(was)
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.int64)


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) int64 counts; row = true class, column = predicted class."""
    cm = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(cm, (np.asarray(labels, np.int64), np.asarray(predictions, np.int64)), 1)
    return cm


# ----------------------------------------------------------------------------- training

def train(model: Classifier, data: Dataset, cfg: TrainConfig, progress: bool = True) -> TrainResult:
    """Train ``model`` on ``data`` in place and return the validation accuracy and curves.

    Stops after ``cfg.epochs`` passes or, with ``cfg.time_budget``, when the training wall clock
    (evaluation excluded) reaches the budget; the learning-rate cycle is spread over whichever applies.
    The clock runs over each step: batch gathering, augmentation, normalisation, forward, backward,
    update; evaluations between epochs are taken out of it. A budget ends after the step that reaches
    it, so train_seconds exceeds the budget by less than longest_step_seconds. Never reads the test set.
    """
    from tqdm import tqdm

    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    norm = model.config
    mean, std = list(norm.mean), list(norm.std)
    n = len(data.train_x)
    if n == 0:
        raise UserError("the training set is empty", "check --data")
    batch = min(cfg.batch_size, n)
    steps_per_epoch = max(1, n // batch)
    total_steps = None if cfg.time_budget else max(1, round(cfg.epochs * steps_per_epoch))
    pad = (4 if min(data.size) >= 32 else 2) if cfg.augment else 0   # shift range in pixels
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    opt = make_optimizer(model, cfg)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    result = TrainResult(None, 0.0, 0.0, 0)
    bar_total = cfg.time_budget if cfg.time_budget else total_steps
    bar = tqdm(total=bar_total, disable=not progress, unit="s" if cfg.time_budget else "step",
               desc="training", dynamic_ncols=True, bar_format=None if not cfg.time_budget else
               "{l_bar}{bar}| {n:.0f}/{total:.0f} s {postfix}")
    trained, step, epoch, run_loss, run_acc = 0.0, 0, 0, None, None
    model.train()
    done = False
    clock, eval_seconds = time.perf_counter(), 0.0   # training time = wall time - evaluation time
    while not done:
        order = torch.randperm(n, generator=gen)
        for b in range(steps_per_epoch):
            frac = trained / cfg.time_budget if cfg.time_budget else step / total_steps
            lr = one_cycle(frac, cfg.peak_lr, cfg.warmup)
            for group in opt.param_groups:
                group["lr"] = lr
            idx = order[b * batch:(b + 1) * batch]
            x = data.train_x[idx].float()
            if cfg.augment:
                x = augment_batch(x, pad, cfg.flip, gen)
            x = normalise(x, mean, std)
            if cfg.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            y = data.train_y[idx]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
                logits = model(x)
                loss = loss_fn(logits.float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if not math.isfinite(loss.item()):
                bar.close()   # end the progress line, so the error starts on a line of its own
                raise TrainingDiverged(f"training diverged at step {step} (loss {loss.item()})",
                                       "lower --lr or use --optimizer adam")
            acc = (logits.argmax(1) == y).float().mean().item()
            run_loss = loss.item() if run_loss is None else 0.95 * run_loss + 0.05 * loss.item()
            run_acc = acc if run_acc is None else 0.95 * run_acc + 0.05 * acc
            took = time.perf_counter() - clock - eval_seconds - trained
            trained += took
            result.longest_step_seconds = max(result.longest_step_seconds, took)
            step += 1
            if step % max(1, steps_per_epoch // 20) == 0 or step == 1:
                result.history.append({"step": step, "epoch": step / steps_per_epoch, "seconds": trained,
                                       "lr": lr, "train_loss": run_loss, "train_accuracy": run_acc})
            bar.update(min(took, max(0.0, bar.total - bar.n)) if cfg.time_budget else 1)
            bar.set_postfix(loss=f"{run_loss:.3f}", acc=f"{run_acc:.3f}", refresh=False)
            done = (trained >= cfg.time_budget) if cfg.time_budget else step >= total_steps
            if done:
                break
        epoch += 1
        if cfg.eval_every and epoch % cfg.eval_every == 0 and not done and data.val_size:
            eval_start = time.perf_counter()
            acc = accuracy(model, data.val_x, data.val_y, channels_last=cfg.channels_last, bf16=cfg.bf16)
            eval_seconds += time.perf_counter() - eval_start
            result.evals.append({"epoch": step / steps_per_epoch, "seconds": trained, "val_accuracy": acc})
            bar.write(f"epoch {epoch}: validation accuracy {acc:.4f} after {trained:.1f} s of training")
    bar.close()
    result.train_seconds, result.epochs, result.steps = trained, step / steps_per_epoch, step
    if data.val_size:
        preds = predict(model, data.val_x, mean, std, channels_last=cfg.channels_last)  # fp32, as the ONNX model
        result.val_predictions = preds.numpy()
        result.val_accuracy = float((preds == data.val_y).float().mean())
        result.evals.append({"epoch": step / steps_per_epoch, "seconds": trained, "val_accuracy": result.val_accuracy})
    model.to(memory_format=torch.contiguous_format)
    return result


def accuracy(model: Classifier, images: torch.Tensor, labels: torch.Tensor, channels_last: bool = False,
             bf16: bool = False) -> float:
    """Share of ``images`` (uint8 (N, C, H, W) 0..255) whose predicted class is ``labels`` (N,); 0.0 for none."""
    preds = predict(model, images, list(model.config.mean), list(model.config.std),
                    channels_last=channels_last, bf16=bf16)
    return float((preds == labels).float().mean()) if len(preds) else 0.0


# ----------------------------------------------------------------------------- CLI

#: --seed: what torch.manual_seed takes without overflowing
seed_int = int_at_least(0, 2 ** 32 - 1)
#: --label-smoothing: 1 would make every target uniform
smoothing = float_in(0.0, 1.0, high_open=True)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, choices=DATASETS, help="which dataset to train on")
    p.add_argument("--data", default=None, metavar="PATH",
                   help="dataset location (IDX folder, torchvision root, zip or folder with train/ and test/; "
                        "default: the standard locations)")
    p.add_argument("--arch", default=None,
                   help=f"spec string (e.g. conv32-bn-pool-conv64-bn-pool-fc128) or preset: {', '.join(PRESETS)} "
                        "(default: mnist-small, fashion-small or cifar-fast by dataset)")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=positive_float, default=None,
                        help="passes over the training set (default: 5, unless --time-budget is given)")
    length.add_argument("--time-budget", type=positive_float, default=None, metavar="SECONDS",
                        help="stop after this much training wall time (evaluations not counted), instead of --epochs")
    p.add_argument("--lr", type=positive_float, default=None, help="peak learning rate (default by optimizer: "
                   + ", ".join(f"{k} {v}" for k, v in DEFAULT_LR.items()) + ")")
    p.add_argument("--batch-size", type=positive_int, default=128, metavar="N", help="images per training step")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="sgd",
                   help="sgd (Nesterov momentum 0.9), adam or adamw")
    p.add_argument("--weight-decay", type=non_negative_float, default=None,
                   help="L2 penalty (default by optimizer: "
                   + ", ".join(f"{k} {v}" for k, v in DEFAULT_WEIGHT_DECAY.items()) + ")")
    p.add_argument("--label-smoothing", type=smoothing, default=0.1,
                   help="share of each target spread over the other classes, in [0, 1)")
    p.add_argument("--augment", action="store_true", help="random shifts, plus mirroring for CIFAR-10 and Fashion-MNIST")
    p.add_argument("--padding", choices=("zero", "reflect", "replicate"), default="zero", help="padding of every conv")
    add_speed_arguments(p)
    p.add_argument("--eval-every", type=non_negative_int, default=1, metavar="N",
                   help="validation accuracy every N epochs (0: only at the end)")
    add_validation_argument(p)
    p.add_argument("--seed", type=seed_int, default=0, help="random seed of initialisation, batches and augmentation (default: 0)")
    p.add_argument("--vgg-weights", default=None, metavar="FILE", help="VGG-16 features state dict for vgg16:... specs "
                   "(default: $STYLECAM_VGG16, else torchvision's download)")
    p.add_argument("--name", type=file_stem, default=None,
                   help="model name in metadata and file names (default: the dataset)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder, created if needed")
    p.add_argument("--onnx", default=None, metavar="FILE.onnx",
                   help="where to write the ONNX model (default: OUT/NAME.onnx)")


def add_validation_argument(p: argparse.ArgumentParser) -> None:
    """--val-size (shared with sweep and the benchmark)."""
    p.add_argument("--val-size", type=non_negative_int, default=None, metavar="N",
                   help="training images held out as the validation split, the same ones every run (default: "
                   + ", ".join(f"{k} {v}" for k, v in DEFAULT_VAL_SIZE.items())
                   + ", at most a tenth of the training images; 0: none)")


def validation_size(args: argparse.Namespace, train_images: int) -> int:
    """--val-size, else the dataset's DEFAULT_VAL_SIZE, at most a tenth of ``train_images``."""
    if args.val_size is not None:
        return args.val_size
    return min(DEFAULT_VAL_SIZE[args.dataset], train_images // 10)


def load_split(args: argparse.Namespace) -> Dataset:
    """The dataset of --dataset / --data with the validation split of --val-size held out."""
    data = load_dataset(args.dataset, args.data)
    return hold_out_validation(data, validation_size(args, len(data.train_y)))


def add_speed_arguments(p: argparse.ArgumentParser) -> None:
    """--precision, --threads and --no-channels-last (shared with sweep and the benchmark)."""
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                   help="bf16 = bfloat16 autocast for training; auto = bf16 where the CPU has AVX-512 BF16 or AMX "
                        "(the final test and the ONNX model are float32 either way)")
    p.add_argument("--threads", type=non_negative_int, default=0, metavar="N",
                   help="CPU threads; 0 = the cores not busy right now (cores minus the 1-minute load average)")
    p.add_argument("--no-channels-last", action="store_true", help="keep the NCHW memory format")


def cpu_has_fast_bf16() -> bool:
    """True when /proc/cpuinfo lists avx512_bf16 or amx_bf16 (bfloat16 matmuls in hardware)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def use_bf16(precision: str) -> bool:
    return precision == "bf16" or (precision == "auto" and cpu_has_fast_bf16())


def choose_threads(requested: int = 0) -> int:
    """``requested`` if > 0, else the idle cores: cpu count minus the rounded 1-minute load average (>= 1).

    On a shared machine, more threads than idle cores makes PyTorch's CPU kernels far slower, not faster.
    """
    cpus = os.cpu_count() or 1
    if requested > 0:
        return requested
    try:
        busy = round(os.getloadavg()[0])
    except (OSError, AttributeError):   # no load average (Windows)
        busy = 0
    return max(1, min(cpus, cpus - busy))


def set_threads(requested: int = 0) -> int:
    threads = choose_threads(requested)
    torch.set_num_threads(threads)
    return threads


DEFAULT_ARCH = {"mnist": "mnist-small", "fashion-mnist": "fashion-small", "cifar10": "cifar-fast"}


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Validated TrainConfig from parsed arguments (UserError for bad values; the CLI's argument types
    already refuse them, this guards callers that build the namespace themselves)."""
    def bad(value, ok) -> bool:
        return value is not None and not (math.isfinite(value) and ok(value))
    if bad(args.time_budget, lambda v: v > 0):
        raise UserError(f"--time-budget must be positive, got {args.time_budget}", "e.g. --time-budget 60")
    if bad(args.epochs, lambda v: v > 0):
        raise UserError(f"--epochs must be positive, got {args.epochs}", "e.g. --epochs 5")
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {args.batch_size}", "e.g. --batch-size 128")
    if bad(args.lr, lambda v: v > 0):
        raise UserError(f"--lr must be positive, got {args.lr}", "e.g. --lr 0.05")
    if bad(args.weight_decay, lambda v: v >= 0):
        raise UserError(f"--weight-decay must be 0 or more, got {args.weight_decay}", "e.g. --weight-decay 5e-4")
    if bad(args.label_smoothing, lambda v: 0 <= v < 1):
        raise UserError(f"--label-smoothing must be in [0, 1), got {args.label_smoothing}", "e.g. --label-smoothing 0.1")
    return TrainConfig(epochs=args.epochs or 5.0, time_budget=args.time_budget, lr=args.lr,
                       batch_size=args.batch_size, optimizer=args.optimizer, weight_decay=args.weight_decay,
                       label_smoothing=args.label_smoothing, augment=args.augment,
                       flip=args.augment and FLIP_OK.get(args.dataset, False),
                       channels_last=not args.no_channels_last, bf16=use_bf16(args.precision),
                       eval_every=args.eval_every, seed=args.seed)


def run_training(data: Dataset, arch: str, cfg: TrainConfig, out: str | os.PathLike, name: str,
                 padding: str = "zero", onnx_path: str | os.PathLike | None = None,
                 vgg_weights: str | None = None, progress: bool = True, quiet: bool = False,
                 export: bool = True, vgg_extractor: nn.Module | None = None, measure_test: bool = True) -> dict:
    """Build, summarise, train, plot, checkpoint and (``export``) write the ONNX model; returns the report.

    ``data`` holds its validation split already (hold_out_validation). With ``measure_test`` the finished
    model is measured once on the test set (report test_accuracy, confusion matrix, ONNX metadata);
    without it (sweep runs) the test set is not read: test_accuracy is None, the confusion matrix is the
    validation split's. ``vgg_extractor`` replaces the ImageNet VGG-16 for vgg16:... specs (tests use a
    small stand-in).
    """
    out = Path(out)
    norm = data.normalisation()
    vgg = vgg_extractor
    if vgg is None and resolve_arch_is_vgg(arch):
        from trainer.nets.vgg import load_vgg16
        vgg = load_vgg16([PRESETS.get(arch, arch).split("-")[0][6:]], vgg_weights)
    model = build_classifier(arch, data.channels, len(data.classes), *data.size, padding=padding,
                             mean=norm["mean"], std=norm["std"], vgg_extractor=vgg)
    if not quiet:
        print(f"{name}: {data.name} from {data.source}: {len(data.train_x)} train / {data.val_size} validation / "
              f"{len(data.test_x)} test, {len(data.classes)} classes\narch: {model.config.arch}\n{format_summary(model)}\n"
              f"threads {torch.get_num_threads()}, {'bf16 autocast' if cfg.bf16 else 'fp32'}, "
              f"{'channels-last' if cfg.channels_last else 'NCHW'}", flush=True)
    result = train(model, data, cfg, progress=progress)
    test_accuracy, test_seconds = None, None
    if measure_test:    # the one look at the test set, after training
        started = time.perf_counter()
        test_predictions = predict(model, data.test_x, norm["mean"], norm["std"]).numpy()
        test_seconds = time.perf_counter() - started
        test_accuracy = float((test_predictions == data.test_y.numpy()).mean()) if len(test_predictions) else 0.0
        cm, cm_split = confusion_matrix(data.test_y.numpy(), test_predictions, len(data.classes)), "test"
    else:
        predictions = result.val_predictions if result.val_predictions is not None else np.zeros(0, np.int64)
        labels = data.val_y.numpy() if data.val_size else np.zeros(0, np.int64)
        cm, cm_split = confusion_matrix(labels, predictions, len(data.classes)), "validation"
    training = {**asdict(cfg), "dataset": data.name, "val_size": data.val_size,
                "val_accuracy": result.val_accuracy, "train_seconds": round(result.train_seconds, 1),
                "epochs_done": round(result.epochs, 2), "steps": result.steps,
                "threads": torch.get_num_threads()}
    if cfg.time_budget:
        training["epochs"] = None   # the budget, not an epoch count, decided the length
    report = {"name": name, "dataset": data.name, "arch": model.config.arch, "val_accuracy": result.val_accuracy,
              "test_accuracy": test_accuracy, "val_size": data.val_size,
              "params": sum(p.numel() for p in model.parameters() if p.requires_grad), "training": training,
              "longest_step_seconds": result.longest_step_seconds, "test_seconds": test_seconds,
              "evals": result.evals, "confusion": cm.tolist(), "confusion_split": cm_split, "classes": data.classes}
    scores = "; ".join(f"{what} accuracy {value:.2%}" for what, value in
                       (("validation", result.val_accuracy), ("test", test_accuracy)) if value is not None)
    plot_curves(result.history, result.evals, out / "curves.png", f"{name}: {model.config.arch} — {scores}")
    plot_confusion(cm, data.classes, out / "confusion.png", f"{name}: {cm_split} split, {scores}")
    save_classifier(out / "checkpoint.pt", model, {"classes": data.classes, "normalisation": norm,
                                                    "dataset": data.name, "name": name, "training": training,
                                                    "val_accuracy": result.val_accuracy,
                                                    "test_accuracy": test_accuracy,
                                                    "history": result.history, "evals": result.evals})
    onnx_file = None
    if export:
        onnx_file = export_onnx(model, onnx_path or out / f"{name}.onnx", name, data.classes, norm,
                                test_accuracy, training)
    report["onnx"] = str(onnx_file) if onnx_file else None
    with atomic_target(out / "report.json") as tmp:
        tmp.write_text(json.dumps({**report, "history": result.history}, indent=1))
    if not quiet:
        print(f"{scores or 'no evaluation'} after {result.train_seconds:.1f} s of training "
              f"({result.epochs:.2f} epochs, {result.steps} steps)\nwrote {out}/checkpoint.pt, curves.png, "
              f"confusion.png, report.json" + (f" and {onnx_file}" if onnx_file else ""))
    return report


def resolve_arch_is_vgg(arch: str) -> bool:
    return PRESETS.get(arch, arch).startswith("vgg16:")


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    arch = args.arch or DEFAULT_ARCH[args.dataset]
    from trainer.nets.classifier import parse_spec
    parse_spec(arch)  # fail on a bad spec before loading any data
    name = args.name or args.dataset
    outputs = {Path(args.out) / n: "--out" for n in ("checkpoint.pt", "curves.png", "confusion.png", "report.json")}
    outputs[Path(args.onnx or Path(args.out) / f"{name}.onnx")] = "--onnx"
    for path, flag in outputs.items():
        refuse_overwriting_inputs(path, {"--data": args.data, "--vgg-weights": args.vgg_weights}, flag)
    out = ensure_writable_dir(args.out)                                  # outputs checked before training,
    onnx_path = ensure_writable_file(args.onnx or out / f"{name}.onnx", "--onnx")   # not after it
    set_threads(args.threads)
    data = load_split(args)
    run_training(data, arch, cfg, out, name, padding=args.padding, onnx_path=onnx_path,
                 vgg_weights=args.vgg_weights)
    return 0
