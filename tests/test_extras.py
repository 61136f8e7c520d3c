"""The core install runs without onnx, pyarrow and dask; a feature that needs one says which
extra to install, in one line, exit 2.

A missing package is simulated with ``sys.modules[name] = None``: Python then refuses the
import exactly as when the package is not installed (ModuleNotFoundError).
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from npusim.cli import main
from npusim.extras import MissingExtraError, require

ROOT = Path(__file__).resolve().parent.parent

# What a user must read, written out here rather than built from npusim.extras.EXTRAS.
LINES = {
    "onnx": "npusim: error: ONNX import needs the onnx package: pip install 'npusim[onnx]'",
    "pyarrow": "npusim: error: Parquet files needs the pyarrow package: "
               "pip install 'npusim[parquet]'",
    "dask": "npusim: error: a Dask sweep needs the dask[distributed] package: "
            "pip install 'npusim[dask]'",
}


def _hide(monkeypatch: pytest.MonkeyPatch, package: str) -> None:
    """Make ``package`` and its submodules unimportable, as if not installed."""
    for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, package, None)  # type: ignore[arg-type]


@pytest.mark.parametrize(("module", "package"), [("onnx", "onnx"), ("pyarrow.parquet", "pyarrow"),
                                                 ("dask.distributed", "dask")])
def test_require_names_the_extra(monkeypatch: pytest.MonkeyPatch, module: str,
                                 package: str) -> None:
    _hide(monkeypatch, package)
    with pytest.raises(MissingExtraError) as exc:
        require(module)
    assert f"npusim: error: {exc.value}" == LINES[package]
    assert isinstance(exc.value, ImportError)  # code catching ImportError keeps working


def test_onnx_workload_without_onnx(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    _hide(monkeypatch, "onnx")
    monkeypatch.delitem(sys.modules, "npusim.workloads.onnx_import", raising=False)
    model = tmp_path / "m.onnx"
    model.write_bytes(b"\x08\x07")  # never read: the import fails first
    assert main(["run", "tpu_v1", str(model)]) == 2
    assert capsys.readouterr().err.splitlines() == [LINES["onnx"]]
    assert main(["validate", str(model)]) == 2


def test_parquet_out_without_pyarrow_is_refused_before_the_run(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    def no_work(*args: object, **kwargs: object) -> None:
        raise AssertionError("simulated or compiled before checking the output format")

    _hide(monkeypatch, "pyarrow")
    monkeypatch.setattr(importlib.import_module("npusim.simulate"), "simulate", no_work)
    monkeypatch.setattr(importlib.import_module("npusim.compiler.lower"), "compile_workload",
                        no_work)
    for argv in (["run", "tpu_v1", "mobilenet_v2", "--out", str(tmp_path / "r.parquet")],
                 ["compile", "tpu_v1", "mobilenet_v2", "-o", str(tmp_path / "t.parquet")],
                 ["run", "tpu_v1", "--tile-trace", str(tmp_path / "t.parquet")]):
        assert main(argv) == 2, argv
        assert capsys.readouterr().err.splitlines() == [LINES["pyarrow"]], argv
    assert not list(tmp_path.iterdir())


def test_an_import_past_require_is_still_one_line(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    import npusim.cli

    def imports_dask(args: object) -> int:
        import dask.distributed  # noqa: F401

        return 0

    _hide(monkeypatch, "dask")
    parser = argparse.ArgumentParser()
    parser.set_defaults(func=imports_dask)
    monkeypatch.setattr(npusim.cli, "build_parser", lambda: parser)
    assert main([]) == 2
    assert capsys.readouterr().err.splitlines() == [LINES["dask"]]


def test_the_core_runs_without_any_extra(tmp_path: Path) -> None:
    """Every npusim module but the ONNX importer (onnx_import and its _onnx_* parts) imports, and a run writes its table, with
    onnx, pyarrow and dask absent (a fresh process: nothing imported them before)."""
    script = f"""
import importlib, pkgutil, sys
for name in ("onnx", "pyarrow", "dask", "distributed"):
    sys.modules[name] = None
import npusim
skipped = []
for m in pkgutil.walk_packages(npusim.__path__, "npusim."):
    try:
        importlib.import_module(m.name)
    except ImportError as exc:
        skipped.append(m.name)
assert sorted(skipped) == ["npusim.workloads._onnx_graph", "npusim.workloads._onnx_ops",
                           "npusim.workloads._onnx_shapes", "npusim.workloads.onnx_import"], skipped
from npusim.cli import main
assert main(["run", "tpu_v1", "mobilenet_v2", "--rows", "0", "--out", r"{tmp_path / 'r.csv'}"]) == 0
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
                                          "HOME": str(tmp_path)}, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "r.csv").read_text().startswith("layer")


@pytest.mark.parametrize(("package", "extra_args"), [
    ("pyarrow", ["--out", "t.parquet"]),
    ("dask", ["--scheduler", "tcp://127.0.0.1:1"]),
])
def test_sweep_without_an_extra_is_refused_before_it_runs(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        package: str, extra_args: list[str]) -> None:
    import npusim.sweep.run

    def no_sweep(*args: object, **kwargs: object) -> None:
        raise AssertionError("swept before checking the extra")

    _hide(monkeypatch, package)
    monkeypatch.setattr(npusim.sweep.run, "run_sweep", no_sweep)
    monkeypatch.chdir(tmp_path)
    spec = ROOT / "workloads" / "sweeps" / "small.yaml"
    assert main(["sweep", str(spec), "--no-cache", *extra_args]) == 2
    assert capsys.readouterr().err.splitlines() == [LINES[package]]
