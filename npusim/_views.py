"""Views of the records that are drawn in :mod:`npusim.report`.

A :class:`~npusim.spec.arch.Chip`, a :class:`~npusim.result.Result` and a
:class:`~npusim.system.SystemResult` offer ``_repr_html_``, ``plot`` and
``to_chrome_trace``, but the code that draws them lives in ``npusim.report``, above every
record (it reads them; they must not import it). ``npusim.report`` registers those views
here when it is imported, which ``import npusim`` does, so a record reaches its views
without importing anything above itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["register", "view"]

_VIEWS: dict[str, Callable[..., Any]] = {}


def register(name: str, fn: Callable[..., Any]) -> None:
    """Make ``fn`` the view called ``name`` (``result.plot``, ``chip.html`` …)."""
    _VIEWS[name] = fn


def view(name: str) -> Callable[..., Any]:
    """The view registered as ``name``."""
    try:
        return _VIEWS[name]
    except KeyError:
        raise RuntimeError(f"no {name!r} view registered (import npusim.report)") from None
