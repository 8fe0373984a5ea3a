"""Training throughput (images/s) of the style trainer vs a straightforward reference loop.

stylecam's step: one VGG-16 pass over the output serves all losses, the content targets are
computed without autograd and only up to relu2_2, the painting's Gram targets once per run,
bf16 autocast + channels-last where the hardware has them.
Reference step (same model, same losses, written the plain way): separate VGG passes for
the content photos, the output and the painting, Gram targets recomputed every step, fp32.
Both run in the same process on the same batches: warm-up steps, then a fixed number of
timed steps. Writes JSON.

    python -m benchmarks.train_throughput --vgg-weights ../shared/vgg16/vgg16_features_imagenet.pth \
        --out benchmarks/results/train_throughput_cpu.json
"""
from __future__ import annotations

import argparse
import contextlib
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from benchmarks.common import run_script, write_results
from stylecam.argtypes import int_at_least, non_negative_int, output_file, positive_int
from stylecam.errors import UserError
from trainer.losses import LossWeights, PerceptualLoss, gram_matrix, total_variation
from trainer.nets.transformer import CONFIGS, build_transformer
from trainer.nets.vgg import load_vgg16

PROG = "train_throughput.py"
LAYERS = ["relu1_2", "relu2_2", "relu3_3", "relu4_3"]
MIN_SIZE, MAX_SIZE = 16, 4096   # VGG-16's poolings need 16 pixels; the transformer needs a multiple of 4


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


def pick_device(name: str) -> torch.device:
    """auto -> cuda when available, else cpu; cuda without a GPU is a UserError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda asked for, but PyTorch sees no CUDA GPU", "use --device cpu or auto")
    return torch.device(name)


def check_output(text: str) -> Path:
    """--out: a .json file, checked before any work (UserError otherwise)."""
    return output_file(text, "--out", (".json",), "train_throughput.json")


def reference_step(model, vgg, optimizer, batch, style, weights: LossWeights) -> float:
    """The plain loop: three VGG passes, Gram targets recomputed, fp32."""
    optimizer.zero_grad(set_to_none=True)
    output = model(batch)
    with torch.no_grad():
        content_f = vgg(batch)
        style_f = vgg(style)
    out_f = vgg(output)
    content = F.mse_loss(out_f[weights.content_layer], content_f[weights.content_layer])
    style_loss = 0.0
    for layer, lw in weights.style_layers.items():
        g = gram_matrix(out_f[layer])
        style_loss = style_loss + lw * F.mse_loss(g, gram_matrix(style_f[layer]).expand_as(g))
    total = weights.content * content + weights.style * style_loss + weights.tv * total_variation(output)
    total.backward()
    optimizer.step()
    return float(total.detach())


def stylecam_step(model, loss, optimizer, batch, device, bf16: bool) -> float:
    """stylecam's step (as in trainer.train_style.Trainer.step)."""
    optimizer.zero_grad(set_to_none=True)
    ctx = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    with ctx:
        total = loss(model(batch), batch)
    total.backward()
    optimizer.step()
    return float(total.detach())


def measure(step, warmup: int, steps: int, batch_size: int, device) -> dict:
    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {"steps": steps, "seconds": seconds, "images_per_s": steps * batch_size / seconds}


def bench_variant(variant: str, args, vgg, device) -> dict:
    weights = LossWeights()
    g = torch.Generator().manual_seed(0)
    batch = (torch.rand(args.batch_size, 3, args.size, args.size, generator=g) * 255).to(device)
    style = (torch.rand(1, 3, args.style_size, args.style_size, generator=g) * 255).to(device)
    bf16 = args.precision == "bf16"

    torch.manual_seed(0)
    ref_model = build_transformer(variant).to(device)
    ref_opt = torch.optim.Adam(ref_model.parameters(), lr=1e-3)
    reference = measure(lambda: reference_step(ref_model, vgg, ref_opt, batch, style, weights),
                        args.warmup, args.steps, args.batch_size, device)

    torch.manual_seed(0)
    model = build_transformer(variant).to(device)
    loss = PerceptualLoss(vgg, style, weights).to(device)
    fast_batch = batch
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
        loss = loss.to(memory_format=torch.channels_last)
        fast_batch = batch.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    ours = measure(lambda: stylecam_step(model, loss, opt, fast_batch, device, bf16),
                   args.warmup, args.steps, args.batch_size, device)
    return {"variant": variant, "reference": reference, "stylecam": ours,
            "speedup": ours["images_per_s"] / reference["images_per_s"]}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("--variants", type=variant_list, default="full,lite",
                   help=f"comma list of transformer configurations ({', '.join(CONFIGS)})")
    p.add_argument("--size", type=photo_size, default=256,
                   help=f"side of the square training photos: a multiple of 4 within {MIN_SIZE}..{MAX_SIZE}")
    p.add_argument("--style-size", type=int_at_least(MIN_SIZE, MAX_SIZE), default=384,
                   help=f"side of the square painting ({MIN_SIZE}..{MAX_SIZE})")
    p.add_argument("--batch-size", type=positive_int, default=4)
    p.add_argument("--warmup", type=non_negative_int, default=2, help="untimed steps first")
    p.add_argument("--steps", type=positive_int, default=5, help="timed steps")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--threads", type=positive_int, default=None)
    p.add_argument("--vgg-weights", default=None)
    p.add_argument("--out", default="benchmarks/results/train_throughput.json")
    return p


def main(argv=None) -> int:
    return run_script(PROG, run, build_parser().parse_args(argv))


def run(args) -> int:
    out = check_output(args.out)
    device = pick_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    vgg = load_vgg16(LAYERS, args.vgg_weights).to(device)
    results = [bench_variant(v, args, vgg, device) for v in args.variants]
    report = {
        "benchmark": "train_throughput", "device": torch.cuda.get_device_name(0) if device.type == "cuda"
        else f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads",
        "torch": torch.__version__, "size": args.size, "style_size": args.style_size, "batch_size": args.batch_size,
        "warmup_steps": args.warmup, "precision": args.precision, "channels_last": args.channels_last,
        "results": results,
    }
    write_results(out, report)
    for r in results:
        print(f"{r['variant']:5s} stylecam {r['stylecam']['images_per_s']:7.2f} img/s   reference "
              f"{r['reference']['images_per_s']:7.2f} img/s   x{r['speedup']:.2f}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
