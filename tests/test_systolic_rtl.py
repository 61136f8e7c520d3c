"""The fold formula of npusim.kernels.systolic against a register-level array model.

tests/systolic_rtl.py moves real numbers through the PE registers of a small array cycle by
cycle, in SCALE-Sim's schedule for each dataflow. Its product must equal numpy's, and the
cycle of its last output write must be the one ``gemm_cycles`` predicts (one array, one
MAC per PE per cycle) — i.e. SCALE-Sim's reported count plus one.
"""

from __future__ import annotations

import numpy as np
import pytest
import systolic_rtl
from hypothesis import given, settings
from hypothesis import strategies as st

from npusim.kernels.systolic import DATAFLOWS, gemm_cycles, gemm_folds

ARRAYS = ((4, 4), (8, 8), (4, 8), (8, 4))


def _operands(m: int, n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(-9, 10, (m, k)), rng.integers(-9, 10, (k, n))


@settings(max_examples=150, deadline=None, derandomize=True)
@given(m=st.integers(1, 20), n=st.integers(1, 20), k=st.integers(1, 20),
       array=st.sampled_from(ARRAYS), dataflow=st.sampled_from(("ws", "os", "is")),
       seed=st.integers(0, 2**16))
def test_rtl_matches_numpy_and_fold_formula(m, n, k, array, dataflow, seed):
    rows, cols = array
    a, b = _operands(m, n, k, seed)
    res = systolic_rtl.run(a, b, rows, cols, dataflow)
    np.testing.assert_array_equal(res.out, a @ b)
    assert res.macs == m * n * k
    df = DATAFLOWS[dataflow]
    folds, per = gemm_folds(m, n, k, rows, cols, df)
    assert res.folds == folds
    assert res.cycles == folds * per == gemm_cycles(m, n, k, rows, cols, 1, df, 1.0, 0)


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
@pytest.mark.parametrize(("rows", "cols"), ARRAYS)
def test_rtl_several_folds_each_way(rows, cols, dataflow):
    # 19 x 13 x 17: partial folds along every mapped dimension of every dataflow.
    m, n, k = 19, 13, 17
    a, b = _operands(m, n, k, rows * 100 + cols)
    res = systolic_rtl.run(a, b, rows, cols, dataflow)
    np.testing.assert_array_equal(res.out, a @ b)
    assert res.folds > 4
    assert res.cycles == gemm_cycles(m, n, k, rows, cols, 1, DATAFLOWS[dataflow], 1.0, 0)


def test_rtl_hand_counts():
    # One fold each on a 4 x 4 array, counted by hand from SCALE-Sim's schedule:
    # ws, M=6: 4 cycles of weight load, then the last input row (5) enters row 3 at stream
    # cycle 8 and its sum leaves column 3 at cycle 11 -> 4 + 12 = 16 = 2*4 + 4 + 6 - 2.
    a, b = _operands(6, 4, 4, 1)
    assert systolic_rtl.run(a, b, 4, 4, "ws").cycles == 16
    # os, K=6: PE (3, 3) gets its 6th operand pair at cycle 5 + 3 + 3 = 11 -> 12 cycles.
    a, b = _operands(4, 4, 6, 2)
    assert systolic_rtl.run(a, b, 4, 4, "os").cycles == 12
    # is, N=6: as ws with the 6 columns of B streaming.
    a, b = _operands(4, 6, 4, 3)
    assert systolic_rtl.run(a, b, 4, 4, "is").cycles == 16


@pytest.mark.parametrize(("dataflow", "skew"), [("ws", 0), ("is", 2), ("os", 0), ("os", 2)])
def test_rtl_rejects_a_wrong_skew(dataflow, skew):
    # The model checks itself: feeding without the one-cycle-per-row skew misaligns the
    # operands a PE combines, which it reports instead of computing a wrong product.
    a, b = _operands(7, 6, 5, 4)
    with pytest.raises(AssertionError, match="misaligned"):
        systolic_rtl.run(a, b, 4, 4, dataflow, skew=skew)
