"""`stylecam-train distill`: teach a smaller/faster network to reproduce a trained style model.

The teacher is a shipped fp32 style ONNX file (or a style checkpoint.pt); the student is a
fresh network of another configuration (by default the current ``lite``). Both see the same
random crops of the training photos, float32 (B, 3, S, S), RGB, 0..255; the student learns
the teacher's clamped output with an L1 loss on pixels plus an L1 loss on horizontal and
vertical pixel differences (which keeps brush-stroke texture sharp). No VGG pass is needed,
so this is many times cheaper than training the style from scratch, and the student keeps
the look the teacher was tuned to. The ONNX file it writes carries the teacher's painting
metadata plus the distillation settings and the student's PSNR against the teacher.
"""
from __future__ import annotations

import argparse
import json
import math
import shlex
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import torch
from tqdm import tqdm

from stylecam import contract
from stylecam.argtypes import int_at_least, non_negative_float, non_negative_int, positive_float, positive_int
from stylecam.errors import UserError
from stylecam.fileout import atomic_write_bytes, refuse_overwriting_inputs
from stylecam.folders import make_dirs
from stylecam.styles import is_path_like
from trainer.checkpoints import atomic_save, ensure_writable_file, read_checkpoint
from trainer.common import MIN_SIZE, check_finite_loss, pick_device, save_loss_curve, save_sample_sheet, writable_dir
from trainer.export import export_style
from trainer.metadata import style_metadata
from trainer.nets.transformer import CONFIGS, transformer_from_config
from trainer.network_files import network_from_checkpoint, network_from_onnx
from trainer.photos import center_crop_multiple, load_photo_set, make_batch


@dataclass(frozen=True)
class DistillConfig:
    teacher: str                       # fp32 style .onnx (or checkpoint.pt) to imitate
    data: str                          # folder of training photos
    variant: str = "lite"              # student network configuration (see trainer/nets/transformer.py)
    size: int = 256                    # training crop size (pixels, square, multiple of 4)
    batch_size: int = 8                # photos per step
    iterations: int = 1500             # optimiser steps
    lr: float = 2e-3                   # Adam learning rate (cosine decay to 5 % of it)
    edge_weight: float = 1.0           # weight of the L1 loss on pixel differences
    seed: int = 0                      # seeds the init, the batch order and the crops
    holdout: int = 4                   # last N photos (sorted) kept out: sample sheets and PSNR
    checkpoint_every: int = 500        # steps between checkpoints + sample sheets
    log_every: int = 10                # steps between loss-history entries
    out: str = ""                      # run folder; default runs/NAME-distill-VARIANT
    output: str = ""                   # ONNX to write; default weights/NAME.VARIANT.onnx (or NAME.onnx for full)
    device: str = "auto"               # auto | cpu | cuda
    precision: str = "auto"            # student autocast: auto (bf16 on CUDA, fp32 on CPU) | fp32 | bf16


def distill_loss(student: torch.Tensor, teacher: torch.Tensor, edge_weight: float = 1.0) -> dict[str, torch.Tensor]:
    """L1 on pixels and on x/y differences; images (B,3,H,W) 0..255, losses in 0..1 units.

    Returns {"pixel", "edge", "total"} (scalars); total = pixel + edge_weight * edge.
    """
    s, t = student / 255.0, teacher / 255.0
    pixel = (s - t).abs().mean()
    dx = ((s[..., :, 1:] - s[..., :, :-1]) - (t[..., :, 1:] - t[..., :, :-1])).abs().mean()
    dy = ((s[..., 1:, :] - s[..., :-1, :]) - (t[..., 1:, :] - t[..., :-1, :])).abs().mean()
    edge = (dx + dy) / 2
    return {"pixel": pixel, "edge": edge, "total": pixel + edge_weight * edge}


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of two images in 0..255 (inf when identical)."""
    mse = float(((a.double() - b.double()) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


def learning_rate(step: int, cfg: DistillConfig) -> float:
    """Cosine decay from cfg.lr to 5 % of it over cfg.iterations (step 0-based)."""
    progress = min(step / max(cfg.iterations, 1), 1.0)
    return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


def load_teacher(path: str) -> tuple[torch.nn.Module, dict[str, str]]:
    """The teacher network (eval, frozen) and its style metadata, from a style .onnx or checkpoint.pt."""
    if str(path).endswith(".onnx"):
        if not Path(path).is_file():
            raise UserError(f"teacher model not found: {path}", "pass a style model such as weights/wave.onnx")
        net, meta = network_from_onnx(path)
    else:
        ckpt = read_checkpoint(path, required=("model", "config", "step", "network"))
        net = network_from_checkpoint(ckpt)
        meta = style_metadata(ckpt, net.config.padding, "fp32")
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval(), meta


@dataclass
class Distiller:
    """Student, frozen teacher, optimiser and photos; ``step()`` does one optimiser step."""
    cfg: DistillConfig
    student: torch.nn.Module
    teacher: torch.nn.Module
    teacher_metadata: dict
    optimizer: torch.optim.Optimizer
    photos: list                      # uint8 (3,H,W) training photos
    holdout: list                     # uint8 (3,H,W) held-out photos
    device: torch.device
    step_index: int = 0
    history: list = field(default_factory=list)

    def step(self) -> dict[str, float]:
        batch = make_batch(self.photos, self.step_index, self.cfg.batch_size, self.cfg.size, self.cfg.seed).to(self.device)
        with torch.no_grad():
            target = self.teacher(batch).clamp(0, 255)
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(self.step_index, self.cfg)
        self.student.train()
        self.optimizer.zero_grad(set_to_none=True)
        bf16 = self.cfg.precision == "bf16" or (self.cfg.precision == "auto" and self.device.type == "cuda")
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16):
            output = self.student(batch)
        terms = distill_loss(output.float(), target, self.cfg.edge_weight)
        terms["total"].backward()
        self.optimizer.step()
        self.step_index += 1
        return {k: float(v.detach()) for k, v in terms.items()}

    def holdout_psnr(self) -> float:
        """Mean PSNR (dB) of student vs teacher over the held-out photos at their own size."""
        self.student.eval()
        values = []
        with torch.no_grad():
            for img in self.holdout:
                x = center_crop_multiple(img)[None].float().to(self.device)
                values.append(psnr(self.student(x).clamp(0, 255).round(), self.teacher(x).clamp(0, 255).round()))
        return sum(values) / max(len(values), 1)

    def checkpoint(self) -> dict:
        return {"model": self.student.state_dict(), "optimizer": self.optimizer.state_dict(), "step": self.step_index,
                "config": asdict(self.cfg), "history": list(self.history), "network": self.student.config.to_dict(),
                "kind": "stylecam-distilled", "teacher_metadata": self.teacher_metadata}


def style_name(meta: dict[str, str]) -> str:
    return meta.get(contract.KEY_NAME, "style")


def default_output(cfg: DistillConfig, meta: dict[str, str]) -> Path:
    name = style_name(meta)
    return Path(cfg.output or f"weights/{name}{'' if cfg.variant == 'full' else '.lite'}.onnx")


def make_distiller(cfg: DistillConfig, resume: dict | None = None) -> Distiller:
    """Validate the config, load teacher and photos, build the student (restoring ``resume`` if given)."""
    if cfg.variant not in CONFIGS:
        raise UserError(f"unknown --config {cfg.variant!r}", f"use one of {', '.join(CONFIGS)}")
    if cfg.size % 4 or cfg.size < MIN_SIZE:
        raise UserError(f"--size {cfg.size} is not a multiple of 4 (>= {MIN_SIZE})", "use e.g. 256")
    if cfg.batch_size < 1 or cfg.iterations < 1:
        raise UserError("--batch-size and --iterations must be at least 1", "use e.g. --batch-size 8 --iterations 1500")
    device = pick_device(cfg.device)
    teacher, meta = load_teacher(cfg.teacher)
    photos = load_photo_set(cfg.data, cfg.size, cfg.holdout)
    torch.manual_seed(cfg.seed)
    student = transformer_from_config(replace(CONFIGS[cfg.variant], padding=teacher.config.padding)).to(device)
    optimizer = torch.optim.Adam(student.parameters(), lr=cfg.lr)
    distiller = Distiller(cfg, student, teacher.to(device), meta, optimizer, photos.train, photos.holdout, device)
    if resume is not None:
        try:
            student.load_state_dict(resume["model"])
            optimizer.load_state_dict(resume["optimizer"])
        except (RuntimeError, KeyError, ValueError) as err:
            raise UserError(f"checkpoint does not fit a {cfg.variant} network: {str(err).splitlines()[0][:160]}",
                            "resume with the same --config it was started with") from None
        distiller.step_index = int(resume["step"])
        distiller.history = list(resume.get("history", []))
    return distiller


def distill(cfg: DistillConfig, resume: str | None = None, export: bool = True, progress: bool = True) -> dict:
    """Run (or continue) a distillation; export the student. Returns a summary dict."""
    if export and cfg.output:                        # before any work: a bad -o fails now, not after training
        refuse_overwriting_inputs(cfg.output, {"TEACHER": cfg.teacher, "--resume": resume}, "-o")
        ensure_writable_file(cfg.output, "-o")
    ckpt = read_checkpoint(resume, required=("model", "config", "step", "network", "teacher_metadata"),
                           written_by="stylecam-train distill") if resume else None
    distiller = make_distiller(cfg, ckpt)
    name = style_name(distiller.teacher_metadata)
    run_path = Path(cfg.out or f"runs/{name}-distill-{cfg.variant}")
    output = default_output(cfg, distiller.teacher_metadata)
    for path in (run_path / "checkpoint.pt", run_path / "loss_curve.png", run_path / "report.json"):
        refuse_overwriting_inputs(path, {"TEACHER": cfg.teacher}, "--out folder")
    if export:
        refuse_overwriting_inputs(output, {"TEACHER": cfg.teacher, "--resume": resume}, "-o")
    run_dir = writable_dir(run_path, "--out")
    make_dirs(run_dir / "samples")
    if export:
        ensure_writable_file(output, "-o")
    ckpt_path = run_dir / "checkpoint.pt"
    bar = tqdm(total=cfg.iterations, initial=distiller.step_index, disable=not progress,
               desc=f"{name} -> {cfg.variant}", unit="step", dynamic_ncols=True)
    started, first_step, interrupted = time.perf_counter(), distiller.step_index, False
    try:
        while distiller.step_index < cfg.iterations:
            terms = distiller.step()
            check_finite_loss(terms, distiller.step_index)
            speed = (distiller.step_index - first_step) * cfg.batch_size / max(time.perf_counter() - started, 1e-9)
            if distiller.step_index % cfg.log_every == 0 or distiller.step_index == cfg.iterations:
                distiller.history.append({"step": distiller.step_index, **terms, "images_per_s": speed})
            bar.update(1)
            bar.set_postfix(l1=f"{terms['pixel']:.4f}", edge=f"{terms['edge']:.4f}", img_s=f"{speed:.1f}")
            if distiller.step_index % cfg.checkpoint_every == 0 or distiller.step_index == cfg.iterations:
                atomic_save(distiller.checkpoint(), ckpt_path)
                if distiller.holdout:
                    save_sample_sheet(distiller.student, distiller.holdout, distiller.device,
                                      run_dir / "samples" / f"step_{distiller.step_index:06d}.png")
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    elapsed = time.perf_counter() - started
    summary = {"name": name, "variant": cfg.variant, "steps": distiller.step_index, "run_dir": str(run_dir),
               "checkpoint": str(ckpt_path), "seconds": round(elapsed, 1),
               "images_per_s": (distiller.step_index - first_step) * cfg.batch_size / max(elapsed, 1e-9),
               "final": distiller.history[-1] if distiller.history else {}, "interrupted": interrupted}
    if interrupted:
        atomic_save(distiller.checkpoint(), ckpt_path)
        print(f"stylecam-train: interrupted at step {distiller.step_index}; checkpoint saved to {ckpt_path} "
              f"(continue with --resume {ckpt_path})")
        raise KeyboardInterrupt
    if distiller.holdout:
        summary["psnr_vs_teacher_db"] = round(distiller.holdout_psnr(), 2)
    saved = {**distiller.checkpoint(), "psnr_vs_teacher_db": summary.get("psnr_vs_teacher_db")}
    atomic_save(saved, ckpt_path)
    if distiller.history:
        save_loss_curve_l1(distiller.history, run_dir / "loss_curve.png", f"{name}: {cfg.variant} from teacher")
    if export:
        summary["export"] = export_style(ckpt_path, output)
        summary["onnx"] = str(output)
    atomic_write_bytes(run_dir / "report.json", json.dumps({"config": asdict(cfg), **summary}, indent=2, default=str).encode())
    return summary


def save_loss_curve_l1(history: list[dict], path: Path, title: str) -> Path:
    """Loss curve of a distillation (pixel, edge, total), drawn by common.save_loss_curve."""
    rows = [{"step": h["step"], "total": h["total"], "content": h["pixel"], "style": h["edge"], "tv": float("nan")}
            for h in history]
    return save_loss_curve(rows, path, title + " (content = pixel L1, style = edge L1)")


def try_command(output: str | Path) -> str:
    """The `stylecam` command line that runs the model just written to ``output``: by file, since a
    style name could pick another model of the same name (e.g. the shipped one)."""
    spec = str(output)
    if not is_path_like(spec):
        spec = f"./{spec}"
    return f"stylecam --style {shlex.quote(spec)} photo.jpg"


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = DistillConfig(teacher="", data="")
    p.add_argument("teacher", help="trained style model to imitate: an fp32 style .onnx (e.g. weights/wave.lite.onnx, "
                                   "not an int8 or fp16 copy) or a checkpoint.pt of `stylecam-train style`")
    p.add_argument("--data", required=True, metavar="DIR",
                   help="folder of training photos (any JPEG/PNG, searched recursively)")
    p.add_argument("--config", dest="variant", choices=list(CONFIGS), default=d.variant,
                   help="network of the student")
    p.add_argument("-o", "--output", default="", metavar="FILE",
                   help="ONNX model to write (default: weights/NAME.lite.onnx, or weights/NAME.onnx for --config "
                        "full, NAME being the teacher's style name; refused when that is the teacher itself)")
    p.add_argument("--size", type=int_at_least(MIN_SIZE), default=d.size, metavar="PIXELS",
                   help=f"side of the square training crops (>= {MIN_SIZE}, a multiple of 4)")
    p.add_argument("--batch-size", type=positive_int, default=d.batch_size, metavar="N", help="photos per step")
    p.add_argument("--iterations", type=positive_int, default=d.iterations, metavar="N",
                   help="optimiser steps in all; with --resume, the total to reach")
    p.add_argument("--lr", type=positive_float, default=d.lr,
                   help="Adam learning rate at the start; it decays along a cosine to 5 %% of it")
    p.add_argument("--edge-weight", type=non_negative_float, default=d.edge_weight,
                   help="weight of the L1 loss on pixel differences (keeps brush strokes sharp; 0: pixels only)")
    p.add_argument("--seed", type=non_negative_int, default=d.seed,
                   help="seeds the initial weights, the batch order and the crops (default: 0)")
    p.add_argument("--holdout", type=non_negative_int, default=d.holdout, metavar="N",
                   help="last N photos (sorted by name) kept out of training: sample sheets and PSNR vs the teacher")
    p.add_argument("--checkpoint-every", type=positive_int, default=d.checkpoint_every, metavar="N",
                   help="steps between checkpoints and sample sheets (one is also written at the end)")
    p.add_argument("--log-every", type=positive_int, default=d.log_every, metavar="N",
                   help="steps between entries of the loss history (report.json, loss curve)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default=d.device,
                   help="auto: cuda when PyTorch sees a GPU, else cpu")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], default=d.precision,
                   help="autocast of the student: bf16 is ~1.7x faster on CPUs with AVX-512 BF16; "
                        "auto: bf16 on CUDA, fp32 on the CPU")
    p.add_argument("--out", default="", metavar="DIR",
                   help="run folder for checkpoint.pt, sample sheets, loss curve and report.json "
                        "(default: runs/NAME-distill-CONFIG)")
    p.add_argument("--resume", default=None, metavar="CKPT", help="continue from the run's checkpoint.pt")
    p.add_argument("--no-export", action="store_true", help="do not export to ONNX at the end")


def run(args: argparse.Namespace) -> int:
    names = {f.name for f in fields(DistillConfig)}
    cfg = DistillConfig(**{k: v for k, v in vars(args).items() if k in names and v is not None})
    summary = distill(cfg, resume=args.resume, export=not args.no_export)
    print(f"stylecam-train: {summary['steps']} steps in {summary['seconds']} s; "
          f"PSNR vs teacher on held-out photos {summary.get('psnr_vs_teacher_db', 'n/a')} dB; run folder {summary['run_dir']}")
    if "onnx" in summary:
        print(f"stylecam-train: exported {summary['onnx']}; "
              f"try: {try_command(summary['onnx'])}")
    return 0
