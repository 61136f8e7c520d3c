"""Fit chip fields to measured latencies: repeated simulation under a bounded least-squares
optimiser.

The residual of a measurement is ``predicted / measured - 1``, so a 1 ms layer and a 100 ms
query weigh alike. The optimiser is ``scipy.optimize.least_squares`` (trust-region
reflective, bounds kept by construction): simulation is a black box without gradients, and
its finite-difference Jacobian is cheap for the handful of fields one fits; each field is
rescaled to [0, 1] across its bounds so that a clock in hertz and an overhead in seconds
take comparable steps. Every simulation includes the host path (``simulate(host=True)``):
an end-to-end measurement is of a whole query.

What the rows cannot tell is measured at the fit, not assumed: the Jacobian of the fitted
rows' residuals (central differences of 1 % of each field), its rank and the fields'
correlation from (J^T J)^-1 (:func:`identifiability`), a standard error per field, and a
:class:`CalibrationWarning` for fields that trade off, a field no row moves, a fit with no
row to spare and a fit ending on a bound. Each field is kept within its physical range
(:mod:`npusim.calibration.bounds`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from npusim.calibration.bounds import Range
from npusim.calibration.data import Measurement, field_value, with_fields
from npusim.errors import Issue, NpusimError, SpecError
from npusim.result import Result
from npusim.spec.arch import Calibration, Chip, Residual
from npusim.workloads.ir import Workload

__all__ = ["CAUSES", "INSTALL_HINT", "CalibrationResult", "CalibrationWarning",
           "Identifiability", "calibrate", "identifiability", "predict", "split_holdout",
           "write_calibrated"]

class CalibrationWarning(UserWarning):
    """What a calibration cannot know: fields that trade off, a field no row moves, a fit
    with no rows to spare, a fit ending on a bound."""


INSTALL_HINT = "npusim calibrate needs scipy: pip install 'npusim[calibrate]'"


@dataclass(frozen=True)
class CalibrationResult:
    """The calibrated chip (with its ``calibration`` block) and one row per measurement in
    ``table``: workload, layer, batch, measured_s, initial_s (the starting chip's
    prediction), predicted_s (the calibrated chip's), error (predicted / measured - 1),
    held_out. ``fields``: each fitted field's initial and fitted value, standard error,
    spread per 1 % of measurement error, range and where the range comes from.
    ``identifiability``: the Jacobian's rank and the fields' correlation. ``warnings``: what
    the rows cannot tell. ``report``: per row, the compute / memory / vector / overhead
    share of its time and its sensitivity to each field (d ln t / d ln x)."""

    chip: Chip
    table: pd.DataFrame = field(repr=False)
    fields: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)
    identifiability: Identifiability | None = field(repr=False, default=None)
    warnings: tuple[str, ...] = ()
    report: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)

    @property
    def fitted(self) -> dict[str, float]:
        assert self.chip.calibration is not None
        return dict(self.chip.calibration.fitted)

    @property
    def fit_rms_error(self) -> float:
        return _rms(self.table.loc[~self.table["held_out"], "error"])

    @property
    def holdout_rms_error(self) -> float | None:
        held = self.table.loc[self.table["held_out"], "error"]
        return _rms(held) if len(held) else None


def _rms(errors: Iterable[float]) -> float:
    a = np.asarray(list(errors), dtype=float)
    return float(np.sqrt(np.mean(a * a))) if len(a) else 0.0


def split_holdout(rows: Sequence[Measurement], holdout: int = 0,
                  holdout_workloads: Iterable[str] = ()) -> list[bool]:
    """Which rows are held out: the last ``holdout`` rows of the file and every row of the
    named workloads. At least one row must stay in the fit."""
    names = set(holdout_workloads)
    unknown = names - {m.workload for m in rows}
    if unknown:
        raise SpecError(Issue("--holdout-workloads", f"no measurement of {', '.join(sorted(unknown))}"))
    if holdout < 0:
        raise SpecError(Issue("--holdout", "must be 0 or more"))
    held = [m.workload in names or i >= len(rows) - holdout for i, m in enumerate(rows)]
    if all(held):
        raise SpecError(Issue("--holdout", f"holds out all {len(rows)} measurements: "
                              f"nothing is left to fit"))
    return held


Resolver = Callable[[str, int], Workload]


def _default_resolver(base: Path | None) -> Resolver:
    from npusim.inputs import resolve_workload

    def resolve(name: str, batch: int) -> Workload:
        p = Path(name)
        if base is not None and not p.is_absolute() and (base / p).exists():
            name = str(base / p)
        return resolve_workload(name, batch=batch)
    return resolve


def _workloads(rows: Sequence[Measurement], resolve: Resolver,
               source: str | None) -> dict[tuple[str, int], Workload]:
    out: dict[tuple[str, int], Workload] = {}
    for m in rows:
        key = (m.workload, m.batch)
        if key not in out:
            try:
                out[key] = resolve(m.workload, m.batch)
            except NpusimError as exc:
                text = " ".join(str(exc).split("\n"))
                raise SpecError(Issue("workload", text, m.line), source) from None
        if m.layer is not None and m.layer not in {x.name for x in out[key].layers}:
            raise SpecError(Issue("layer", f"{m.workload} has no layer named {m.layer!r}",
                                  m.line), source)
    return out


#: The cause columns of a layer (npusim.engine causes, which add up to its latency) by what
#: bounds it, for ``--report``.
CAUSES = {
    "compute": ("time_mac_s", "time_fill_drain_s", "time_sram_stall_s", "time_sync_s"),
    "memory": ("time_dma_exposed_s", "time_dram_bank_s", "time_dram_refresh_s",
               "time_dram_turnaround_s", "time_noc_s"),
    "vector": ("time_vector_s",),
    "overhead": ("time_host_s",),
}


def _run(chip: Chip, rows: Sequence[Measurement], workloads: dict[tuple[str, int], Workload],
         memory: str) -> tuple[np.ndarray, np.ndarray]:
    """Each row's simulated time and its shares of :data:`CAUSES` (rows x 4)."""
    from npusim.simulate import simulate

    results: dict[tuple[str, int], Result] = {}
    out = np.empty(len(rows))
    shares = np.zeros((len(rows), len(CAUSES)))
    for i, m in enumerate(rows):
        key = (m.workload, m.batch)
        if key not in results:
            results[key] = simulate(chip, workloads[key], memory=memory, host=True)
        res = results[key]
        df = res.layers if m.layer is None else res.layers[res.layers["layer"] == m.layer]
        out[i] = (float(res.summary()["latency_s"]) if m.layer is None
                  else float(df["latency_s"].sum()))
        parts = [sum(float(df[c].sum()) for c in cols if c in df) for cols in CAUSES.values()]
        total = sum(parts)
        if total > 0:
            shares[i] = np.array(parts) / total
    return out, shares


def predict(chip: Chip, rows: Sequence[Measurement],
            workloads: dict[tuple[str, int], Workload], *,
            memory: str = "bandwidth") -> np.ndarray:
    """The simulated time of each measurement on ``chip`` (one simulation per workload and
    batch; the host path included)."""
    return _run(chip, rows, workloads, memory)[0]


def _scale(x: float, r: Range) -> float:
    """The unit a field's sensitivity is taken per: its value, or its range when the value
    sits (nearly) at 0."""
    return abs(x) if abs(x) > 1e-3 * (r.high - r.low) else r.high - r.low


def _elasticities(chip_with: Callable[[dict[str, float]], Chip], values: dict[str, float],
                  ranges: dict[str, Range], rows: Sequence[Measurement],
                  workloads: dict[tuple[str, int], Workload], memory: str,
                  base: np.ndarray) -> np.ndarray:
    """rows x fields: the relative change of each row's time per unit of each field's scale
    (d ln t / d ln x for a field away from 0), by finite differences of 1 % of the scale,
    central where both steps stay within the field's range."""
    cols = []
    for f, x in values.items():
        r = ranges[f]
        h = 0.01 * _scale(x, r)
        up, down = min(x + h, r.high), max(x - h, r.low)
        t_up = _run(chip_with({**values, f: up}), rows, workloads, memory)[0] if up > x else base
        t_dn = _run(chip_with({**values, f: down}), rows, workloads, memory)[0] \
            if down < x else base
        cols.append((t_up - t_dn) / (up - down) * _scale(x, r) / base)
    return np.column_stack(cols)


@dataclass(frozen=True)
class Identifiability:
    """What the fitted rows can tell about the fields, from the Jacobian of the residuals at
    the fit (``jacobian``: fitted rows x fields, per unit of each field's scale): its rank,
    the fields' correlation from (J^T J)^-1 (a pseudo-inverse when the rank falls short),
    and each field's standard error (None without rows to spare, inf when not identified)
    and its spread per 1 % of independent measurement error."""

    jacobian: np.ndarray
    rank: int
    correlation: pd.DataFrame
    stderr: dict[str, float | None]
    per_percent: dict[str, float]
    unmoved: tuple[str, ...]
    not_identified: tuple[str, ...]


def identifiability(jac: np.ndarray, residuals: np.ndarray, fields: Sequence[str],
                    scales: Sequence[float], tol: float = 1e-6,
                    weak: float = 0.01) -> Identifiability:
    """The rank of ``jac`` (singular values above ``tol`` x the largest), the correlation
    between fields and their uncertainties (see :class:`Identifiability`). A field whose
    column stays below ``weak`` on every row (under 0.01 % of a row's time per 1 % change)
    is ``unmoved``: the rows can hardly fit it."""
    m, n = jac.shape
    sv = np.linalg.svd(jac, compute_uv=False) if m else np.zeros(0)
    # A column under 1e-9 (a billionth of a row's time per unit) is rounding, not a slope.
    floor = max(tol * (float(sv.max()) if len(sv) else 0.0), 1e-9)
    rank = int((sv > floor).sum())
    unmoved = tuple(f for j, f in enumerate(fields)
                    if not m or float(np.abs(jac[:, j]).max()) < weak)
    null: set[str] = set()
    if rank < n:
        _, s_full, vt = np.linalg.svd(jac, full_matrices=True)
        s_pad = np.zeros(n)
        s_pad[:len(s_full)] = s_full
        for k in range(n):
            if s_pad[k] <= floor:
                null.update(f for j, f in enumerate(fields) if abs(vt[k, j]) > 0.1)
    cov = np.linalg.pinv(jac.T @ jac)
    d = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / np.outer(d, d)
    corr[np.outer(d, d) == 0] = np.nan
    sigma = float(np.sqrt(residuals @ residuals / (m - n))) if m > n else None
    stderr: dict[str, float | None] = {}
    per_pct: dict[str, float] = {}
    for j, f in enumerate(fields):
        if f in null:
            stderr[f], per_pct[f] = math.inf, math.inf
            continue
        per_pct[f] = 0.01 * float(d[j]) * scales[j]
        stderr[f] = None if sigma is None else sigma * float(d[j]) * scales[j]
    return Identifiability(jac, rank, pd.DataFrame(corr, index=list(fields),
                                                   columns=list(fields)),
                           stderr, per_pct, unmoved, tuple(f for f in fields if f in null))


def _warnings(ident: Identifiability, residuals: np.ndarray, fields: Sequence[str],
              n_rows: int,
              values: dict[str, float], ranges: dict[str, Range],
              physical: dict[str, tuple[float, float]], threshold: float = 0.95) -> list[str]:
    out = [r.note for r in ranges.values() if r.note]
    for f in ident.unmoved:
        most = float(np.abs(ident.jacobian[:, fields.index(f)]).max())
        out.append(f"{f} moves none of the fitted rows' times: these measurements cannot fit "
                   f"it (--report shows what bounds each row)" if most < 1e-9 else
                   f"{f} barely moves the fitted rows' times (at most {most:.2g} % of a "
                   f"row's time per 1 % change): a fit of it blows any other error up {1 / most:.0f}-fold "
                   f"(--report shows what bounds each row)")
    pairs = []
    corr = ident.correlation.to_numpy()
    for i, a in enumerate(fields):
        for j in range(i + 1, len(fields)):
            b = fields[j]
            if a in ident.unmoved or b in ident.unmoved or not np.isfinite(corr[i, j]):
                continue
            if abs(corr[i, j]) > threshold:
                pairs.append((a, b))
                out.append(f"{a} and {b} trade off (correlation {corr[i, j]:+.2f}): the "
                           f"measurements fix a combination of them, not each; fit one, or "
                           f"add rows that move one without the other")
    rest = [f for f in ident.not_identified if f not in ident.unmoved
            and not any(f in p for p in pairs)]
    if rest:
        out.append(f"the fitted rows fix only {ident.rank} of {len(fields)} fields: "
                   f"{', '.join(rest)} are not identified")
    if n_rows == len(fields) and not ident.not_identified:
        out.append(f"{n_rows} fitted row(s) for {len(fields)} field(s): no row to spare, so "
                   f"the fit error tests nothing; only held-out rows do")
    # The cost's slope along each field: at a bound, a slope pointing outward means the fit
    # was stopped by the bound rather than resting there.
    slope = ident.jacobian.T @ residuals
    for j, (f, x) in enumerate(values.items()):
        r = ranges[f]
        for side, edge in (("lower", r.low), ("upper", r.high)):
            if abs(x - edge) > 1e-6 * (r.high - r.low) or f in ident.unmoved:
                continue
            pushing = slope[j] > 1e-12 if side == "lower" else slope[j] < -1e-12
            if not pushing:
                out.append(f"{f} ended on its {side} bound {edge:.6g} ({r.why}); nothing "
                           f"pulls it away from there")
            elif edge == physical[f][0 if side == "lower" else 1]:
                out.append(f"{f} ended on its {side} bound {edge:.6g} (physical: {r.why}); "
                           f"the fit wants an unphysical value, so the model misses something "
                           f"this field cannot stand in for")
            else:
                out.append(f"{f} ended on its {side} bound {edge:.6g} ({r.why}); the fit "
                           f"wants to go further: widen --bounds")
    return out


def calibrate(chip: Chip, rows: Sequence[Measurement], fields: Sequence[str], *,
              bounds: list[str] | dict[str, tuple[float, float]] | None = None,
              holdout: int = 0, holdout_workloads: Iterable[str] = (),
              memory: str = "bandwidth", data_name: str = "measurements",
              source: str | None = None, resolve: Resolver | None = None,
              max_evaluations: int = 200) -> CalibrationResult:
    """Fit ``fields`` (chip key paths) of ``chip`` to the measured ``rows``.

    ``bounds``: ``FIELD=LOW:HIGH`` strings or a dict, kept within each field's physical
    range (:mod:`npusim.calibration.bounds`); a field without bounds takes its physical
    range, or ±50 % of its value where physics gives none. ``holdout`` /
    ``holdout_workloads`` keep rows out of the fit (see :func:`split_holdout`); their error
    is reported beside the fit's. ``source`` is the CSV file (relative workload paths are
    read from its folder, errors name it); ``data_name`` is how the calibrated chip records
    the data. What the rows cannot tell apart (fields that trade off, a field no row moves,
    as many rows as fields, a fit ending on a bound) is a warning, each also in
    ``result.warnings``.
    """
    try:
        from scipy.optimize import least_squares
    except ImportError:
        raise NpusimError(INSTALL_HINT) from None
    from npusim.calibration.bounds import fit_ranges, parse_bound_items, physical_range

    if not fields:
        raise SpecError(Issue("--fit", "name at least one field to fit"))
    if len(set(fields)) != len(fields):
        raise SpecError(Issue("--fit", "a field is named twice"))
    fields = list(fields)
    initial = {f: field_value(chip, f) for f in fields}
    held = np.array(split_holdout(rows, holdout, holdout_workloads))
    n_fit = int((~held).sum())
    if n_fit < len(fields):
        raise SpecError(Issue("--fit", f"{len(fields)} fields to fit from {n_fit} fitted "
                              f"row(s): a fit needs at least as many measurements as fields"))
    measured = np.array([m.latency_s for m in rows])
    shortest = float(measured[~held].min())
    if isinstance(bounds, dict):
        given = {}
        for f, (lo_v, hi_v) in bounds.items():
            if f not in initial:
                raise SpecError(Issue("--bounds", f"{f!r} is not a field being fitted"))
            if not (math.isfinite(lo_v) and math.isfinite(hi_v)):
                raise SpecError(Issue("--bounds", f"{f}: bounds must be finite numbers"))
            if not lo_v < hi_v:
                raise SpecError(Issue("--bounds", f"{f}: lower bound {lo_v:g} is not below "
                                      f"upper bound {hi_v:g}"))
            given[f] = (float(lo_v), float(hi_v), f"{lo_v:g}:{hi_v:g}")
    else:
        given = parse_bound_items(bounds, fields)
    ranges = fit_ranges(chip, initial, given, shortest)
    physical = {f: physical_range(chip, f, initial[f], shortest)[:2] for f in fields}
    resolver = resolve or _default_resolver(Path(source).parent if source else None)
    workloads = _workloads(rows, resolver, source)
    lo = np.array([ranges[f].low for f in fields])
    span = np.array([ranges[f].high - ranges[f].low for f in fields])

    def chip_with(values: dict[str, float]) -> Chip:
        return with_fields(chip, values)

    def chip_at(u: np.ndarray) -> Chip:
        return chip_with(dict(zip(fields, (lo + u * span).tolist(), strict=True)))

    fit_rows = [m for m, h in zip(rows, held, strict=True) if not h]

    def residuals(u: np.ndarray) -> np.ndarray:
        return predict(chip_at(u), fit_rows, workloads, memory=memory) / measured[~held] - 1.0

    start = np.clip((np.array([initial[f] for f in fields]) - lo) / span, 0.0, 1.0)
    sol = least_squares(residuals, start, bounds=(0.0, 1.0), method="trf", diff_step=1e-4,
                        x_scale=1.0, ftol=1e-12, xtol=1e-12, gtol=1e-12,
                        max_nfev=max_evaluations)
    values = dict(zip(fields, (lo + sol.x * span).tolist(), strict=True))
    before = predict(chip, rows, workloads, memory=memory)
    after, shares = _run(chip_with(values), rows, workloads, memory)
    elastic = _elasticities(chip_with, values, ranges, rows, workloads, memory, after)
    # Residual r = t / measured - 1, so dr / d(x / scale) = elasticity x t / measured.
    jac = elastic[~held] * (after[~held] / measured[~held])[:, None]
    scales = [_scale(values[f], ranges[f]) for f in fields]
    ident = identifiability(jac, after[~held] / measured[~held] - 1.0, fields, scales)
    notes = _warnings(ident, after[~held] / measured[~held] - 1.0, fields, n_fit, values,
                      ranges, physical)
    for text in notes:
        warnings.warn(text, CalibrationWarning, stacklevel=2)
    table = pd.DataFrame({
        "workload": [m.workload for m in rows], "layer": [m.layer or "" for m in rows],
        "batch": [m.batch for m in rows], "measured_s": measured, "initial_s": before,
        "predicted_s": after, "error": after / measured - 1.0, "held_out": held})
    report = table[["workload", "layer", "batch", "held_out"]].copy()
    for k, name in enumerate(CAUSES):
        report[name] = shares[:, k]
    for j, f in enumerate(fields):
        report[f"d_ln_t/d_ln {f}"] = elastic[:, j]
    fit_err = _rms(table.loc[~held, "error"])
    hold_err = _rms(table.loc[held, "error"]) if held.any() else None
    cal = Calibration(
        data=data_name, started_from=chip.name, fitted=values, initial=initial,
        bounds={f: (float(ranges[f].low), float(ranges[f].high)) for f in fields},
        standard_error={f: float(v) for f, v in ident.stderr.items() if v is not None},
        warnings=notes, fit_rms_error=fit_err, holdout_rms_error=hold_err,
        residuals=[Residual(workload=m.workload, layer=m.layer, batch=m.batch,
                            measured_s=m.latency_s, predicted_s=float(p), error=float(e),
                            held_out=bool(h))
                   for m, p, e, h in zip(rows, after, table["error"], held, strict=True)])
    fitted_chip = chip_with(values)
    note = (f"Calibrated by npusim calibrate: {', '.join(fields)} fitted to {data_name} "
            f"(rms error {fit_err:.2%} on {n_fit} fitted rows"
            + (f", {hold_err:.2%} on {int(held.sum())} held-out rows" if hold_err is not None
               else "") + "); see calibration:")
    data: dict[str, Any] = fitted_chip.model_dump()
    data.update(name=f"{chip.name} (calibrated)", calibration=cal.model_dump(),
                assumptions=[*chip.assumptions, note])
    fields_df = pd.DataFrame({
        "field": fields, "initial": [initial[f] for f in fields],
        "fitted": [values[f] for f in fields],
        "stderr": [ident.stderr[f] for f in fields],
        "per_1pct_error": [ident.per_percent[f] for f in fields],
        "low": [ranges[f].low for f in fields], "high": [ranges[f].high for f in fields],
        "range": [ranges[f].why for f in fields]})
    return CalibrationResult(Chip.model_validate(data), table, fields_df, ident, tuple(notes),
                             report)


def write_calibrated(result: CalibrationResult, path: str | Path,
                     inputs: Iterable[str | Path] = ()) -> Path:
    """Write the calibrated chip as YAML to ``path``, which must be none of ``inputs`` (the
    chip file and the measurements): a calibrated chip is always a separate file."""
    out = Path(path)
    for p in inputs:
        if Path(p).exists() and out.exists() and out.resolve() == Path(p).resolve():
            raise SpecError(Issue("--out", f"{out} is an input; write the calibrated chip "
                                  f"to a separate file"))
    cal = result.chip.calibration
    assert cal is not None
    head = (f"# Calibrated chip written by npusim calibrate: not a preset. Started from "
            f"{cal.started_from}; fitted {', '.join(cal.fitted)} to {cal.data}.\n")
    body = yaml.safe_dump(result.chip.model_dump(mode="json", exclude_none=True),
                          sort_keys=False, allow_unicode=True, width=100)
    out.write_text(head + body, encoding="utf-8")
    return out
