"""Calibration: fit chip fields to measured latencies within their physical bounds, report
the fit and hold-out errors, what the measurements cannot tell apart and each field's
uncertainty, write a separate calibrated chip file (see npusim.calibration.data for the CSV
format, npusim.calibration.bounds for the bounds)."""

from npusim.calibration.data import Measurement, field_value, load_measurements, parse_bounds
from npusim.calibration.fit import (
    CalibrationResult,
    CalibrationWarning,
    Identifiability,
    calibrate,
    predict,
    split_holdout,
    write_calibrated,
)

__all__ = ["CalibrationResult", "CalibrationWarning", "Identifiability", "Measurement", "calibrate", "field_value", "load_measurements",
           "parse_bounds", "predict", "split_holdout", "write_calibrated"]
