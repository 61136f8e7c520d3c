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
from typing import Any

from numba.core import event

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
    listener = _CompileNotice() if on else None
    if listener is not None:
        event.register("numba:compile", listener)
    try:
        yield
    finally:
        if listener is not None:
            event.unregister("numba:compile", listener)
        _on.reset(token)


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


class _CompileNotice(event.Listener):  # type: ignore[misc]
    """Prints :data:`COMPILING` at the first compilation (numba's event on a cache miss)."""

    said = False  # once per process: later compilations belong to the same first run

    def on_start(self, ev: Any) -> None:
        if not _CompileNotice.said:
            _CompileNotice.said = True
            print(COMPILING, file=sys.stderr, flush=True)

    def on_end(self, ev: Any) -> None:
        return None
