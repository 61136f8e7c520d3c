"""The report figures show the result's numbers: each test reads the plotted data back from
the matplotlib artists and compares it with the per-layer table, in the unit the axis label
names (so a plot drawn in the wrong unit, or from the wrong column, fails)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection
from matplotlib.container import BarContainer

import npusim
from npusim.report import plots
from npusim.result import CAUSE_COLUMNS

# How many of each unit make one second or one joule (written out, not taken from npusim).
PER_SECOND = {"s": 1.0, "ms": 1e3, "µs": 1e6, "us": 1e6, "ns": 1e9}
PER_JOULE = {"J": 1.0, "mJ": 1e3, "µJ": 1e6, "uJ": 1e6, "nJ": 1e9}


@pytest.fixture(scope="module")
def res() -> npusim.Result:
    return npusim.simulate("tpu_v1", npusim.workloads.builtin("mobilenet_v2"))


def _unit(ax: Axes) -> str:
    m = re.search(r"\(([^)]+)\)\s*$", ax.get_ylabel())
    assert m, ax.get_ylabel()
    return m[1]


def _bars(ax: Axes) -> list[BarContainer]:
    return [c for c in ax.containers if isinstance(c, BarContainer)]


def test_latency_bars_are_the_cause_columns(res: npusim.Result) -> None:
    df = res.layers
    ax = plots.latency_by_cause(res).axes[0]
    per = PER_SECOND[_unit(ax)]
    shown = [c for c in CAUSE_COLUMNS if df[c].abs().sum() > 0]
    bars = _bars(ax)
    assert [b.get_label() for b in bars] == [plots.CAUSE_LABELS[c] for c in shown]
    for c, b in zip(shown, bars, strict=True):
        np.testing.assert_allclose([r.get_height() for r in b], df[c] * per, rtol=1e-9,
                                   atol=1e-12)
    # the stacks' tops are the layers' latencies
    tops = [r.get_y() + r.get_height() for r in bars[-1]]
    np.testing.assert_allclose(tops, df["latency_s"] * per, rtol=1e-9)


def test_energy_bars_are_the_energy_columns(res: npusim.Result) -> None:
    df = res.layers
    fig = plots.energy_breakdown(res)
    per_layer, total = fig.axes[0], fig.axes[1]
    cols = ["energy_mac_j", "energy_sram_j", "energy_dram_j", "energy_noc_j",
            "energy_wire_j", "energy_vector_j", "energy_static_j", "energy_host_j"]
    per = PER_JOULE[_unit(per_layer)]
    for c, b in zip(cols, _bars(per_layer), strict=True):
        np.testing.assert_allclose([r.get_height() for r in b], df[c] * per, rtol=1e-9,
                                   atol=1e-15)
    per_total = PER_JOULE[_unit(total)]
    heights = [b[0].get_height() for b in _bars(total)]
    np.testing.assert_allclose(heights, [df[c].sum() * per_total for c in cols], rtol=1e-9,
                               atol=1e-15)
    assert sum(heights) == pytest.approx(res.summary()["energy_j"] * per_total, rel=1e-9)
    # MobileNet-v2 on TPU v1 takes millijoules, not joules or microjoules: a unit slip of
    # 1e3 moves the total off this decade.
    assert 1e-4 < res.summary()["energy_j"] < 1e-1


def test_roofline_points_and_roof(res: npusim.Result) -> None:
    df = res.layers
    ax = plots.roofline(res).axes[0]
    nbytes = df["dram_read_bytes"] + df["dram_write_bytes"]
    drawn = df[(df["macs"] > 0) & (df["latency_s"] > 0) & (nbytes > 0)]
    want = np.column_stack([2 * drawn["macs"] / (drawn["dram_read_bytes"]
                                                 + drawn["dram_write_bytes"]),
                            2 * drawn["macs"] / drawn["latency_s"]])
    got = np.concatenate([np.asarray(c.get_offsets()) for c in ax.collections
                          if isinstance(c, PathCollection)])
    key = np.lexsort(want.T[::-1])
    np.testing.assert_allclose(got[np.lexsort(got.T[::-1])], want[key], rtol=1e-9)
    # TPU v1: one 256 x 256 int8 array at 700 MHz, 2 ops a MAC: 91.75 TOPS (the paper's
    # "92 TOPS"); DRAM 34 GB/s. The roof is flat at the peak past the ridge.
    roof = ax.get_lines()[0]
    x, y = np.asarray(roof.get_xdata()), np.asarray(roof.get_ydata())
    peak = 2 * 256 * 256 * 700e6
    assert y.max() == pytest.approx(peak, rel=1e-9)
    sloped = x < peak / 34e9
    np.testing.assert_allclose(y[sloped], x[sloped] * 34e9, rtol=1e-9)
