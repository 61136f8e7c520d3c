"""Atomic file writing: nothing a user has is ever left half-written.

``atomic_write(path, write)`` has ``write(tmp)`` fill a temporary file in the target's
folder, flushes it to disk, gives it the mode the target has (or a plain ``open`` would
give), then renames it over the target in one step. A crash or SIGKILL at any point leaves
either the old file or the new one, and perhaps the hidden temporary file: its name carries
the writing process's id (``.NAME.npusim-PID-XXXX.tmp``), and every later write into the
folder removes those whose process is gone, so a killed write is not left lying about.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["atomic_write", "atomic_write_text", "remove_stale_temporaries"]


def _mode(target: Path) -> int:
    if target.exists():
        return target.stat().st_mode & 0o777
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_TEMP = re.compile(r"^\..+\.npusim-(\d+)-[^.]+\.tmp$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(folder: Path) -> None:
    """Remove the temporary files of npusim writes in ``folder`` whose process is gone (a
    write killed by SIGKILL or a power cut)."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        m = _TEMP.match(name)
        if m and int(m.group(1)) != os.getpid() and not _alive(int(m.group(1))):
            Path(folder, name).unlink(missing_ok=True)


def atomic_write(path: str | os.PathLike[str], write: Callable[[str], Any]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)  # the library's; the CLI checks first
    remove_stale_temporaries(target.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.npusim-{os.getpid()}-", suffix=".tmp",
                               dir=target.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, _mode(target))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
