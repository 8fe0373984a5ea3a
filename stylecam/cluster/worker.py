"""One worker of a cluster run: a long-lived process holding one Stylizer (models loaded once) that
stylizes one task at a time, a whole file or a segment of a long video.

``Worker`` is a plain class (tested as it is); the driver runs it as a Ray actor. Inputs and
outputs travel as bytes through Ray's object store, so the machines need no shared file system:
the worker writes the input to a temporary folder of its own, runs ``runner.process_video`` or
``runner.process_image`` on it, and hands back the output's bytes. Errors of the input (unreadable,
refused, a failing encoder) come back as a result with ``ok: False`` and one line of text; only a
worker that dies (killed, out of memory, its machine gone) makes the task fail in Ray, and the
driver then gives it to another worker.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import socket
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from stylecam.cluster.manifest import file_digest
from stylecam.cluster.progress import CountingStylizer
from stylecam.config import RunConfig
from stylecam.errors import InputRefused, UserError
from stylecam.pipeline import Stylizer
from stylecam.runner import Interrupted, plan_workers, process_image, process_video
from stylecam.session import GPU_PROVIDERS
from stylecam.sources import SourceError

log = logging.getLogger("stylecam")


@dataclass(frozen=True)
class Task:
    """One unit of work: a whole file, or one segment of a video.

    id: unique in the run, e.g. "2" (file 2) or "2/3" (its segment 3); source: the input's path on
    the driver (for messages); kind: "video" or "image"; input_ext / output_ext: the file name
    extensions of the bytes given and of the output to make; max_frames: frames to stylize at
    most (None: all); attempt: 0, then 1, 2, ... when retried after a worker died.
    """
    id: str
    source: str
    kind: str
    input_ext: str
    output_ext: str
    max_frames: int | None = None
    attempt: int = 0

    def retried(self) -> "Task":
        return replace(self, attempt=self.attempt + 1)


def error_kind(err: BaseException) -> str:
    """What failed, as the driver's exit code needs it: "refused" (InputRefused), "source" (an
    unreadable input), "user" (another UserError, e.g. the encoder stopped), "interrupted", "other"."""
    if isinstance(err, InputRefused):
        return "refused"
    if isinstance(err, (SourceError, OSError)):
        return "source"
    if isinstance(err, UserError):
        return "user"
    return "interrupted" if isinstance(err, Interrupted) else "other"


def _reporter(board, task: Task):
    """report(frames) for ``task`` on ``board``: a ProgressBoard, its Ray actor handle, or None."""
    if board is None:
        return lambda frames: None
    method = board.report
    if hasattr(method, "remote"):
        return lambda frames: method.remote(task.id, task.attempt, frames)
    return lambda frames: method(task.id, task.attempt, frames)


class _Collect(logging.Handler):
    """Keeps the messages of the "stylecam" logger (warnings about damaged frames, ...) for the driver."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


class Worker:
    """Holds one Stylizer built from ``config.engine`` with ``threads`` onnxruntime threads per model.

    Frames in flight: ``config.workers`` when given; else on a GPU several (runner.plan_workers, as a
    single-machine run does), on a CPU one at a time, its ``threads`` being the CPUs it was given.
    """

    def __init__(self, config: RunConfig, threads: int | None = None):
        self.config = config
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self._log = _Collect()
        self.error: UserError | None = None
        self.stylizer = self.overlay = None
        self.frames_in_flight = 1
        try:
            engine = config.engine if threads is None else dataclasses.replace(config.engine, threads=threads)
            self.stylizer = Stylizer.from_config(engine)
            if config.classify:
                from stylecam.overlay import LabelOverlay
                self.overlay = LabelOverlay(config.classify, device=config.engine.device,
                                            weights_dir=config.engine.weights_dir)
            on_gpu = any(p in GPU_PROVIDERS for p in self.stylizer.providers)
            if config.workers or on_gpu:
                self.frames_in_flight = plan_workers(config.workers, threads, on_gpu, os.cpu_count() or 1)[0]
        except UserError as err:
            self.error = err

    def ready(self) -> dict:
        """{"worker", "error", "hint"} and, when the models loaded, "stylizer" (Stylizer.describe())
        and "model_digests" (sha256 of each model file of the chain, in order)."""
        facts: dict[str, Any] = {"worker": self.name, "error": None, "hint": None}
        if self.error is not None:
            return facts | {"error": self.error.message, "hint": self.error.hint}
        described = self.stylizer.describe()
        return facts | {"stylizer": described, "frames_in_flight": self.frames_in_flight,
                        "model_digests": [file_digest(m["path"]) for m in described["models"]]}

    def run(self, task: Task, data: bytes, board=None) -> dict:
        """Stylize ``data`` (the bytes of a video or image file) as ``task`` says.

        Returns {"ok": True, "data": output bytes, "summary": the runner's summary, "worker", "seconds",
        "log": the worker's messages} or {"ok": False, "error": one line, "error_kind" (see error_kind),
        "worker", "seconds", "log"}.
        ``board``: a ProgressBoard (or its actor handle) that gets the running count of frames.
        """
        started = time.perf_counter()
        self._log.lines = []
        log.addHandler(self._log)
        try:
            return self._run(task, data, _reporter(board, task), started)
        finally:
            log.removeHandler(self._log)

    def _run(self, task: Task, data: bytes, report, started: float) -> dict:
        with tempfile.TemporaryDirectory(prefix="stylecam-worker-") as folder:
            src = Path(folder) / f"input{task.input_ext}"
            dst = Path(folder) / f"output{task.output_ext}"

            def plain(text: str) -> str:   # messages name the input as the user gave it
                return text.replace(str(src), task.source).replace(str(dst), f"the output of {task.source}")

            def result(**fields) -> dict:
                return {"worker": self.name, "seconds": time.perf_counter() - started,
                        "log": [plain(line) for line in self._log.lines], **fields}

            try:
                if self.error is not None:
                    raise self.error
                src.write_bytes(data)
                counting = CountingStylizer(self.stylizer, report)
                run = self.config
                if task.kind == "image":
                    summary = process_image(str(src), dst, counting, self.overlay, max_pixels=run.max_pixels)
                else:
                    summary = process_video(str(src), dst, counting, self.overlay, batch=run.batch or 1,
                                            max_frames=task.max_frames, progress=False,
                                            workers=self.frames_in_flight, stabilize=run.stabilize,
                                            max_pixels=run.max_pixels)
                counting.flush()
                output = dst.read_bytes()
            except (SourceError, UserError, Interrupted, OSError) as err:
                message = "interrupted" if isinstance(err, Interrupted) else plain(str(err))
                return result(ok=False, error=message, error_kind=error_kind(err))
            except Exception as err:   # a fault of this input alone: the run goes on with the others
                return result(ok=False, error=plain(f"{type(err).__name__}: {err}"), error_kind="other")
            summary = {k: v for k, v in summary.items() if k not in ("input", "output")}
            return result(ok=True, data=output, summary=summary)
