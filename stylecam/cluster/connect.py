"""Reaching a Ray cluster: a local one started for the run, or one already running.

ADDRESS (``--cluster [ADDRESS]``):
  local (no address)   start a Ray cluster on this machine for the run, and stop it after
  auto                 the cluster that `ray start --head` runs on this machine (or $RAY_ADDRESS)
  HOST:PORT            the head of a cluster, e.g. 10.0.0.5:6379 (what `ray start --head` printed)
  ray://HOST:PORT      the same through Ray Client (port 10001 by default)

A process that called ``ray.init`` itself (a script, the tests) is used as it is and left running.
"""
from __future__ import annotations

import contextlib
import importlib.metadata
import io
import logging
import os
import signal
import socket
import threading
from typing import Iterator

from stylecam.errors import UserError
from stylecam.signals import STOP_SIGNALS

log = logging.getLogger("stylecam")

INSTALL_HINT = "pip install 'stylecam[cluster]' (Ray)"
START_HINT = "start one with `ray start --head` on its head machine, or give --cluster alone for a local one"


def ray_version() -> str | None:
    """Version of the installed Ray package, without importing it; None when it is not installed."""
    try:
        return importlib.metadata.version("ray")
    except importlib.metadata.PackageNotFoundError:
        return None


def import_ray():
    """The ray module; UserError with the install hint when it is missing."""
    try:
        import ray
    except ImportError:
        raise UserError("--cluster needs Ray, which is not installed", INSTALL_HINT) from None
    return ray


def check_address(address: str) -> str:
    """``address`` when it reads as one (local, auto, HOST:PORT, ray://HOST:PORT); UserError otherwise."""
    if address in ("local", "auto") or address.startswith("ray://"):
        return address
    host, _, port = address.rpartition(":")
    if host and port.isdigit():
        return address
    raise UserError(f"--cluster {address}: not a cluster address",
                    "give HOST:PORT (as `ray start --head` prints it), ray://HOST:PORT, auto, or --cluster alone "
                    "for a local cluster; put --cluster after the inputs or write --cluster=ADDRESS")


class _DebugLines(io.TextIOBase):
    """A text stream whose lines go to the "stylecam" log at debug level."""

    def __init__(self):
        self._partial = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            if line.strip():
                log.debug("ray: %s", line)
        return len(text)


def check_reachable(address: str, timeout: float = 10.0) -> None:
    """UserError at once when nothing answers at HOST:PORT (or ray://HOST:PORT) within ``timeout``
    seconds (Ray itself would keep trying for minutes). "auto" is left to Ray."""
    if address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except (OSError, ValueError) as err:
        reason = getattr(err, "strerror", None) or str(err) or type(err).__name__
        raise UserError(f"cannot reach a Ray cluster at {address}: {reason}", START_HINT) from None


@contextlib.contextmanager
def connected(address: str = "local", num_cpus: int | None = None) -> Iterator:
    """Within: the ray module, connected to the cluster at ``address`` (see the module). A local
    cluster gets ``num_cpus`` CPUs (None: this machine's) and is shut down on leaving, as is the
    connection to any other. Ray's own log stays quiet (errors only, no worker output copied here);
    what Ray's driver prints on stdout (the errors its machines report, e.g. that a worker died,
    which stylecam says in its own words) goes to the debug log, so that stdout holds only what
    stylecam prints (--json). The stop signals keep the handlers they had (ray.init takes SIGTERM)."""
    ray = import_ray()
    with contextlib.redirect_stdout(_DebugLines()):
        if ray.is_initialized():
            yield ray
            return
        with _connection(ray, address, num_cpus):
            yield ray


@contextlib.contextmanager
def _connection(ray, address: str, num_cpus: int | None) -> Iterator[None]:
    """ray.init for the address (see connected), ray.shutdown on leaving."""
    address = check_address(address)
    in_main = threading.current_thread() is threading.main_thread()
    handlers = {s: signal.getsignal(s) for s in STOP_SIGNALS} if in_main else {}
    options = dict(log_to_driver=False, logging_level=logging.ERROR)
    if address == "local":
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        options.update(address="local", num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False)
    else:
        check_reachable(address)
        options.update(address=address)
    try:
        ray.init(**options)
    except (ConnectionError, RuntimeError, ValueError) as err:
        reason = " ".join(str(err).split())[:300]
        raise UserError(f"cannot reach a Ray cluster at {address}: {reason}", START_HINT) from None
    finally:
        for signum, handler in handlers.items():
            if handler is not None:
                signal.signal(signum, handler)
    try:
        yield
    finally:
        ray.shutdown()


def describe_cluster(ray) -> dict:
    """The connected cluster's machines: {"ray": version, "nodes": [{"address", "cpus", "gpus",
    "memory_gb"}], "cpus", "gpus"} (living machines only; totals over them)."""
    nodes = []
    for node in ray.nodes():
        if not node.get("Alive"):
            continue
        resources = node.get("Resources", {})
        nodes.append({"address": node.get("NodeManagerAddress"), "cpus": resources.get("CPU", 0.0),
                      "gpus": resources.get("GPU", 0.0),
                      "memory_gb": round(resources.get("memory", 0.0) / 1e9, 1)})
    return {"ray": ray.__version__, "nodes": nodes, "cpus": sum(n["cpus"] for n in nodes),
            "gpus": sum(n["gpus"] for n in nodes)}


def cluster_text(cluster: dict) -> list[str]:
    """Lines for `stylecam info`: one for the cluster, one per machine."""
    lines = [f"cluster (ray {cluster['ray']}): {len(cluster['nodes'])} machine(s), {cluster['cpus']:g} CPUs, "
             f"{cluster['gpus']:g} GPUs"]
    lines += [f"  {n['address']}: {n['cpus']:g} CPUs, {n['gpus']:g} GPUs, {n['memory_gb']:g} GB" for n in cluster["nodes"]]
    return lines
