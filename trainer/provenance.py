"""How a style model was made: its training chain, recorded portably in the ONNX metadata.

The metadata key stylecam.training holds the last training stage (the settings of that run); a stage
started from other weights (--init) names them in "init" and holds how they were made in
"init_training", a stage of the same form, and so on down to a stage trained from random weights
(init ""). Paths are recorded so that they mean the same on every checkout: relative to the
repository ("weights/starry_night.lite.onnx"), or to the shared data beside it
("../shared/data/train"); a folder elsewhere (a user's own) is recorded by its name only.

An init names one of:
  ""                  random initial weights (seeded by "seed")
  a portable path     with "init_sha256" (the file's sha256) and, for a file of this repository,
                      "init_commit": the commit whose copy of that path held those weights
  INIT_PREVIOUS_STAGE a run checkpoint that was not kept ("init_kept": false); "init_training"
                      says how it was made, so it can be made again

No PyTorch here: the functions read and write JSON and ONNX metadata only.
"""
from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path

from stylecam.fileout import atomic_output

REPO = Path(__file__).resolve().parents[1]
SHARED_PREFIX = "../shared/"
INIT_PREVIOUS_STAGE = "previous stage"
#: what every style-training stage of a shipped model must record
STAGE_KEYS = ("style_image", "data", "holdout", "size", "batch_size", "steps_trained", "lr", "seed",
              "content_weight", "style_weight", "tv_weight", "style_size", "content_layer", "style_layers")
#: what a distillation stage must record (its teacher's own chain is in "teacher_training")
DISTILL_KEYS = ("teacher", "data", "size", "batch_size", "steps_trained", "lr", "seed")
_HEX40, _HEX64 = re.compile(r"[0-9a-f]{40}"), re.compile(r"[0-9a-f]{64}")


def portable_path(path: str | os.PathLike, repo: Path = REPO) -> str:
    """``path`` as metadata records it: relative to ``repo`` ("weights/wave.lite.onnx"), or to the shared
    folder beside it ("../shared/data/train"), POSIX separators; else only its last component. "" stays ""."""
    if not str(path):
        return ""
    resolved = Path(path).expanduser().resolve()
    for root, prefix in ((repo.resolve(), ""), ((repo.parent / "shared").resolve(), SHARED_PREFIX)):
        try:
            relative = resolved.relative_to(root).as_posix()
        except ValueError:
            continue
        if relative != ".":
            return prefix + relative
    return resolved.name


def is_portable(recorded: str) -> bool:
    """Whether a recorded path names a place inside the repository or the shared folder (not a run folder)."""
    if not recorded or Path(recorded).is_absolute() or "\\" in recorded:
        return False
    parts = recorded.split("/")
    if recorded.startswith(SHARED_PREFIX):
        return len(parts) > 2 and ".." not in parts[2:]
    return ".." not in parts and parts[0] not in ("runs", ".scratch", "")


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def repository_commit(path: str | os.PathLike, repo: Path = REPO) -> str | None:
    """The commit (HEAD) whose copy of ``path`` is this file, when ``path`` is a tracked, unmodified file of
    the git checkout ``repo``; None otherwise (no git, not tracked, changed since the last commit)."""
    try:
        relative = Path(path).resolve().relative_to(repo.resolve()).as_posix()
        git = ["git", "-C", str(repo)]
        tracked = subprocess.run([*git, "ls-files", "--error-unmatch", relative], capture_output=True, timeout=10)
        clean = subprocess.run([*git, "diff", "--quiet", "HEAD", "--", relative], capture_output=True, timeout=10)
        if tracked.returncode or clean.returncode:
            return None
        head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        return head.stdout.strip() if head.returncode == 0 else None
    except (OSError, ValueError, subprocess.SubprocessError):
        return None


def init_record(init: str | os.PathLike) -> dict:
    """{"init", "init_sha256", ["init_commit"]} for weights a run started from ({"init": ""} for none)."""
    if not str(init):
        return {"init": ""}
    record = {"init": portable_path(init)}
    if Path(init).is_file():
        record["init_sha256"] = file_sha256(init)
        commit = repository_commit(init)
        if commit:
            record["init_commit"] = commit
    return record


def training_stages(training: dict) -> list[dict]:
    """The stages of a training chain, the first (from random weights) first, the model's own last."""
    stages, stage = [], training
    while isinstance(stage, dict) and stage:
        stages.append(stage)
        stage = stage.get("init_training") if stage.get("init") else None
    return stages[::-1]


def chain_problems(training: dict) -> list[str]:
    """Why a training chain is not complete and portable (empty when it is). Stage 1 is the first."""
    problems = []
    stages = training_stages(training)
    if not stages:
        return ["no training record"]
    for number, stage in enumerate(stages, 1):
        where = f"stage {number} of {len(stages)}"
        distilled = stage.get("method") == "distillation"
        missing = [k for k in (DISTILL_KEYS if distilled else STAGE_KEYS) if stage.get(k) in (None, "", {})]
        if missing:
            problems.append(f"{where}: no {', '.join(missing)}")
        for key in ("data",) if distilled else ("style_image", "data"):
            value = stage.get(key)
            if value and not is_portable(str(value)):
                problems.append(f"{where}: {key} {value!r} is not relative to the repository or ../shared")
        init = stage.get("init", "")
        if number == 1:
            if init:
                problems.append(f"{where}: starts from {init!r}, but no record of how those weights were made")
            continue
        if init == INIT_PREVIOUS_STAGE:
            if stage.get("init_kept") is not False:
                problems.append(f"{where}: init is the previous stage's checkpoint, but init_kept is not false")
        elif not is_portable(str(init)):
            problems.append(f"{where}: init {init!r} is not relative to the repository or ../shared")
        else:
            if not _HEX64.fullmatch(str(stage.get("init_sha256", ""))):
                problems.append(f"{where}: init {init!r} without its sha256")
            if not init.startswith(SHARED_PREFIX) and not _HEX40.fullmatch(str(stage.get("init_commit", ""))):
                problems.append(f"{where}: init {init!r} without the commit that holds it")
    return problems


def replace_metadata(path: str | os.PathLike, metadata: dict[str, str], out: str | os.PathLike | None = None) -> Path:
    """Write the ONNX model ``path`` to ``out`` (default: in place) with exactly ``metadata`` as its
    metadata; graph, weights and every other field are kept byte for byte. Atomic (temporary file, rename)."""
    import onnx

    model = onnx.load(str(path))
    del model.metadata_props[:]
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=str(value))
    out = Path(out or path)
    with atomic_output(out) as tmp:
        onnx.save(model, str(tmp))
    return out


def without_metadata(path: str | os.PathLike) -> bytes:
    """The serialised ONNX model ``path`` with its metadata left out: equal for two files exactly when
    they differ in metadata only (graph, weights, opsets, producer all the same)."""
    import onnx

    model = onnx.load(str(path))
    del model.metadata_props[:]
    return model.SerializeToString()
