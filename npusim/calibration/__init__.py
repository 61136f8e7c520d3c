"""Calibration: fit chip fields to measured latencies, report the fit and hold-out errors,
write a separate calibrated chip file (see npusim.calibration.data for the CSV format)."""

from npusim.calibration.data import Measurement, field_value, load_measurements, parse_bounds
from npusim.calibration.fit import (
    CalibrationResult,
    calibrate,
    predict,
    split_holdout,
    write_calibrated,
)

__all__ = ["CalibrationResult", "Measurement", "calibrate", "field_value", "load_measurements",
           "parse_bounds", "predict", "split_holdout", "write_calibrated"]
