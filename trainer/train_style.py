"""`stylecam-train style`: train a feed-forward style network on one painting, then export it.

Batches: float32 (B, 3, S, S), RGB, 0..255 (trainer/photos.py). The network maps them to
stylized images of the same shape (trainer/nets/transformer.py); the perceptual loss
(trainer/losses.py) compares both through one VGG-16 pass. Checkpoints hold the model,
the optimiser, the step and the full config; resuming continues bit-exactly on the CPU.
Launched with torchrun it trains data-parallel (DDP: NCCL on GPUs, gloo on CPU).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm import tqdm

from stylecam.argtypes import file_stem, int_at_least, non_negative_float, non_negative_int, positive_float, positive_int
from stylecam.contract import PADDING_MODES
from stylecam.errors import UserError
from stylecam.fileout import atomic_write_bytes, refuse_overwriting_inputs
from stylecam.folders import make_dirs
from stylecam.styles import default_weights_dir
from trainer.checkpoints import atomic_save, read_checkpoint
from trainer.common import (MAX_SIZE, MIN_SIZE, check_finite_loss, check_min_side, pick_device, save_loss_curve,
                            save_sample_sheet, writable_dir)
from trainer.export import export_style
from trainer.losses import LossWeights, PerceptualLoss
from trainer.nets.transformer import CONFIGS, TransformerConfig, TransformerNet, transformer_from_config
from trainer.nets.vgg import load_vgg16
from trainer.network_files import network_from_checkpoint, network_from_onnx
from trainer.paintings import painting_metadata
from trainer.photos import load_photo_set, load_rgb, make_batch


@dataclass(frozen=True)
class StyleTrainConfig:
    name: str                              # registry name of the style, e.g. "wave"
    style_image: str                       # path of the painting
    data: str                              # folder of training photos
    variant: str = "full"                  # network configuration: full | lite
    size: int = 256                        # training crop size (pixels, square)
    batch_size: int = 4                    # photos per step (global, over all DDP ranks)
    iterations: int = 2000                 # optimiser steps
    content_weight: float = 1.0            # weight of the relu2_2 content term
    style_weight: float = 1e5              # weight of the Gram style term
    tv_weight: float = 1e-7                # weight of total variation
    stability_weight: float = 0.0          # weight of the noise-stability term (0: off)
    stability_noise: float = 2.0           # std (grey levels) of the noise of the stability term
    style_size: int = 384                  # long side the painting is resized to for the Gram targets
    content_layer: str = "relu2_2"         # VGG layer of the content term
    style_layers: dict = field(default_factory=lambda: {"relu1_2": 1.0, "relu2_2": 1.0, "relu3_3": 1.0, "relu4_3": 1.0})
    lr: float = 1e-3                       # Adam learning rate
    seed: int = 0                          # seeds the init, the batch order and the crops
    padding: str = "reflect"               # padding mode of every conv
    holdout: int = 4                       # last N photos (sorted) kept out, shown in sample sheets
    checkpoint_every: int = 500            # steps between checkpoints + sample sheets
    log_every: int = 10                    # steps between loss-history entries
    out: str = ""                          # run folder (checkpoint, samples, curves); default runs/NAME[-lite]
    weights_dir: str = "weights"           # where the ONNX export goes
    vgg_weights: str | None = None         # local VGG-16 features state dict (else $STYLECAM_VGG16 / download)
    device: str = "auto"                   # auto | cpu | cuda
    init: str = ""                         # start from these weights (checkpoint.pt or style .onnx, same --config)
    precision: str = "auto"                # auto (bf16 on CUDA, fp32 on CPU) | fp32 | bf16 (autocast)
    painting: str = ""                     # metadata: painting title (default from the catalogue)
    artist: str = ""                       # metadata: artist
    year: str = ""                         # metadata: year
    source: str = ""                       # metadata: where the painting image came from
    licence: str = ""                      # metadata: copyright / licence note of the painting

    def run_dir(self) -> Path:
        return Path(self.out or f"runs/{self.name}{'' if self.variant == 'full' else '-' + self.variant}")

    def onnx_path(self) -> Path:
        return Path(self.weights_dir) / f"{self.name}{'' if self.variant == 'full' else '.lite'}.onnx"

    def loss_weights(self) -> LossWeights:
        return LossWeights(content=self.content_weight, style=self.style_weight, tv=self.tv_weight,
                           content_layer=self.content_layer, style_layers=dict(self.style_layers))

    def network_config(self) -> TransformerConfig:
        return replace(CONFIGS[self.variant], padding=self.padding)

    def metadata(self) -> dict[str, str]:
        """{painting, artist, year, licence, source} for the model's metadata (trainer/paintings.py)."""
        return painting_metadata(self.name, self.style_image, painting=self.painting, artist=self.artist,
                                 year=self.year, source=self.source, licence=self.licence)


def load_style_image(cfg: StyleTrainConfig) -> torch.Tensor:
    """The painting as float32 (1, 3, H, W), RGB, 0..255, long side = cfg.style_size."""
    image = load_rgb(cfg.style_image, long_side=cfg.style_size)
    check_min_side(image, f"--style-size {cfg.style_size}", f"the painting {Path(cfg.style_image).name}")
    return image[None].float()


def runtime_finds(folder: str | Path) -> bool:
    """Whether `stylecam` looks up style names in ``folder`` without --weights-dir."""
    try:
        return Path(folder).resolve() == default_weights_dir().resolve()
    except OSError:
        return False


def try_command(weights_dir: str | Path, name: str) -> str:
    """The `stylecam` command line that runs the style ``name`` just exported to ``weights_dir``."""
    where = "" if runtime_finds(weights_dir) else f"--weights-dir {shlex.quote(str(weights_dir))} "
    return f"stylecam {where}--style {name} photo.jpg"


@dataclass
class Trainer:
    """Everything one training run holds; ``step()`` does one optimiser step."""
    cfg: StyleTrainConfig
    model: torch.nn.Module          # TransformerNet (maybe wrapped in DDP)
    loss: PerceptualLoss
    optimizer: torch.optim.Optimizer
    photos: list                    # uint8 (3,H,W) training photos
    holdout: list                   # uint8 (3,H,W) held-out photos
    device: torch.device
    step_index: int = 0
    history: list = field(default_factory=list)
    rank: int = 0
    world: int = 1

    @property
    def net(self) -> TransformerNet:
        return self.model.module if hasattr(self.model, "module") else self.model

    def step(self) -> dict[str, float]:
        """One optimiser step on batch ``step_index`` (this rank's share of it).

        With a stability weight, the batch also goes through the network with sensor-like noise
        added, and the mean squared change of the output is penalised (grey levels squared)."""
        batch = make_batch(self.photos, self.step_index, self.cfg.batch_size, self.cfg.size, self.cfg.seed)
        batch = batch[self.rank::self.world].to(self.device)
        if self.device.type == "cuda":
            batch = batch.contiguous(memory_format=torch.channels_last)
        bf16 = self.cfg.precision == "bf16" or (self.cfg.precision == "auto" and self.device.type == "cuda")
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        stable = self.cfg.stability_weight > 0
        if stable:
            noisy = add_sensor_noise(batch, self.cfg.stability_noise, self.cfg.seed, self.step_index)
            batch_in = torch.cat([batch, noisy])
        with autocast:
            output = self.model(batch_in if stable else batch)
            if stable:
                output, output_noisy = output.chunk(2)
            terms = self.loss.terms(output, batch)
            if stable:
                terms["stability"] = self.cfg.stability_weight * stability_loss(output, output_noisy)
                terms["total"] = terms["total"] + terms["stability"]
        terms["total"].backward()
        self.optimizer.step()
        self.step_index += 1
        return {k: float(v.detach()) for k, v in terms.items()}

    def checkpoint(self) -> dict:
        return {"model": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
                "step": self.step_index, "config": asdict(self.cfg), "history": list(self.history),
                "network": self.net.config.to_dict(), "kind": "stylecam-style"}


def add_sensor_noise(batch: torch.Tensor, std: float, seed: int, step: int) -> torch.Tensor:
    """batch + Gaussian noise of ``std`` grey levels, clamped to 0..255; (B,3,H,W) float RGB.

    The noise depends only on (seed, step), so a resumed run draws the same noise."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + step)
    noise = torch.randn(batch.shape, generator=generator, dtype=torch.float32) * std
    return (batch + noise.to(batch.device, batch.dtype)).clamp(0.0, 255.0)


def stability_loss(output: torch.Tensor, output_noisy: torch.Tensor) -> torch.Tensor:
    """Mean squared difference (grey levels squared) between the outputs of a batch and of its noisy copy."""
    return (output.float() - output_noisy.float()).pow(2).mean()


def make_trainer(cfg: StyleTrainConfig, loss_net: torch.nn.Module | None = None,
                 resume: dict | None = None, rank: int = 0, world: int = 1) -> Trainer:
    """Build model, loss (Gram targets computed here, once), optimiser; restore ``resume`` if given."""
    if cfg.variant not in CONFIGS:
        raise UserError(f"unknown --config {cfg.variant!r}", f"use one of {', '.join(CONFIGS)}")
    if cfg.padding not in PADDING_MODES:
        raise UserError(f"unknown padding {cfg.padding!r}", f"use one of {', '.join(PADDING_MODES)}")
    if cfg.size % 4 or cfg.size < MIN_SIZE:
        raise UserError(f"--size {cfg.size} is not a multiple of 4 (>= {MIN_SIZE})", "use e.g. 256")
    if cfg.batch_size % world:
        raise UserError(f"--batch-size {cfg.batch_size} does not split over {world} processes",
                        "use a batch size divisible by the number of processes")
    device = pick_device(cfg.device)
    style = load_style_image(cfg)
    photos = load_photo_set(cfg.data, cfg.size, cfg.holdout)
    if photos.skipped and rank == 0:
        print(f"stylecam-train: skipped {len(photos.skipped)} file(s) that are not readable images "
              f"(first: {photos.skipped[0]})")
    torch.manual_seed(cfg.seed)
    model = transformer_from_config(cfg.network_config()).to(device)
    if cfg.init and resume is None:
        load_initial_weights(model, cfg.init)          # before VGG-16: a wrong --init fails at once
    if loss_net is None:
        layers = sorted({cfg.content_layer, *cfg.style_layers})
        loss_net = load_vgg16(layers, cfg.vgg_weights)
    loss = PerceptualLoss(loss_net.to(device), style.to(device), cfg.loss_weights()).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
        loss = loss.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    trainer = Trainer(cfg, model, loss, optimizer, photos.train, photos.holdout, device, rank=rank, world=world)
    if resume is not None:
        try:
            model.load_state_dict(resume["model"])
            optimizer.load_state_dict(resume["optimizer"])
        except (RuntimeError, KeyError, ValueError) as err:
            raise UserError(f"checkpoint does not fit a {cfg.variant} network: {str(err).splitlines()[0][:160]}",
                            "resume with the same --config it was trained with") from None
        trainer.step_index = int(resume["step"])
        trainer.history = list(resume.get("history", []))
    if world > 1:
        trainer.model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    return trainer


def load_initial_weights(model: torch.nn.Module, path: str) -> None:
    """Copy the weights of a style checkpoint.pt or fp32 style .onnx into ``model`` (same configuration).

    Used to fine-tune with the perceptual loss, e.g. a network distilled from another one.
    """
    if str(path).endswith(".onnx"):
        if not Path(path).is_file():
            raise UserError(f"--init model not found: {path}", "pass a style .onnx or checkpoint.pt")
        source, _ = network_from_onnx(path)
    else:
        source = network_from_checkpoint(read_checkpoint(path, required=("model", "network")))
    if source.config.to_dict() | {"padding": None} != model.config.to_dict() | {"padding": None}:
        raise UserError(f"--init {path} is a different network ({source.config.to_dict()})",
                        "pass weights of the same --config")
    model.load_state_dict(source.state_dict())


def _distributed() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment; initialises the process group."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return dist.get_rank(), dist.get_world_size()


def check_not_overwriting_inputs(cfg: StyleTrainConfig, resume: str | None, export: bool) -> None:
    """UserError when a file of the run (checkpoint, loss curve, report, exported model) is one of its
    inputs. The run's own checkpoint may be ``resume``: continuing a run updates its checkpoint."""
    inputs = {"--style-image": cfg.style_image, "--init": cfg.init, "--vgg-weights": cfg.vgg_weights}
    for name in ("checkpoint.pt", "loss_curve.png", "report.json"):
        refuse_overwriting_inputs(cfg.run_dir() / name, inputs, "--out folder")
    if export:
        refuse_overwriting_inputs(cfg.onnx_path(), {**inputs, "--resume": resume}, "--name or --weights-dir")


def train_style(cfg: StyleTrainConfig, loss_net: torch.nn.Module | None = None, resume: str | None = None,
                export: bool = True, progress: bool = True) -> dict:
    """Train (or continue) a style network. Returns a summary dict (paths, final losses, images/s)."""
    rank, world = _distributed()
    if rank == 0:
        check_not_overwriting_inputs(cfg, resume, export)
        run_dir = writable_dir(cfg.run_dir(), "--out")
        make_dirs(run_dir / "samples")
        if export:
            writable_dir(Path(cfg.weights_dir), "--weights-dir")
            if cfg.onnx_path().is_dir():
                raise UserError(f"{cfg.onnx_path()} is a folder, in the way of the model to export",
                                "move it away, or choose another --name or --weights-dir")
    else:
        run_dir = cfg.run_dir()
    ckpt = read_checkpoint(resume) if resume else None
    if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available()):
        cfg = replace(cfg, device=f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if world > 1 else "cuda")
    trainer = make_trainer(cfg, loss_net, ckpt, rank, world)
    ckpt_path = run_dir / "checkpoint.pt"
    bar = tqdm(total=cfg.iterations, initial=trainer.step_index, disable=not progress or rank != 0,
               desc=f"{cfg.name} ({cfg.variant})", unit="step", dynamic_ncols=True)
    started, first_step = time.perf_counter(), trainer.step_index
    interrupted = False
    try:
        while trainer.step_index < cfg.iterations:
            terms = trainer.step()
            check_finite_loss(terms, trainer.step_index)
            done = trainer.step_index - first_step
            speed = done * cfg.batch_size / max(time.perf_counter() - started, 1e-9)
            if trainer.step_index % cfg.log_every == 0 or trainer.step_index == cfg.iterations:
                trainer.history.append({"step": trainer.step_index, **terms, "images_per_s": speed})
            bar.update(1)
            bar.set_postfix(content=f"{terms['content']:.3g}", style=f"{terms['style']:.3g}",
                            tv=f"{terms['tv']:.2g}", img_s=f"{speed:.1f}")
            if rank == 0 and (trainer.step_index % cfg.checkpoint_every == 0 or trainer.step_index == cfg.iterations):
                atomic_save(trainer.checkpoint(), ckpt_path)
                if trainer.holdout:
                    save_sample_sheet(trainer.net, trainer.holdout, trainer.device,
                                      run_dir / "samples" / f"step_{trainer.step_index:06d}.png")
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    elapsed = time.perf_counter() - started
    summary = {"name": cfg.name, "variant": cfg.variant, "steps": trainer.step_index, "run_dir": str(run_dir),
               "checkpoint": str(ckpt_path), "images_per_s": (trainer.step_index - first_step) * cfg.batch_size / max(elapsed, 1e-9),
               "final": trainer.history[-1] if trainer.history else {}, "interrupted": interrupted, "world_size": world}
    if rank == 0:
        if interrupted:
            atomic_save(trainer.checkpoint(), ckpt_path)
            print(f"stylecam-train: interrupted at step {trainer.step_index}; checkpoint saved to {ckpt_path} "
                  f"(continue with --resume {ckpt_path})")
        if trainer.history:
            save_loss_curve(trainer.history, run_dir / "loss_curve.png", f"{cfg.name} ({cfg.variant})")
        if export and not interrupted:
            report = export_style(ckpt_path, cfg.onnx_path())
            summary["onnx"] = str(cfg.onnx_path())
            summary["export"] = report
        atomic_write_bytes(run_dir / "report.json",
                           json.dumps({"config": asdict(cfg), **summary}, indent=2, default=str).encode())
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    if interrupted:
        raise KeyboardInterrupt
    return summary


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = StyleTrainConfig(name="", style_image="", data="")
    size = int_at_least(MIN_SIZE, MAX_SIZE)
    what = p.add_argument_group("what to train")
    what.add_argument("--style-image", required=True, metavar="IMAGE", help="the painting (JPEG/PNG)")
    what.add_argument("--data", required=True, metavar="DIR",
                      help="folder of training photos (any JPEG/PNG, searched recursively)")
    what.add_argument("--name", required=True, type=file_stem,
                      help="style name: the model is written to WEIGHTS_DIR/NAME.onnx (NAME.lite.onnx for lite "
                           "networks) and run with `stylecam --style NAME`; letters, digits, '_', '-', '.'")
    what.add_argument("--config", dest="variant", choices=list(CONFIGS), default=d.variant,
                      help="network: full (best quality) or a lite one (fast enough for live video on a CPU)")
    what.add_argument("--init", default="", metavar="MODEL",
                      help="start from these weights (checkpoint.pt or fp32 style .onnx of the same --config), "
                           "e.g. a network made by `stylecam-train distill`, and fine-tune them "
                           "(default: random weights)")
    loss = p.add_argument_group("loss (weights are >= 0)")
    loss.add_argument("--content-weight", type=non_negative_float, default=d.content_weight,
                      help="weight of the content term (VGG relu2_2 of output vs photo): more keeps the photo's shapes")
    loss.add_argument("--style-weight", type=non_negative_float, default=d.style_weight,
                      help="weight of the style term (Gram matrices vs the painting): more paints harder")
    loss.add_argument("--tv-weight", type=non_negative_float, default=d.tv_weight,
                      help="weight of total variation: more gives smoother, less noisy output")
    loss.add_argument("--stability-weight", type=non_negative_float, default=d.stability_weight,
                      help="penalise output change under camera-like noise: less flicker on video; the shipped "
                           "mosaic and feathers were fine-tuned 300 steps at 0.05 (default: 0, off)")
    loss.add_argument("--stability-noise", type=non_negative_float, default=d.stability_noise, metavar="STD",
                      help="standard deviation of that noise, in grey levels (0..255)")
    loss.add_argument("--style-size", type=size, default=d.style_size, metavar="PIXELS",
                      help=f"long side the painting is resized to for the style targets ({MIN_SIZE}..{MAX_SIZE}); "
                           "larger paints larger brush strokes")
    opt = p.add_argument_group("optimisation")
    opt.add_argument("--size", type=size, default=d.size, metavar="PIXELS",
                     help=f"side of the square training crops ({MIN_SIZE}..{MAX_SIZE}, a multiple of 4)")
    opt.add_argument("--batch-size", type=positive_int, default=d.batch_size, metavar="N",
                     help="photos per step (over all processes under torchrun)")
    opt.add_argument("--iterations", type=positive_int, default=None, metavar="N",
                     help=f"optimiser steps in all; with --resume, the total to reach (default: {d.iterations})")
    opt.add_argument("--lr", type=positive_float, default=d.lr, help="Adam learning rate")
    opt.add_argument("--seed", type=non_negative_int, default=d.seed,
                     help="seeds the initial weights, the batch order and the crops (default: 0)")
    opt.add_argument("--padding", choices=PADDING_MODES, default=d.padding,
                     help="padding mode of every convolution (reflect avoids dark borders)")
    opt.add_argument("--device", choices=["auto", "cpu", "cuda"], default=d.device,
                     help="auto: cuda when PyTorch sees a GPU, else cpu")
    opt.add_argument("--precision", choices=["auto", "fp32", "bf16"], default=d.precision,
                     help="bf16 autocast halves the time on GPUs and on CPUs with AVX-512 BF16; "
                          "auto: bf16 on CUDA, fp32 on the CPU")
    opt.add_argument("--vgg-weights", default=None, metavar="PTH",
                     help="local VGG-16 features state dict (default: $STYLECAM_VGG16, else torchvision's download)")
    out = p.add_argument_group("output")
    out.add_argument("--out", default="", metavar="DIR",
                     help="run folder for checkpoint.pt, sample sheets, loss curve and report.json "
                          "(default: runs/NAME, or runs/NAME-CONFIG for lite networks)")
    out.add_argument("--weights-dir", default=d.weights_dir, metavar="DIR", help="folder the ONNX model is exported to")
    out.add_argument("--holdout", type=non_negative_int, default=d.holdout, metavar="N",
                     help="last N photos (sorted by name) kept out of training and shown in the sample sheets")
    out.add_argument("--checkpoint-every", type=positive_int, default=d.checkpoint_every, metavar="N",
                     help="steps between checkpoints and sample sheets (one is also written at the end)")
    out.add_argument("--log-every", type=positive_int, default=d.log_every, metavar="N",
                     help="steps between entries of the loss history (report.json, loss curve)")
    out.add_argument("--resume", default=None, metavar="CKPT",
                     help="continue a run from its checkpoint.pt (same --config; give the same options)")
    out.add_argument("--no-export", action="store_true", help="do not export to ONNX at the end")
    meta = p.add_argument_group("painting metadata stored in the model",
                                "default: from the catalogue of shipped styles when NAME is one of them, "
                                "else 'unknown'")
    for key, text in (("painting", "title of the painting"), ("artist", "who painted it"),
                      ("year", "when it was painted"),
                      ("source", "where the painting image came from (default: the --style-image file name)"),
                      ("licence", "copyright or licence note of the painting")):
        meta.add_argument(f"--{key}", default="", metavar="TEXT", help=text)


def config_from_args(args: argparse.Namespace) -> StyleTrainConfig:
    names = {f.name for f in fields(StyleTrainConfig)}
    values = {k: v for k, v in vars(args).items() if k in names and v is not None}
    return StyleTrainConfig(**values)


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    if args.resume:
        saved = read_checkpoint(args.resume)["config"]
        if saved.get("variant") != cfg.variant:
            raise UserError(f"checkpoint {args.resume} is a {saved.get('variant')} network, not {cfg.variant}",
                            f"pass --config {saved.get('variant')} or start a new run")
    summary = train_style(cfg, resume=args.resume, export=not args.no_export)
    print(f"stylecam-train: {summary['steps']} steps at {summary['images_per_s']:.1f} images/s; run folder {summary['run_dir']}")
    if "onnx" in summary:
        print(f"stylecam-train: exported {summary['onnx']} (max abs diff vs PyTorch "
              f"{summary['export']['max_abs_diff']:.3g}); try: {try_command(cfg.weights_dir, cfg.name)}")
    return 0
