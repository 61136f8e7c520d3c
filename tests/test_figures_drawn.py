"""What the sweep's Pareto plot and the serving load plot draw, read back from the matplotlib
Figure: the points numbered, the key, the scales, the SLO lines, the legend's line styles.

Every table is made here by hand (no simulation); the Pareto front is found by brute force
over all pairs, not by npusim.sweep.pareto. Matplotlib warnings (a layout that does not fit)
are errors here, and each figure is drawn (saved to memory) so layout runs.
"""

from __future__ import annotations

import io
import itertools
import warnings

import numpy as np
import pandas as pd

from npusim.report.plots import load_curves
from npusim.sweep.plots import MAX_LABELS, plot_pareto

AXES = ["rows", "sram", "dram"]


def many_points() -> pd.DataFrame:
    """Two workloads x 48 designs whose latencies span more than a factor of 20 and whose
    energies do not: 20+ points on a three-objective front."""
    rng = np.random.default_rng(0)
    rows = []
    for wl, scale in (("resnet50", 1e-3), ("bert_base", 2e-2)):
        for r, sram, dram in itertools.product([32, 64, 128, 256],
                                               [2**20 * k for k in (1, 2, 4, 8, 16, 32)],
                                               ["LPDDR5", "HBM3"]):
            lat = scale * (256 / r) ** 1.5 * (1 + 1 / np.log2(sram / 2**19)) * (
                0.7 if dram == "HBM3" else 1.0)
            energy = 1e-2 * (1 + r / 256) * (1 + sram / 2**25) * rng.uniform(0.9, 1.1)
            rows.append({"point": len(rows), "workload": wl, "rows": r, "sram": sram,
                         "dram": dram, "status": "ok", "latency_s": lat, "energy_j": energy,
                         "area_mm2": r * r / 1000 + sram / 2**20, "key": f"k{len(rows)}"})
    df = pd.DataFrame(rows)
    df.attrs["sweep"] = {"axes": AXES}
    return df


def brute_front(g: pd.DataFrame, objs: list[str]) -> list[int]:
    vals = g[objs].to_numpy()
    return [i for i, a in zip(g.index, vals, strict=True)
            if not any((b <= a).all() and (b < a).any() for b in vals)]


def drawn(fig) -> None:
    """Draw the figure (layout runs at draw time) with every warning an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig.savefig(io.BytesIO(), format="png", dpi=50)


def test_pareto_plot_of_many_points_numbers_the_front_keys_it_and_shares_scales() -> None:
    df = many_points()
    objs = ["latency_s", "energy_j", "area_mm2"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = plot_pareto(df, "latency_s", "energy_j", objectives=objs)
    drawn(fig)
    groups = list(df.groupby("workload", sort=False))
    panels, keys = fig.axes[:len(groups)], fig.axes[len(groups):]
    assert len(keys) == len(groups)
    for ax, key, (_, g) in zip(panels, keys, groups, strict=True):
        front = g.loc[brute_front(g, objs)].sort_values("latency_s")
        assert 20 <= len(front) <= MAX_LABELS  # many points: the case that overlapped
        # only the front is labelled, each point with its number along x
        labels = [(float(t.xy[0]), float(t.xy[1]), t.get_text()) for t in ax.texts]
        assert labels == [(row.latency_s, row.energy_j, str(n)) for n, row in
                          enumerate(front.itertuples(), start=1)]
        # the key under the panel gives each number's design, sizes in MiB
        lines = key.texts[0].get_text().split("\n")
        assert lines == [f"{n:>2}  rows={row.rows}, sram={row.sram // 2**20} MiB, "
                         f"dram={row.dram}" for n, row in enumerate(front.itertuples(), 1)]
        assert not key.axison
    # one scale per axis kind: latencies span > 20x (log in every panel), energies do not
    lat, en = df["latency_s"], df["energy_j"]
    assert lat.max() / lat.min() >= 20 > en.max() / en.min()
    assert {ax.get_xscale() for ax in panels} == {"log"}
    assert {ax.get_yscale() for ax in panels} == {"linear"}


def test_pareto_plot_scale_is_shared_even_where_one_panel_alone_would_differ() -> None:
    """Workload b alone spans a factor of 2, workload a a factor of 100: both panels log."""
    df = many_points()
    b = df["workload"] == "bert_base"
    df.loc[b, "latency_s"] = 1.0 + df.loc[b, "latency_s"] / df.loc[b, "latency_s"].max()
    fig = plot_pareto(df, "latency_s", "energy_j")
    drawn(fig)
    assert [ax.get_xscale() for ax in fig.axes[:2]] == ["log", "log"]


def sweep_table() -> pd.DataFrame:
    return pd.DataFrame({"rate": [0.5, 1.0, 2.0], "p50_ttft_s": [0.3, 0.4, 2.0],
                         "p99_ttft_s": [0.6, 0.9, 9.0], "p50_tpot_s": [0.07, 0.08, 0.09],
                         "p99_tpot_s": [0.09, 0.11, 0.2], "tokens_per_s": [60.0, 120.0, 150.0],
                         "usd_per_mtoken": [2.0, 1.0, 0.8]})


def test_load_plot_draws_the_slo_thresholds_and_a_dashed_p99_in_its_legend() -> None:
    t = sweep_table()
    fig = load_curves(t, knee=1.0, slo_ttft_s=1.0, slo_tpot_s=0.1)
    drawn(fig)
    lat = fig.axes[0]
    lines = {ln.get_label(): ln for ln in lat.get_lines()}
    # the SLO bounds: horizontal lines at 1000 ms and 100 ms in their curve's colour
    for name, ms, curve in (("TTFT SLO 1000 ms", 1000.0, "TTFT p50"),
                            ("TPOT SLO 100 ms", 100.0, "TPOT p50")):
        y = np.asarray(lines[name].get_ydata(), dtype=float)
        assert np.all(y == ms)
        assert lines[name].get_color() == lines[curve].get_color()
        assert lines[name].get_linestyle() == "-."
    # percentiles: p50 solid, p99 dashed, in the plot and in the legend
    legend = lat.get_legend()
    styles = {text.get_text(): handle.get_linestyle()
              for text, handle in zip(legend.get_texts(), legend.legend_handles, strict=True)}
    assert styles["TTFT p99"] == styles["TPOT p99"] == "--"
    assert styles["TTFT p50"] == styles["TPOT p50"] == "-"
    assert {"TTFT SLO 1000 ms", "TPOT SLO 100 ms", "knee 1/s"} <= set(styles)
    assert legend.handlelength >= 3  # long enough to show the dashes
    np.testing.assert_allclose(lines["TTFT p99"].get_ydata(), t["p99_ttft_s"] * 1e3)


def test_load_plot_without_an_slo_draws_no_threshold() -> None:
    fig = load_curves(sweep_table())
    drawn(fig)
    assert not [ln for ln in fig.axes[0].get_lines() if "SLO" in ln.get_label()]
