"""Stop signals: SIGTERM (``kill``, a service manager, ``docker stop``) and SIGHUP (the terminal
went away) end a run the way Ctrl-C (SIGINT) does.

The first of them raises StopSignal, a KeyboardInterrupt, in the main thread, so every place that
finalises its outputs on Ctrl-C does the same for all three: videos written so far are finished,
playable, under their final names. Further stop signals are ignored while that happens. Code that
finalises a file runs inside ``deferred()``, so that a signal arriving just then waits until the
file is complete. The exit code is 128 + the signal's number: 130 (SIGINT), 143 (SIGTERM), 129 (SIGHUP).
"""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class StopSignal(KeyboardInterrupt):
    """A stop signal received; ``signum`` is its number, ``name`` e.g. "SIGTERM"."""

    def __init__(self, signum: int):
        self.signum = signum
        self.name = signal.Signals(signum).name
        super().__init__(self.name)


class _State:
    received: int | None = None    # number of the first stop signal of this run
    pending = False                # received inside deferred(), not raised yet
    deferring = 0                  # depth of deferred() blocks (0 inside at_once())


_state = _State()


def received() -> int | None:
    """Number of the stop signal this run received first, or None."""
    return _state.received


def exit_code(signum: int | None = None) -> int:
    """128 + the signal's number (``signum``, else the one received, else SIGINT): 130 for Ctrl-C."""
    return 128 + int(signum or _state.received or signal.SIGINT)


def describe(signum: int | None = None) -> str:
    """ "interrupted" for Ctrl-C (or none), else "stopped by SIGTERM" and so on."""
    signum = signum or _state.received
    return "interrupted" if signum in (None, signal.SIGINT) else f"stopped by {signal.Signals(signum).name}"


def _handler(signum: int, frame) -> None:
    if _state.received is not None:   # already stopping: let the outputs be finalised
        return
    _state.received = signum
    if _state.deferring:
        _state.pending = True
        return
    raise StopSignal(signum)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within: SIGINT, SIGTERM and SIGHUP raise StopSignal (see the module). Signals that the
    process inherited as ignored (``nohup``, a background job's SIGINT) stay ignored. Outside the
    main thread nothing is installed. The previous handlers come back on leaving."""
    _state.received, _state.pending, _state.deferring = None, False, 0
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for signum in STOP_SIGNALS:
        current = signal.getsignal(signum)
        if current is not signal.SIG_IGN:
            previous[signum] = current
            signal.signal(signum, _handler)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        _state.received, _state.pending, _state.deferring = None, False, 0


def _raise_pending() -> None:
    if _state.pending and not _state.deferring:
        _state.pending = False
        raise StopSignal(_state.received)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Within: a stop signal is only noted; it is raised when the block has ended normally (a file
    being finalised is never cut short). ``at_once()`` inside lets signals through again."""
    _state.deferring += 1
    try:
        yield
    finally:
        _state.deferring -= 1
    _raise_pending()


@contextlib.contextmanager
def at_once() -> Iterator[None]:
    """Within (inside ``deferred()``): a stop signal is raised at once, as outside any deferred()
    block; one noted before is raised on entering."""
    saved, _state.deferring = _state.deferring, 0
    try:
        _raise_pending()
        yield
    finally:
        _state.deferring = saved
