"""The commands run as ``python -m stylecam`` and ``python -m trainer``."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize("module, arg, expect", [("stylecam", "--version", "stylecam "),
                                                 ("trainer", "--help", "usage: stylecam-train")])
def test_python_dash_m_runs_the_commands(module, arg, expect):
    proc = subprocess.run([sys.executable, "-m", module, arg], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(expect)
