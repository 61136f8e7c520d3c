"""Sweep files: validation with key paths and lines, expansion, constraints."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest

from npusim.errors import SpecError
from npusim.sweep.constraints import ConstraintError, compile_constraint
from npusim.sweep.expand import describe, expand
from npusim.sweep.spec import load_sweep, loads_sweep, resolve_key, set_path

ROOT = Path(__file__).resolve().parent.parent

HEAD = """\
name: t
base: tpu_v1
set: {dram.bandwidth: null, dram.channels: null, cores.core.accumulator: null}
workloads: [resnet50]
"""


def sweep(body: str):
    return loads_sweep(HEAD + body, "t.yaml", ROOT)


def test_grid_is_the_full_product_in_declaration_order() -> None:
    s = sweep("""\
axes:
  cores.core.systolic.rows: [32, 64, 128]
  cores.core.sram.size: [1 MiB, 4 MiB]
  dram.standard: [LPDDR5-6400, HBM3-6400]
""")
    pts, pruned = expand(s)
    want = [{"systolic_rows": r, "sram_size": m * 2**20, "dram_standard": d}
            for r, m, d in itertools.product([32, 64, 128], [1, 4], ["LPDDR5-6400", "HBM3-6400"])]
    assert pts == want
    assert pruned == 0


def test_groups_zip_inside_a_grid_and_zip_mode_zips_all() -> None:
    s = sweep("""\
axes:
  cores.core.systolic.rows: {values: [32, 64], group: a, name: rows}
  cores.core.sram.size: {values: [1 MiB, 2 MiB, 4 MiB], name: sram}
  cores.core.systolic.cols: {values: [16, 128], group: a, name: cols}
""")
    want = [{"rows": r, "cols": c, "sram": m * 2**20}
            for (r, c), m in itertools.product([(32, 16), (64, 128)], [1, 2, 4])]
    assert sorted(map(str, expand(s)[0])) == sorted(map(str, want))
    assert len(expand(s)[0]) == 6
    z = sweep("""\
mode: zip
axes:
  cores.core.systolic.rows: [32, 64, 128]
  clock: [500 MHz, 1 GHz, 1.5 GHz]
""")
    assert expand(z)[0] == [{"systolic_rows": 32, "clock": 5e8}, {"systolic_rows": 64, "clock": 1e9},
                          {"systolic_rows": 128, "clock": 1.5e9}]


def test_range_axis_with_num_is_evenly_spaced_and_log_spaced() -> None:
    s = sweep("""\
axes:
  clock: {low: 500 MHz, high: 1 GHz, num: 3}
  cores.core.systolic.rows: {low: 16, high: 256, num: 5, log: true}
""")
    pts = expand(s)[0]
    assert sorted({p["clock"] for p in pts}) == [5e8, 7.5e8, 1e9]
    assert sorted({p["systolic_rows"] for p in pts}) == [16, 32, 64, 128, 256]


def test_constraints_prune_exactly_the_violating_points() -> None:
    body = """\
axes:
  cores.core.systolic.rows: {values: [32, 64, 128, 256], name: rows}
  cores.core.systolic.cols: {values: [32, 64, 128, 256], name: cols}
  cores.count: {values: [1, 2, 4], name: count}
  dram.standard: {values: [LPDDR5-6400, HBM3-6400], name: dram}
"""
    full = expand(sweep(body))[0]
    s = sweep(body + """\
constraints:
  - rows * cols * count <= 65536
  - not (dram == 'HBM3-6400' and count == 1)
""")
    pts, pruned = expand(s)
    keep = [p for p in full if p["rows"] * p["cols"] * p["count"] <= 65536
            and not (p["dram"] == "HBM3-6400" and p["count"] == 1)]
    assert pts == keep
    assert pruned == len(full) - len(keep) > 0


def test_random_and_lhs_are_seeded_and_stay_in_range() -> None:
    body = """\
mode: {mode}
samples: 40
seed: {seed}
axes:
  clock: {{low: 100 MHz, high: 200 MHz, name: clk}}
  cores.core.systolic.rows: {{values: [32, 64, 128], name: rows}}
"""
    a = expand(sweep(body.format(mode="random", seed=1)))[0]
    b = expand(sweep(body.format(mode="random", seed=1)))[0]
    c = expand(sweep(body.format(mode="random", seed=2)))[0]
    assert a == b != c
    assert len(a) == 40  # continuous clock: no duplicates
    assert all(1e8 <= p["clk"] <= 2e8 and p["rows"] in (32, 64, 128) for p in a)


def test_lhs_uses_every_stratum_exactly_once() -> None:
    n = 12
    s = sweep(f"""\
mode: lhs
samples: {n}
seed: 7
axes:
  clock: {{low: 100 MHz, high: 200 MHz, name: clk}}
  cores.core.systolic.rows: {{values: [16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192],
                              name: rows}}
""")
    pts = expand(s)[0]
    assert len(pts) == n
    strata = sorted(math.floor((p["clk"] - 1e8) / 1e8 * n) for p in pts)
    assert strata == list(range(n))
    assert sorted(p["rows"] for p in pts) == list(range(16, 193, 16))


def test_discrete_random_samples_are_deduplicated() -> None:
    s = sweep("""\
mode: random
samples: 50
axes:
  cores.core.systolic.rows: [32, 64]
""")
    assert sorted(p["systolic_rows"] for p in expand(s)[0]) == [32, 64]


@pytest.mark.parametrize("text", [
    "__import__('os').system('true')", "rows.__class__", "(lambda: 1)()", "[x for x in ()]",
    "rows if rows else cols", "open('f')", "rows @ cols", "nope < 3", "rows <",
])
def test_constraints_reject_anything_but_arithmetic(text: str) -> None:
    with pytest.raises(ValueError):
        compile_constraint(text, ["rows", "cols"])


def test_constraint_language() -> None:
    c = compile_constraint("rows * cols <= 64 * KiB and dram in ('HBM3-6400',) or not big",
                           ["rows", "cols", "dram", "big"])
    assert c({"rows": 256, "cols": 256, "dram": "HBM3-6400", "big": True})
    assert not c({"rows": 512, "cols": 256, "dram": "HBM3-6400", "big": True})
    assert c({"rows": 512, "cols": 256, "dram": "x", "big": False})
    with pytest.raises(ConstraintError):
        compile_constraint("2 ** rows > 1", ["rows"])({"rows": 10_000})


def test_every_problem_is_reported_with_key_path_and_line() -> None:
    text = HEAD + """\
bogus: 1
axes:
  cores.core.systolic.rowz: [32]
  cores.core.sram.size: [1 MiB, lots]
  dram.standard: [HBM9]
  clock: {low: 1 GHz}
constraints:
  - __import__('os')
"""
    with pytest.raises(SpecError) as info:
        loads_sweep(text, "t.yaml", ROOT)
    # Structural problems first (the file's shape), all of them together ...
    assert {(i.path, i.line) for i in info.value.issues} == {("bogus", 5), ("axes.clock", 10)}
    # ... then, once the shape is right, every semantic problem together.
    text2 = HEAD + """\
axes:
  cores.core.systolic.rowz: [32]
  cores.core.sram.size: [1 MiB, lots]
  dram.standard: [HBM9]
constraints:
  - __import__('os')
"""
    with pytest.raises(SpecError) as info:
        loads_sweep(text2, "t.yaml", ROOT)
    got = {(i.path, i.line) for i in info.value.issues}
    assert got == {("axes.cores.core.systolic.rowz", 6), ("axes.cores.core.sram.size", 7),
                   ("axes.dram.standard", 8), ("constraints[0]", 10)}
    assert "t.yaml:8: axes.dram.standard" in str(info.value)


@pytest.mark.parametrize(("body", "path"), [
    ("mode: random\naxes: {clock: [1 GHz]}\n", "samples"),
    ("mode: zip\naxes: {clock: [1 GHz, 2 GHz], cores.count: [1]}\n", "axes.clock"),
    ("axes: {clock: {low: 1 GHz, high: 2 GHz}}\n", "axes.clock"),
    ("axes: {cores.count: {values: [1], name: x}, clock: {values: [1 GHz], name: x}}\n",
     "axes.cores.count"),
    ("axes: {cores.count: {values: [1], name: not-a-name}}\n", "axes.cores.count"),
    ("axes: {workload.: [1]}\n", "axes.workload."),
    ("axes: {cores.count: {values: [1], name: latency_s}}\n", "axes.cores.count"),
])
def test_layout_errors(body: str, path: str) -> None:
    with pytest.raises(SpecError) as info:
        sweep(body)
    assert path in info.value.paths


def test_workload_entries_are_checked() -> None:
    text = HEAD.replace("[resnet50]", "[resnet5, nope.yaml, {builtin: bert_base, file: x}]")
    with pytest.raises(SpecError) as info:
        loads_sweep(text + "axes: {}\n", "t.yaml", ROOT)
    assert info.value.paths == ["workloads[2]"]  # names exactly one of builtin, file …
    # a file outside the repository that no machine has (../x.yaml once existed on one)
    text = HEAD.replace("[resnet50]", "[resnet5, nope.yaml, {file: ../npusim-test-no-such-"
                        "workload.yaml, options: {a: 1}}, resnet50, resnet50]")
    with pytest.raises(SpecError) as info:
        loads_sweep(text + "axes: {}\n", "t.yaml", ROOT)
    assert set(info.value.paths) == {"workloads[0].builtin", "workloads[1].file",
                                     "workloads[2].file", "workloads[3]", "workloads[4]"}


def test_key_paths_and_set_path() -> None:
    resolve_key("cores.core.systolic.macs_per_cycle.int4")
    resolve_key("energy.mac.int8")
    for bad in ("cores.core.nope", "clock.x", "energy.mac.int9"):
        with pytest.raises(ValueError):
            resolve_key(bad)
    d = {"a": {"b": 1, "c": {"x": 2}}, "n": None}
    set_path(d, "a.c.x", None)
    set_path(d, "n.m", 3)
    set_path(d, "a.b", 5)
    assert d == {"a": {"b": 5, "c": {}}, "n": {"m": 3}}


def test_shipped_sweeps_validate(capsys: pytest.CaptureFixture[str]) -> None:
    from npusim.cli import main

    files = sorted(str(p) for p in (ROOT / "workloads" / "sweeps").glob("*.yaml"))
    assert len(files) >= 2
    assert main(["validate", *files]) == 0
    out = capsys.readouterr().out
    assert "array_sram_dram.yaml: OK: sweep, grid over 7 axes" in out
    assert "48 points x 2 workloads" in out
    assert describe(load_sweep(ROOT / "workloads" / "sweeps" / "small.yaml")).startswith(
        "grid over 4 axes (rows, cols, sram, dram): 6 points (2 pruned by constraints)")
