"""`stylecam-train sweep`: a small grid of classifier trainings, each under the same budget.

The grid is architectures x learning rates x batch sizes x optimisers. Every run trains on the same
training images and is ranked by its accuracy on the same validation split (--val-size images held
out of the training set, trainer.data.hold_out_validation); no run reads the test set. Once all have
finished, the best run by validation accuracy, and only that one, is measured on the test set.
Every run writes its own folder (curves, validation confusion matrix, checkpoint); the sweep writes
results.md, results.json and sweep.png (validation accuracy of every run) into --out. Same seed for
every run, so a sweep is reproducible up to the machine's speed when --time-budget is used (use
--epochs for exactly reproducible runs). A run whose loss diverges is recorded as diverged (no
accuracy) and the sweep goes on; the exit status is 0 when at least one run finished and 1 when
every run diverged.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

from stylecam.argtypes import positive_float, positive_int
from stylecam.errors import UserError
from stylecam.fileout import atomic_output, atomic_write_bytes, refuse_overwriting_inputs
from trainer.checkpoints import ensure_writable_dir
from trainer.data import DATASETS, Dataset
from trainer.nets.classifier import parse_spec
from trainer.classifier_outputs import load_classifier
from trainer.train_classifier import (DEFAULT_ARCH, FLIP_OK, OPTIMIZERS, TrainConfig, TrainingDiverged, accuracy,
                                      add_speed_arguments, add_validation_argument, load_split, run_training,
                                      seed_int, set_threads, use_bf16)

#: list option -> (parser of one item, example list for messages)
LIST_OPTIONS = {"--lrs": (positive_float, "0.1,0.03"), "--batch-sizes": (positive_int, "64,128"),
                "--optimizers": (str, "sgd,adam")}


def parse_list(text: str, kind, flag: str, example: str | None = None) -> list:
    """'0.1,0.05' -> [0.1, 0.05], each item parsed by ``kind`` (a type or a stylecam.argtypes parser);
    UserError naming the flag, the bad item and an example list fitting the flag."""
    example = example or LIST_OPTIONS.get(flag, (None, "a,b"))[1]
    hint = f"give a comma-separated list, e.g. {flag} {example}"
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise UserError(f"{flag} is empty", hint)
    values = []
    for item in items:
        try:
            values.append(kind(item))
        except (ValueError, argparse.ArgumentTypeError) as err:
            why = str(err) if isinstance(err, argparse.ArgumentTypeError) else f"not a {kind.__name__} value: {item!r}"
            raise UserError(f"{flag} {text!r}: {why}", hint) from None
    return values


def grid(archs: list[str], lrs: list[float], batch_sizes: list[int], optimizers: list[str]) -> list[dict]:
    """Every combination, in a stable order: [{"arch", "lr", "batch_size", "optimizer"}, ...]."""
    return [{"arch": a, "lr": lr, "batch_size": bs, "optimizer": o}
            for a, lr, bs, o in itertools.product(archs, lrs, batch_sizes, optimizers)]


def ranked(rows: list[dict]) -> list[dict]:
    """The finished runs, best validation accuracy first (ties: the earlier run first)."""
    return sorted((r for r in rows if r.get("val_accuracy") is not None), key=lambda r: -r["val_accuracy"])


def results_markdown(rows: list[dict], title: str, best_test: dict | None = None) -> str:
    """Markdown table of sweep results ranked by validation accuracy; diverged runs (val_accuracy None)
    last, unranked; then the one test measurement, of the best run (``best_test``: {label, test_accuracy})."""
    lines = [f"# {title}", "", "| rank | arch | optimizer | lr | batch | epochs | train s | validation accuracy |",
             "|---:|---|---|---:|---:|---:|---:|---:|"]
    for i, r in enumerate(ranked(rows), 1):
        lines.append(f"| {i} | `{r['arch']}` | {r['optimizer']} | {r['lr']:g} | {r['batch_size']} | "
                     f"{r['epochs']:.2f} | {r['train_seconds']:.0f} | {r['val_accuracy']:.2%} |")
    for r in rows:
        if r.get("val_accuracy") is None:
            lines.append(f"| – | `{r['arch']}` | {r['optimizer']} | {r['lr']:g} | {r['batch_size']} | – | – | "
                         f"{r.get('status', 'failed')} |")
    if best_test:
        lines += ["", f"Test accuracy of the best run by validation ({best_test['label']}), measured once after "
                      f"the sweep: {best_test['test_accuracy']:.2%}. The other runs were not measured on the test set."]
    return "\n".join(lines) + "\n"


def plot_results(rows: list[dict], path: str | os.PathLike, title: str) -> None:
    """Horizontal bars: validation accuracy per run -> PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [r["label"] for r in rows]
    scores = [r["val_accuracy"] or 0.0 for r in rows]   # None: the run diverged
    fig, ax = plt.subplots(figsize=(7, 0.9 + 0.32 * len(rows)), dpi=80)
    ax.barh(range(len(rows)), scores, color="tab:blue")
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.invert_yaxis()
    for i, r in enumerate(rows):
        text = f" {r['val_accuracy']:.1%}" if r["val_accuracy"] is not None else f" {r.get('status', 'failed')}"
        ax.text(scores[i], i, text, va="center", fontsize=7)
    ax.set(xlabel="validation accuracy", xlim=(0, 1.08), title=title)
    fig.tight_layout()
    try:
        with atomic_output(path) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = ("A run whose loss diverges is recorded as diverged in the results and the sweep goes on. "
                "Exit status: 0 when at least one run finished, 1 when every run diverged, 2 for bad options.")
    p.add_argument("--dataset", required=True, choices=DATASETS, help="which dataset to train on")
    p.add_argument("--data", default=None, metavar="PATH", help="dataset location (default: the standard locations)")
    p.add_argument("--archs", default=None, help="comma-separated presets or specs (default: the dataset's preset)")
    p.add_argument("--lrs", default="0.1,0.03", metavar="LR,...", help="comma-separated peak learning rates, each > 0")
    p.add_argument("--batch-sizes", default="128", metavar="N,...", help="comma-separated batch sizes, each >= 1")
    p.add_argument("--optimizers", default="sgd,adam", metavar="NAME,...",
                   help=f"comma-separated, from {', '.join(OPTIMIZERS)}")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--time-budget", type=positive_float, default=None, metavar="SECONDS",
                        help="training seconds per run (default: 30, unless --epochs is given)")
    length.add_argument("--epochs", type=positive_float, default=None, help="epochs per run (instead of a time budget)")
    p.add_argument("--augment", action="store_true", help="random shifts, plus mirroring for CIFAR-10 and Fashion-MNIST")
    add_validation_argument(p)
    add_speed_arguments(p)
    p.add_argument("--seed", type=seed_int, default=0, help="random seed, the same for every run (default: 0)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder, created if needed")


def run(args: argparse.Namespace) -> int:
    archs = [a.strip() for a in (args.archs or DEFAULT_ARCH[args.dataset]).split(",") if a.strip()]
    if not archs:
        raise UserError("--archs is empty", "give a comma-separated list, e.g. --archs mnist-small,conv8-pool-fc16")
    for arch in archs:
        parse_spec(arch)
    optimizers = parse_list(args.optimizers, str, "--optimizers")
    bad = [o for o in optimizers if o not in OPTIMIZERS]
    if bad:
        raise UserError(f"unknown optimizer {bad[0]!r} in --optimizers", f"use {', '.join(OPTIMIZERS)}")
    runs = grid(archs, parse_list(args.lrs, positive_float, "--lrs"),
                parse_list(args.batch_sizes, positive_int, "--batch-sizes"), optimizers)
    budget = None if args.epochs is not None else (args.time_budget or 30.0)
    base = TrainConfig(epochs=args.epochs or 1.0, time_budget=budget, augment=args.augment,
                       flip=args.augment and FLIP_OK[args.dataset], bf16=use_bf16(args.precision),
                       channels_last=not args.no_channels_last, eval_every=0,
                       seed=args.seed)
    for name in ("results.md", "results.json", "sweep.png"):
        refuse_overwriting_inputs(Path(args.out) / name, {"--data": args.data}, "--out")
    if args.val_size == 0:
        raise UserError("a sweep ranks its runs on the validation split; --val-size 0 leaves none",
                        "leave --val-size out, or give a number of training images to hold out")
    out = ensure_writable_dir(args.out)   # before loading data and training, not after
    data = load_split(args)
    set_threads(args.threads)
    length = f"{budget:g} s" if budget else f"{args.epochs:g} epochs"
    print(f"sweep: {len(runs)} runs of {length} each on {data.name}, ranked on {data.val_size} validation images",
          flush=True)
    rows = []
    for i, r in enumerate(runs, 1):
        label = f"{r['arch'] if len(archs) > 1 else ''} {r['optimizer']} lr={r['lr']:g} bs={r['batch_size']}".strip()
        print(f"[{i}/{len(runs)}] {label}", flush=True)
        cfg = replace(base, lr=r["lr"], batch_size=r["batch_size"], optimizer=r["optimizer"])
        try:
            report = run_training(data, r["arch"], cfg, out / f"run{i:02d}", f"{data.name}-run{i:02d}",
                                  export=False, quiet=True, measure_test=False)
        except TrainingDiverged as err:
            rows.append({**r, "label": label, "status": "diverged", "error": err.message, "val_accuracy": None,
                         "train_seconds": None, "epochs": None, "folder": None})
            print(f"    diverged: {err.message}", flush=True)
            continue
        t = report["training"]
        rows.append({**r, "arch": report["arch"], "label": label, "status": "ok",
                     "val_accuracy": report["val_accuracy"],
                     "train_seconds": t["train_seconds"], "epochs": t["epochs_done"], "folder": f"run{i:02d}"})
        print(f"    validation accuracy {report['val_accuracy']:.4f} ({t['epochs_done']:.2f} epochs)", flush=True)
    finished = ranked(rows)
    best_test = measure_best_on_test(finished[0], out, data) if finished else None
    title = f"{data.name} sweep, {length} per run, ranked on {data.val_size} validation images"
    atomic_write_bytes(out / "results.md", results_markdown(rows, title, best_test).encode())
    atomic_write_bytes(out / "results.json", json.dumps({"title": title, "dataset": data.name, "val_size": data.val_size,
                                                        "runs": rows, "best": best_test}, indent=1).encode())
    plot_results(rows, out / "sweep.png", title)
    diverged = len(rows) - len(finished)
    if best_test:
        print(f"best by validation: {best_test['label']} {best_test['val_accuracy']:.4f}; "
              f"its test accuracy, measured once: {best_test['test_accuracy']:.4f}")
    print(f"wrote {out}/results.md, results.json, sweep.png")
    if diverged:
        print(f"stylecam-train: {diverged} of {len(rows)} runs diverged"
              + ("" if finished else "; lower --lrs or try --optimizers adam"), file=sys.stderr)
    return 0 if finished else 1


def measure_best_on_test(best: dict, out: Path, data: Dataset) -> dict:
    """The one test-set measurement of a sweep: the best run's checkpoint on the test split."""
    model, _ = load_classifier(out / best["folder"] / "checkpoint.pt")
    return {"label": best["label"], "folder": best["folder"], "val_accuracy": best["val_accuracy"],
            "test_accuracy": accuracy(model, data.test_x, data.test_y)}
