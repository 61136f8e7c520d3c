"""Progress on stderr for long runs: tqdm bars, shown only where someone is watching.

The library never decides to draw on its own: :func:`shown` (the CLI wraps each command in
it, off with ``--quiet``) turns bars on for the calls made inside it, and only when stderr
is a terminal, so logs, pipes and tests stay clean. Inside, long stages call :func:`bar`
(a tqdm bar, or a no-op one when bars are off) and :func:`busy` (elapsed time while one
long call runs, e.g. a DRAM kernel over millions of requests). A bar appears only after
``DELAY`` seconds: quick runs print nothing. Inside :func:`shown` (unless ``on`` is False),
terminal or not, the first numba compilation of the process prints
``npusim: compiling kernels (first run only)…`` once on stderr, so a redirected first run
says why it is slow (numba reports a compilation only on a cache miss, so warm runs say
nothing).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from typing import Any

__all__ = ["COMPILING", "DELAY", "bar", "busy", "enabled", "shown"]

DELAY = 2.0  # seconds before a bar appears
COMPILING = "npusim: compiling kernels (first run only)…"

_on: ContextVar[bool] = ContextVar("npusim_progress", default=False)


def enabled() -> bool:
    """Whether bars are drawn here (inside :func:`shown`, on a terminal)."""
    return _on.get()


@contextmanager
def shown(on: bool = True) -> Iterator[None]:
    """Bars on stderr for what runs inside, if ``on`` and stderr is a terminal; the compile
    notice if ``on``, terminal or not."""
    stream = sys.stderr
    draw = on and hasattr(stream, "isatty") and stream.isatty()
    token = _on.set(draw)
    listeners: list[Any] | None = [] if on else None
    held = _listeners.set(listeners)
    if listeners is not None and "numba" in sys.modules:
        listeners.append(_listen())
    try:
        yield
    finally:
        from_numba = sys.modules.get("numba.core.event")
        for listener in listeners or ():
            if from_numba is not None:
                from_numba.unregister("numba:compile", listener)
        _listeners.reset(held)
        _on.reset(token)


# The compile notice listens to numba's compile events; numba is imported by the first
# kernel a command needs (npusim.kernels._jit then calls numba_imported), not by the CLI,
# so a command that compiles nothing (--help, validate) never loads it.
_listeners: ContextVar[list[Any] | None] = ContextVar("npusim_compile_listeners",
                                                        default=None)


def _listen() -> Any:
    from numba.core import event

    listener = _compile_notice_class()()
    event.register("numba:compile", listener)
    return listener


def numba_imported() -> None:
    """numba was just imported: inside :func:`shown`, start the compile notice."""
    listeners = _listeners.get()
    if listeners is not None and not listeners:
        listeners.append(_listen())


def bar(total: int | None, desc: str, unit: str = "it", leave: bool = False) -> Any:
    """A tqdm bar on stderr (disabled outside :func:`shown`); use as a context manager."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, leave=leave, file=sys.stderr,
                delay=DELAY, disable=not enabled(), dynamic_ncols=True)


@contextmanager
def busy(desc: str) -> Iterator[None]:
    """Elapsed time on stderr while the body runs (one long call that reports nothing)."""
    if not enabled():
        yield
        return
    stop = threading.Event()
    with bar(None, desc, unit="s") as b:
        def tick() -> None:
            while not stop.wait(0.5):
                b.refresh()

        t = threading.Thread(target=tick, daemon=True)
        t.start()
        try:
            yield
        finally:
            stop.set()
            t.join()


class _CompileNotice:
    """Whether :data:`COMPILING` was printed (the listener below prints it at numba's first
    compilation event, a cache miss)."""

    said = False  # once per process: later compilations belong to the same first run


@cache
def _compile_notice_class() -> type:
    from numba.core import event

    class _Listener(event.Listener):  # type: ignore[misc]
        def on_start(self, ev: Any) -> None:
            if not _CompileNotice.said:
                _CompileNotice.said = True
                print(COMPILING, file=sys.stderr, flush=True)

        def on_end(self, ev: Any) -> None:
            return None

    return _Listener
