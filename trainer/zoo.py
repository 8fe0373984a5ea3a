"""`stylecam-train zoo`: train the networks of several styles together, on one device, in a time budget.

One data pipeline feeds every style: a batch of crops (trainer/photo_pack.py: the photos held
on the device as one uint8 tensor, crops, flips and zoom made there) goes through each style's
network; the content features of the batch are computed once, up to the content layer
(relu2_2); all styles' outputs go through VGG-16 in ONE pass (trainer/losses.py MultiStyleLoss,
Grams and losses in float32). Each style has its own Adam optimiser and its own loss weights.
On CUDA the networks and VGG run in bf16 autocast and channels-last.

Batches depend only on (seed, step) and each network's initial weights only on (seed, its
name), so a style trained with others ends with the same weights as when trained alone.

Writes to --out, every --save-every seconds and at the end (all atomically):
  zoo.pt (or zoo.pt.part00 ... with --split-mib)  the bundle (trainer/zoo_bundle.py)
  losses.zip      one CSV loss log per style (step, content, style, tv, total)
  sheet.jpg       the held-out photos and every style's stylization of them
  summary.json    steps, crops seen per style, throughput over the first seconds, versions
"""
from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, fields
from pathlib import Path

import torch

from stylecam.argtypes import (file_stem, float_in, int_at_least, non_negative_float, non_negative_int,
                               positive_float, positive_int)
from stylecam.errors import UserError
from stylecam.fileout import atomic_write_bytes
from trainer.checkpoints import ensure_writable_dir
from trainer.common import MAX_SIZE, MIN_SIZE, pick_device
from trainer.gatys_batch import gatys_references
from trainer.losses import MultiStyleLoss
from trainer.nets.transformer import CONFIGS, transformer_from_config
from trainer.nets.vgg import load_vgg16
from trainer.photo_pack import PhotoPack, load_photo_pack
from trainer.photos import IMAGE_SUFFIXES, center_crop_multiple, load_rgb
from trainer.zoo_bundle import FORMAT, KIND, load_bundle, save_bundle, weights_for_saving, weights_for_training
from trainer.zoo_config import CONTENT_LAYER, ZooConfig, ZooStyle, environment, style_seed
from trainer.zoo_files import LOSS_COLUMNS, losses_zip, sheet_jpeg


class ZooTrainer:
    """K style networks, their optimisers, one MultiStyleLoss and one PhotoPack on one device."""

    def __init__(self, cfg: ZooConfig, pack: PhotoPack, loss_net: torch.nn.Module, device: torch.device,
                 resume: dict | None = None):
        if cfg.variant not in CONFIGS:
            raise UserError(f"unknown --config {cfg.variant!r}", f"use one of {', '.join(CONFIGS)}")
        self.cfg, self.device = cfg, device
        self.bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and device.type == "cuda")
        self.channels_last = device.type == "cuda"
        self.pack = pack.to(device)
        paintings = [load_painting(s) for s in cfg.styles]
        self.loss = MultiStyleLoss(loss_net.to(device), [p.to(device) for p in paintings],
                                   [s.loss_weights() for s in cfg.styles]).to(device)
        self.nets, self.optimizers = [], []
        for style in cfg.styles:
            torch.manual_seed(style_seed(cfg.seed, style.name))
            net = transformer_from_config(CONFIGS[cfg.variant]).to(device)
            if self.channels_last:
                net = net.to(memory_format=torch.channels_last)
            self.nets.append(net)
            self.optimizers.append(torch.optim.Adam(net.parameters(), lr=cfg.lr, fused=device.type == "cuda" or None))
        if self.channels_last:
            self.loss = self.loss.to(memory_format=torch.channels_last)
        self.step_index = 0
        self.seconds = 0.0
        self.histories = {s.name: [] for s in cfg.styles}
        self.crops_seen = {s.name: 0 for s in cfg.styles}
        if resume is not None:
            self.restore(resume)

    def restore(self, bundle: dict) -> None:
        """Weights (and optimiser state, when saved), counters and loss logs from a bundle."""
        for style, net, opt in zip(self.cfg.styles, self.nets, self.optimizers):
            saved = bundle["styles"][style.name]
            try:
                net.load_state_dict(weights_for_training(saved["weights"]))
                if "optimizer" in saved:
                    opt.load_state_dict(saved["optimizer"])
            except (RuntimeError, KeyError, ValueError) as err:
                raise UserError(f"the bundle's {style.name} weights do not fit a {self.cfg.variant} network: "
                                f"{str(err).splitlines()[0][:160]}", "resume with the bundle's own settings") from None
            self.histories[style.name] = list(saved.get("history", []))
            self.crops_seen[style.name] = int(saved.get("crops_seen", 0))
        self.step_index = int(bundle["step"])
        self.seconds = float(bundle.get("seconds", 0.0))

    def step(self) -> dict[str, torch.Tensor]:
        """One optimiser step of every style on batch ``step_index``; returns the (K,) loss terms (on the device)."""
        cfg = self.cfg
        batch = self.pack.batch(self.step_index, cfg.batch_size, cfg.size, cfg.seed, cfg.max_zoom)
        if self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=True)
        with autocast:
            content = self.loss.content_features(batch)
            outputs = torch.cat([net(batch) for net in self.nets])
            terms = self.loss.terms(outputs, content_features=content)
        terms["total"].sum().backward()
        for opt in self.optimizers:
            opt.step()
        self.step_index += 1
        for style in cfg.styles:
            self.crops_seen[style.name] += cfg.batch_size
        return {k: v.detach() for k, v in terms.items()}

    def log(self, terms: dict[str, torch.Tensor]) -> dict[str, dict[str, float]]:
        """Append the terms of the last step to every style's loss log; UserError when one is not finite."""
        values = torch.stack([terms[k] for k in LOSS_COLUMNS[1:]]).float().cpu().tolist()
        entries = {}
        for i, style in enumerate(self.cfg.styles):
            entry = {"step": self.step_index, **{k: values[j][i] for j, k in enumerate(LOSS_COLUMNS[1:])}}
            if not math.isfinite(entry["total"]):
                raise UserError(f"the loss of {style.name} became {entry['total']} at step {self.step_index}: "
                                "training diverged", "lower --lr or that style's weights; the last bundle is intact")
            self.histories[style.name].append(entry)
            entries[style.name] = entry
        return entries

    def bundle(self, extra: dict | None = None) -> dict:
        """The bundle dict of the current state (trainer/zoo_bundle.py)."""
        dtype = torch.float16 if self.cfg.weights_dtype == "fp16" else torch.float32
        styles = {}
        for style, net, opt in zip(self.cfg.styles, self.nets, self.optimizers):
            entry = {"settings": asdict(style), "network": net.config.to_dict(),
                     "weights": weights_for_saving(net.state_dict(), dtype), "weights_dtype": self.cfg.weights_dtype,
                     "crops_seen": self.crops_seen[style.name], "history": list(self.histories[style.name])}
            if self.cfg.save_optimizer:
                entry["optimizer"] = opt.state_dict()
            styles[style.name] = entry
        return {"kind": KIND, "format": FORMAT, "settings": self.cfg.settings(), "step": self.step_index,
                "seconds": self.seconds, "styles": styles, **(extra or {})}

    def stylize_holdout(self) -> list[tuple[str, torch.Tensor]]:
        """Every held-out photo, then each style's output of it: (label, uint8 (3,H,W) RGB) cells, row-major."""
        cells = []
        with torch.no_grad():
            for i, photo in enumerate(self.pack.holdout):
                photo = center_crop_multiple(photo)
                cells.append((f"photo {i}", photo))
                x = photo[None].float().to(self.device)
                for style, net in zip(self.cfg.styles, self.nets):
                    net.eval()
                    cells.append((style.name, net(x)[0].clamp(0, 255).round().to(torch.uint8).cpu()))
                    net.train()
        return cells


def load_painting(style: ZooStyle) -> torch.Tensor:
    """The painting as float32 (1, 3, H, W), RGB, 0..255, long side = style.style_size."""
    image = load_rgb(style.style_image, long_side=style.style_size)
    if min(image.shape[1:]) < MIN_SIZE:
        raise UserError(f"the painting {style.style_image} is {image.shape[2]}x{image.shape[1]} at style size "
                        f"{style.style_size}; VGG-16 needs at least {MIN_SIZE} pixels a side", "use a larger style size")
    return image[None].float()


class Throughput:
    """Images per second over the first ``window`` seconds after the first step (which pays the warm-up)."""

    def __init__(self, window: float, images_per_step: int):
        self.window, self.images_per_step = window, images_per_step
        self.start: float | None = None
        self.steps = 0
        self.result: dict | None = None

    def finish(self, now: float) -> dict | None:
        """The measurement over the steps there were, when the run ended before the window passed."""
        if self.result is None and self.steps and self.start is not None and now > self.start:
            seconds = now - self.start
            self.result = {"seconds": round(seconds, 3), "steps": self.steps,
                           "images_per_s": self.steps * self.images_per_step / seconds, "short_run": True}
        return self.result

    def update(self, now: float) -> dict | None:
        """Call after each step; returns the measurement once, when the window has passed."""
        if self.start is None:
            self.start = now
            return None
        self.steps += 1
        if self.result is None and now - self.start >= self.window:
            seconds = now - self.start
            self.result = {"seconds": round(seconds, 3), "steps": self.steps,
                           "images_per_s": self.steps * self.images_per_step / seconds}
            return self.result
        return None


def write_outputs(trainer: ZooTrainer, summary: dict) -> list[Path]:
    """Bundle, losses.zip, sheet.jpg and summary.json into --out (each written atomically)."""
    cfg = trainer.cfg
    out = Path(cfg.out)
    files = save_bundle(trainer.bundle({"throughput": summary.get("throughput") or {}}), out / "zoo.pt",
                        split_bytes=int(cfg.split_mib * 2 ** 20))
    atomic_write_bytes(out / "losses.zip", losses_zip(trainer.histories))
    if trainer.pack.holdout:
        atomic_write_bytes(out / "sheet.jpg", sheet_jpeg(trainer.stylize_holdout(), columns=1 + len(cfg.styles)))
    atomic_write_bytes(out / "summary.json", json.dumps(summary, indent=2).encode())
    return files


def train_zoo(cfg: ZooConfig, loss_net: torch.nn.Module | None = None, resume: dict | None = None,
              progress: bool = True, log=print) -> dict:
    """Train every style of ``cfg`` until --minutes or --steps; returns the summary (also in summary.json)."""
    if not cfg.minutes and not cfg.steps:
        raise UserError("no end given", "pass --minutes M (a wall-clock budget) and/or --steps N")
    if cfg.size % 4 or cfg.size < MIN_SIZE:
        raise UserError(f"--size {cfg.size} is not a multiple of 4 (>= {MIN_SIZE})", "use e.g. 256")
    device = pick_device(cfg.device)
    env = environment()
    log(f"stylecam-train zoo: torch {env['torch']} (CUDA {env['cuda']}), device {device}"
        + (f" ({env['gpu']})" if "gpu" in env else "") + f", {len(cfg.styles)} styles, precision "
        + ("bf16" if cfg.precision == "bf16" or (cfg.precision == "auto" and device.type == "cuda") else "fp32"))
    ensure_writable_dir(cfg.out)
    started = time.perf_counter()
    pack = load_photo_pack(cfg.data, cfg.size, cfg.holdout)
    if loss_net is None:
        layers = sorted({CONTENT_LAYER, *(layer for s in cfg.styles for layer in s.style_layers)})
        loss_net = load_vgg16(layers, cfg.vgg_weights)
    trainer = ZooTrainer(cfg, pack, loss_net, device, resume)
    log(f"stylecam-train zoo: {pack.count} photos on {device} as one uint8 tensor "
        f"({pack.images.numel() / 2 ** 20:.0f} MiB), set up in {time.perf_counter() - started:.1f} s")
    throughput = Throughput(cfg.throughput_seconds, cfg.batch_size * len(cfg.styles))
    summary = {"styles": [s.name for s in cfg.styles], "environment": env, "throughput": None}
    first_step = trainer.step_index
    budget = cfg.minutes * 60.0
    loop_start = last_save = time.perf_counter()
    seconds_before = trainer.seconds
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=cfg.steps or None, initial=trainer.step_index, desc="zoo", unit="step", dynamic_ncols=True)
        if log is print:
            log = tqdm.write                # messages above the bar, not inside it
    interrupted = False

    def fill_summary() -> dict:
        elapsed = time.perf_counter() - loop_start
        trainer.seconds = seconds_before + elapsed
        summary.update({"step": trainer.step_index, "steps_this_run": trainer.step_index - first_step,
                        "seconds_this_run": round(elapsed, 2), "seconds_total": round(trainer.seconds, 2),
                        "crops_seen": dict(trainer.crops_seen), "crop_size": cfg.size,
                        "final": {n: h[-1] for n, h in trainer.histories.items() if h}})
        return summary

    try:
        while True:
            now = time.perf_counter()
            if (cfg.steps and trainer.step_index >= cfg.steps) or (budget and now - loop_start >= budget):
                break
            terms = trainer.step()
            if trainer.step_index == first_step + 1 or trainer.step_index % cfg.log_every == 0:
                entries = trainer.log(terms)
                if trainer.step_index == first_step + 1:
                    log(f"stylecam-train zoo: first step done in {time.perf_counter() - loop_start:.1f} s, losses "
                        + ", ".join(f"{n} {e['total']:.4g}" for n, e in entries.items()))
            measured = throughput.update(time.perf_counter())
            if measured is not None:
                summary["throughput"] = measured
                rate = measured["images_per_s"] / len(cfg.styles)
                left = budget - (time.perf_counter() - loop_start) if budget else 0.0
                log(f"stylecam-train zoo: {measured['images_per_s']:.1f} images/s over {measured['seconds']:.0f} s "
                    f"({rate:.1f} crops/s per style)"
                    + (f"; at this rate each style sees about {trainer.crops_seen[cfg.styles[0].name] + rate * left:,.0f}"
                       f" crops in the budget" if budget else ""))
            if bar is not None:
                bar.update(1)
            if time.perf_counter() - last_save >= cfg.save_every:
                write_outputs(trainer, fill_summary())
                last_save = time.perf_counter()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if bar is not None:
            bar.close()
    last_logged = max((h[-1]["step"] for h in trainer.histories.values() if h), default=-1)
    if trainer.step_index > first_step and last_logged != trainer.step_index:
        trainer.log(terms)                  # the last step always ends the loss logs
    summary = fill_summary()
    summary["throughput"] = throughput.finish(time.perf_counter())
    summary["interrupted"] = interrupted
    summary["files"] = [str(p) for p in write_outputs(trainer, summary)]
    if cfg.gatys_photos and not interrupted:
        loss = trainer.loss.float().to(memory_format=torch.contiguous_format)
        summary["gatys"] = gatys_references(
            loss, [s.name for s in cfg.styles], cfg.gatys_photos, Path(cfg.out), steps=cfg.gatys_steps,
            size=cfg.gatys_size, minutes=cfg.gatys_minutes, log=log,
            settings={"loss_weights": {s.name: s.loss_weights().to_dict() for s in cfg.styles},
                      "style_size": {s.name: s.style_size for s in cfg.styles}})
        atomic_write_bytes(Path(cfg.out) / "summary.json", json.dumps(summary, indent=2).encode())
    if interrupted:
        log(f"stylecam-train zoo: interrupted at step {trainer.step_index}; bundle saved to {cfg.out} "
            f"(continue with --resume {Path(cfg.out) / 'zoo.pt'})")
        raise KeyboardInterrupt
    return summary


# ---- command line ----

def parse_overrides(items: list[str], names: list[str]) -> dict[str, dict]:
    """["wave.style_weight=2e5", ...] -> {"wave": {"style_weight": 2e5}}; UserError for a bad item."""
    kinds = {"style_weight": float, "content_weight": float, "tv_weight": float, "style_size": int}
    out: dict[str, dict] = {}
    for item in items:
        key, sep, value = item.partition("=")
        name, dot, setting = key.rpartition(".")
        if not sep or not dot or setting not in kinds:
            raise UserError(f"--set {item!r} is not NAME.SETTING=VALUE",
                            f"e.g. --set wave.style_weight=2e5; settings: {', '.join(kinds)}")
        if name not in names:
            raise UserError(f"--set {item!r}: {name!r} is not one of the styles trained", f"styles: {', '.join(names)}")
        try:
            number = kinds[setting](value)
        except ValueError:
            raise UserError(f"--set {item!r}: {value!r} is not a number", "e.g. --set wave.style_weight=2e5") from None
        if not math.isfinite(number) or number < 0 or (setting == "style_size" and not MIN_SIZE <= number <= MAX_SIZE):
            raise UserError(f"--set {item!r} is out of range", f"weights >= 0; style_size {MIN_SIZE}..{MAX_SIZE}")
        out.setdefault(name, {})[setting] = number
    return out


def find_paintings(folder: str | Path, names: list[str] | None) -> dict[str, Path]:
    """{name: painting file} of ``folder`` (NAME.jpg, .png, ...), all or the ``names`` asked for, in order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"painting folder not found: {folder}", "pass --styles-dir DIR holding NAME.jpg per style")
    found = {p.stem: p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES}
    if names is None:
        if not found:
            raise UserError(f"no paintings in {folder}", "put one NAME.jpg per style there")
        return found
    missing = [n for n in names if n not in found]
    if missing:
        raise UserError(f"no painting for {', '.join(missing)} in {folder}",
                        f"paintings there: {', '.join(found) or 'none'}")
    return {n: found[n] for n in names}


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = ZooConfig(styles=(), data="")
    s = ZooStyle(name="", style_image="")
    size = int_at_least(MIN_SIZE, MAX_SIZE)
    what = p.add_argument_group("what to train")
    what.add_argument("--styles-dir", metavar="DIR", help="folder of paintings, one NAME.jpg (or .png) per style")
    what.add_argument("--styles", type=lambda t: [file_stem(n) for n in t.split(",") if n], default=None,
                      metavar="A,B,...", help="styles to train (default: every painting in --styles-dir)")
    what.add_argument("--data", required=True, metavar="DIR", help="folder of training photos (searched recursively)")
    what.add_argument("--config", dest="variant", choices=list(CONFIGS), default=d.variant,
                      help="network of every style (full: the 1.68 M-parameter network)")
    what.add_argument("--resume", default=None, metavar="BUNDLE",
                      help="continue from a zoo.pt (or zoo.pt.part00): styles, networks and loss settings come "
                           "from the bundle; --minutes/--steps say how much more (--steps: the total to reach)")
    loss = p.add_argument_group("loss, every style (per style: --set NAME.SETTING=VALUE)")
    loss.add_argument("--style-weight", type=non_negative_float, default=s.style_weight, help="weight of the Gram term")
    loss.add_argument("--content-weight", type=non_negative_float, default=s.content_weight,
                      help="weight of the relu2_2 content term")
    loss.add_argument("--tv-weight", type=non_negative_float, default=s.tv_weight, help="weight of total variation")
    loss.add_argument("--style-size", type=size, default=s.style_size, metavar="PIXELS",
                      help="long side of the painting for the style targets; larger paints larger strokes")
    loss.add_argument("--set", action="append", default=[], metavar="NAME.SETTING=VALUE",
                      help="one style's setting (style_weight, content_weight, tv_weight, style_size), e.g. "
                           "--set wave.style_weight=2e5 (repeatable)")
    opt = p.add_argument_group("optimisation")
    opt.add_argument("--minutes", type=non_negative_float, default=d.minutes,
                     help="wall-clock budget of the training loop (set-up and the last save come on top)")
    opt.add_argument("--steps", type=non_negative_int, default=d.steps, metavar="N",
                     help="stop at this step (0: only --minutes)")
    opt.add_argument("--size", type=size, default=d.size, metavar="PIXELS", help="side of the square crops (x4)")
    opt.add_argument("--batch-size", type=positive_int, default=d.batch_size, metavar="N",
                     help="crops per step; every style sees the same crops")
    opt.add_argument("--lr", type=positive_float, default=d.lr, help="Adam learning rate")
    opt.add_argument("--seed", type=non_negative_int, default=d.seed,
                     help="seeds the crops and, with each style's name, its initial weights")
    opt.add_argument("--max-zoom", type=float_in(1.0, 4.0), default=d.max_zoom,
                     help="crops zoom into the photos by a random factor between 1 and this")
    opt.add_argument("--device", choices=["auto", "cpu", "cuda"], default=d.device, help="auto: cuda when there is one")
    opt.add_argument("--precision", choices=["auto", "fp32", "bf16"], default=d.precision,
                     help="auto: bf16 autocast + channels-last on CUDA, fp32 on the CPU")
    opt.add_argument("--vgg-weights", default=None, metavar="PTH",
                     help="local VGG-16 features state dict, possibly only up to relu4_3 and in float16 "
                          "(default: $STYLECAM_VGG16, else torchvision's download)")
    out = p.add_argument_group("output")
    out.add_argument("--out", default=d.out, metavar="DIR", help="folder for zoo.pt, losses.zip, sheet.jpg, summary.json")
    out.add_argument("--save-every", type=positive_float, default=d.save_every, metavar="SECONDS",
                     help="seconds between saves (a run cut off keeps its last save)")
    out.add_argument("--split-mib", type=non_negative_float, default=d.split_mib, metavar="MIB",
                     help="write the bundle in parts of at most this many MiB (zoo.pt.part00, ...; 0: one file)")
    out.add_argument("--weights-dtype", choices=["fp16", "fp32"], default=d.weights_dtype,
                     help="precision of the weights in the bundle")
    out.add_argument("--save-optimizer", action="store_true",
                     help="keep Adam's state in the bundle (an exact resume; three times the size)")
    out.add_argument("--holdout", type=non_negative_int, default=d.holdout, metavar="N",
                     help="last N photos (sorted) kept out of training, shown in sheet.jpg")
    out.add_argument("--log-every", type=positive_int, default=d.log_every, metavar="N", help="steps between loss-log entries")
    gatys = p.add_argument_group("Gatys references (after training, same losses; for `stylecam-train report`)")
    gatys.add_argument("--gatys-photos", default="", metavar="DIR",
                       help="optimise a Gatys image of every style for each photo here, one batch per photo, "
                            "into OUT/gatys.tar (default: none)")
    gatys.add_argument("--gatys-steps", type=positive_int, default=d.gatys_steps, metavar="N", help="L-BFGS steps")
    gatys.add_argument("--gatys-size", type=size, default=d.gatys_size, metavar="PIXELS",
                       help="long side of the photos (as `stylecam-train report --size`)")
    gatys.add_argument("--gatys-minutes", type=non_negative_float, default=d.gatys_minutes,
                       help="start no new photo after this many minutes (0: no limit)")
    out.add_argument("--throughput-seconds", type=positive_float, default=d.throughput_seconds, metavar="S",
                     help="throughput is measured over this many seconds after the first step")


def config_from_args(args: argparse.Namespace) -> tuple[ZooConfig, dict | None]:
    """The run's config (and the bundle to resume, if any) from the command line."""
    names = {f.name for f in fields(ZooConfig)} - {"styles"}
    values = {k: v for k, v in vars(args).items() if k in names and v is not None}
    if args.resume:
        bundle = load_bundle(args.resume)
        styles = tuple(ZooStyle(**entry["settings"]) for entry in bundle["styles"].values())
        kept = {k: v for k, v in bundle["settings"].items() if k in ("variant", "size", "batch_size", "lr", "seed",
                                                                    "max_zoom", "holdout")}
        return ZooConfig(styles=styles, **{**values, **kept}), bundle
    if not args.styles_dir:
        raise UserError("no paintings given", "pass --styles-dir DIR (and --styles A,B to pick some), or --resume BUNDLE")
    paintings = find_paintings(args.styles_dir, args.styles)
    overrides = parse_overrides(args.set, list(paintings))
    base = {"style_weight": args.style_weight, "content_weight": args.content_weight, "tv_weight": args.tv_weight,
            "style_size": args.style_size}
    styles = tuple(ZooStyle(name=n, style_image=str(p), **{**base, **overrides.get(n, {})}) for n, p in paintings.items())
    return ZooConfig(styles=styles, **values), None


def run(args: argparse.Namespace) -> int:
    cfg, bundle = config_from_args(args)
    summary = train_zoo(cfg, resume=bundle)
    crops = summary["crops_seen"]
    print(f"stylecam-train zoo: {summary['steps_this_run']} steps in {summary['seconds_this_run']:.0f} s "
          f"(step {summary['step']}); crops seen per style: " + ", ".join(f"{n} {c:,}" for n, c in crops.items()))
    print(f"stylecam-train zoo: wrote {', '.join(summary['files'])} and losses.zip, sheet.jpg, summary.json in {cfg.out}")
    return 0

