"""Chain x repeat of style models applied to frames: the engine behind the CLI, the live view and the study.

``Stylizer(styles=["wave", "muse"], repeat=3)`` applies wave, then muse, and that whole chain
three times (six passes). Every pass reflect-pads the image to a multiple of 4 (plus ``prepad``
pixels on each side, and to at least contract.MIN_SIDE), runs the model, clamps to 0..255 and
crops back, so the size never drifts.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, fields
from typing import Sequence

import numpy as np

from stylecam import contract, imageops, limits
from stylecam.config import EngineConfig
from stylecam.errors import InputRefused, UserError
from stylecam.session import (GPU_PROVIDERS, LoadedModel, check_device, check_threads, load_model, probe_providers,
                              probe_style_model, run_chain)
from stylecam.styles import Registry, StyleEntry, is_path_like, load_entry, network_name

log = logging.getLogger("stylecam")


@dataclass
class StageTimes:
    """Milliseconds spent in the last call, per stage."""
    pre: float = 0.0
    inference: float = 0.0
    post: float = 0.0


def _check_repeat(repeat) -> int:
    if isinstance(repeat, bool) or not isinstance(repeat, (int, np.integer)) or not 1 <= repeat <= limits.MAX_REPEAT:
        raise UserError(f"--repeat must be a whole number within 1..{limits.MAX_REPEAT}, got {repeat!r}",
                        "e.g. --repeat 3 applies the whole chain three times")
    return int(repeat)


def _check_strength(strength) -> float:
    try:
        value = float(strength)
    except (TypeError, ValueError):
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise UserError(f"--strength must be within 0..1, got {strength!r}",
                        "0 keeps the original, 1 is fully stylized")
    return value


def checked_frames(frames, single: bool) -> np.ndarray:
    """``np.asarray(frames)`` when it is uint8 BGR (H, W, 3) (single) or (N, H, W, 3), none of
    N, H, W zero; ValueError otherwise (also for a batch of frames of different sizes)."""
    if not single and isinstance(frames, (list, tuple)):
        _check_same_size(frames)
    frames = np.asarray(frames)
    shape = "(H, W, 3)" if single else "(N, H, W, 3)"
    if frames.ndim != len(shape.split(",")) or frames.shape[-1] != 3 or frames.dtype != np.uint8 \
            or 0 in frames.shape:
        raise ValueError(f"expected uint8 BGR {shape} with no empty axis, got {frames.dtype} {frames.shape}")
    return frames


def _check_same_size(frames) -> None:
    """ValueError naming two sizes when a sequence of (H, W, C) frames mixes sizes."""
    shapes = [np.shape(f) for f in frames]
    for i, shape in enumerate(shapes[1:], start=1):
        if shape != shapes[0]:
            raise ValueError(f"all frames of a batch must have the same size: frame 0 is {_size(shapes[0])}, "
                             f"frame {i} is {_size(shape)}; stylize them one by one or resize them first")


def _size(shape: tuple) -> str:
    """(H, W, ...) -> "WxH" (or the raw shape when it is not an image's)."""
    return f"{shape[1]}x{shape[0]}" if len(shape) >= 2 else str(shape)


def _check_styles(styles) -> list[str]:
    """Style names or model paths as stripped strings; TypeError for anything else."""
    if isinstance(styles, str):
        styles = [s for s in styles.split(",") if s.strip()]
    elif isinstance(styles, os.PathLike):
        styles = [styles]
    try:
        styles = list(styles)
    except TypeError:
        raise TypeError(f"styles must be names or paths (str / os.PathLike), or a list of them; got {styles!r}") from None
    bad = [s for s in styles if not isinstance(s, (str, os.PathLike))]
    if bad:
        raise TypeError(f"styles must be names or paths (str / os.PathLike), got {bad[0]!r}")
    return [os.fspath(s).strip() for s in styles]


class Stylizer:
    """Stylize uint8 BGR frames with a chain of style models applied ``repeat`` times.

    Built from an EngineConfig with ``Stylizer.from_config`` (the CLI, the demo, the study), or from the
    same settings as keywords (the Python API); either way every value is checked once, here.
    styles: style names (looked up in ``weights_dir``) or paths to .onnx files, applied in order.
    variant: "full" / "lite"; None = lite on the CPU, full on a GPU (the other when one is missing).
    prepad: extra reflect padding (pixels per side) around every pass, cropped after.
    strength: 0..1 blend with the original; preserve_color: keep the original's color.
    size: long side of the inference resolution (the result is resized back); None = frame size.
    upscale: let ``size`` enlarge frames whose long side is smaller (default: those run at their own size).
    int8: use the int8 copies of the named styles (CPU only; a style without one runs in float32).
    pad_in_graph: pad and crop inside the sessions (None = on a GPU only; see run_float).
    """

    def __init__(self, styles: Sequence[str] = ("wave",), repeat: int = 1, device: str = "auto",
                 variant: str | None = None, prepad: int = 0, strength: float = 1.0,
                 preserve_color: bool = False, weights_dir: str | None = None, size: int | None = None,
                 padding: str = "reflect", fp16: bool = False, threads: int | None = None,
                 int8: bool = False, registry: Registry | None = None, pad_in_graph: bool | None = None,
                 upscale: bool = False):
        styles = _check_styles(styles)
        if not styles or not all(styles):
            raise UserError("no style given", "name at least one style, e.g. --style wave or --chain wave,muse")
        if variant is not None and not (isinstance(variant, str) and variant in ("full", "lite")):
            raise UserError(f"unknown variant {variant!r}", "use --full or --lite")
        if not isinstance(padding, str) or padding not in contract.PADDING_MODES:
            raise UserError(f"unknown padding mode {padding!r}", f"use one of {', '.join(contract.PADDING_MODES)}")
        if isinstance(prepad, bool) or not isinstance(prepad, (int, np.integer)) or prepad < 0:
            raise UserError(f"--prepad must be a whole number ≥ 0, got {prepad!r}", "e.g. --prepad 16")
        if weights_dir is not None and not isinstance(weights_dir, (str, os.PathLike)):
            raise TypeError(f"weights_dir must be a folder path (str / os.PathLike) or None, got {weights_dir!r}")
        if size is not None and (isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 8):
            raise UserError(f"--size must be a whole number ≥ 8, got {size!r}", "e.g. --size 512")
        self.repeat = _check_repeat(repeat)
        self.strength = _check_strength(strength)
        self.preserve_color = bool(preserve_color)
        self.prepad = int(prepad)
        self.size = int(size) if size is not None else None
        self.upscale = bool(upscale)
        self._memory_checked: set[tuple[int, int, int]] = set()   # (N, H, W) of inference inputs that fit
        self.device = check_device(device)
        self.fp16 = bool(fp16)
        self.threads = check_threads(threads)
        self.padding = padding
        self.variant = variant
        self.providers_probe = probe_providers(device)
        on_gpu = any(p in GPU_PROVIDERS for p in self.providers_probe)
        self.prefer = "full" if on_gpu else "lite"
        if int8 and on_gpu:
            log.warning("WARNING: --int8 is for the CPU; running on %s in %s", self.providers_probe[0],
                        "float16" if fp16 else "float32")
        self.int8 = bool(int8) and not on_gpu
        # On a GPU the sessions pad and crop inside their graphs, so a chain never leaves the device;
        # on the CPU numpy pads only the frames that need it (in-graph Pad/Slice copy every frame).
        self.pad_in_graph = on_gpu if pad_in_graph is None else bool(pad_in_graph)
        needs_registry = registry is not None or not all(is_path_like(s) for s in styles)
        self.registry = registry or (Registry(weights_dir) if needs_registry else None)
        self._models: dict[str, LoadedModel] = {}
        self._variant_warned: set[str] = set()
        self._padding_warned: set[str] = set()
        self._int8_warned: set[str] = set()
        self.times = StageTimes()
        self.set_styles(styles)

    @classmethod
    def from_config(cls, config: EngineConfig, registry: Registry | None = None,
                    pad_in_graph: bool | None = None) -> Stylizer:
        """The Stylizer of ``config`` (its every field); ``registry``: style models already found
        (default: those of config.weights_dir); pad_in_graph: see the class."""
        settings = {f.name: getattr(config, f.name) for f in fields(EngineConfig)}
        return cls(**settings, registry=registry, pad_in_graph=pad_in_graph)

    # ----- configuration -------------------------------------------------------------------
    def set_styles(self, styles: Sequence[str]) -> None:
        """Replace the chain (names or paths); models load now, so errors surface here.

        A model file is used as is: a ``padding`` other than its own is ignored for it (warned once).
        """
        entries = []
        for spec in styles:
            if self.registry is not None:
                entry = self.registry.resolve(spec, variant=self.variant, padding=self.padding, prefer=self.prefer,
                                              precision="int8" if self.int8 else "fp32")
                if self.variant and entry.variant != self.variant and not is_path_like(spec) \
                        and entry.name not in self._variant_warned:
                    self._variant_warned.add(entry.name)
                    log.warning("WARNING: no %s model of %s; using the %s one", self.variant, entry.name, entry.variant)
            else:
                entry = load_entry(spec)
            # a name always resolves to a model of self.padding: a mismatch is a file given by path
            if self.padding != "reflect" and entry.padding != self.padding and spec not in self._padding_warned:
                self._padding_warned.add(spec)
                log.warning("WARNING: --padding applies to styles given by name; %s (%s padding) is used as is",
                            spec, entry.padding)
            self._warn_int8_file(spec, entry)
            entries.append(entry)
        self.entries: list[StyleEntry] = entries
        self.specs: tuple[str, ...] = tuple(styles)  # as given: names or paths
        for entry in entries:
            self._model(entry)

    def _warn_int8_file(self, spec: str, entry: StyleEntry) -> None:
        """Once per file: --int8 does not change a float model given by path (names get their int8 copy)."""
        by_name = self.registry is not None and not is_path_like(spec) and spec in self.registry.names()
        if self.int8 and entry.precision != "int8" and not by_name and spec not in self._int8_warned:
            self._int8_warned.add(spec)
            log.warning("WARNING: --int8 applies to styles given by name; %s (%s) is used as is",
                        spec, entry.precision)

    def set_repeat(self, repeat: int) -> None:
        self.repeat = _check_repeat(repeat)

    def set_strength(self, strength: float) -> None:
        self.strength = _check_strength(strength)

    @property
    def chain(self) -> list[str]:
        """Labels of the chain's styles, in order."""
        return [e.label for e in self.entries]

    @property
    def passes(self) -> list[StyleEntry]:
        """Every pass in order: the chain repeated ``repeat`` times."""
        return list(self.entries) * self.repeat

    @property
    def providers(self) -> list[str]:
        """Providers the first model's session really uses."""
        return self._model(self.entries[0]).providers

    def describe(self) -> dict:
        """JSON-friendly summary: chain, repeat, passes, variants, providers, settings.

        "int8" is true when some model of the chain really runs int8 (each model lists its precision).
        """
        return {"chain": self.chain, "repeat": self.repeat, "passes": len(self.passes),
                "models": [{"name": e.name, "variant": e.variant, "padding": e.padding, "precision": e.precision,
                            "network": network_name(e.metadata.get(contract.KEY_CONFIG)), "path": str(e.path)}
                           for e in self.entries],
                "providers": self.providers, "strength": self.strength, "preserve_color": self.preserve_color,
                "prepad": self.prepad, "size": self.size, "upscale": self.upscale, "fp16": self.fp16,
                "int8": any(e.precision == "int8" for e in self.entries)}

    def _model(self, entry: StyleEntry, padded: bool | None = None) -> LoadedModel:
        """The session of ``entry``; padded (default: self.pad_in_graph): reflect padding and crop
        inside the graph (any frame size, chains stay on the device), else the plain network."""
        padded = self.pad_in_graph if padded is None else padded
        key = (str(entry.path), padded)
        if key not in self._models:
            probe_style_model(key[0], entry.name)
            model = load_model(key[0], device=self.device, threads=self.threads, clamp=(0.0, 255.0),
                               fp16=self.fp16, pad=(imageops.MULTIPLE_OF, self.prepad) if padded else None)
            if model.input_name != contract.STYLE_INPUT or model.output_name != contract.STYLE_OUTPUT:
                raise UserError(
                    f"{entry.path} has input {model.input_name!r} and output {model.output_name!r}, "
                    f"expected {contract.STYLE_INPUT!r} -> {contract.STYLE_OUTPUT!r}",
                    "export style models with `stylecam-train export`")
            self._models[key] = model
        return self._models[key]

    # ----- float core ----------------------------------------------------------------------
    def _run_pass_on_host(self, entry: StyleEntry, x: np.ndarray) -> np.ndarray:
        """One pass with numpy reflect padding and crop around the plain network."""
        model = self._model(entry)
        if model.pad is not None:  # the padded session cannot take this size: load the plain one
            model = self._model(entry, padded=False)
        pads = imageops.pad_amounts(x.shape[-2], x.shape[-1], extra=self.prepad)
        return imageops.crop(model.run(np.ascontiguousarray(imageops.reflect_pad(x, pads))), pads)

    def run_float(self, x: np.ndarray, collect: bool = False):
        """Apply every pass to float32 RGB (N, 3, H, W) 0..255; returns the same shape, clamped.

        collect=True returns the list of the state after each pass instead (len == passes).
        Raw model output: no strength, no color keeping, no resizing.
        With pad_in_graph (on a GPU) each session pads and crops inside its graph, so the whole
        chain runs in one go through IO binding; frames too small for that, and every frame that
        needs padding on the CPU, are padded and cropped around each pass by numpy.
        """
        x = np.asarray(x, np.float32)
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"run_float expects float32 (N, 3, H, W), got shape {x.shape}")
        passes = self.passes
        models = [self._model(e) for e in passes]
        if not any(m.on_gpu for m in models):
            self._check_memory(x.shape)
        try:
            states = self._run_passes(passes, models, x, collect)
        except MemoryError:  # the estimate said it fits (or a GPU's memory ran out): try half the size
            height, width = x.shape[-2:]
            raise InputRefused(f"out of memory while stylizing {width}x{height} pixels",
                               f"stylize it smaller, e.g. --size {max(16, max(height, width) // 32 * 16)}") from None
        for state in states:
            self._check_finite(state)
        return states if collect else states[-1]

    def _run_passes(self, passes: list[StyleEntry], models: list[LoadedModel], x: np.ndarray,
                    collect: bool) -> list[np.ndarray]:
        """The states after each pass (collect) or just the last one, as a list: float32 (N, 3, H, W)."""
        height, width = x.shape[-2:]
        if all(m.pads_inside(height, width) for m in models) or \
                not any(imageops.pad_amounts(height, width, extra=self.prepad)):
            if not collect:
                return [run_chain(models, x)]
            states = []
            for model in models:
                x = model.run(x)
                states.append(x)
            return states
        states = []
        for entry in passes:
            x = self._run_pass_on_host(entry, x)
            if collect:
                states.append(x)
        return states if collect else [x]

    def _check_memory(self, shape: tuple[int, ...]) -> None:
        """InputRefused with a --size hint when an (N, 3, H, W) inference input needs more memory than
        the system has available (limits.check_memory); checked once per shape."""
        n, _, height, width = shape
        if (n, height, width) in self._memory_checked:
            return
        limits.check_memory(height, width, n, [e.variant for e in self.passes], limits.available_memory())
        self._memory_checked.add((n, height, width))

    def _check_finite(self, y: np.ndarray) -> None:
        """InputRefused when a model output float32 (N, 3, H, W) holds NaN or infinity (a black frame otherwise)."""
        if y.size and not (np.isfinite(y.min()) and np.isfinite(y.max())):
            which = f"style {self.chain[0]}" if len(self.chain) == 1 else f"chain {' -> '.join(self.chain)}"
            raise InputRefused(f"the {which} returned NaN or infinite values for a {y.shape[-1]}x{y.shape[-2]} frame",
                               "the model is broken or overflows on this picture; try another style, or "
                               "leave out --fp16")

    # ----- frames --------------------------------------------------------------------------
    def _to_inference(self, frames: np.ndarray) -> np.ndarray:
        """uint8 BGR (N, H, W, 3) -> float32 RGB NCHW at the inference resolution."""
        if self.size is not None and (self.upscale or self.size < max(frames.shape[1:3])):
            frames = np.stack([imageops.resize_long_side(f, self.size) for f in frames])
        return imageops.bgr_to_nchw(frames)

    def _finish(self, original: np.ndarray, stylized: np.ndarray) -> np.ndarray:
        """Original uint8 BGR (N, H, W, 3) + stylized float NCHW -> uint8 BGR (N, H, W, 3)."""
        h, w = original.shape[1:3]
        if stylized.shape[-2:] != (h, w):
            # back to the frame size as uint8 BGR: cv2 resizes uint8 several times faster than float planes
            resized = np.stack([imageops.resize_to(s, h, w) for s in imageops.nchw_to_bgr(stylized)])
            if not (self.preserve_color or self.strength < 1.0):
                return resized
            stylized = imageops.bgr_to_nchw(resized)
        if self.preserve_color or self.strength < 1.0:
            base = imageops.bgr_to_nchw(original)
            if self.preserve_color:
                stylized = imageops.preserve_color(base, stylized)
            stylized = imageops.blend(base, stylized, self.strength)
        return imageops.nchw_to_bgr(stylized)

    def stylize_batch(self, frames: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """uint8 BGR (N, H, W, 3), all the same size -> uint8 BGR (N, H, W, 3)."""
        frames = checked_frames(frames, single=False)
        t0 = time.perf_counter()
        x = self._to_inference(frames)
        t1 = time.perf_counter()
        y = self.run_float(x)
        t2 = time.perf_counter()
        out = self._finish(frames, y)
        t3 = time.perf_counter()
        self.times = StageTimes(pre=(t1 - t0) * 1e3, inference=(t2 - t1) * 1e3, post=(t3 - t2) * 1e3)
        return out

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """uint8 BGR (H, W, 3) -> uint8 BGR (H, W, 3), stylized by every pass."""
        frame = checked_frames(frame, single=True)
        return self.stylize_batch(frame[None])[0]

    def steps(self, frame: np.ndarray) -> list[tuple[str, np.ndarray]]:
        """Every intermediate result: [("original", frame), ("1 wave", ...), ..., ("6 muse", ...)].

        Each step is post-processed like the final result (strength, color, resize back), so
        the last step equals ``self(frame)``. Frames are uint8 BGR (H, W, 3).
        """
        frame = checked_frames(frame, single=True)
        states = self.run_float(self._to_inference(frame[None]), collect=True)
        out = [("original", frame)]
        for i, (entry, state) in enumerate(zip(self.passes, states), start=1):
            out.append((f"{i} {entry.label}", self._finish(frame[None], state)[0]))
        return out
