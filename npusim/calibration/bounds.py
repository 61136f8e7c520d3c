"""The range each fitted field may take: physical limits by default, ``--bounds`` within them.

A field's physical range (:func:`physical_range`), each with the reason it gives:

=========================  ================================  =====================================
field                      low                               high
=========================  ================================  =====================================
``clock``                  100 MHz                           4 GHz (a stated sane range: no NPU
                                                             ships outside it)
``dram.bandwidth``         1 % of the standard's peak        the standard's peak (channels x
                                                             width x data rate)
``host.bandwidth``         1 % of the link's payload rate    the link kind's payload rate
a time in seconds          0                                 the shortest measured row (an
(overheads, host.latency)                                    overhead cannot exceed a whole run)
any other field            0 if the chip file refuses        none (the default range is then
                           negative values                   ±50 % of the chip's value)
=========================  ================================  =====================================

``--bounds`` narrows a field's range; a bound outside the physical range is pulled back to
it (and the result says so), while a negative lower bound for a field that cannot be
negative, a bound that is not a finite number, a lower bound not below the upper one and a
field that is not being fitted are each one error naming ``--bounds`` and the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pydantic import ValidationError

from npusim.errors import Issue, SpecError
from npusim.spec.arch import Chip
from npusim.spec.link_catalog import LINK_KINDS
from npusim.units import (
    parse_bandwidth,
    parse_bytes,
    parse_energy,
    parse_frequency,
    parse_power,
    parse_time,
)

__all__ = ["CLOCK_RANGE_HZ", "Range", "fit_ranges", "parse_bound_items", "physical_range",
           "with_fields"]

#: The stated sane clock range: no shipping NPU runs below 100 MHz or above 4 GHz.
CLOCK_RANGE_HZ = (100e6, 4e9)

#: A bandwidth fitted below this fraction of its peak says the model misses something else.
_MIN_BANDWIDTH_FRACTION = 0.01


@dataclass(frozen=True)
class Range:
    """A fitted field's interval; ``why`` says where each end comes from, ``note`` what
    happened to the user's ``--bounds`` (empty when nothing was changed)."""

    low: float
    high: float
    why: str
    note: str = ""


def with_fields(chip: Chip, values: dict[str, float]) -> Chip:
    """A validated copy of ``chip`` with each key path set to its value."""
    data = chip.model_dump()
    for path, value in values.items():
        node = data
        *parents, last = path.split(".")
        for part in parents:
            node = node[part]
        node[last] = value
    try:
        return Chip.model_validate(data)
    except ValidationError as exc:  # one line, not pydantic's block
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        raise SpecError(Issue(", ".join(values), f"the chip refuses these values "
                              f"({where}: {err['msg']})")) from None


def _time_field(path: str) -> bool:
    return path.endswith("_s") or path == "host.latency"


def _refuses(chip: Chip, path: str, value: float) -> bool:
    """Whether the chip file refuses ``value`` for ``path`` (probed, so every constraint
    the spec states counts)."""
    try:
        with_fields(chip, {path: value})
    except (ValidationError, SpecError, ValueError):
        return True
    return False


def physical_range(chip: Chip, path: str, value: float,
                   shortest_s: float) -> tuple[float, float, str]:
    """``(low, high, why)`` of ``path``; ``high`` is ``inf`` where physics sets no upper
    limit. ``shortest_s`` is the shortest measured time among the fitted rows."""
    if path == "clock":
        lo, hi = CLOCK_RANGE_HZ
        return lo, hi, "a stated sane clock range, 100 MHz to 4 GHz"
    if path == "dram.bandwidth":
        d = chip.dram
        peak = d.n_channels * d.width_bits / 8 * d.rate_tps
        return (peak * _MIN_BANDWIDTH_FRACTION, peak,
                f"at most the {d.standard} peak of {d.n_channels} channels ({peak / 1e9:.4g} GB/s)")
    if path == "host.bandwidth" and chip.host is not None and chip.host.kind in LINK_KINDS:
        peak = LINK_KINDS[chip.host.kind][0]
        return (peak * _MIN_BANDWIDTH_FRACTION, peak,
                f"at most the {chip.host.kind} payload rate ({peak / 1e9:.4g} GB/s)")
    low = 0.0 if _refuses(chip, path, -1.0) else -math.inf
    if _time_field(path):
        return (max(low, 0.0), shortest_s,
                "between 0 and the shortest measured time: an overhead is part of what was "
                "measured")
    return low, math.inf, "no physical range known beyond the chip file's own limits"


_PARSERS = (float, parse_frequency, parse_bandwidth, parse_time, parse_energy, parse_power,
            parse_bytes)


def _quantity(text: str, name: str) -> float:
    for parser in _PARSERS:
        try:
            v = float(parser(text.strip()))
        except (ValueError, SpecError):
            continue
        if not math.isfinite(v):
            raise SpecError(Issue("--bounds", f"{name}: {text.strip()!r} is not a finite "
                                  f"number"))
        return v
    raise SpecError(Issue("--bounds", f"{name}: {text.strip()!r} is not a number or a "
                          f"quantity with a unit (1.2GHz, 40GB/s, 5us)"))


def parse_bound_items(items: list[str] | None,
                      fields: list[str]) -> dict[str, tuple[float, float, str]]:
    """``FIELD=LOW:HIGH`` items (several per item separated by commas, units allowed) as
    ``{field: (low, high, text)}``; each bad one is a one-line error naming ``--bounds``."""
    given: dict[str, tuple[float, float, str]] = {}
    for item in items or []:
        for part in filter(None, (x.strip() for x in item.split(","))):
            name, eq, rng = part.partition("=")
            lo_txt, colon, hi_txt = rng.partition(":")
            name = name.strip()
            if not eq or not colon:
                raise SpecError(Issue("--bounds", f"{part!r} is not FIELD=LOW:HIGH"))
            if name not in fields:
                raise SpecError(Issue("--bounds", f"{name!r} is not a field being fitted "
                                      f"(--fit {','.join(fields)})"))
            lo, hi = _quantity(lo_txt, name), _quantity(hi_txt, name)
            if not lo < hi:
                raise SpecError(Issue("--bounds", f"{name}: lower bound {lo_txt.strip()} is "
                                      f"not below upper bound {hi_txt.strip()}"))
            given[name] = (lo, hi, f"{lo_txt.strip()}:{hi_txt.strip()}")
    return given


def fit_ranges(chip: Chip, initial: dict[str, float],
               given: dict[str, tuple[float, float, str]], shortest_s: float,
               default_fraction: float = 0.5, option: str = "--bounds") -> dict[str, Range]:
    """Each fitted field's :class:`Range`: the user's bounds (``given``) kept within the
    physical range, else the physical range, else ±``default_fraction`` of the value."""
    out: dict[str, Range] = {}
    for name, v in initial.items():
        plo, phi, why = physical_range(chip, name, v, shortest_s)
        if name in given:
            lo, hi, text = given[name]
            if lo < 0 <= plo:
                raise SpecError(Issue(option, f"{name}: lower bound {text.split(':')[0]} is "
                                      f"negative, and {name} cannot be below 0"))
            if lo <= 0 == plo and _refuses(chip, name, 0.0):
                raise SpecError(Issue(option, f"{name}: lower bound {text.split(':')[0]} is "
                                      f"not above 0, and {name} must be"))
            clo, chi = max(lo, plo), min(hi, phi)
            if not clo < chi:
                raise SpecError(Issue(option, f"{name}: {text} lies outside its physical "
                                      f"range {plo:.6g} .. {phi:.6g} ({why})"))
            note = "" if (clo, chi) == (lo, hi) else (
                f"{option} {name}={text} reaches outside the physical range "
                f"{plo:.6g} .. {phi:.6g} ({why}): kept within {clo:.6g} .. {chi:.6g}")
            out[name] = Range(clo, chi, f"{option} {name}={text}" + (f"; {why}" if note else ""),
                              note)
        elif math.isfinite(plo) and math.isfinite(phi):
            if not plo < phi:
                raise SpecError(Issue(name, f"has no room to move: its physical range is "
                                      f"{plo:.6g} .. {phi:.6g} ({why})"))
            out[name] = Range(plo, phi, why)
        elif v == 0:
            raise SpecError(Issue(name, f"is 0 in the chip, so ±{default_fraction:.0%} is no "
                                  f"range: give {option} {name}=LOW:HIGH"))
        else:
            a, b = v * (1 - default_fraction), v * (1 + default_fraction)
            lo, hi = max(min(a, b), plo), min(max(a, b), phi)
            out[name] = Range(lo, hi, f"±{default_fraction:.0%} of the chip's value; {why}")
    return out
