"""The command line's cluster flags (`stylecam ... --cluster [ADDRESS]`, `stylecam info --cluster`):
the hooks stylecam.cli calls, kept here so that the CLI stays a table of commands."""
from __future__ import annotations

import argparse
import dataclasses
import os

from stylecam import argtypes
from stylecam.config import RunConfig

SEGMENT_FRAMES = 1200   # default frames per segment of a long video


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--cluster [ADDRESS], --cluster-workers N, --segment-frames N."""
    group = parser.add_argument_group("cluster (pip install 'stylecam[cluster]'; docs/cluster.md)")
    group.add_argument("--cluster", nargs="?", const="local", default=None, metavar="ADDRESS",
                       help="stylize the files on a Ray cluster: alone, a local one on this machine; auto, the "
                            "one `ray start --head` runs here; HOST:PORT or ray://HOST:PORT, that cluster's head. "
                            "Finished outputs are recorded beside them and skipped when the same command runs "
                            "again. Give it after the inputs, or as --cluster=ADDRESS")
    group.add_argument("--cluster-workers", type=argtypes.positive_int, default=None, metavar="N",
                       help="worker processes on the cluster, each with its own models (default: one per GPU, "
                            "else one per --threads CPUs, --threads defaulting to 1)")
    group.add_argument("--segment-frames", type=argtypes.int_at_least(2), default=SEGMENT_FRAMES, metavar="N",
                       help=f"cut videos into segments of about N frames, at key frames, stylized in parallel "
                            f"(default {SEGMENT_FRAMES})")


def add_info_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cluster", nargs="?", const="local", default=None, metavar="ADDRESS",
                        help="also list the machines of a Ray cluster (CPUs, GPUs): auto, HOST:PORT, "
                             "ray://HOST:PORT, or alone for a local one")


def _address_or_source(args: argparse.Namespace) -> tuple[str, tuple[str, ...]]:
    """(cluster address, sources): `--cluster clip.mp4` (an existing path given right after the
    flag, which is not an address) is read as --cluster followed by that input."""
    address = args.cluster
    if address not in ("local", "auto") and ":" not in address and os.path.exists(address):
        return "local", (address, *args.sources)
    return address, tuple(args.sources)


def run_from_args(args: argparse.Namespace, config: RunConfig) -> tuple[int, dict]:
    """Run the command line's files on the cluster it names; returns (exit code, summary)."""
    from stylecam.cluster.driver import ClusterConfig, run_on_cluster

    address, sources = _address_or_source(args)
    cluster = ClusterConfig(address=address, workers=args.cluster_workers, segment_frames=args.segment_frames)
    return run_on_cluster(dataclasses.replace(config, sources=sources), cluster)


def info_facts(address: str | None) -> dict:
    """What `stylecam info` says about clusters: the Ray version installed (None: not installed) and,
    with an address, the machines of that cluster (stylecam.cluster.connect.describe_cluster)."""
    from stylecam.cluster.connect import connected, describe_cluster, ray_version

    facts = {"ray": ray_version()}
    if address is not None:
        with connected(address, num_cpus=None) as ray:
            facts.update(describe_cluster(ray))
    return facts


def info_lines(facts: dict) -> list[str]:
    """Lines for `stylecam info`."""
    from stylecam.cluster.connect import INSTALL_HINT, cluster_text

    if facts["ray"] is None:
        return [f"cluster: Ray not installed ({INSTALL_HINT})"]
    if "nodes" not in facts:
        return [f"cluster: ray {facts['ray']} (stylecam ... --cluster; `stylecam info --cluster ADDRESS` lists "
                f"a cluster's machines)"]
    return cluster_text(facts)
