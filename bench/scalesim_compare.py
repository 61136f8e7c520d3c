"""Side by side with SCALE-Sim: per-layer compute cycles and wall time (issue 7, item 2).

Runs the same SCALE-Sim ``.cfg`` and topology CSV(s) through

* SCALE-Sim 3.0.0, as a subprocess of a throwaway virtual environment (never a dependency
  of npusim; created with ``scalesim==3.0.0`` and ``numpy>=2.0.2,<2.4`` when missing, since
  numpy 2.4 crashes its read buffer), into a temporary directory, with trace CSVs turned off;
* npusim in-process, ``npusim.simulate(chip, workload, memory="ideal")`` on the chip and
  workload of :mod:`npusim.spec.scalesim`,

and prints, per layer, SCALE-Sim's stall-free cycles (``Total Cycles - Stall Cycles`` of its
COMPUTE_REPORT.csv), npusim's ``compute_cycles``, the difference, and the wall-time ratio
(SCALE-Sim's simulation wall time / the median of ``--repeat`` warm npusim runs).

A layer whose name contains ``DP`` is depthwise: SCALE-Sim runs it as one single-channel
layer per channel and reports each (each one less than its cycle count); their sum is shown.
npusim applies the "- 1" once per group too, so the two compare directly.

    python bench/scalesim_compare.py                      # bundled 16x16 cfg, conv + GEMM
    python bench/scalesim_compare.py --dataflow all       # the same for ws, os and is
    python bench/scalesim_compare.py --quick --json       # CI: no install, SCALE-Sim if there

Exit status: 0 when every compared layer matches, 1 on a mismatch, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import configparser
import csv
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "scalesim"
DEFAULT_CFG = DATA / "array_16x16_ws.cfg"
DEFAULT_TOPOLOGIES = (DATA / "conv_small.csv", DATA / "gemm_small.csv")
DEFAULT_VENV = Path("/tmp/npusim-scalesim-venv")
SCALESIM_PINS = ("scalesim==3.0.0", "numpy>=2.0.2,<2.4")

try:
    import npusim
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(HERE.parent))
    import npusim
from npusim.spec.arch import load_scalesim_cfg
from npusim.spec.scalesim import load_scalesim_topology
from npusim.workloads.ir import Conv2d, Workload

# Run inside the venv: SCALE-Sim's own API, as its CLI does, but with save_disk_space=True
# (the CLI always writes per-cycle traces, hundreds of MB per layer) and its wall time.
_DRIVER = """
import json, sys, time
from scalesim.scale_sim import scalesim
cfg, topo, layout, out, gemm = sys.argv[1:6]
t0 = time.perf_counter()
s = scalesim(save_disk_space=True, verbose=False, config=cfg, topology=topo, layout=layout,
             input_type_gemm=gemm == "1")
s.run_scale(top_path=out)
print("NPUSIM_COMPARE " + json.dumps({"wall_s": time.perf_counter() - t0}))
"""


@dataclass
class LayerRow:
    topology: str
    dataflow: str
    layer: str
    m: int
    n: int
    k: int
    npusim_cycles: int
    scalesim_cycles: int | None = None
    scalesim_rows: int = 1
    diff: int | None = None  # npusim - SCALE-Sim
    status: str = "not run"  # match | MISMATCH | not run


@dataclass
class RunResult:
    topology: str
    dataflow: str
    rows: list[LayerRow]
    npusim_cold_s: float
    npusim_warm_s: float
    scalesim_wall_s: float | None = None
    scalesim_process_s: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        if self.scalesim_wall_s is None or self.npusim_warm_s <= 0:
            return None
        return self.scalesim_wall_s / self.npusim_warm_s


# --- the SCALE-Sim venv ---------------------------------------------------------------

def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def scalesim_available(venv: Path) -> bool:
    py = venv_python(venv)
    if not py.exists():
        return False
    probe = subprocess.run([str(py), "-c", "import scalesim.scale_sim"],
                           capture_output=True, timeout=120)
    return probe.returncode == 0


def ensure_venv(venv: Path) -> None:
    """Create ``venv`` with SCALE-Sim 3.0.0 and the numpy pin it needs."""
    if not venv_python(venv).exists():
        print(f"creating a throwaway venv at {venv}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    print(f"installing {' '.join(SCALESIM_PINS)} into {venv}", file=sys.stderr)
    subprocess.run([str(venv_python(venv)), "-m", "pip", "install", "-q", *SCALESIM_PINS],
                   check=True)


# --- running the two tools ------------------------------------------------------------

def cfg_with_dataflow(cfg: Path, dataflow: str | None, workdir: Path) -> Path:
    """``cfg`` itself, or a copy in ``workdir`` with its Dataflow replaced."""
    if dataflow is None:
        return cfg
    text = cfg.read_text(encoding="utf-8")
    new, count = re.subn(r"(?im)^(\s*Dataflow\s*[:=]\s*)\S+", rf"\g<1>{dataflow}", text)
    if count != 1:
        raise ValueError(f"{cfg}: expected one Dataflow key, found {count}")
    new = re.sub(r"(?im)^(\s*run_name\s*[:=]\s*)(\S+)", rf"\g<1>\g<2>_{dataflow}", new)
    out = workdir / f"{cfg.stem}_{dataflow}.cfg"
    out.write_text(new, encoding="utf-8")
    return out


def cfg_dataflow(cfg: Path) -> str:
    parser = configparser.ConfigParser(inline_comment_prefixes=("#", ";"))
    parser.read(cfg, encoding="utf-8")
    return parser.get("architecture_presets", "Dataflow", fallback="?").strip().lower()


def run_scalesim(venv: Path, cfg: Path, topology: Path, gemm: bool, workdir: Path,
                 timeout_s: float) -> tuple[list[int], float, float]:
    """SCALE-Sim's stall-free cycles per reported layer, its wall time, the process's."""
    layout = workdir / "layout_empty.csv"  # -l must name a file even with layouts off
    layout.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, "
                      "Channels, Num Filter, Strides,\n", encoding="utf-8")
    out = Path(tempfile.mkdtemp(prefix="scalesim_out_", dir=workdir))
    t0 = time.perf_counter()
    proc = subprocess.run([str(venv_python(venv)), "-c", _DRIVER, str(cfg), str(topology),
                           str(layout), str(out), "1" if gemm else "0"],
                          capture_output=True, text=True, timeout=timeout_s)
    process_s = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise RuntimeError(f"SCALE-Sim failed on {topology.name}:\n{tail}")
    wall = next((json.loads(line.split(" ", 1)[1])["wall_s"] for line in proc.stdout.splitlines()
                 if line.startswith("NPUSIM_COMPARE ")), process_s)
    reports = sorted(out.glob("*/COMPUTE_REPORT.csv"))
    if not reports:
        raise RuntimeError(f"SCALE-Sim wrote no COMPUTE_REPORT.csv under {out}")
    return parse_compute_report(reports[0]), wall, process_s


def parse_compute_report(path: Path) -> list[int]:
    """Stall-free cycles (Total Cycles - Stall Cycles) per row of a COMPUTE_REPORT.csv."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = [[c.strip() for c in r] for r in csv.reader(f) if any(c.strip() for c in r)]
    header = rows[0]
    total = header.index("Total Cycles")
    stall = header.index("Stall Cycles")
    return [int(float(r[total])) - int(float(r[stall])) for r in rows[1:]]


def scalesim_rows_of(workload: Workload) -> list[int]:
    """How many COMPUTE_REPORT rows SCALE-Sim writes for each layer (depthwise: channels)."""
    return [layer.groups if isinstance(layer, Conv2d) and "DP" in layer.name else 1
            for layer in workload.layers]


def run_npusim(chip: Any, workload: Workload, repeat: int) -> tuple[Any, float, float]:
    """Layers DataFrame, cold wall time, median warm wall time."""
    times = []
    layers = None
    for _ in range(1 + max(1, repeat)):
        t0 = time.perf_counter()
        layers = npusim.simulate(chip, workload, memory="ideal").layers
        times.append(time.perf_counter() - t0)
    return layers, times[0], statistics.median(times[1:])


def compare_one(cfg: Path, topology: Path, *, venv: Path, use_scalesim: bool, repeat: int,
                workdir: Path, timeout_s: float) -> RunResult:
    chip = load_scalesim_cfg(cfg)
    workload = load_scalesim_topology(topology)
    gemm = workload.meta.get("format") == "scalesim-gemm"
    dataflow = cfg_dataflow(cfg)
    layers, cold, warm = run_npusim(chip, workload, repeat)
    rows = [LayerRow(topology.name, dataflow, str(r.layer), int(r.m), int(r.n), int(r.k),
                     int(r.compute_cycles), scalesim_rows=g)
            for r, g in zip(layers.itertuples(index=False), scalesim_rows_of(workload),
                            strict=True)]
    result = RunResult(topology.name, dataflow, rows, cold, warm)
    if not use_scalesim:
        return result
    cycles, wall, process_s = run_scalesim(venv, cfg, topology, gemm, workdir, timeout_s)
    result.scalesim_wall_s, result.scalesim_process_s = wall, process_s
    if len(cycles) != sum(r.scalesim_rows for r in rows):
        result.notes.append(f"SCALE-Sim reported {len(cycles)} rows for {len(rows)} layers "
                            f"(expected {sum(r.scalesim_rows for r in rows)}): not compared")
        return result
    i = 0
    for row in rows:
        row.scalesim_cycles = sum(cycles[i:i + row.scalesim_rows])
        i += row.scalesim_rows
        row.diff = row.npusim_cycles - row.scalesim_cycles
        if row.diff == 0:
            row.status = "match"
        else:
            row.status = "MISMATCH"
    return result


# --- output ---------------------------------------------------------------------------

def _fmt(v: object) -> str:
    return "-" if v is None else str(v)


def print_table(results: list[RunResult]) -> None:
    head = ("dataflow", "topology", "layer", "M", "N", "K", "SCALE-Sim", "npusim", "diff",
            "status")
    lines = [head]
    for res in results:
        for r in res.rows:
            lines.append((r.dataflow, r.topology, r.layer, str(r.m), str(r.n), str(r.k),
                          _fmt(r.scalesim_cycles), str(r.npusim_cycles), _fmt(r.diff), r.status))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    for line in lines:
        print("  ".join(c.rjust(w) if i >= 3 else c.ljust(w)
                        for i, (c, w) in enumerate(zip(line, widths, strict=True))))
    print()
    for res in results:
        ss = ("SCALE-Sim not run" if res.scalesim_wall_s is None else
              f"SCALE-Sim {res.scalesim_wall_s:.3f} s (process {res.scalesim_process_s:.3f} s)")
        ratio = "" if res.ratio is None else f"  ratio {res.ratio:,.0f}x"
        print(f"{res.dataflow} {res.topology}: {ss}; npusim cold {res.npusim_cold_s:.4f} s, "
              f"warm median {res.npusim_warm_s * 1e3:.3f} ms{ratio}")
        for note in res.notes:
            print(f"  note: {note}")


def summary(results: list[RunResult]) -> dict[str, Any]:
    compared = [r for res in results for r in res.rows if r.scalesim_cycles is not None]
    ss = sum(res.scalesim_wall_s or 0.0 for res in results if res.scalesim_wall_s is not None)
    nw = sum(res.npusim_warm_s for res in results if res.scalesim_wall_s is not None)
    return {"layers": sum(len(res.rows) for res in results), "compared": len(compared),
            "match": sum(r.status == "match" for r in compared),
            "mismatch": sum(r.status == "MISMATCH" for r in compared),
            "scalesim_wall_s": ss if compared else None,
            "npusim_warm_s": nw if compared else None,
            "wall_ratio": ss / nw if compared and nw > 0 else None}


# --- command line ---------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cfg", type=Path, default=DEFAULT_CFG, help="SCALE-Sim .cfg file")
    p.add_argument("--topology", type=Path, action="append",
                   help="SCALE-Sim topology CSV (conv or GEMM; repeatable; default: bundled "
                        "conv and GEMM samples)")
    p.add_argument("--dataflow", choices=("ws", "os", "is", "all"),
                   help="override the cfg's Dataflow (all: run ws, os and is)")
    p.add_argument("--venv", type=Path, default=DEFAULT_VENV,
                   help=f"throwaway venv holding SCALE-Sim (default {DEFAULT_VENV})")
    p.add_argument("--no-install", action="store_true",
                   help="never create the venv or install SCALE-Sim; fail if it is missing")
    p.add_argument("--quick", action="store_true",
                   help="never install; skip SCALE-Sim (with a note) when it is not installed")
    p.add_argument("--repeat", type=int, default=5, help="warm npusim runs (median; default 5)")
    p.add_argument("--timeout", type=float, default=1800.0,
                   help="seconds allowed per SCALE-Sim run (default 1800)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    topologies = args.topology or list(DEFAULT_TOPOLOGIES)
    for path in [args.cfg, *topologies]:
        if not path.is_file():
            print(f"error: no such file: {path}", file=sys.stderr)
            return 2
    notes: list[str] = []
    use_scalesim = scalesim_available(args.venv)
    if not use_scalesim:
        if args.quick:
            notes.append(f"SCALE-Sim is not installed in {args.venv}: npusim only (--quick)")
        elif args.no_install:
            print(f"error: SCALE-Sim is not installed in {args.venv} (--no-install)",
                  file=sys.stderr)
            return 2
        else:
            ensure_venv(args.venv)
            use_scalesim = scalesim_available(args.venv)
            if not use_scalesim:
                print(f"error: cannot import scalesim from {args.venv}", file=sys.stderr)
                return 2
    dataflows: list[str | None] = (["ws", "os", "is"] if args.dataflow == "all"
                                   else [args.dataflow])
    results: list[RunResult] = []
    with tempfile.TemporaryDirectory(prefix="npusim_scalesim_") as tmp:
        workdir = Path(tmp)
        for df in dataflows:
            cfg = cfg_with_dataflow(args.cfg.resolve(), df, workdir)
            for topo in topologies:
                results.append(compare_one(cfg, topo.resolve(), venv=args.venv,
                                           use_scalesim=use_scalesim, repeat=args.repeat,
                                           workdir=workdir, timeout_s=args.timeout))
    summ = summary(results)
    if args.json:
        print(json.dumps({"cfg": str(args.cfg), "scalesim_run": use_scalesim, "notes": notes,
                          "summary": summ,
                          "runs": [{**asdict(r), "wall_ratio": r.ratio} for r in results]},
                         indent=2))
    else:
        for note in notes:
            print(f"note: {note}")
        print_table(results)
        if summ["wall_ratio"] is not None:
            print(f"\n{summ['match']}/{summ['compared']} layers identical"
                  f" ({summ['mismatch']} mismatch); wall time SCALE-Sim "
                  f"{summ['scalesim_wall_s']:.2f} s / npusim {summ['npusim_warm_s'] * 1e3:.2f} ms"
                  f" = {summ['wall_ratio']:,.0f}x")
    return 1 if summ["mismatch"] else 0


if __name__ == "__main__":
    sys.exit(main())
