"""CIFAR-10 challenge: test accuracy reached after 60 s, 300 s and 600 s of training wall time.

Protocol: 5,000 of the 50,000 training images (--val-size, a fixed split: trainer.data.hold_out_validation)
are held out as the validation split; each budget trains on the other 45,000, from scratch, with the
same preset and recipe (the recipe is chosen on the validation split, never on the test set), and its
finished model is measured once on the validation split and once on the 10,000 test images.

The clock (train_seconds) runs over each training step: taking the batch from the in-memory uint8
images, augmentation (random shift, mirror), normalisation, forward, backward, optimiser update,
learning-rate schedule and the running loss. It excludes: reading and decoding the dataset (decoded
once, then cached as .npz), the warm-up (a few steps on a throwaway model first, so one-time kernel
set-up is not charged to the first budget), evaluations (none during the run here; the final
validation and test passes), the checkpoint, plots and ONNX export, and starting Python. A budget
stops after the step that reaches it, so train_seconds exceeds it by less than one step. Writes JSON
(machine, load average, settings, results, goals).

    python -m benchmarks.cifar_challenge [--budgets 60,300,600] [--arch cifar-resnet] [--plot PNG]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from benchmarks.common import load_average, run_script, write_results
from stylecam.argtypes import non_negative_int, output_file, positive_float, positive_int
from stylecam.errors import UserError
from stylecam.fileout import atomic_output
from trainer.data import DEFAULT_VAL_SIZE, hold_out_validation, load_dataset
from trainer.nets.classifier import build_classifier, parse_spec
from trainer.train_classifier import OPTIMIZERS, TrainConfig, run_training, set_threads, train, use_bf16

PROG = "cifar_challenge.py"
GOALS = {60: 0.60, 600: 0.80}


def budget_list(text: str) -> list[float]:
    """--budgets: comma-separated training seconds, each a positive finite number."""
    parts = [part.strip() for part in text.split(",")]
    if not text.strip() or not all(parts):
        raise argparse.ArgumentTypeError(f"expected comma-separated training seconds, e.g. 60,300,600, got {text!r}")
    budgets = []
    for part in parts:
        try:
            budgets.append(positive_float(part))
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(
                f"every budget must be a positive number of seconds, e.g. 60,300,600; got {part!r}") from None
    return budgets


def read_results(path: str | os.PathLike) -> dict:
    """The JSON a previous run wrote to --out (for --plot-only); UserError when missing or not such a file."""
    try:
        result = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"--plot-only: no results file {path}", "run the challenge first, or point --out at its JSON") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"--plot-only: cannot read {path}: {err}", "point --out at the JSON the challenge wrote") from None
    if not isinstance(result, dict) or not isinstance(result.get("results"), list) \
            or not all(isinstance(r, dict) and {"budget_s", "test_accuracy"} <= set(r) for r in result["results"]) \
            or not isinstance(result.get("settings"), dict) or not isinstance(result.get("machine"), dict):
        raise UserError(f"--plot-only: {path} is not a cifar_challenge results file",
                        "point --out at the JSON the challenge wrote")
    return result


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def plot(result: dict, path: str | os.PathLike) -> None:
    """Test accuracy against training budget, with the goals -> small PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["results"]
    fig, ax = plt.subplots(figsize=(5, 3), dpi=80)
    ax.plot([r["budget_s"] for r in rows], [r["test_accuracy"] for r in rows], "o-", label=result["settings"]["arch"])
    for r in rows:
        ax.annotate(f"{r['test_accuracy']:.1%}", (r["budget_s"], r["test_accuracy"]), textcoords="offset points",
                    xytext=(0, -14), ha="center", fontsize=8)
    for budget, goal in GOALS.items():
        ax.plot([budget], [goal], "r_", markersize=14, label="goal" if budget == 60 else None)
    ax.set(xlabel="training wall time (s)", ylabel="CIFAR-10 test accuracy", ylim=(0.4, 1.0),
           title=f"{result['machine']['cores']}-core CPU, {result['machine']['threads_used']} thread(s), shared", )
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("--budgets", type=budget_list, default="60,300,600",
                   help="comma-separated training seconds (positive numbers)")
    p.add_argument("--arch", default="cifar-resnet", help="classifier preset or spec (as stylecam-train classifier)")
    p.add_argument("--batch-size", type=positive_int, default=128)
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="sgd")
    p.add_argument("--lr", type=positive_float, default=None, help="peak learning rate (default: the optimizer's)")
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto")
    p.add_argument("--threads", type=non_negative_int, default=0, help="0: the idle cores (cores minus load average)")
    p.add_argument("--val-size", type=non_negative_int, default=None,
                   help=f"training images held out as the validation split, the same ones every run "
                        f"(default {DEFAULT_VAL_SIZE['cifar10']}, at most a tenth of the training images)")
    p.add_argument("--data", default=None)
    p.add_argument("--runs", default="runs/cifar_challenge", help="folder for each run's outputs")
    p.add_argument("--out", default="benchmarks/results/cifar_challenge.json")
    p.add_argument("--plot", default=None, help="also draw accuracy against budget into this PNG")
    p.add_argument("--plot-only", action="store_true", help="redraw --plot from the JSON in --out, no training")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.plot_only and not args.plot:
        parser.error("--plot-only needs --plot PATH")
    return run_script(PROG, run, args)


def run(args) -> int:
    plot_path = output_file(args.plot, "--plot", (".png",), "cifar_challenge.png") if args.plot else None
    if args.plot_only:
        plot(read_results(args.out), plot_path)
        print(f"wrote {plot_path}")
        return 0
    path = output_file(args.out, "--out", (".json",), "cifar_challenge.json")
    parse_spec(args.arch)   # UserError naming the bad token, before the dataset is loaded
    budgets = args.budgets
    t0 = time.perf_counter()
    data = load_dataset("cifar10", args.data)
    n = len(data.train_y)
    data = hold_out_validation(data, min(DEFAULT_VAL_SIZE["cifar10"], n // 10) if args.val_size is None
                               else args.val_size)
    load_seconds = time.perf_counter() - t0
    load_before = load_average()
    threads = set_threads(args.threads)
    bf16 = use_bf16(args.precision)
    base = TrainConfig(batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr,
                       augment=not args.no_augment, flip=not args.no_augment, bf16=bf16, eval_every=0)
    # warm-up: a few steps on a throwaway model of the same shapes
    norm = data.normalisation()
    warm = build_classifier(args.arch, data.channels, len(data.classes), *data.size,
                            mean=norm["mean"], std=norm["std"])
    small = type(data)(data.name, data.classes, data.train_x[:args.batch_size * 3], data.train_y[:args.batch_size * 3],
                       data.train_x[:0], data.train_y[:0], data.source)   # no evaluation: no test images
    train(warm, small, TrainConfig(**{**base.__dict__, "epochs": 1.0}), progress=False)

    results = []
    for budget in budgets:
        cfg = TrainConfig(**{**base.__dict__, "time_budget": budget})
        print(f"== {budget:g} s with {args.arch}", flush=True)
        load_start = os.getloadavg()
        start = time.perf_counter()
        report = run_training(data, args.arch, cfg, Path(args.runs) / f"{budget:g}s", f"cifar10-{budget:g}s")
        t = report["training"]
        results.append({"budget_s": budget, "test_accuracy": report["test_accuracy"],
                        "val_accuracy": report["val_accuracy"],
                        "train_seconds": t["train_seconds"], "longest_step_seconds": report["longest_step_seconds"],
                        "epochs": t["epochs_done"], "steps": t["steps"],
                        "images_per_second": round(t["steps"] * cfg.batch_size / max(t["train_seconds"], 1e-9), 1),
                        "wall_seconds_with_eval_and_export": round(time.perf_counter() - start, 1),
                        "load_average_start": [round(v, 2) for v in load_start],
                        "load_average_end": [round(v, 2) for v in os.getloadavg()],
                        "run_folder": str(Path(args.runs) / f"{budget:g}s")})
    goals = {f"{b}s": {"goal": g, "reached": next((r["test_accuracy"] >= g for r in results if r["budget_s"] == b), None)}
             for b, g in GOALS.items()}
    out = {
        "benchmark": "cifar_challenge",
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "threads_used": threads,
                    "load_average_before": load_before, "load_average_after": load_average(),
                    "python": sys.version.split()[0], "torch": torch.__version__},
        "settings": {"arch": args.arch, "precision": "bf16 autocast" if bf16 else "fp32",
                     "channels_last": base.channels_last, "batch_size": base.batch_size,
                     "optimizer": base.optimizer, "peak_lr": base.peak_lr, "augment": base.augment,
                     "label_smoothing": base.label_smoothing, "dataset": data.source,
                     "train_images": len(data.train_y), "val_images": data.val_size, "test_images": len(data.test_y),
                     "dataset_load_seconds": round(load_seconds, 1),
                     "clock": "training steps only (batching, augmentation, forward, backward, update); "
                              "excluded: dataset decoding (cached), warm-up, evaluations, checkpoint, export"},
        "results": results, "goals": goals,
    }
    write_results(path, out)
    if plot_path:
        plot(out, plot_path)
    for r in results:
        print(f"{r['budget_s']:>6g} s: test accuracy {r['test_accuracy']:.2%}, validation {r['val_accuracy']:.2%} "
              f"({r['epochs']:.2f} epochs, "
              f"{r['images_per_second']:.0f} img/s)")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
