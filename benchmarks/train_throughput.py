"""Training throughput (images/s) of the style trainer, one row per speed lever, JSON and Markdown out.

The reference is the loop of pytorch/examples' fast_neural_style (neural_style.py, train()): the
painting's Gram targets computed once, each step one VGG-16 pass over the photos and one over the
output, both to relu4_3, content loss at relu2_2, Gram style loss at relu1_2, relu2_2, relu3_3 and
relu4_3, fp32, NCHW; plus stylecam's total-variation term, so that every arm minimises the same loss.
Each further arm adds one lever of stylecam's trainer to the one before:

  plain fp32              the reference loop above
  + content to relu2_2    the photos' content targets computed only up to relu2_2 (trainer.losses)
  + bf16                  bfloat16 autocast around the network and the loss network
  + channels-last         network, loss network and batches in the NHWC memory format

plus, when asked for (--arms), the earlier reference of this benchmark, which also recomputed the
painting's Gram targets every step ("grams every step"). Every arm has its own copy of the network
(same initial weights) and of VGG-16 (so one arm's memory format never leaks into another's), runs
on the same batch, and the arms are alternated step by step (a slow spell of a shared machine hits
all alike), after --warmup untimed steps of each. Reported per arm: median and quartile seconds per
step, images/s from the median, speed relative to the first arm, and the loss of the first step
(the same for every arm up to bf16 rounding: they compute one loss).

    python -m benchmarks.train_throughput --vgg-weights ../shared/vgg16/vgg16_features_imagenet.pth \\
        --out benchmarks/results/train_throughput_cpu.json
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import os
import platform
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.common import load_average, run_script, write_results
from stylecam.argtypes import int_at_least, non_negative_int, output_file, positive_int
from trainer.common import pick_device
from trainer.losses import LossWeights, PerceptualLoss, gram_matrix, total_variation
from trainer.nets.transformer import CONFIGS, build_transformer
from trainer.nets.vgg import load_vgg16

PROG = "train_throughput.py"
LAYERS = ["relu1_2", "relu2_2", "relu3_3", "relu4_3"]
MIN_SIZE, MAX_SIZE = 16, 4096   # VGG-16's poolings need 16 pixels; the transformer needs a multiple of 4


@dataclass(frozen=True)
class Arm:
    """One way of running a training step; the levers are those of stylecam's trainer."""
    name: str
    content_upto: bool = False      # photos' content targets only up to the content layer (else to relu4_3)
    bf16: bool = False              # bfloat16 autocast
    channels_last: bool = False     # NHWC memory format for network, loss network and batch
    grams_every_step: bool = False  # recompute the painting's Gram targets each step (the earlier reference)


ARMS = {
    "plain": Arm("plain fp32 (pytorch/examples' loop)"),
    "relu2_2": Arm("+ content to relu2_2", content_upto=True),
    "bf16": Arm("+ bf16", content_upto=True, bf16=True),
    "channels_last": Arm("+ channels-last", content_upto=True, bf16=True, channels_last=True),
    "grams": Arm("grams every step (earlier reference)", grams_every_step=True),
}
DEFAULT_ARMS = ["plain", "relu2_2", "bf16", "channels_last"]


def photo_size(text: str) -> int:
    """--size: a multiple of 4 within MIN_SIZE..MAX_SIZE (the transformer halves twice and doubles back)."""
    value = int_at_least(MIN_SIZE, MAX_SIZE)(text)
    if value % 4:
        raise argparse.ArgumentTypeError(f"expected a multiple of 4 (the transformer halves the image twice), "
                                         f"got {text!r}; e.g. {value - value % 4 or 16}")
    return value


def variant_list(text: str) -> list[str]:
    """--variants: comma-separated transformer configurations (keys of trainer.nets.transformer.CONFIGS)."""
    names = [v.strip() for v in text.split(",")]
    bad = [v for v in names if v not in CONFIGS]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown variant(s) {', '.join(map(repr, bad))}; use {', '.join(CONFIGS)}")
    return names


def arm_list(text: str) -> list[str]:
    """--arms: comma-separated keys of ARMS, at least one, no repeats."""
    names = [v.strip() for v in text.split(",")]
    bad = [v for v in names if v not in ARMS]
    if bad or not names or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"expected distinct arms from {', '.join(ARMS)}, got {text!r}")
    return names


def check_output(text: str) -> Path:
    """--out: a .json file, checked before any work (UserError otherwise)."""
    return output_file(text, "--out", (".json",), "train_throughput.json")


def painting_grams(vgg, style: torch.Tensor, weights: LossWeights) -> dict[str, torch.Tensor]:
    """The painting's Gram targets {layer: (1, C, C)}; style float (1, 3, H, W) RGB 0..255."""
    with torch.no_grad():
        features = vgg(style)
    return {layer: gram_matrix(features[layer].float()) for layer in weights.style_layers}


def plain_terms(vgg, grams: dict[str, torch.Tensor], output: torch.Tensor, batch: torch.Tensor,
                weights: LossWeights) -> dict[str, torch.Tensor]:
    """pytorch/examples' loss, written plainly: the photos through VGG-16 to its last layer, the output too.

    output, batch: float (B, 3, H, W) RGB 0..255. Returns the weighted {content, style, tv, total}."""
    with torch.no_grad():
        photo_f = vgg(batch)
    out_f = vgg(output)
    layer = weights.content_layer
    content = F.mse_loss(out_f[layer].float(), photo_f[layer].float())
    style = output.new_zeros((), dtype=torch.float32)
    for name, lw in weights.style_layers.items():
        g = gram_matrix(out_f[name].float())
        style = style + lw * F.mse_loss(g, grams[name].expand_as(g))
    terms = {"content": weights.content * content, "style": weights.style * style,
             "tv": weights.tv * total_variation(output.float())}
    terms["total"] = terms["content"] + terms["style"] + terms["tv"]
    return terms


def make_step(arm: Arm, model: torch.nn.Module, vgg, style: torch.Tensor, batch: torch.Tensor,
              weights: LossWeights, device: torch.device):
    """A closure running one optimiser step of ``arm`` on ``batch`` (float (B,3,H,W) RGB 0..255) and
    returning that step's total loss (computed before the update). ``model`` and ``vgg`` become the
    arm's own (they are changed in place: memory format)."""
    if arm.channels_last:
        model = model.to(memory_format=torch.channels_last)
        vgg = vgg.to(memory_format=torch.channels_last)
        batch = batch.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss = PerceptualLoss(vgg, style, weights) if arm.content_upto else None
    grams = None if arm.grams_every_step else painting_grams(vgg, style, weights)

    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16) if arm.bf16 else contextlib.nullcontext()

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            output = model(batch)
            if loss is not None:
                total = loss.terms(output, batch)["total"]
            else:
                targets = painting_grams(vgg, style, weights) if arm.grams_every_step else grams
                total = plain_terms(vgg, targets, output, batch, weights)["total"]
        total.backward()
        optimizer.step()
        return float(total.detach())

    return step


def alternate(steps: dict, warmup: int, timed: int, sync) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Run the step closures in turn, ``warmup`` untimed rounds then ``timed`` timed ones.

    Returns ({arm: [seconds of each timed step]}, {arm: loss of its first step})."""
    first = {name: step() for name, step in steps.items()}
    for _ in range(max(0, warmup - 1)):
        for step in steps.values():
            step()
    seconds = {name: [] for name in steps}
    for _ in range(timed):
        for name, step in steps.items():
            sync()
            started = time.perf_counter()
            step()
            sync()
            seconds[name].append(time.perf_counter() - started)
    return seconds, first


def summary(seconds: list[float], batch_size: int) -> dict:
    q1, median, q3 = np.percentile(seconds, [25, 50, 75])
    return {"steps": len(seconds), "median_s": round(float(median), 4), "q1_s": round(float(q1), 4),
            "q3_s": round(float(q3), 4), "images_per_s": round(batch_size / float(median), 3)}


def bench_variant(variant: str, arms: list[str], args, vgg, device) -> dict:
    weights = LossWeights()
    g = torch.Generator().manual_seed(0)
    batch = (torch.rand(args.batch_size, 3, args.size, args.size, generator=g) * 255).to(device)
    style = (torch.rand(1, 3, args.style_size, args.style_size, generator=g) * 255).to(device)
    torch.manual_seed(0)
    model = build_transformer(variant).to(device)
    steps = {key: make_step(ARMS[key], copy.deepcopy(model), copy.deepcopy(vgg), style, batch, weights, device)
             for key in arms}
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    seconds, first = alternate(steps, args.warmup, args.steps, sync)
    rows = []
    for key in arms:
        arm = ARMS[key]
        row = {"arm": key, "name": arm.name, "content_upto_relu2_2": arm.content_upto, "bf16": arm.bf16,
               "channels_last": arm.channels_last, "grams_every_step": arm.grams_every_step,
               "first_step_loss": round(first[key], 4), **summary(seconds[key], args.batch_size)}
        rows.append(row)
    base = rows[0]["median_s"]
    for row in rows:
        row["speedup_vs_first"] = round(base / row["median_s"], 3)
    return {"variant": variant, "params": sum(p.numel() for p in model.parameters()), "rows": rows}


def cpu_model() -> str:
    """The CPU's model name as lscpu gives it (platform's processor name where there is no lscpu)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or platform.machine()


def markdown_table(report: dict) -> str:
    """The lever table of a report: one row per variant and arm."""
    load = report["load_average_start"]
    lines = [f"Training step, {report['size']} px photos, batch {report['batch_size']}, painting at "
             f"{report['style_size']} px; {report['device']}; torch {report['torch']}; {report['steps']} timed steps "
             f"per arm, alternated, after {report['warmup_steps']} warm-up; load average at start "
             f"{load[0] if load else 'n/a'}, at end {report['load_average_end'][0] if report['load_average_end'] else 'n/a'}.",
             "", "| network | arm | s per step (median, q1-q3) | images/s | vs plain fp32 | loss of step 1 |",
             "|---|---|---|---|---|---|"]
    for result in report["results"]:
        for row in result["rows"]:
            lines.append(f"| {result['variant']} | {row['name']} | {row['median_s']:.3f} ({row['q1_s']:.3f}-"
                         f"{row['q3_s']:.3f}) | {row['images_per_s']:.2f} | {row['speedup_vs_first']:.2f}x | "
                         f"{row['first_step_loss']:.2f} |")
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("--variants", type=variant_list, default="full,lite",
                   help=f"comma list of transformer configurations ({', '.join(CONFIGS)})")
    p.add_argument("--arms", type=arm_list, default=",".join(DEFAULT_ARMS),
                   help=f"comma list of arms, the first is the baseline ({', '.join(ARMS)})")
    p.add_argument("--size", type=photo_size, default=256,
                   help=f"side of the square training photos: a multiple of 4 within {MIN_SIZE}..{MAX_SIZE}")
    p.add_argument("--style-size", type=int_at_least(MIN_SIZE, MAX_SIZE), default=384,
                   help=f"side of the square painting ({MIN_SIZE}..{MAX_SIZE})")
    p.add_argument("--batch-size", type=positive_int, default=4)
    p.add_argument("--warmup", type=non_negative_int, default=2, help="untimed steps of each arm first")
    p.add_argument("--steps", type=positive_int, default=6, help="timed steps of each arm")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--threads", type=positive_int, default=None)
    p.add_argument("--vgg-weights", default=None)
    p.add_argument("--out", default="benchmarks/results/train_throughput.json",
                   help="JSON file to write; the table goes beside it as .md")
    return p


def main(argv=None) -> int:
    return run_script(PROG, run, build_parser().parse_args(argv))


def run(args, vgg=None) -> int:
    """``vgg``: a loss network to use instead of loading VGG-16 (tests pass a small stand-in)."""
    out = check_output(args.out)
    device = pick_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if vgg is None:
        vgg = load_vgg16(LAYERS, args.vgg_weights)
    vgg = vgg.to(device)
    load_start = load_average()
    results = [bench_variant(v, args.arms, args, vgg, device) for v in args.variants]
    report = {
        "benchmark": "train_throughput",
        "device": torch.cuda.get_device_name(0) if device.type == "cuda"
        else f"{cpu_model()} CPU, {os.cpu_count()} cores, {torch.get_num_threads()} threads",
        "torch": torch.__version__, "size": args.size, "style_size": args.style_size, "batch_size": args.batch_size,
        "warmup_steps": args.warmup, "steps": args.steps, "order": "arms alternated step by step",
        "load_average_start": load_start, "load_average_end": load_average(), "results": results,
    }
    table = markdown_table(report)
    write_results(out, report, table)
    print(table, end="")
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
