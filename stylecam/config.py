"""Frozen run configuration: what the command line (or a caller) asks stylecam to do."""
from __future__ import annotations

from dataclasses import dataclass, field

from stylecam.limits import DEFAULT_MAX_PIXELS

DEFAULT_STYLE = "wave"
DEVICES = ("auto", "cpu", "cuda", "tensorrt")


@dataclass(frozen=True)
class EngineConfig:
    """How frames are stylized (shared by the CLI, the Python API and the study)."""
    styles: tuple[str, ...] = (DEFAULT_STYLE,)  # chain, applied in order; names or .onnx paths
    repeat: int = 1                    # the whole chain is applied this many times
    variant: str | None = None         # "full" / "lite"; None = lite on CPU, full on GPU
    padding: str = "reflect"           # padding mode of the trained weights to look up
    device: str = "auto"               # auto | cpu | cuda | tensorrt
    fp16: bool = False                 # half-precision models (GPU only; ignored with a warning on CPU)
    int8: bool = False                 # int8 copies of the models (CPU only; ignored with a warning on a GPU)
    threads: int | None = None         # onnxruntime intra-op threads (None = onnxruntime default)
    size: int | None = None            # long side of the inference resolution; None = frame size
    upscale: bool = False              # let size enlarge smaller frames (default: they run at their own size)
    strength: float = 1.0              # 0 = original, 1 = fully stylized (linear blend)
    preserve_color: bool = False       # luminance from the stylized frame, color from the original
    prepad: int = 0                    # reflect-pad each pass by this many pixels, crop after
    weights_dir: str | None = None     # style folder; None = $STYLECAM_WEIGHTS or <repo>/weights


@dataclass(frozen=True)
class RunConfig:
    """One invocation of `stylecam [SOURCE...]`."""
    engine: EngineConfig = field(default_factory=EngineConfig)
    sources: tuple[str, ...] = ()      # camera indices, files, folders, globs; () = camera 0
    output: str | None = None          # file or folder; None = NAME_stylised.EXT next to the input
    window: bool = True                # live window (camera); False = headless, record to output
    mirror: bool = False               # camera: flip frames left-right (selfie view; key m toggles)
    fullscreen: bool = False           # camera: start with the window filling the screen (key f toggles)
    camera_size: tuple[int, int] | None = None   # camera: (width, height) asked of it; None = its own
    camera_fps: float | None = None    # camera: frames a second asked of it; None = its own
    camera_format: str | None = None   # camera: FOURCC asked of it, e.g. "MJPG"; None = its own
    virtual_camera: bool = False       # camera: also send the frames shown to a virtual camera (pyvirtualcam)
    virtual_camera_device: str | None = None     # its device, e.g. /dev/video10; None = the first found
    auto_size: bool = False            # camera: --size auto, the inference size chosen as the run goes
    stabilize: float = 0.0             # videos and camera: hold the previous output where the scene stood still (0 = off)
    save_steps: bool = False           # write every step of chain x repeat and a contact sheet
    json: bool = False                 # print a machine-readable summary on stdout
    batch: int | None = None           # frames per inference call for video files; None = 1 (batches measured slower)
    workers: int | None = None         # frames stylized at once; None = runner.plan_workers (one per core: up to 4 for files; 2 for the camera, 1 there on a GPU)
    classify: str | None = None        # classifier ONNX: top-3 labels, original vs stylized
    max_frames: int | None = None      # stop after this many frames per source (None = all)
    max_pixels: int = DEFAULT_MAX_PIXELS  # refuse pictures and video frames with more pixels (width x height)
    progress: bool = True              # tqdm progress bars on stderr
