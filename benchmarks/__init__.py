"""Reproducible speed and quality measurements of stylecam, JSON out (see docs/speed.md).

Every script runs from the repository root as a module, e.g. ``python -m benchmarks.runtime_fps --help``;
what they share is in ``benchmarks.common``.
"""
