"""`stylecam-train sweep`: a small grid of classifier trainings, each under the same budget.

The grid is architectures x learning rates x batch sizes x optimisers. Every run writes its own folder
(curves, confusion matrix, checkpoint); the sweep writes results.md, results.json and sweep.png
(test accuracy of every run) into --out. Same seed for every run, so a sweep is reproducible up to
the machine's speed when --time-budget is used (use --epochs for exactly reproducible runs).
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
from dataclasses import replace
from pathlib import Path

from stylecam.errors import UserError
from trainer.data import DATASETS, load_dataset
from trainer.nets.classifier import parse_spec
from trainer.train_classifier import (DEFAULT_ARCH, FLIP_OK, OPTIMIZERS, TrainConfig, add_speed_arguments,
                                      run_training, set_threads, use_bf16)


def parse_list(text: str, kind, flag: str) -> list:
    """'0.1,0.05' -> [0.1, 0.05] with ``kind``; UserError naming the flag for bad items."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise UserError(f"{flag} is empty", f"give a comma-separated list, e.g. {flag} 0.1,0.05")
    try:
        values = [kind(t) for t in items]
    except ValueError:
        raise UserError(f"{flag} {text!r} is not a list of {kind.__name__} values",
                        f"give a comma-separated list, e.g. {flag} 0.1,0.05") from None
    if kind in (int, float) and any(v <= 0 for v in values):
        raise UserError(f"{flag} values must be positive, got {text!r}", "e.g. 0.1,0.05")
    return values


def grid(archs: list[str], lrs: list[float], batch_sizes: list[int], optimizers: list[str]) -> list[dict]:
    """Every combination, in a stable order: [{"arch", "lr", "batch_size", "optimizer"}, ...]."""
    return [{"arch": a, "lr": lr, "batch_size": bs, "optimizer": o}
            for a, lr, bs, o in itertools.product(archs, lrs, batch_sizes, optimizers)]


def results_markdown(rows: list[dict], title: str) -> str:
    """Markdown table of sweep results, best first."""
    lines = [f"# {title}", "", "| rank | arch | optimizer | lr | batch | epochs | train s | test accuracy |",
             "|---:|---|---|---:|---:|---:|---:|---:|"]
    for i, r in enumerate(sorted(rows, key=lambda r: -r["test_accuracy"]), 1):
        lines.append(f"| {i} | `{r['arch']}` | {r['optimizer']} | {r['lr']:g} | {r['batch_size']} | "
                     f"{r['epochs']:.2f} | {r['train_seconds']:.0f} | {r['test_accuracy']:.2%} |")
    return "\n".join(lines) + "\n"


def plot_results(rows: list[dict], path: str | os.PathLike, title: str) -> None:
    """Horizontal bars: test accuracy per run -> PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [r["label"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 0.9 + 0.32 * len(rows)), dpi=80)
    ax.barh(range(len(rows)), [r["test_accuracy"] for r in rows], color="tab:blue")
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.invert_yaxis()
    for i, r in enumerate(rows):
        ax.text(r["test_accuracy"], i, f" {r['test_accuracy']:.1%}", va="center", fontsize=7)
    ax.set(xlabel="test accuracy", xlim=(0, 1.08), title=title)
    fig.tight_layout()
    tmp = Path(path).with_name(Path(path).name + ".tmp.png")
    fig.savefig(tmp)
    os.replace(tmp, path)
    plt.close(fig)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, choices=DATASETS)
    p.add_argument("--data", default=None, help="dataset location (default: the standard locations)")
    p.add_argument("--archs", default=None, help="comma-separated presets or specs (default: the dataset's preset)")
    p.add_argument("--lrs", default="0.1,0.03", help="comma-separated peak learning rates")
    p.add_argument("--batch-sizes", default="128", help="comma-separated batch sizes")
    p.add_argument("--optimizers", default="sgd,adam", help=f"comma-separated, from {', '.join(OPTIMIZERS)}")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--time-budget", type=float, default=30.0, metavar="SECONDS", help="training time per run")
    length.add_argument("--epochs", type=float, default=None, help="epochs per run (instead of a time budget)")
    p.add_argument("--augment", action="store_true")
    add_speed_arguments(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output folder")


def run(args: argparse.Namespace) -> int:
    archs = [a.strip() for a in (args.archs or DEFAULT_ARCH[args.dataset]).split(",") if a.strip()]
    for arch in archs:
        parse_spec(arch)
    optimizers = parse_list(args.optimizers, str, "--optimizers")
    bad = [o for o in optimizers if o not in OPTIMIZERS]
    if bad:
        raise UserError(f"unknown optimizer {bad[0]!r} in --optimizers", f"use {', '.join(OPTIMIZERS)}")
    runs = grid(archs, parse_list(args.lrs, float, "--lrs"), parse_list(args.batch_sizes, int, "--batch-sizes"),
                optimizers)
    if args.epochs is not None and args.epochs <= 0:
        raise UserError(f"--epochs must be positive, got {args.epochs}", "e.g. --epochs 1")
    if args.epochs is None and args.time_budget <= 0:
        raise UserError(f"--time-budget must be positive, got {args.time_budget}", "e.g. --time-budget 30")
    budget = None if args.epochs is not None else args.time_budget
    base = TrainConfig(epochs=args.epochs or 1.0, time_budget=budget, augment=args.augment,
                       flip=args.augment and FLIP_OK[args.dataset], bf16=use_bf16(args.precision),
                       channels_last=not args.no_channels_last, eval_every=0,
                       seed=args.seed)
    data = load_dataset(args.dataset, args.data)
    set_threads(args.threads)
    out = Path(args.out)
    length = f"{budget:g} s" if budget else f"{args.epochs:g} epochs"
    print(f"sweep: {len(runs)} runs of {length} each on {data.name}", flush=True)
    rows = []
    for i, r in enumerate(runs, 1):
        label = f"{r['arch'] if len(archs) > 1 else ''} {r['optimizer']} lr={r['lr']:g} bs={r['batch_size']}".strip()
        print(f"[{i}/{len(runs)}] {label}", flush=True)
        cfg = replace(base, lr=r["lr"], batch_size=r["batch_size"], optimizer=r["optimizer"])
        report = run_training(data, r["arch"], cfg, out / f"run{i:02d}", f"{data.name}-run{i:02d}",
                              export=False, quiet=True)
        t = report["training"]
        rows.append({**r, "arch": report["arch"], "label": label, "test_accuracy": report["test_accuracy"],
                     "train_seconds": t["train_seconds"], "epochs": t["epochs_done"], "folder": f"run{i:02d}"})
        print(f"    test accuracy {report['test_accuracy']:.4f} ({t['epochs_done']:.2f} epochs)", flush=True)
    title = f"{data.name} sweep, {length} per run"
    (out / "results.md").write_text(results_markdown(rows, title))
    (out / "results.json").write_text(json.dumps({"title": title, "dataset": data.name, "runs": rows}, indent=1))
    plot_results(rows, out / "sweep.png", title)
    best = max(rows, key=lambda r: r["test_accuracy"])
    print(f"best: {best['label']} {best['test_accuracy']:.4f}\nwrote {out}/results.md, results.json, sweep.png")
    return 0
