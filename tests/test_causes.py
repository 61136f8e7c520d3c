"""Latency by cause: the cause columns add up to each layer's latency (issue 6, item 1)."""

from __future__ import annotations

import numpy as np
import pytest

import npusim
from npusim.presets import list_presets
from npusim.result import CAUSE_COLUMNS
from npusim.workloads import bert_base, resnet50

WORKLOADS = {"resnet50": lambda: resnet50(), "bert_base": lambda: bert_base(seq_len=128)}


@pytest.mark.parametrize("workload", sorted(WORKLOADS))
@pytest.mark.parametrize("preset", list_presets())
def test_causes_sum_to_latency(preset: str, workload: str) -> None:
    res = npusim.simulate(npusim.load_arch(preset), WORKLOADS[workload]())
    df = res.layers
    assert set(CAUSE_COLUMNS) <= set(df.columns)
    causes = df[list(CAUSE_COLUMNS)].to_numpy(float)
    latency = df["latency_s"].to_numpy(float)
    assert (latency > 0).all()
    assert (causes >= -1e-15).all(), "a cause is negative"
    np.testing.assert_allclose(causes.sum(axis=1), latency, rtol=1e-9, atol=1e-15)
    # the split says something: array layers spend time on MACs
    assert df.loc[df["unit"] == "array", "time_mac_s"].gt(0).all()
