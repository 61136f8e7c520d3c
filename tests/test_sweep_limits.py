"""Sweeps that are too big or hostile: refused before any work, in one line, with the file.

The grid limit, lazy expansion, constraints with bounded cost, and the one-way import flow
of the sweep package (spec ← expand ← run).
"""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest

from npusim.cli import main
from npusim.errors import SpecError
from npusim.sweep.constraints import MAX_INT_BITS, ConstraintError, compile_constraint
from npusim.sweep.expand import Pruned, iter_points
from npusim.sweep.spec import MAX_RUNS, load_sweep, loads_sweep

ROOT = Path(__file__).resolve().parent.parent
HEAD = """\
name: t
base: tpu_v1
set: {dram.bandwidth: null, dram.channels: null, cores.core.accumulator: null}
workloads: [resnet50]
"""


def test_a_billion_point_grid_is_refused_in_one_line_before_any_work(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # 10 x 10 x 10^7 = 10^9: discretising the range axis alone would allocate 80 MB, the
    # points list hundreds of GB; the refusal comes from the axes' product.
    path = tmp_path / "huge.yaml"
    path.write_text(HEAD + """\
axes:
  cores.core.systolic.rows: [8, 16, 24, 32, 40, 48, 56, 64, 72, 80]
  cores.core.systolic.cols: [8, 16, 24, 32, 40, 48, 56, 64, 72, 80]
  clock: {low: 100 MHz, high: 1 GHz, num: 10000000}
""")
    assert main(["sweep", str(path), "--workers", "0", "--no-cache", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert f"{path}:5:" in err  # the axes: line
    n = 10 * 10 * 10_000_000
    assert f"10 x 10 x 10000000 = {n:,} points (before constraints) x 1 workloads = {n:,} runs" \
        in err
    assert f"past the limit of {MAX_RUNS:,}" in err


def test_grouped_axes_count_once_and_sampled_sweeps_count_their_samples() -> None:
    ten = ", ".join(str(8 * i) for i in range(1, 11))
    body = HEAD + f"""\
axes:
  cores.core.systolic.rows: {{values: [{ten}], group: a}}
  cores.core.systolic.cols: {{values: [{ten}], group: a}}
"""
    assert loads_sweep(body, "t.yaml", ROOT).size() == 10  # zipped, not 100
    with pytest.raises(SpecError, match=rf"t\.yaml:\d+: samples: {MAX_RUNS + 1:,} samples x 1 "
                       rf"workloads = {MAX_RUNS + 1:,} runs"):
        loads_sweep(HEAD + f"mode: random\nsamples: {MAX_RUNS + 1}\naxes:\n"
                    "  clock: {low: 100 MHz, high: 1 GHz}\n", "t.yaml", ROOT)
    # the workloads count: half the limit in points is fine with one workload, not three
    half = MAX_RUNS // 2
    loads_sweep(HEAD + f"mode: lhs\nsamples: {half}\naxes:\n  clock: {{low: 100 MHz, high: "
                "1 GHz}\n", "t.yaml", ROOT)
    three = HEAD.replace("workloads: [resnet50]", "workloads: [resnet50, bert_base, mobilenet_v2]")
    with pytest.raises(SpecError, match=rf"x 3 workloads = {3 * half:,} runs"):
        loads_sweep(three + f"mode: lhs\nsamples: {half}\naxes:\n  clock: {{low: 100 MHz, "
                    "high: 1 GHz}\n", "t.yaml", ROOT)


def test_points_stream_and_constraints_are_applied_as_they_pass() -> None:
    # 50 x 50 x 50 = 125,000 points; the constraint keeps rows == cols == clock index.
    vals = ", ".join(str(8 * i) for i in range(1, 51))
    s = loads_sweep(HEAD + f"""\
axes:
  cores.core.systolic.rows: {{values: [{vals}], name: rows}}
  cores.core.systolic.cols: {{values: [{vals}], name: cols}}
  cores.core.vector.lanes: {{values: [{vals}], name: lanes}}
constraints:
  - rows == cols and cols == lanes
""", "t.yaml", ROOT)
    pruned = Pruned()
    points = iter_points(s, pruned)
    first = next(points)
    second = next(points)
    assert first == {"rows": 8, "cols": 8, "lanes": 8}
    assert second == {"rows": 16, "cols": 16, "lanes": 16}
    # The second kept point is at index 1*2500 + 1*50 + 1 of the product: everything before
    # it, less the first kept point, was pruned; nothing past it has been looked at.
    assert pruned.count == (2500 + 50 + 1) - 1
    rest = list(points)
    assert len(rest) == 48
    assert pruned.count == 50**3 - 50


@pytest.mark.parametrize("text", [
    "rows ** 100 > 1",                        # 2^(100 log2 rows) bits: refused, not computed
    "rows * 2 ** 200 * rows ** 10 > 1",       # 2^266: past the limit at the last product
    "(rows,) * 1000000000 == ()",             # would allocate 8 GB
    "rows / (rows - 64) > 1",                 # zero at this point
    "rows ** 200.5 > 1",                      # float overflow
    "rows < 'a'",                             # int < str
])
def test_constraints_that_fail_at_a_point_name_file_line_text_and_point(text: str) -> None:
    body = HEAD + f"""\
axes:
  cores.core.systolic.rows: {{values: [64], name: rows}}
constraints:
  - rows > 1
  - "{text}"
"""
    s = loads_sweep(body, "t.yaml", ROOT)
    with pytest.raises(SpecError) as info:
        list(iter_points(s))
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith("t.yaml:9: constraints[1]: ")  # HEAD is 4 lines, the entry line 9
    assert repr(text) in msg and "{'rows': 64}" in msg


@pytest.mark.parametrize("text", [
    "((10**64)**64)**64 > rows",              # a ** tower: refused before it is computed
    "2 ** 300 > rows",
    "'x' * 1000000000 == rows",               # would allocate 1 GB
    "10.0 ** 400 > rows",                     # float overflow
    "rows > 1 / 0",
])
def test_constraints_that_fail_whatever_the_point_are_refused_when_read(text: str) -> None:
    body = HEAD + f"""\
axes:
  cores.core.systolic.rows: {{values: [64], name: rows}}
constraints:
  - rows > 1
  - "{text}"
"""
    with pytest.raises(SpecError) as info:
        loads_sweep(body, "t.yaml", ROOT)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith("t.yaml:9: constraints[1]: ")


@pytest.mark.parametrize("text", [
    "-" * 5000 + "1 > rows",                   # past the text limit
    "-" * 900 + "1 > rows",                    # 900 levels deep
    "(" * 250 + "rows" + ")" * 250 + " > 1",   # past the parser's nesting limit
    " + ".join(["rows"] * 400) + " > 1",       # too many terms
])
def test_constraints_too_big_to_read_are_refused_at_load(text: str) -> None:
    with pytest.raises(ConstraintError):
        compile_constraint(text, ["rows"])
    body = HEAD + f'axes:\n  cores.core.systolic.rows: {{values: [64], name: rows}}\n' \
        f'constraints:\n  - "{text}"\n'
    with pytest.raises(SpecError, match=r"^t\.yaml:8: constraints\[0\]: "):
        loads_sweep(body, "t.yaml", ROOT)


def test_integer_limit_is_exact_at_the_boundary() -> None:
    # 2**MAX_INT_BITS has MAX_INT_BITS + 1 bits: one past the limit; 2**(MAX_INT_BITS-1) fits.
    ok = compile_constraint(f"2 ** {MAX_INT_BITS - 1} > rows", ["rows"])
    assert ok({"rows": 1})
    with pytest.raises(ConstraintError):
        compile_constraint(f"2 ** {MAX_INT_BITS} > rows", ["rows"])({"rows": 1})
    with pytest.raises(ConstraintError):  # a product that grows past the limit
        compile_constraint("rows * rows > 1", ["rows"])({"rows": 2 ** (MAX_INT_BITS // 2 + 1)})
    # fractional powers still work (sqrt 2 = 1.41421…)
    assert compile_constraint("1.414 < rows ** 0.5 < 1.415", ["rows"])({"rows": 2})


def _imports(module: Path) -> set[str]:
    """The npusim.sweep modules a file imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module \
                and node.module.startswith("npusim.sweep."):
            found.add(node.module.removeprefix("npusim.sweep."))
    return found


def test_the_sweep_package_imports_one_way() -> None:
    pkg = ROOT / "npusim" / "sweep"
    graph = {p.stem: _imports(p) for p in pkg.glob("*.py") if p.stem != "__init__"}
    assert "expand" not in graph["spec"] and "run" not in graph["spec"]
    assert "run" not in graph["expand"]

    def reaches(a: str, b: str, seen: frozenset[str] = frozenset()) -> bool:
        return any(n == b or (n not in seen and reaches(n, b, seen | {a}))
                   for n in graph.get(a, ()))

    cycles = [(a, b) for a, b in itertools.permutations(graph, 2)
              if reaches(a, b) and reaches(b, a)]
    assert cycles == []


def test_shipped_sweeps_stay_under_the_limit() -> None:
    for path in sorted((ROOT / "workloads" / "sweeps").glob("*.yaml")):
        s = load_sweep(path)
        assert s.size() * len(s.workloads) <= MAX_RUNS
