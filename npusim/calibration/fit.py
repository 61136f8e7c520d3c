"""Fit chip fields to measured latencies: repeated simulation under a bounded least-squares
optimiser.

The residual of a measurement is ``predicted / measured - 1``, so a 1 ms layer and a 100 ms
query weigh alike. The optimiser is ``scipy.optimize.least_squares`` (trust-region
reflective, bounds kept by construction): simulation is a black box without gradients, and
its finite-difference Jacobian is cheap for the handful of fields one fits; each field is
rescaled to [0, 1] across its bounds so that a clock in hertz and an overhead in seconds
take comparable steps. Every simulation includes the host path (``simulate(host=True)``):
an end-to-end measurement is of a whole query.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from npusim.calibration.data import Measurement, field_value, parse_bounds, with_fields
from npusim.errors import Issue, NpusimError, SpecError
from npusim.report.result import Result
from npusim.spec.arch import Calibration, Chip, Residual
from npusim.workloads.ir import Workload

__all__ = ["INSTALL_HINT", "CalibrationResult", "calibrate", "predict", "split_holdout",
           "write_calibrated"]

INSTALL_HINT = "npusim calibrate needs scipy: pip install 'npusim[calibrate]'"


@dataclass(frozen=True)
class CalibrationResult:
    """The calibrated chip (with its ``calibration`` block) and one row per measurement:
    workload, layer, batch, measured_s, initial_s (the starting chip's prediction),
    predicted_s (the calibrated chip's), error (predicted / measured - 1), held_out."""

    chip: Chip
    table: pd.DataFrame = field(repr=False)

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


def predict(chip: Chip, rows: Sequence[Measurement],
            workloads: dict[tuple[str, int], Workload], *,
            memory: str = "bandwidth") -> np.ndarray:
    """The simulated time of each measurement on ``chip`` (one simulation per workload and
    batch; the host path included)."""
    from npusim.simulate import simulate

    results: dict[tuple[str, int], Result] = {}
    out = np.empty(len(rows))
    for i, m in enumerate(rows):
        key = (m.workload, m.batch)
        if key not in results:
            results[key] = simulate(chip, workloads[key], memory=memory, host=True)
        res = results[key]
        if m.layer is None:
            out[i] = float(res.summary()["latency_s"])
        else:
            df = res.layers
            out[i] = float(df.loc[df["layer"] == m.layer, "latency_s"].sum())
    return out


def calibrate(chip: Chip, rows: Sequence[Measurement], fields: Sequence[str], *,
              bounds: list[str] | dict[str, tuple[float, float]] | None = None,
              holdout: int = 0, holdout_workloads: Iterable[str] = (),
              memory: str = "bandwidth", data_name: str = "measurements",
              source: str | None = None, resolve: Resolver | None = None,
              max_evaluations: int = 200) -> CalibrationResult:
    """Fit ``fields`` (chip key paths) of ``chip`` to the measured ``rows``.

    ``bounds``: ``FIELD=LOW:HIGH`` strings or a dict; a field without bounds is kept within
    ±50 % of its value in ``chip``. ``holdout`` / ``holdout_workloads`` keep rows out of the
    fit (see :func:`split_holdout`); their error is reported beside the fit's. ``source`` is
    the CSV file (relative workload paths are read from its folder, errors name it);
    ``data_name`` is how the calibrated chip records the data.
    """
    try:
        from scipy.optimize import least_squares
    except ImportError:
        raise NpusimError(INSTALL_HINT) from None
    if not fields:
        raise SpecError(Issue("--fit", "name at least one field to fit"))
    initial = {f: field_value(chip, f) for f in fields}
    box = bounds if isinstance(bounds, dict) else parse_bounds(bounds, initial)
    for f, (low, high) in box.items():
        if not low < high:
            raise SpecError(Issue(f, f"lower bound {low} is not below upper bound {high}"))
    held = np.array(split_holdout(rows, holdout, holdout_workloads))
    resolver = resolve or _default_resolver(Path(source).parent if source else None)
    workloads = _workloads(rows, resolver, source)
    measured = np.array([m.latency_s for m in rows])
    lo = np.array([box[f][0] for f in fields])
    span = np.array([box[f][1] - box[f][0] for f in fields])

    def chip_at(u: np.ndarray) -> Chip:
        return with_fields(chip, dict(zip(fields, (lo + u * span).tolist(), strict=True)))

    fit_rows = [m for m, h in zip(rows, held, strict=True) if not h]

    def residuals(u: np.ndarray) -> np.ndarray:
        return predict(chip_at(u), fit_rows, workloads, memory=memory) / measured[~held] - 1.0

    start = np.clip((np.array([initial[f] for f in fields]) - lo) / span, 0.0, 1.0)
    sol = least_squares(residuals, start, bounds=(0.0, 1.0), method="trf", diff_step=1e-4,
                        x_scale=1.0, ftol=1e-12, xtol=1e-12, gtol=1e-12,
                        max_nfev=max_evaluations)
    values = dict(zip(fields, (lo + sol.x * span).tolist(), strict=True))
    before = predict(chip, rows, workloads, memory=memory)
    after = predict(chip_at(sol.x), rows, workloads, memory=memory)
    table = pd.DataFrame({
        "workload": [m.workload for m in rows], "layer": [m.layer or "" for m in rows],
        "batch": [m.batch for m in rows], "measured_s": measured, "initial_s": before,
        "predicted_s": after, "error": after / measured - 1.0, "held_out": held})
    fit_err = _rms(table.loc[~held, "error"])
    hold_err = _rms(table.loc[held, "error"]) if held.any() else None
    cal = Calibration(
        data=data_name, started_from=chip.name, fitted=values, initial=initial,
        bounds={f: (float(box[f][0]), float(box[f][1])) for f in fields},
        fit_rms_error=fit_err, holdout_rms_error=hold_err,
        residuals=[Residual(workload=m.workload, layer=m.layer, batch=m.batch,
                            measured_s=m.latency_s, predicted_s=float(p), error=float(e),
                            held_out=bool(h))
                   for m, p, e, h in zip(rows, after, table["error"], held, strict=True)])
    fitted_chip = with_fields(chip, values)
    note = (f"Calibrated by npusim calibrate: {', '.join(fields)} fitted to {data_name} "
            f"(rms error {fit_err:.2%} on {int((~held).sum())} fitted rows"
            + (f", {hold_err:.2%} on {int(held.sum())} held-out rows" if hold_err is not None
               else "") + "); see calibration:")
    data: dict[str, Any] = fitted_chip.model_dump()
    data.update(name=f"{chip.name} (calibrated)", calibration=cal.model_dump(),
                assumptions=[*chip.assumptions, note])
    return CalibrationResult(Chip.model_validate(data), table)


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
    from npusim._io import atomic_write_text

    atomic_write_text(out, head + body)  # a failed write leaves the old file whole
    return out
