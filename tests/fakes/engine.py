"""The engine over the fake models (tests.fakes.onnx_models: wave adds 10, muse halves) on the CPU,
and a Stylizer that fails at a chosen call.
"""
from __future__ import annotations

from stylecam.config import EngineConfig
from stylecam.pipeline import Stylizer


def engine(weights, *styles, **kw) -> EngineConfig:
    """The EngineConfig of ``styles`` (default: wave) from the models in ``weights``, on the CPU;
    ``kw``: its other fields."""
    return EngineConfig(styles=tuple(styles or ("wave",)), weights_dir=str(weights), device="cpu", **kw)


def interrupt_at_call(monkeypatch, n: int, error: BaseException | None = None) -> None:
    """``error`` (default: Ctrl-C, a KeyboardInterrupt) raised by the n-th call of
    Stylizer.stylize_batch; the others run."""
    calls = {"n": 0}
    original = Stylizer.stylize_batch

    def flaky(self, frames):
        calls["n"] += 1
        if calls["n"] == n:
            raise error or KeyboardInterrupt()
        return original(self, frames)

    monkeypatch.setattr(Stylizer, "stylize_batch", flaky)
