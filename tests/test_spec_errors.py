"""Errors that help: a misspelt key names the nearest known one, a YAML syntax error is one
line at file:line:column in words about the file.

Expected lines and columns are counted by hand on the small texts written here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from npusim.cli import main
from npusim.errors import SpecError
from npusim.spec.arch import Chip, loads_arch
from npusim.spec.yamlio import did_you_mean, known_keys, loads_yaml
from npusim.sweep.spec import SweepFile

CHIP = Path("arch/lpddr_llm.yaml").read_text()


def _issue(text: str, key: str) -> str:
    with pytest.raises(SpecError) as exc:
        loads_arch(text)
    (hit,) = [i for i in exc.value.issues if i.path == key]
    return hit.format("chip.yaml")


def test_a_misspelt_nested_key_names_the_known_one_at_its_line() -> None:
    text = CHIP.replace(" banks:", " bankz:", 1)
    line = next(n for n, ln in enumerate(text.splitlines(), 1) if " bankz:" in ln)
    assert _issue(text, "cores.core.sram.bankz") == (
        f"chip.yaml:{line}: cores.core.sram.bankz: unknown key; did you mean `banks`?")


def test_a_misspelt_top_level_key_names_the_known_one() -> None:
    text = CHIP.replace("\nclock:", "\nclcok:", 1)
    assert _issue(text, "clcok").endswith("clcok: unknown key; did you mean `clock`?")


def test_a_key_near_nothing_gets_no_guess() -> None:
    text = CHIP + "zzzzqq: 1\n"
    assert _issue(text, "zzzzqq").endswith("zzzzqq: unknown key")


def test_known_keys_walk_lists_dicts_and_optionals() -> None:
    assert "banks" in known_keys(Chip, ("cores", "core", "sram"))
    assert "banks" in known_keys(Chip, ("shared_sram",))  # Sram | None
    assert "usd" in known_keys(Chip, ("price",))
    assert known_keys(Chip, ("clock",)) == []  # a value, not a model
    assert "axes" in known_keys(SweepFile, ())
    assert did_you_mean("axis", ["axes", "base"]) == "; did you mean `axes`?"
    assert did_you_mean("qqq", ["axes", "base"]) == ""


def test_a_misspelt_sweep_key(tmp_path: Path) -> None:
    from npusim.sweep.spec import load_sweep

    text = Path("workloads/sweeps/small.yaml").read_text().replace("\nworkloads:",
                                                                    "\nworkload:", 1)
    f = tmp_path / "s.yaml"
    f.write_text(text)
    with pytest.raises(SpecError) as exc:
        load_sweep(f)
    assert any("did you mean `workloads`?" in i.message for i in exc.value.issues)


def test_a_misspelt_layer_key(tmp_path: Path) -> None:
    from npusim.spec.workload import load_workload

    f = tmp_path / "w.yaml"
    f.write_text("name: w\nlayers:\n  - {op: matmul, name: a, m: 4, n: 4, k: 4, b_knd: weight}\n")
    with pytest.raises(SpecError) as exc:
        load_workload(f)
    (hit,) = [i for i in exc.value.issues if i.path.endswith("b_knd")]
    assert hit.message == "unknown key; did you mean `b_kind`?" and hit.line == 3


@pytest.mark.parametrize("text,line,column,words", [
    ("a: b: c\n", 1, 5, "a ':' where a value was expected"),  # the second ':' at column 5
    ("a: [1, 2\n", 2, 1, "a '[' list that is not closed; a flow sequence started at line 1"),
    ("a: {b: 1\n", 2, 1, "a '{' mapping that is not closed"),
    ('a: "x\n', 2, 1, "a quoted string that is not closed"),
    ("a: 1\n\tb: 2\n", 2, 1, "a tab: YAML indents with spaces"),
    ("a:\n  b: 1\n c: 2\n", 3, 2, "indentation that matches no level above"),
    ("a: 1\nb 2\nc: 3\n", 3, 1, "a key without ':'"),
    ("a: *x\n", 1, 4, "an alias '*name' with no anchor '&name' before it"),
    ("a: 1\nb: \x00x\n", 2, 4, "character 0x0000 is not allowed in YAML text"),
])
def test_syntax_errors_are_one_line_at_line_and_column(text: str, line: int, column: int,
                                                       words: str) -> None:
    with pytest.raises(SpecError) as exc:
        loads_yaml(text, "chip.yaml")
    (issue,) = exc.value.issues
    assert (issue.line, issue.column) == (line, column)
    got = issue.format("chip.yaml")
    assert got.startswith(f"chip.yaml:{line}:{column}: malformed YAML: {words}")
    assert "\n" not in got


def test_cli_syntax_error_is_one_line_exit_2(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "chip.yaml"
    f.write_text("name: x\nclock: [1 GHz\n")
    assert main(["validate", str(f)]) == 2
    err = capsys.readouterr()
    text = (err.err + err.out).strip()
    assert f"{f}:3:1: malformed YAML: a '[' list that is not closed" in text
    assert len(text.splitlines()) == 1
