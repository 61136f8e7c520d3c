"""Quantities with units, as users write them in YAML: ``32 MiB``, ``1.05 GHz``, ``6400 MT/s``,
and as tables a human reads show them (``4.12 µs``, ``1 MiB``, ``12.3 µJ``).

Each parser accepts a number with a unit string (or a bare number, taken in the base unit:
bytes, Hz, bytes/s, transfers/s, seconds, joules) and returns a float or int in base units.
A bad string raises ``ValueError`` with a message naming what was expected; the spec layer
turns that into a ``SpecError`` with the key path and line.
"""

from __future__ import annotations

import math
import re

__all__ = [
    "MAX_BYTES",
    "finite_real",
    "format_bytes",
    "format_si",
    "parse_bandwidth",
    "parse_bytes",
    "parse_data_rate",
    "parse_energy",
    "parse_frequency",
    "parse_power",
    "parse_real",
    "parse_time",
]

_NUM = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
_RE = re.compile(rf"^\s*{_NUM}\s*([A-Za-zµ/%]*)\s*$")

_BYTES = {
    "": 1, "b": 1, "byte": 1, "bytes": 1,
    "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}
_HZ = {"": 1, "hz": 1, "khz": 1e3, "mhz": 1e6, "ghz": 1e9}
_BW = {
    "": 1, "b/s": 1, "kb/s": 1e3, "mb/s": 1e6, "gb/s": 1e9, "tb/s": 1e12,
    "kib/s": 2**10, "mib/s": 2**20, "gib/s": 2**30, "tib/s": 2**40,
}
_RATE = {"": 1, "t/s": 1, "mt/s": 1e6, "gt/s": 1e9, "mbps": 1e6, "gbps": 1e9, "mb/s": 1e6, "gb/s": 1e9}
_TIME = {"": 1, "s": 1, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9, "ps": 1e-12}
_ENERGY = {"": 1, "j": 1, "mj": 1e-3, "uj": 1e-6, "µj": 1e-6, "nj": 1e-9, "pj": 1e-12, "fj": 1e-15}
_POWER = {"": 1, "w": 1, "mw": 1e-3, "kw": 1e3, "uw": 1e-6}
#: the largest size npusim takes (8 EiB, what a signed 64-bit byte count holds)
MAX_BYTES = 2**63 - 1


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"


def finite_real(value: object, what: str = "a number") -> float:
    """``value`` as a float when it is a finite real number, else ``ValueError`` naming it.

    The one check every real-valued input passes through (spec fields, quantities with
    units, command-line options, CSV cells, sweep ranges, SLOs, prices, calibration
    bounds): ``.inf``, ``nan`` and numbers past the float range (``1e400``, an integer of
    400 digits) are refused rather than printed as ``inf`` or ending in an OverflowError."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        raise ValueError(f"expected {what}, not a boolean")
    try:
        v = float(value)  # type: ignore[arg-type]
    except OverflowError:
        v = math.inf
    except (TypeError, ValueError):
        raise ValueError(f"expected {what}, got {_shown(value)}") from None
    if not math.isfinite(v):
        raise ValueError(f"expected {what} that is finite (not inf, nan or past 1.8e308)")
    return v


def parse_real(text: str, what: str = "a number") -> float:
    """A finite real number written as text (``'0.5'``, ``'1e-3'``): ``'inf'``, ``'nan'``,
    ``'1e400'`` and anything that is not a number raise ``ValueError`` naming the text."""
    if not isinstance(text, str):
        return finite_real(text, what)
    try:
        v = float(text)
    except ValueError:
        raise ValueError(f"expected {what}, got {text!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"expected {what} that is finite, got {text!r}")
    return v


def _parse(value: object, table: dict[str, float], what: str, example: str) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected {what} such as '{example}', got {value!r}")
    if isinstance(value, (int, float)):
        return finite_real(value, what)
    if not isinstance(value, str):
        raise ValueError(f"expected {what} such as '{example}', got {type(value).__name__}")
    m = _RE.match(value)
    if not m:
        raise ValueError(f"expected {what} such as '{example}', got {value!r}")
    number, unit = m.groups()
    key = unit.lower()
    if key not in table:
        units = ", ".join(sorted({k for k in table if k}))
        raise ValueError(f"unknown unit {unit!r} in {value!r} for {what} (use one of: {units})")
    v = float(number) * table[key]
    if not math.isfinite(v):
        raise ValueError(f"expected {what} that is finite (not inf, nan or past 1.8e308)")
    return v


def parse_bytes(value: object) -> int:
    """``'32 MiB'`` → 33554432. Decimal (kB, MB) and binary (KiB, MiB) prefixes both work;
    a size past :data:`MAX_BYTES` (8 EiB) is refused."""
    n = round(_parse(value, _BYTES, "a size", "32 MiB"))
    if abs(n) > MAX_BYTES:
        raise ValueError(f"size {value!r} is past the largest npusim takes (8 EiB)")
    return n


def parse_frequency(value: object) -> float:
    """``'1.05 GHz'`` → 1.05e9 Hz."""
    return _parse(value, _HZ, "a frequency", "1.05 GHz")


def parse_bandwidth(value: object) -> float:
    """``'34 GB/s'`` → 3.4e10 bytes per second."""
    return _parse(value, _BW, "a bandwidth", "34 GB/s")


def parse_data_rate(value: object) -> float:
    """``'6400 MT/s'`` → 6.4e9 transfers per second per pin."""
    return _parse(value, _RATE, "a data rate", "6400 MT/s")


def parse_time(value: object) -> float:
    """``'18 ns'`` → 1.8e-8 s."""
    return _parse(value, _TIME, "a time", "18 ns")


def parse_energy(value: object) -> float:
    """``'0.2 pJ'`` → 2e-13 J."""
    return _parse(value, _ENERGY, "an energy", "0.2 pJ")


def parse_power(value: object) -> float:
    """``'5 W'`` → 5.0 W."""
    return _parse(value, _POWER, "a power", "5 W")


def format_bytes(n: float) -> str:
    """Human-readable binary size: 33554432 → '32.0 MiB'; for sizes, which are counted in
    powers of two, where :func:`format_si` is for times, energies and rates."""
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


# SI prefixes from 1e-15 to 1e15, by power of 1000.
_PREFIXES = {-5: "f", -4: "p", -3: "n", -2: "µ", -1: "m", 0: "", 1: "k", 2: "M", 3: "G",
             4: "T", 5: "P"}


def format_si(value: float, unit: str, digits: int = 3) -> str:
    """``value`` (in the base unit ``unit``) with the SI prefix that puts ``digits``
    significant digits before a 1-999 mantissa: 4.1234e-6, "s" → '4.12 µs'.

    A value that rounds up to 1000 moves to the next prefix (999.96e-6 s → '1 ms'); zero is
    '0 s'; NaN and infinities are 'nan s', 'inf s'; beyond the femto-peta range it is
    scientific notation ('1e+20 s'). Machine outputs keep base units: this is
    for text a human reads only.
    """
    v = float(value)
    if v == 0:
        return f"0 {unit}"
    if not math.isfinite(v):
        return f"{v} {unit}"
    exp = math.floor(math.log10(abs(v)) / 3)
    mantissa = float(f"{v / 1000.0 ** exp:.{digits}g}")
    if abs(mantissa) >= 1000:  # rounding carried into the next prefix
        exp += 1
        mantissa = float(f"{v / 1000.0 ** exp:.{digits}g}")
    if exp not in _PREFIXES:  # beyond femto and peta: plain scientific notation
        return f"{v:.{digits}g} {unit}"
    return f"{mantissa:.{digits}g} {_PREFIXES[exp]}{unit}"
