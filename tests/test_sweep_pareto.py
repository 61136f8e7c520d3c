"""Pareto fronts: no dominated point on the front, no non-dominated point left out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from naive_sweep import pareto_mask_naive

from npusim.errors import NpusimError
from npusim.sweep.pareto import pareto_front, pareto_mask, parse_objectives

# Small integer grids make ties and duplicates common, where fronts go wrong.
values = st.integers(1, 3).flatmap(lambda k: arrays(
    np.float64, st.tuples(st.integers(0, 40), st.just(k)),
    elements=st.one_of(st.integers(0, 5).map(float), st.just(np.nan))))


@settings(max_examples=150, deadline=None)
@given(values)
def test_front_matches_the_brute_force_definition(v: np.ndarray) -> None:
    got = pareto_mask(v)
    assert got.tolist() == pareto_mask_naive(v).tolist()
    front, rest = v[got], v[~got & np.isfinite(v).all(axis=1)]
    for p in front:  # nothing on the front is dominated by anything
        assert not np.any(np.all(v <= p, axis=1) & np.any(v < p, axis=1))
    for p in rest:  # everything left out is dominated by something on the front
        assert np.any(np.all(front <= p, axis=1) & np.any(front < p, axis=1))


def test_maximise_prefix_groups_and_failed_rows() -> None:
    df = pd.DataFrame({
        "workload": ["a", "a", "a", "b", "b", "a"],
        "latency_s": [1.0, 2.0, 3.0, 5.0, 6.0, 0.5],
        "throughput": [10.0, 30.0, 20.0, 1.0, 2.0, np.nan],
        "status": ["ok", "ok", "ok", "ok", "ok", "error"],
    })
    got = pareto_front(df, "latency_s,max:throughput")
    assert got.tolist() == [True, True, False, True, True, False]
    assert pareto_front(df, ["latency_s"], by=None).tolist() == [
        True, False, False, False, False, False]
    assert parse_objectives("min:a, max:b ,c") == [("a", False), ("b", True), ("c", False)]
    with pytest.raises(NpusimError):
        pareto_front(df, "nope")
    with pytest.raises(NpusimError):
        parse_objectives(" , ")
