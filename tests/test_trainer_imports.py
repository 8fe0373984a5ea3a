"""The trainer's imports: no import circle among its modules, counting imports inside functions, and
the shared modules (helpers, metadata, network files) import no command module."""
from __future__ import annotations

from pathlib import Path

from tests.test_runtime_imports import find_cycle, import_graph
from trainer.cli import COMMANDS

TRAINER = Path(__file__).resolve().parents[1] / "trainer"
#: modules every command may use; they must not lean on a command in turn
SHARED = ("trainer.common", "trainer.metadata", "trainer.network_files", "trainer.onnx_weights",
          "trainer.checkpoints", "trainer.provenance", "trainer.photos", "trainer.paintings")


def test_no_import_circle_among_trainer_modules():
    edges, _ = import_graph(TRAINER)
    assert {"trainer.export", "trainer.distill", "trainer.train_style", "trainer.nets.transformer"} <= edges.keys()
    cycle = find_cycle(edges)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_shared_modules_import_no_command_module():
    edges, _ = import_graph(TRAINER)
    commands = {module for module, _ in COMMANDS.values()}
    assert {"trainer.train_style", "trainer.distill", "trainer.export"} <= commands
    leaning = {module: sorted(edges[module] & commands) for module in SHARED if edges[module] & commands}
    assert leaning == {}


def test_the_export_command_imports_no_other_command():
    edges, _ = import_graph(TRAINER)
    commands = {module for module, _ in COMMANDS.values()}
    assert edges["trainer.export"] & commands == set()
