"""The point cache: one JSON file per (chip, workload, memory model, simulator version).

An entry's key is the SHA-256 of a canonical JSON document holding the chip spec (its
validated ``model_dump`` with the descriptive ``name``, ``sources`` and ``assumptions``
left out, keys sorted), the workload's content digest (its layers and batch, however it was
named), the memory model, where weights live and the simulator's code
(``npusim._version.model_version``). Two sweeps that share a design point share its entry,
whatever their files are called.

Entries live at ``DIR/ab/abcdef….json`` (status, metrics or error), with the per-layer
table beside it in ``abcdef….layers.json``, read only when asked for (so reading a large
sweep back parses only the small files). Each file is written to a temporary file in the
same directory, flushed to disk and renamed into place, the layers first: a process killed
at any moment leaves either the whole entry or none (at worst a stray ``.tmp`` or layers
file, which readers ignore).

An entry is checked when it is read, and one that fails is not trusted: it is reported in
one warning line and treated as missing, so the sweep computes it again and overwrites it.
Checked: it parses, holds its own key and schema, an ``ok`` entry's metrics are finite
non-negative numbers with a positive latency and every metric the table needs, an
``error`` entry has its message, and the per-layer file has the size the entry recorded
(a truncated or deleted ``.layers.json`` is recomputed).

Claims keep two sweeps on one cache from computing a point twice. A sweep that is about to
compute a run creates ``abcdef….claim`` exclusively (``O_CREAT | O_EXCL``) holding its host
and pid (and the pid's start time, so a reused pid is not mistaken for the claimer), and
removes it once the entry is written; a sweep that finds the claim of a live process waits
for that entry instead. A claim whose process is gone on this host (a sweep killed with
SIGKILL), or one from another host not touched for :data:`FOREIGN_CLAIM_STALE_S`, is stale
and taken over.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import time
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from npusim._io import atomic_write_text
from npusim.spec.arch import Chip
from npusim.workloads.ir import Workload

__all__ = [
    "DEFAULT_CACHE_DIR",
    "FOREIGN_CLAIM_STALE_S",
    "SCHEMA",
    "PointCache",
    "canonical_chip",
    "entry_problem",
    "point_key",
    "workload_digest",
]

DEFAULT_CACHE_DIR = ".npusim-cache"
#: bumped when the entry layout or the metrics it holds change
SCHEMA = 1
_DESCRIPTIVE = ("name", "sources", "assumptions")
#: a claim from another host (its pid cannot be checked) is stale after this long untouched
FOREIGN_CLAIM_STALE_S = 6 * 3600.0
#: an empty claim file (its writer died between creating and filling it) is stale after this
_EMPTY_CLAIM_STALE_S = 30.0


def canonical_chip(chip: Chip) -> dict[str, Any]:
    """The chip's spec as JSON data, without the fields that do not change results."""
    data = chip.model_dump(mode="json")
    for k in _DESCRIPTIVE:
        data.pop(k, None)
    return data


def workload_digest(workload: Workload) -> str:
    """A content hash of the layers and batch (frozen dataclass reprs are deterministic)."""
    text = repr((workload.name, workload.layers, workload.meta.get("batch", 1)))
    return hashlib.sha256(text.encode()).hexdigest()


def point_key(chip: Chip, workload_id: str, memory: str, version: str | None = None,
              weights_resident: str = "auto") -> str:
    if version is None:
        from npusim._version import model_version

        version = model_version()
    doc = {"chip": canonical_chip(chip), "workload": workload_id, "memory": memory,
           "npusim": version, "schema": SCHEMA}
    if weights_resident != "auto":  # keys of default runs stay what they were
        doc["weights_resident"] = weights_resident
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _read_json(path: Path) -> Any:
    """The JSON document at ``path``, or None if it is missing or unreadable."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _is_metric(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) \
        and v >= 0


def entry_problem(entry: Any, key: str, required: Iterable[str] = ()) -> str | None:
    """What is wrong with a cache entry read back for ``key`` (None if it can be trusted):
    ``required`` names the metrics an ``ok`` entry must hold."""
    if not isinstance(entry, dict):
        return "not a JSON object"
    if entry.get("key") != key:
        return f"holds key {str(entry.get('key'))[:16]!r}, not its own"
    status = entry.get("status")
    if status == "error":
        return None if isinstance(entry.get("error"), str) else "an error entry without message"
    if status != "ok":
        return f"status {status!r} (expected ok or error)"
    metrics = entry.get("metrics")
    if not isinstance(metrics, dict) or not metrics:
        return "no metrics"
    missing = [m for m in required if m not in metrics]
    if missing:
        return f"metrics missing: {', '.join(missing)}"
    bad = [f"{k}={v!r}" for k, v in metrics.items() if not _is_metric(v)]
    if bad:
        return f"metrics not finite non-negative numbers: {', '.join(bad[:4])}"
    if "latency_s" in metrics and metrics["latency_s"] <= 0:
        return f"latency_s={metrics['latency_s']!r} is not positive"
    if "layers_bytes" in entry and not (isinstance(entry["layers_bytes"], int)
                                        and entry["layers_bytes"] > 0):
        return f"layers_bytes={entry['layers_bytes']!r}"
    return None


def _started(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot, Linux), to tell a reused pid
    from the claimer; None where /proc cannot say."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _pid_alive(pid: int, started: Any = None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        pass
    now = _started(pid)
    return not (isinstance(started, int) and now is not None and now != started)


class PointCache:
    """A directory of entries; ``None`` as the directory disables caching."""

    def __init__(self, directory: str | os.PathLike[str] | None = DEFAULT_CACHE_DIR) -> None:
        self.dir = Path(directory) if directory is not None else None
        self._warned: set[str] = set()
        self._host = socket.gethostname()

    def path(self, key: str) -> Path:
        assert self.dir is not None
        return self.dir / key[:2] / f"{key}.json"

    def layers_path(self, key: str) -> Path:
        assert self.dir is not None
        return self.dir / key[:2] / f"{key}.layers.json"

    def claim_path(self, key: str) -> Path:
        assert self.dir is not None
        return self.dir / key[:2] / f"{key}.claim"

    def get(self, key: str, required: Iterable[str] = ()) -> dict[str, Any] | None:
        """The entry without its per-layer table, or None if it is missing or cannot be
        trusted (then a warning says why; ``required``: metrics an ok entry must hold)."""
        if self.dir is None:
            return None
        path = self.path(key)
        if not path.exists():
            return None
        entry = _read_json(path)
        if isinstance(entry, dict) and entry.get("schema") != SCHEMA and "key" in entry:
            return None  # another layout's entry: not wrong, just not ours
        problem = entry_problem(entry, key, required) if entry is not None else "not JSON"
        if problem is None and isinstance(entry, dict) and entry.get("status") == "ok":
            problem = self._layers_problem(key, entry)
        if problem is not None:
            if str(path) not in self._warned:
                self._warned.add(str(path))
                warnings.warn(f"cache entry {path}: {problem}; not trusted, recomputed",
                              stacklevel=2)
            return None
        return entry

    def _layers_problem(self, key: str, entry: dict[str, Any]) -> str | None:
        """A per-layer file that is not the one written with the entry."""
        size = entry.get("layers_bytes")
        if size is None:
            return None  # a system run, or an entry written before sizes were recorded
        try:
            actual = self.layers_path(key).stat().st_size
        except OSError:
            return "its per-layer file is missing"
        if actual != size:
            return f"its per-layer file has {actual} bytes, {size} were written"
        return None

    def get_layers(self, key: str) -> dict[str, list[Any]] | None:
        """The per-layer table (column -> values) of a successful entry, or None."""
        if self.dir is None or self.get(key) is None:
            return None
        layers = _read_json(self.layers_path(key))
        return layers if isinstance(layers, dict) else None

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    def put(self, key: str, entry: dict[str, Any]) -> None:
        """Write ``entry`` atomically; its ``layers`` (if any) go to the layers file first."""
        if self.dir is None:
            return
        doc = {**entry, "key": key, "schema": SCHEMA}
        layers = doc.pop("layers", None)
        self.path(key).parent.mkdir(parents=True, exist_ok=True)
        if layers is not None:
            doc["layers_bytes"] = self._write(self.layers_path(key), layers)
        self._write(self.path(key), doc)

    @staticmethod
    def _write(target: Path, doc: Any) -> int:
        """Write ``doc`` as JSON; returns its size in bytes."""
        text = json.dumps(doc, separators=(",", ":"), allow_nan=True)
        atomic_write_text(target, text)
        return len(text.encode("utf-8"))

    # -- claims -------------------------------------------------------------------------

    def claim(self, key: str) -> bool:
        """Claim ``key`` for this process: True if it is now ours (free, stale or already
        ours), False while another live sweep holds it."""
        if self.dir is None:
            return True
        path = self.claim_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        mine = json.dumps({"host": self._host, "pid": os.getpid(),
                           "started": _started(os.getpid())})
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = self._owner(path)
            if owner == "mine":
                return True
            if owner == "live":
                return False
            atomic_write_text(path, mine)  # take over a dead sweep's claim
            return self._owner(path) == "mine"  # another taker may have won the race
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(mine)
        return True

    def _owner(self, path: Path) -> str:
        """``mine``, ``live`` (another live process) or ``stale`` (gone, or unreadable)."""
        try:
            age = time.time() - path.stat().st_mtime
        except OSError:
            return "stale"
        doc = _read_json(path)
        if not isinstance(doc, dict) or not isinstance(doc.get("pid"), int):
            return "stale" if age > _EMPTY_CLAIM_STALE_S else "live"
        if doc.get("host") != self._host:
            return "stale" if age > FOREIGN_CLAIM_STALE_S else "live"
        if doc["pid"] == os.getpid():
            return "mine"
        return "live" if _pid_alive(doc["pid"], doc.get("started")) else "stale"

    def release(self, key: str) -> None:
        """Drop this process's claim on ``key`` (another's is left alone)."""
        if self.dir is None:
            return
        path = self.claim_path(key)
        if self._owner(path) == "mine":
            path.unlink(missing_ok=True)

    def keys(self) -> list[str]:
        if self.dir is None or not self.dir.exists():
            return []
        return sorted(p.stem for p in self.dir.glob("??/*.json")
                      if not p.name.endswith(".layers.json"))

    def __len__(self) -> int:
        return len(self.keys())
