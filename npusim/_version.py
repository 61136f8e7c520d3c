"""The version a cached result depends on: the release plus a digest of the code."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

__all__ = ["__version__", "model_version"]

__version__ = "0.1.0"


@functools.cache
def model_version() -> str:
    """``__version__`` plus a digest of every module of the package.

    A cached simulation result is only reused by the same simulator code: a change to any
    module (a timing rule, a default energy) changes this string.
    """
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return f"{__version__}+{digest.hexdigest()[:12]}"
