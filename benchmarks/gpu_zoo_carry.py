"""Build the compact, git-ignored folder that benchmarks/gpu_zoo.sh needs on a GPU machine.

A borrowed GPU machine receives the checkout's tracked files plus the folders named to travel,
64 MiB in all. This writes, from the data folder beside the checkout (../shared by default):

  vgg16_relu4_3_fp16.pth   VGG-16 convolutions up to relu4_3, float16 (the losses use no deeper layer)
  train/                   the training photos, re-encoded as JPEG at the highest quality that fits
  styles/NAME.jpg          the paintings, long side at most --painting-side
  content/NN_NAME.png      the report's photos exactly as `stylecam-train report` loads them
                           (long side --gatys-size, cropped to x4), lossless, for the Gatys references
  MANIFEST.json            sources, sizes, the JPEG quality chosen, and what the whole transfer weighs

Usage (from the repository root): python -m benchmarks.gpu_zoo_carry [--shared ../shared] [--out .gpu_zoo] [--limit-mib 64]
"""
from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from pathlib import Path

import torch
from PIL import Image

from trainer.nets.vgg import VGG16_LAYERS
from trainer.photos import IMAGE_SUFFIXES

ROOT = Path(__file__).resolve().parents[1]

MIB = 2 ** 20


def tracked_bytes(root: Path = ROOT) -> int:
    """Bytes of the checkout's tracked files (what travels besides the carried folders)."""
    names = subprocess.run(["git", "ls-files", "-z"], cwd=root, check=True, capture_output=True).stdout.split(b"\0")
    return sum((root / n.decode()).stat().st_size for n in names if n and (root / n.decode()).is_file())


def vgg_up_to(state: dict, layer: str = "relu4_3") -> dict[str, torch.Tensor]:
    """The float16 tensors of torchvision's vgg16().features state dict up to ``layer``'s conv."""
    depth = VGG16_LAYERS[layer]
    return {k: v.half().clone() for k, v in state.items() if int(k.split(".")[0]) < depth}


def jpeg(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, optimize=True)
    return buffer.getvalue()


def encode_photos(files: list[Path], budget: int) -> tuple[dict[str, bytes], int]:
    """{name: JPEG bytes} at the highest quality (95 down to 50) whose total fits ``budget`` bytes."""
    images = [(f.name, Image.open(f).convert("RGB")) for f in files]
    low, high, best = 50, 95, None
    while low <= high:                           # the size grows with the quality: bisect
        quality = (low + high) // 2
        encoded = {Path(n).with_suffix(".jpg").name: jpeg(img, quality) for n, img in images}
        if sum(map(len, encoded.values())) <= budget:
            best, low = (encoded, quality), quality + 1
        else:
            high = quality - 1
    if best is None:
        raise SystemExit(f"the {len(files)} photos do not fit {budget / MIB:.1f} MiB even at JPEG quality 50")
    return best


def build(shared: Path, out: Path, limit_mib: float, margin_mib: float, painting_side: int, gatys_size: int) -> dict:
    from trainer.report import list_photos, load_photo
    out.mkdir(parents=True, exist_ok=True)
    for sub in ("train", "styles", "content"):
        (out / sub).mkdir(exist_ok=True)
        for old in (out / sub).iterdir():
            old.unlink()
    state = torch.load(shared / "vgg16" / "vgg16_features_imagenet.pth", map_location="cpu", weights_only=True)
    torch.save(vgg_up_to(state), out / "vgg16_relu4_3_fp16.pth")
    for painting in sorted((shared / "data" / "styles").glob("*.jpg")):
        image = Image.open(painting).convert("RGB")
        image.thumbnail((painting_side, painting_side), Image.LANCZOS)
        (out / "styles" / painting.name).write_bytes(jpeg(image, 92))
    for i, photo in enumerate(list_photos(shared / "data" / "content", limit=10)):
        pixels = load_photo(photo, gatys_size).permute(1, 2, 0).numpy()
        Image.fromarray(pixels).save(out / "content" / f"{i:02d}_{photo.stem}.png", optimize=True)
    fixed = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    budget = int((limit_mib - margin_mib) * MIB) - tracked_bytes() - fixed
    files = sorted(p for p in (shared / "data" / "train").iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    photos, quality = encode_photos(files, budget)
    for name, data in photos.items():
        (out / "train" / name).write_bytes(data)
    carried = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    manifest = {"source": str(shared), "photos": len(photos), "photo_jpeg_quality": quality,
                "paintings": sorted(p.name for p in (out / "styles").iterdir()),
                "content": sorted(p.name for p in (out / "content").iterdir()),
                "painting_side": painting_side, "gatys_size": gatys_size, "vgg": "vgg16().features[:22], float16",
                "carried_mib": round(carried / MIB, 2), "tracked_mib": round(tracked_bytes() / MIB, 2),
                "limit_mib": limit_mib, "margin_mib": margin_mib}
    (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shared", type=Path, default=ROOT.parent / "shared", help="the data folder (default: ../shared)")
    p.add_argument("--out", type=Path, default=ROOT / ".gpu_zoo", help="folder to write (git-ignored)")
    p.add_argument("--limit-mib", type=float, default=64.0, help="what may travel in all: tracked files + this folder")
    p.add_argument("--margin-mib", type=float, default=1.5, help="kept free under the limit")
    p.add_argument("--painting-side", type=int, default=1024, help="longest side of the paintings")
    p.add_argument("--gatys-size", type=int, default=512, help="long side of the report photos")
    args = p.parse_args(argv)
    manifest = build(args.shared, args.out, args.limit_mib, args.margin_mib, args.painting_side, args.gatys_size)
    print(json.dumps(manifest, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
