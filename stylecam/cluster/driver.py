"""The driver of a cluster run: the same files as a single-machine run, stylized by workers across a
Ray cluster (`stylecam SOURCES... -o OUT --cluster [ADDRESS]`).

One run: expand the sources and name the outputs as the single-machine run does (runner.output_for,
check_outputs); start the workers (one Stylizer each, see stylecam.cluster.worker); skip what the
manifest says is done; cut long videos into segments (stylecam.cluster.segments); hand out tasks
to idle workers, longest first; write each output atomically as soon as it is whole (a whole file,
or its segments joined) and record it in the manifest. A task whose worker dies goes to another
worker (up to ``ClusterConfig.retries`` times); an input that fails fails alone. One progress bar
counts frames over all workers. Exit codes as runner.run: 0 done, 1 some input failed or was
read only in part, 2 bad request, 128 + the signal when stopped.
"""
from __future__ import annotations

import collections
import contextlib
import logging
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from stylecam import fileout, signals
from stylecam.cluster import manifest, segments
from stylecam.cluster.connect import connected, describe_cluster
from stylecam.cluster.progress import ProgressBoard
from stylecam.cluster.worker import Task, Worker
from stylecam.config import RunConfig
from stylecam.errors import UserError
from stylecam.runner import check_outputs, output_for, with_old_key_spellings
from stylecam.sinks import ensure_parent, unwritable
from stylecam.sources import SourceItem, expand_sources

log = logging.getLogger("stylecam")

WORKERS_START_S = 600     # how long starting the workers (and loading their models) may take


@dataclass(frozen=True)
class ClusterConfig:
    """Where and how a cluster run works (the rest is the RunConfig of a single-machine run)."""
    address: str = "local"             # see stylecam.cluster.connect: local, auto, HOST:PORT, ray://HOST:PORT
    workers: int | None = None         # worker processes; None = one per GPU, else one per `threads` CPUs
    segment_frames: int = 1200         # a video is cut about every this many frames (at the next key frame)
    retries: int = 3                   # times a task goes to another worker after its worker died
    num_cpus: int | None = None        # CPUs of a local cluster; None = this machine's


@dataclass
class FileJob:
    """One input file and the state of its work."""
    index: int
    item: SourceItem
    out: Path
    key: str
    frames: int | None                              # frames expected (the bar's share; None: unknown)
    fps: float = 0.0
    video_start: float = 0.0                        # s: where the input's picture starts (its sound is cut there)
    plan: list[tuple[int, int]] | None = None       # segments (first packet, count); None: whole file
    folder: Path | None = None                      # the driver's temporary folder for its segments
    parts: dict[int, dict] = field(default_factory=dict)   # segment -> its result (output in folder)
    workers: list[str] = field(default_factory=list)
    retries: int = 0
    started: float | None = None
    finished: bool = False


def settings_of(config: RunConfig, model_digests: list[str]) -> dict:
    """Everything that changes an output besides its input: the engine's settings (not its thread
    count nor the weights folder's path: the model files' digests stand for them) and the run's."""
    engine = {k: v for k, v in asdict(config.engine).items() if k not in ("threads", "weights_dir")}
    # "stabilise": the key as first written, kept so that the digests of earlier runs still match
    return {"engine": engine, "models": model_digests, "stabilise": config.stabilize, "batch": config.batch or 1,
            "max_frames": config.max_frames, "max_pixels": config.max_pixels, "classify": config.classify}


def check_request(config: RunConfig) -> None:
    """UserError for what a cluster run cannot do: cameras, the camera's flags, --save-steps."""
    if not config.sources:
        raise UserError("--cluster stylizes files, and no input was given", "name videos, images or folders")
    if config.save_steps:
        raise UserError("--save-steps is not available with --cluster", "run it without --cluster")
    if config.auto_size or config.virtual_camera:
        raise UserError("--size auto and --virtual-camera are for the camera, not a cluster run",
                        "give files a long side, e.g. --size 480")


class ClusterRun:
    """One cluster run over ``pairs`` (input item, output path) with the workers of ``ray``."""

    def __init__(self, ray, config: RunConfig, cluster: ClusterConfig, pairs, batch: bool):
        self.ray, self.config, self.cluster, self.batch = ray, config, cluster, batch
        self.pairs = pairs
        self.order = {item.location: i for i, (item, _) in enumerate(pairs)}
        self.done: list[dict] = []
        self.failed: list[dict] = []
        self.skipped: list[dict] = []
        self.actors: list = []
        self.idle: collections.deque[int] = collections.deque()
        self.pending: collections.deque[tuple[Task, FileJob]] = collections.deque()
        self.inflight: dict = {}                    # object ref -> (task, actor index, job)
        self.data: dict[str, object] = {}           # task id -> object ref of its input bytes
        self.avoid: dict[str, int] = {}             # task id -> the actor that died with it
        self.reviving: dict = {}                    # object ref of ready() -> actor index (Ray restarts it)
        self.asleep: dict[int, float] = {}          # actor index -> when to ask again whether it is back
        self.jobs: list[FileJob] = []
        self.frames_done = 0
        self.stack = contextlib.ExitStack()

    # ----- workers ---------------------------------------------------------------------------
    def start_workers(self) -> dict:
        """Start the worker actors and wait until each has loaded its models; returns the first's ready()."""
        ray, facts, started = self.ray, describe_cluster(self.ray), time.perf_counter()
        threads = self.config.engine.threads or 1
        use_gpus = facts["gpus"] > 0 and self.config.engine.device != "cpu"
        count = self.cluster.workers or (int(facts["gpus"]) if use_gpus else int(facts["cpus"] // threads))
        if count < 1 or (not use_gpus and count * threads > facts["cpus"]):
            raise UserError(f"the cluster has {facts['cpus']:g} CPUs: not enough for {max(count, 1)} worker(s) "
                            f"of {threads} thread(s)", "ask for fewer --cluster-workers or --threads")
        resources = {"num_gpus": min(1.0, facts["gpus"] / count), "num_cpus": 1} if use_gpus else {"num_cpus": threads}
        actor = ray.remote(Worker).options(max_restarts=-1, max_task_retries=0, **resources)
        self.actors = [actor.remote(self.config, threads) for _ in range(count)]
        self.board = ray.remote(ProgressBoard).options(num_cpus=0).remote()
        try:
            answers = ray.get([a.ready.remote() for a in self.actors], timeout=WORKERS_START_S)
        except ray.exceptions.GetTimeoutError:
            raise UserError(f"the {count} worker(s) did not start within {WORKERS_START_S} s",
                            "check what the cluster has free (`stylecam info --cluster ADDRESS`); "
                            "ask for fewer --cluster-workers") from None
        except ray.exceptions.RayError as err:
            reason = " ".join(str(err).split())[-300:]
            raise UserError(f"a worker could not start: {reason}",
                            "install the same stylecam (pip install 'stylecam[cluster]') on every machine") from None
        for answer in answers:
            if answer["error"]:
                raise UserError(answer["error"], answer["hint"])
        self.idle.extend(range(count))
        self.facts = facts | {"workers": count, "threads": threads, "gpu_share": resources.get("num_gpus", 0.0),
                              "worker_names": [a["worker"] for a in answers],
                              "workers_start_s": round(time.perf_counter() - started, 3)}
        return answers[0]

    def stop_workers(self) -> None:
        for actor in self.actors + [getattr(self, "board", None)]:
            if actor is not None:
                with contextlib.suppress(Exception):
                    self.ray.kill(actor)

    # ----- planning --------------------------------------------------------------------------
    def plan(self, settings: str) -> list[tuple[Task, FileJob]]:
        """The tasks of every output not yet done (manifest), longest first; skipped ones are noted."""
        tasks = []
        for index, (item, out) in enumerate(self.pairs):
            try:
                key = manifest.work_key(manifest.file_digest(item.location), settings)
            except OSError as err:
                log.error("stylecam: skipped %s: cannot read it: %s", item.location, err.strerror or err)
                self.failed.append({"input": item.location, "error": f"cannot read it: {err.strerror or err}",
                                    "retries": 0, "worker": None})
                continue
            if manifest.is_done(out, key):
                self.skipped.append({"input": item.location, "output": str(out), "kind": item.kind})
                continue
            job = FileJob(index, item, out, key, frames=1 if item.kind == "image" else None)
            self.jobs.append(job)
            tasks += [(task, job) for task in self._tasks_of(job)]
        return sorted(tasks, key=lambda pair: -(_task_frames(*pair) or 0))

    def _tasks_of(self, job: FileJob) -> list[Task]:
        item, out, limit = job.item, job.out, self.config.max_frames
        whole = _whole_task(job, limit)
        if item.kind != "video":
            return [whole]
        layout = segments.probe_layout(item.location)
        job.fps = _fps_of(item.location)
        if layout is not None:
            pictures = [p for p, size in zip(layout.pts, layout.sizes) if size > 0 and p >= 0]
            job.frames = min(len(pictures), limit) if limit else len(pictures)
            job.video_start = min(pictures) * layout.time_base if pictures else 0.0
        if not (job.fps and segments.can_split(layout, job.fps, out.suffix)):
            return [whole]
        count = min(layout.count, limit) if limit else layout.count
        plan = segments.plan_segments([k for k in layout.keys if k < count], count, self.cluster.segment_frames)
        if len(plan) < 2:
            return [whole]
        job.plan = plan
        return [Task(f"{job.index}/{i}", item.location, "video", segments.SEGMENT_EXT, segments.SEGMENT_EXT, n)
                for i, (_, n) in enumerate(plan)]

    def _input_of(self, task: Task, job: FileJob):
        """The object ref of a task's input bytes (a video's segments are cut on its first call)."""
        if task.id not in self.data:
            if job.plan is None:
                path = Path(task.source)
            else:
                if job.folder is None:
                    job.folder = Path(self.stack.enter_context(tempfile.TemporaryDirectory(prefix="stylecam-", ignore_cleanup_errors=True)))
                    segments.split(job.item.location, job.plan, job.folder)
                path = job.folder / f"part{_part_of(task):05d}{segments.SEGMENT_EXT}"
            self.data[task.id] = self.ray.put(path.read_bytes())
        return self.data[task.id]

    # ----- the loop --------------------------------------------------------------------------
    def dispatch(self) -> None:
        """Give pending tasks to idle workers (and ask restarted workers whether they are back)."""
        now = time.monotonic()
        for actor, when in list(self.asleep.items()):
            if when <= now:
                del self.asleep[actor]
                self.reviving[self.actors[actor].ready.remote()] = actor
        while self.pending and self.idle:
            task, job = self.pending.popleft()
            if job.finished:
                continue
            try:
                data = self._input_of(task, job)
            except segments.SegmentError as err:    # cannot be cut as planned: the file goes whole
                log.warning("stylecam: %s; stylizing the file whole", err)
                self._redo_whole(job)
                continue
            except OSError as err:
                self._fail(job, f"cannot read {task.source}: {err.strerror or err}")
                continue
            actor = self._pick(self.avoid.get(task.id))
            job.started = job.started or time.perf_counter()
            self.inflight[self.actors[actor].run.remote(task, data, self.board)] = (task, actor, job)

    def _pick(self, avoid: int | None) -> int:
        """An idle actor, other than ``avoid`` (where the task's worker died) when there is one."""
        for i, actor in enumerate(self.idle):
            if actor != avoid:
                del self.idle[i]
                return actor
        return self.idle.popleft()

    def wait(self, timeout: float = 0.25) -> None:
        """Take in the results (and the workers back from a restart) that come within ``timeout`` seconds."""
        refs = list(self.inflight) + list(self.reviving)
        if not refs:
            time.sleep(timeout)
            return
        ready, rest = self.ray.wait(refs, num_returns=1, timeout=timeout)
        if ready and rest:
            ready += self.ray.wait(rest, num_returns=len(rest), timeout=0)[0]
        for ref in ready:
            if ref in self.reviving:
                self._revived(ref)
            else:
                self._collect(ref)

    def _revived(self, ref) -> None:
        """A restarted worker answered ready(): idle again; not yet restarted: ask again in a moment."""
        actor = self.reviving.pop(ref)
        try:
            self.ray.get(ref)
        except self.ray.exceptions.RayError:
            self.asleep[actor] = time.monotonic() + 0.5
            return
        self.idle.append(actor)

    def _collect(self, ref) -> None:
        task, actor, job = self.inflight.pop(ref)
        exceptions = self.ray.exceptions
        self.board.forget.remote(task.id)
        try:
            result = self.ray.get(ref)
        except exceptions.RayTaskError as err:      # a fault in the worker's code: this input fails
            result = {"ok": False, "error": str(err).strip().splitlines()[-1], "error_kind": "other",
                      "worker": "?", "log": []}
        except exceptions.RayError as err:          # the worker died: another one takes the task
            self.asleep[actor] = time.monotonic()   # Ray restarts it; it gets work again once it is back
            self._retry(task, actor, job, " ".join(str(err).split())[:200])
            return
        self.idle.append(actor)
        self.data.pop(task.id, None)
        if job.finished:
            return
        for line in result.get("log", []):
            log.warning("%s", line)
        job.workers.append(result["worker"])
        if not result["ok"]:
            self._fail(job, result["error"], result.get("error_kind"))
        elif job.plan is not None:
            self._part_done(job, _part_of(task), result)
        else:
            with signals.deferred():                # a stop signal waits until the file is written and noted
                self._write(job, result["data"])
                self.frames_done += result["summary"].get("frames", 0)
                self._finish(job, result["summary"])

    def _retry(self, task: Task, actor: int, job: FileJob, reason: str) -> None:
        job.retries += 1
        if task.attempt >= self.cluster.retries:
            self._fail(job, f"its worker died {task.attempt + 1} times (last: {reason})")
            return
        log.warning("stylecam: a worker died while stylizing %s; its task goes to another worker", task.source)
        self.avoid[task.id] = actor
        self.pending.appendleft((task.retried(), job))

    def _write(self, job: FileJob, data: bytes) -> None:
        ensure_parent(job.out)
        try:
            with fileout.atomic_output(job.out) as tmp:
                tmp.write_bytes(data)
        except OSError as err:
            raise unwritable(job.out, err) from None

    def _part_done(self, job: FileJob, part: int, result: dict) -> None:
        frames, planned = result["summary"]["frames"], job.plan[part][1]
        path = job.folder / f"styled{part:05d}{segments.SEGMENT_EXT}"
        path.write_bytes(result["data"])
        job.parts[part] = result["summary"] | {"path": path}
        self.frames_done += frames
        if frames != planned:                       # the decoder saw another count: do the file whole
            log.warning("stylecam: %s: segment %d gave %d frames, not %d; stylizing the file whole",
                        job.item.location, part, frames, planned)
            self._redo_whole(job)
            return
        if len(job.parts) < len(job.plan):
            return
        with signals.deferred():                    # a stop signal waits until the file is joined and noted
            self._join(job, [job.parts[i] for i in range(len(job.plan))])

    def _join(self, job: FileJob, parts: list[dict]) -> None:
        frames = sum(p["frames"] for p in parts)
        ensure_parent(job.out)
        try:
            with fileout.atomic_output(job.out) as tmp:
                audio = segments.join([p["path"] for p in parts], tmp, job.fps, frames, job.item.location,
                                      job.video_start)
        except segments.SegmentError as err:
            log.warning("stylecam: %s; stylizing the file whole", err)
            self._redo_whole(job)
            return
        except OSError as err:
            raise unwritable(job.out, err) from None
        self._finish(job, {"kind": "video", "frames": frames, "audio": audio, "stabilize": self.config.stabilize,
                           "output_fps": round(job.fps, 3), "output_seconds": round(frames / job.fps, 3),
                           "frames_missing": sum(p.get("frames_missing", 0) for p in parts),
                           "frames_lost": sum(p.get("frames_lost", 0) for p in parts)})

    def _redo_whole(self, job: FileJob) -> None:
        """Drop the segments of ``job`` (those still out are ignored when they come) and queue the file whole."""
        self.frames_done -= sum(p["frames"] for p in job.parts.values())
        job.finished = True
        whole = FileJob(job.index, job.item, job.out, job.key, job.frames, job.fps, job.video_start,
                        workers=list(job.workers), retries=job.retries, started=job.started)
        self.jobs[self.jobs.index(job)] = whole
        self.pending.appendleft((_whole_task(whole, self.config.max_frames), whole))

    def _finish(self, job: FileJob, summary: dict) -> None:
        job.finished = True
        names = list(dict.fromkeys(job.workers))
        entry = {"input": job.item.location, "output": str(job.out), **with_old_key_spellings(summary),
                 "seconds": round(time.perf_counter() - (job.started or time.perf_counter()), 3),
                 "worker": names[0] if len(names) == 1 else names, "retries": job.retries,
                 "segments": len(job.plan) if job.plan else 1}
        manifest.record(job.out, job.key, {"frames": entry["frames"], "input": job.item.location})
        self.done.append(entry)
        if job.folder is not None:
            shutil.rmtree(job.folder, ignore_errors=True)

    def _fail(self, job: FileJob, error: str, kind: str | None = None) -> None:
        if kind in ("refused", "user") and not self.batch:
            raise UserError(error)
        job.finished = True
        log.error("stylecam: skipped %s: %s", job.item.location, error)
        self.failed.append({"input": job.item.location, "error": error, "retries": job.retries,
                            "worker": job.workers[-1] if job.workers else None})

    def frames_now(self) -> int:
        """Frames stylized so far: by finished tasks, and by those in flight (the board's count)."""
        moving = sum(self.ray.get(self.board.snapshot.remote()).values()) if self.inflight else 0
        return self.frames_done + moving


def _part_of(task: Task) -> int:
    """The segment number of a segment's task ("3/2" -> 2)."""
    return int(task.id.split("/")[1])


def _whole_task(job: FileJob, max_frames: int | None) -> Task:
    item = job.item
    return Task(str(job.index), item.location, item.kind, Path(item.location).suffix, job.out.suffix, max_frames)


def _task_frames(task: Task, job: FileJob) -> int | None:
    return job.plan[_part_of(task)][1] if job.plan is not None else job.frames


def _fps_of(path: str) -> float:
    """The frame rate OpenCV reads from a video file (0.0 when it cannot be read)."""
    import cv2
    cap = cv2.VideoCapture(path)
    try:
        fps = cap.get(cv2.CAP_PROP_FPS) if cap.isOpened() else 0.0
    finally:
        cap.release()
    return fps if fps and 0 < fps < 1000 else 0.0


def _progress(total: int | None, enabled: bool):
    from tqdm import tqdm
    return tqdm(total=total, desc="stylizing", unit="frame", disable=not enabled, dynamic_ncols=True, file=sys.stderr)


def run_on_cluster(config: RunConfig, cluster: ClusterConfig) -> tuple[int, dict]:
    """Run one invocation on a cluster; returns (exit code, summary) like runner.run.

    summary: {"stylecam": the workers' Stylizer and the cluster, "done": [per file: input, output,
    frames, seconds, worker, retries, segments, ...], "failed": [input, error, retries, worker],
    "skipped": [files the manifest had as done], "incomplete": [inputs read only in part]}.
    """
    check_request(config)
    items, notes = expand_sources(config.sources, output=config.output)
    for note in notes:
        log.info("stylecam: %s", note)
    if any(item.kind == "camera" for item in items):
        raise UserError("--cluster stylizes files, not a camera", "give videos, images or folders")
    many = len(items) > 1
    pairs = [(item, output_for(item, config.output, many)) for item in items]
    check_outputs(pairs)
    batch = many or any(item.root for item in items)
    with connected(cluster.address, cluster.num_cpus) as ray:
        run = ClusterRun(ray, config, cluster, pairs, batch)
        try:
            with run.stack:
                return _run(run)
        finally:
            run.stop_workers()


def _run(run: ClusterRun) -> tuple[int, dict]:
    first = run.start_workers()
    settings = manifest.settings_digest(settings_of(run.config, first["model_digests"]))
    run.pending.extend(run.plan(settings))
    summary: dict = {"stylecam": {**first["stylizer"], "cluster": run.facts}}
    known = [j.frames for j in run.jobs]
    total = sum(known) if all(f is not None for f in known) else None
    bar = _progress(total, run.config.progress and bool(run.jobs))
    try:
        with signals.at_once():
            while run.pending or run.inflight:
                run.dispatch()
                run.wait()
                bar.n = min(run.frames_now(), total) if total is not None else run.frames_now()
                bar.refresh()
    except KeyboardInterrupt:
        bar.close()
        for ref in list(run.inflight):
            with contextlib.suppress(Exception):
                run.ray.cancel(ref)
        log.warning("stylecam: %s: %d file(s) written whole, %d not finished (nothing of them written); "
                    "the same command again goes on from there", signals.describe(), len(run.done),
                    sum(not job.finished for job in run.jobs))
        return signals.exit_code(), summary | {"done": run.done, "failed": run.failed, "skipped": run.skipped,
                                               "interrupted": True}
    finally:
        bar.close()
    for entries in (run.done, run.failed):
        entries.sort(key=lambda entry: run.order[entry["input"]])
    incomplete = [d["input"] for d in run.done if d.get("frames_missing") or d.get("frames_lost")]
    summary.update({"done": run.done, "failed": run.failed, "skipped": run.skipped, "incomplete": incomplete})
    if run.skipped:
        log.info("stylecam: %d file(s) already done with these settings (the manifest beside them says so): skipped",
                 len(run.skipped))
    if run.failed:
        log.error("stylecam: %d of %d files could not be read", len(run.failed), len(run.pairs))
    if incomplete and len(run.pairs) > 1:
        log.error("stylecam: %d of %d videos were read only in part (see the warnings above)",
                  len(incomplete), len(run.pairs))
    return (1 if run.failed or incomplete else 0), summary
