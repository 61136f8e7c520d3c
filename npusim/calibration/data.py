"""What a calibration reads: measured latencies (a CSV file), the chip fields to fit (key
paths) and the bounds each is kept in.

The measurement CSV has a header row; its columns:

* ``workload`` (required): a built-in workload name or a workload file, as ``npusim run``
  takes it (a relative path is read from the CSV file's folder first);
* ``latency_s`` (required): the measured time in seconds, greater than 0;
* ``layer`` (optional): a layer name of the workload; the row is that layer's time. Empty:
  the row is the whole query's (end to end, host path included);
* ``batch`` (optional): the batch the time was measured at (default 1).

Other columns (a source, a note) are kept out of the fit and ignored.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from npusim.calibration.bounds import with_fields
from npusim.errors import Issue, SpecError
from npusim.spec.arch import Chip
from npusim.spec.yamlio import read_text

__all__ = ["REQUIRED_COLUMNS", "Measurement", "field_value", "load_measurements",
           "parse_bounds", "with_fields"]

REQUIRED_COLUMNS = ("workload", "latency_s")


@dataclass(frozen=True)
class Measurement:
    """One measured latency; ``line`` is its 1-based line in the CSV file."""

    workload: str
    latency_s: float
    layer: str | None = None
    batch: int = 1
    line: int = 0


def load_measurements(path: str | Path) -> list[Measurement]:
    """The rows of a measurement CSV (format in the module docstring); a bad row is a
    SpecError naming the file and line."""
    p = Path(path)
    src = str(p)
    with io.StringIO(read_text(p), newline="") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise SpecError(Issue("", f"missing column(s) {', '.join(missing)} (the header "
                                  f"needs {', '.join(REQUIRED_COLUMNS)}; layer and batch are "
                                  f"optional)", 1), src)
        reader.fieldnames = header
        rows = [_row(raw, src, i + 2) for i, raw in enumerate(reader)]
    if not rows:
        raise SpecError(Issue("", "no measurements after the header", 1), src)
    return rows


def _row(raw: dict[str, Any], src: str, line: int) -> Measurement:
    def cell(name: str) -> str:
        return (raw.get(name) or "").strip()

    wl = cell("workload")
    if not wl:
        raise SpecError(Issue("workload", "empty workload", line), src)
    try:
        t = float(cell("latency_s"))
    except ValueError:
        raise SpecError(Issue("latency_s", f"{cell('latency_s')!r} is not a number of "
                              f"seconds", line), src) from None
    if not (t > 0 and math.isfinite(t)):
        raise SpecError(Issue("latency_s", f"measured time {cell('latency_s')} must be "
                              f"greater than 0", line), src)
    batch = 1
    if cell("batch"):
        try:
            batch = int(cell("batch"))
        except ValueError:
            batch = 0
        if batch < 1:
            raise SpecError(Issue("batch", f"batch {cell('batch')!r} is not an integer of "
                                  f"at least 1", line), src)
    return Measurement(wl, t, cell("layer") or None, batch, line)


def field_value(chip: Chip, path: str) -> float:
    """The numeric value of ``path`` (``clock``, ``dram.bandwidth``,
    ``cores.core.sram.read_bytes_per_cycle`` …) in ``chip``; a SpecError when it names no
    field or a field that is not a real number. An unset ``dram.bandwidth`` is the peak the
    chip derives from its channels."""
    node: Any = chip.model_dump()
    seen: list[str] = []
    for part in path.split("."):
        if node is None:
            raise SpecError(Issue(path, f"the chip has no {'.'.join(seen)} to fit a field of"))
        if not isinstance(node, dict) or part not in node:
            raise SpecError(Issue(path, "no such field in the chip"))
        node = node[part]
        seen.append(part)
    if node is None and path == "dram.bandwidth":
        return chip.dram.peak_bandwidth
    if node is None:
        raise SpecError(Issue(path, "is not set in the chip: give it a value in the chip "
                              "file to fit it"))
    if isinstance(node, bool) or not isinstance(node, float | int):
        raise SpecError(Issue(path, f"is not a numeric field (it is {type(node).__name__}); "
                              f"only numbers can be fitted"))
    if isinstance(node, int):
        raise SpecError(Issue(path, "is an integer field (a count or a size): only real-valued "
                              "fields can be fitted"))
    return float(node)


def parse_bounds(items: list[str] | None, initial: dict[str, float],
                 default_fraction: float = 0.5, chip: Chip | None = None,
                 shortest_s: float = math.inf) -> dict[str, tuple[float, float]]:
    """Each fitted field's (low, high): ``FIELD=LOW:HIGH`` items (units allowed, as
    ``clock=0.5GHz:2GHz``; several per item separated by commas) kept within the field's
    physical range when ``chip`` is given (see :mod:`npusim.calibration.bounds`), else that
    range, else ±``default_fraction`` of its initial value. A bad item is a one-line error
    naming ``--bounds`` and the field."""
    from npusim.calibration.bounds import fit_ranges, parse_bound_items

    given = parse_bound_items(items, list(initial))
    if chip is None:
        out: dict[str, tuple[float, float]] = {}
        for name, v in initial.items():
            if name in given:
                out[name] = given[name][:2]
            elif v == 0:
                raise SpecError(Issue(name, "is 0 in the chip, so ±50 % is no range: give "
                                      f"--bounds {name}=LOW:HIGH"))
            else:
                a, b = v * (1 - default_fraction), v * (1 + default_fraction)
                out[name] = (min(a, b), max(a, b))
        return out
    ranges = fit_ranges(chip, initial, given, shortest_s, default_fraction)
    return {name: (r.low, r.high) for name, r in ranges.items()}
