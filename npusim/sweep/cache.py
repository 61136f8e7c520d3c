"""The point cache: one JSON file per (chip, workload, memory model, simulator version).

An entry's key is the SHA-256 of a canonical JSON document holding the chip spec (its
validated ``model_dump`` with the descriptive ``name``, ``sources`` and ``assumptions``
left out, keys sorted), the workload's content digest (its layers and batch, however it was
named), the memory model and the simulator's code (``npusim._version.model_version``). Two sweeps that share a design point
share its entry, whatever their files are called.

Entries live at ``DIR/ab/abcdef….json`` (status, metrics or error), with the per-layer
table beside it in ``abcdef….layers.json``, read only when asked for (so reading a large
sweep back parses only the small files). Each file is written to a temporary file in the
same directory, flushed to disk and renamed into place, the layers first: a process killed
at any moment leaves either the whole entry or none (at worst a stray ``.tmp`` or layers
file, which readers ignore). An entry that cannot be parsed is treated as missing.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from npusim._io import atomic_write_text
from npusim.spec.arch import Chip
from npusim.workloads.ir import Workload

__all__ = [
    "DEFAULT_CACHE_DIR",
    "SCHEMA",
    "PointCache",
    "canonical_chip",
    "point_key",
    "workload_digest",
]

DEFAULT_CACHE_DIR = ".npusim-cache"
#: bumped when the entry layout or the metrics it holds change
SCHEMA = 1
_DESCRIPTIVE = ("name", "sources", "assumptions")


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


class PointCache:
    """A directory of entries; ``None`` as the directory disables caching."""

    def __init__(self, directory: str | os.PathLike[str] | None = DEFAULT_CACHE_DIR) -> None:
        self.dir = Path(directory) if directory is not None else None

    def path(self, key: str) -> Path:
        assert self.dir is not None
        return self.dir / key[:2] / f"{key}.json"

    def layers_path(self, key: str) -> Path:
        assert self.dir is not None
        return self.dir / key[:2] / f"{key}.layers.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The entry without its per-layer table, or None."""
        if self.dir is None:
            return None
        entry = _read_json(self.path(key))
        if not isinstance(entry, dict) or entry.get("key") != key \
                or entry.get("schema") != SCHEMA:
            return None
        return entry

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
            self._write(self.layers_path(key), layers)
        self._write(self.path(key), doc)

    @staticmethod
    def _write(target: Path, doc: Any) -> None:
        atomic_write_text(target, json.dumps(doc, separators=(",", ":"), allow_nan=True))

    def keys(self) -> list[str]:
        if self.dir is None or not self.dir.exists():
            return []
        return sorted(p.stem for p in self.dir.glob("??/*.json")
                      if not p.name.endswith(".layers.json"))

    def __len__(self) -> int:
        return len(self.keys())
