"""The documented limits of a run and the checks against them: pixels per input (--max-pixels),
passes (--repeat), and the memory one inference needs (stopped with a --size hint before
onnxruntime runs out). See docs/failure.md."""
from __future__ import annotations

import math
import os
from pathlib import Path

from stylecam.errors import InputRefused

#: largest picture read, in pixels (width x height), unless --max-pixels says otherwise: 50 MP is
#: above any camera photo (a 48 MP phone shot passes) and keeps a decoded frame under 150 MB
DEFAULT_MAX_PIXELS = 50_000_000

#: largest --repeat: the whole chain applied at most this many times
MAX_REPEAT = 100

#: peak memory of one pass in bytes per inference pixel, onnxruntime on the CPU: measured with the
#: trainer's networks at 512..2048 px (full: 1.1-1.3 kB, lite: 60 B); other networks count as full
PASS_BYTES_PER_PIXEL = {"full": 1300, "lite": 64}
#: the frame's own copies around the passes (float32 RGB in and out, padding, uint8 result)
FRAME_BYTES_PER_PIXEL = 64
#: share of the available memory an inference may plan to use
MEMORY_SHARE = 0.8


def format_pixels(pixels: int) -> str:
    """12_500_000 -> "12.5 MP", 2_500_000_000 -> "2500 MP"; below one megapixel the plain count,
    30000 -> "30000 pixels"."""
    if pixels < 1_000_000:
        return f"{pixels} pixel{'' if pixels == 1 else 's'}"
    return f"{pixels / 1e6:.1f} MP".replace(".0 MP", " MP") if pixels < 100_000_000 else f"{pixels / 1e6:.0f} MP"


def format_bytes(count: int) -> str:
    """3 * 2**30 -> "3.0 GiB"; below a GiB in MiB, 8 * 2**20 -> "8.0 MiB"."""
    return f"{count / 2**30:.1f} GiB" if count >= 2**30 else f"{count / 2**20:.1f} MiB"


def check_pixels(path: str | Path, width: int, height: int, max_pixels: int | None) -> None:
    """InputRefused (naming the size, the limit and --max-pixels) when width x height > max_pixels.
    None: no limit."""
    if max_pixels is None or width * height <= max_pixels:
        return
    raise InputRefused(f"{path} is {width}x{height} pixels ({format_pixels(width * height)}), "
                       f"above the limit of {format_pixels(max_pixels)}",
                       f"raise it with --max-pixels {width * height} if the memory allows, "
                       "and stylize it smaller with --size")


def available_memory() -> int | None:
    """Bytes of memory the system can give this process now (Linux MemAvailable, else the free
    physical pages), or None when unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def inference_bytes(pixels: int, variants: list[str] | tuple[str, ...]) -> int:
    """Estimated peak bytes to stylize ``pixels`` inference pixels (all frames of one call) with a
    chain of models of these variants ("full" / "lite"; passes run one after the other)."""
    per_pass = max((PASS_BYTES_PER_PIXEL.get(v, PASS_BYTES_PER_PIXEL["full"]) for v in variants), default=0)
    return pixels * (per_pass + FRAME_BYTES_PER_PIXEL)


def fitting_long_side(height: int, width: int, frames: int, variants, available: int) -> int:
    """The largest long side (a multiple of 16, at least 16) at which ``frames`` frames of this
    aspect fit ``MEMORY_SHARE`` of ``available`` bytes by inference_bytes."""
    per_pixel = inference_bytes(1, variants) * frames
    pixels = MEMORY_SHARE * available / per_pixel
    long_side = math.sqrt(pixels * max(height, width) / min(height, width))
    return max(16, int(long_side) // 16 * 16)


def check_memory(height: int, width: int, frames: int, variants, available: int | None) -> None:
    """InputRefused with a --size hint when ``frames`` inference frames of height x width need
    more than ``MEMORY_SHARE`` of ``available`` bytes (None: unknown, no check)."""
    if available is None:
        return
    need = inference_bytes(frames * height * width, variants)
    if need <= MEMORY_SHARE * available:
        return
    side = fitting_long_side(height, width, frames, variants, available)
    raise InputRefused(f"stylizing {width}x{height} pixels needs about {format_bytes(need)} of memory, more than "
                       f"{MEMORY_SHARE:.0%} of the {format_bytes(available)} available",
                       f"stylize it smaller, e.g. --size {side}" + (", or with the lite models (--lite)"
                                                                    if any(v != "lite" for v in variants) else ""))
