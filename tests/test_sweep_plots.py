"""Sweep plots draw the table's numbers: read back from the matplotlib artists.

The table is made here by hand (no simulation), so every expected point is known: the
Pareto front is found by brute force over all pairs, not by npusim.sweep.pareto.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from npusim.sweep.plots import plot_metric_vs_axis, plot_pareto

AXES = ["rows", "cols", "sram"]


def table() -> pd.DataFrame:
    """rows and cols zipped (a group), crossed with sram, two workloads; one failed run."""
    rows = []
    for w, wl in enumerate(("a", "b")):
        for (r, c), sram in itertools.product([(16, 16), (32, 32), (64, 64)], [2**20, 2**23]):
            macs = r * c
            lat = (1.0 + w) * 1e-3 * 256 / macs * (1.5 if sram == 2**20 else 1.0)
            # 16x16 with 1 MiB is slower and costlier than with 8 MiB: dominated in 2-D
            energy = 1e-3 * (1 + macs / 256) * (1.2 if sram == 2**23 else 1.3 if r == 16
                                                 else 1.0)
            rows.append({"point": len(rows) % 6, "workload": wl, "rows": r, "cols": c,
                         "sram": sram, "status": "ok", "error": None, "latency_s": lat,
                         "energy_j": energy, "area_mm2": macs / 100 + sram / 2**20,
                         "key": f"k{len(rows)}"})
    rows.append({"point": 6, "workload": "a", "rows": 128, "cols": 128, "sram": 2**20,
                 "status": "error", "error": "x", "latency_s": np.nan, "energy_j": np.nan,
                 "area_mm2": np.nan, "key": None})
    df = pd.DataFrame(rows)
    df.attrs["sweep"] = {"axes": AXES}
    return df


def brute_front(g: pd.DataFrame, objs: list[str]) -> set[int]:
    """Indices of rows no other row dominates (<= in every objective, < in one)."""
    vals = g[objs].to_numpy()
    front = set()
    for i, a in zip(g.index, vals, strict=True):
        if not any((b <= a).all() and (b < a).any() for b in vals):
            front.add(i)
    return front


def _points(collection) -> set[tuple[float, float]]:
    return {(float(x), float(y)) for x, y in np.asarray(collection.get_offsets())}


@pytest.mark.parametrize("objs", [["latency_s", "energy_j"],
                                  ["latency_s", "energy_j", "area_mm2"]])
def test_pareto_plot_draws_the_front_and_labels_each_point_with_its_design(
        objs: list[str]) -> None:
    df = table()
    fig = plot_pareto(df, "latency_s", "energy_j", objectives=objs)
    ok = df[df["status"] == "ok"]
    panels = fig.axes[:ok["workload"].nunique()]  # then one key per panel
    for ax, (_, g) in zip(panels, ok.groupby("workload", sort=False), strict=True):
        front = brute_front(g, objs)
        assert 0 < len(front) < len(g) or len(objs) == 3
        dominated, on_front = ax.collections[:2]
        want_front = {(g.at[i, "latency_s"], g.at[i, "energy_j"]) for i in front}
        want_rest = {(g.at[i, "latency_s"], g.at[i, "energy_j"]) for i in g.index
                     if i not in front}
        assert _points(on_front) == want_front
        assert _points(dominated) == want_rest
        # each front point numbered along x; the key under the panel names its design
        by_x = sorted(front, key=lambda i: g.at[i, "latency_s"])
        labels = [(float(t.xy[0]), float(t.xy[1]), t.get_text()) for t in ax.texts]
        assert labels == [(g.at[i, "latency_s"], g.at[i, "energy_j"], str(n))
                          for n, i in enumerate(by_x, start=1)]
        key = fig.axes[len(fig.axes) // 2 + list(fig.axes).index(ax)]
        assert key.texts[0].get_text().split("\n") == [
            f"{n:>2}  rows={g.at[i, 'rows']}, cols={g.at[i, 'cols']}, "
            f"sram={g.at[i, 'sram'] // 2**20} MiB" for n, i in enumerate(by_x, start=1)]
        assert f"{len(front)} of {len(g)}" in ax.get_title()


def test_metric_plot_of_a_grouped_axis_shows_every_point_of_the_group() -> None:
    df = table()
    fig = plot_metric_vs_axis(df, "latency_s", "rows")
    (ax,) = fig.axes
    lines = {line.get_label(): line.get_xydata() for line in ax.lines}
    assert set(lines) == {"a", "b"}
    # cols moves with rows; sram is held at its first value (1 MiB): 3 points per workload
    for wl, xy in lines.items():
        sel = df[(df["workload"] == wl) & (df["sram"] == 2**20) & (df["status"] == "ok")]
        want = sel.sort_values("rows")[["rows", "latency_s"]].to_numpy(dtype=float)
        assert len(want) == 3
        np.testing.assert_array_equal(xy, want)
    assert "cols" in ax.get_xlabel()


def test_metric_plot_holds_independent_axes_where_told() -> None:
    df = table()
    fig = plot_metric_vs_axis(df, "energy_j", "sram", fixed={"rows": 32})
    (ax,) = fig.axes
    for line in ax.lines:
        sel = df[(df["workload"] == line.get_label()) & (df["rows"] == 32)]
        want = sel.sort_values("sram")[["sram", "energy_j"]].to_numpy(dtype=float)
        np.testing.assert_array_equal(line.get_xydata(), want)
    assert "rows=32" in ax.get_title() and "cols=32" in ax.get_title()
