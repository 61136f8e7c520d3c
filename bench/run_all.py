"""Run every benchmark script and collect their figures in bench/results.md and .json.

    python bench/run_all.py              # full runs (minutes: the 1,000-point sweep, LLMs)
    python bench/run_all.py --quick      # every script in its quick form (CI; ~1 minute)
    python bench/run_all.py --only bench_resnet,bench_bert --out /tmp/bench

Each script runs in its own interpreter from the repository root, with ``--json`` where it
has one (its printed JSON becomes the figures); the others' printed lines are parsed for
their figures and kept verbatim too. SCALE-Sim's side-by-side runs in full (all three
dataflows) only when SCALE-Sim is already installed in its throwaway venv; otherwise in
its ``--quick`` form (npusim only, with a note). Both files are written atomically. Exit
status 0 when every script exited 0, else 1. Wall times are facts about this machine at
this moment: nothing here asserts a target.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from npusim._io import atomic_write_text

SCALESIM_VENV = Path("/tmp/npusim-scalesim-venv")


@dataclass(frozen=True)
class Script:
    name: str
    full: tuple[str, ...]
    quick: tuple[str, ...]
    json: bool
    what: str


def scalesim_installed(venv: Path = SCALESIM_VENV) -> bool:
    py = venv / "bin" / "python"
    if not py.exists():
        return False
    probe = subprocess.run([str(py), "-c", "import scalesim.scale_sim"], capture_output=True,
                           timeout=120)
    return probe.returncode == 0


def scripts() -> list[Script]:
    out = [
        Script("bench_startup", ("--json",), ("--quick", "--json"), True,
               "`npusim run` process start, cold and warm numba cache"),
        Script("bench_resnet", ("--json",), ("--quick", "--json"), True,
               "ResNet-50 batch 1 on TPU v1 and Warboy"),
        Script("bench_bert", ("--json",), ("--quick", "--json"), True,
               "BERT-large, sequence 384, on Warboy and RNGD"),
    ]
    if (HERE / "bench_llm.py").exists():
        out.append(Script("bench_llm", ("--json",), ("--quick", "--json"), True,
                          "LLaMA-2 70B/7B decode, 7B prefill, Qwen3-30B-A3B decode"))
    if (HERE / "bench_system.py").exists():
        out.append(Script("bench_system", ("--json",), ("--quick", "--json"), True,
                          "LLaMA-2 70B decode step on 8 RNGD cards and a 64-chip TPU v4 slice, "
                          "DeepSeek-V3 decode step on 32 RNGD cards (ep 32)"))
    if (HERE / "bench_serve.py").exists():
        out.append(Script("bench_serve", ("--json",), ("--quick", "--json"), True,
                          "serving 10,000 requests: LLaMA-2-7B and Qwen3-30B-A3B on lpddr_llm, "
                          "70B on 8 RNGD, 7B disaggregated (hbm_llm -> 2 lpddr_llm) with "
                          "prefix caching"))
    out += [
        Script("bench_dram", (), ("--quick", "--repeat", "2"), False,
               "cycle-approximate DRAM: streaming and random reads"),
        Script("bench_dram_cycle", ("--json",), ("--quick", "--json"), True,
               "cycle DRAM model on a LLaMA-2-7B decode step and ResNet-50 on every preset"),
        Script("bench_sweep", ("--quiet",), ("--quick", "--quiet"), False,
               "1,000-point ResNet-50 sweep, cold and from cache"),
    ]
    full_ss = (("--dataflow", "all", "--json", "--no-install") if scalesim_installed()
               else ("--quick", "--json"))
    out.append(Script("scalesim_compare", full_ss, ("--quick", "--json"), True,
                      "SCALE-Sim side by side: compute cycles and wall time"))
    return out


# --- parsing the scripts that print text ------------------------------------------------

_DRAM = re.compile(r"^(\w+)\s+([\d,]+)\s+(.+?)\s+cold\s+([\d.]+) s\s+warm median\s+([\d.]+) s"
                   r"\s+\(([\d.]+) GB/s simulated\)")
_SWEEP = {
    "points": re.compile(r"^points: (\d+) \((\d+) computed, (\d+) cached, (\d+) failed\), "
                         r"(\d+) workers"),
    "cold": re.compile(r"^cold:\s+([\d.]+) s\s+([\d.]+) points/s"),
    "cache": re.compile(r"^from cache:\s+([\d.]+) s\s+([\d.]+) points/s"),
    "identical": re.compile(r"^tables identical: (\w+)"),
}


def parse_text(name: str, text: str) -> Any:
    """Figures from a script that prints lines (None when nothing is recognised)."""
    lines = text.splitlines()
    if name == "bench_dram":
        rows = []
        for line in lines:
            m = _DRAM.match(line.strip())
            if m:
                rows.append({"case": m[1], "size": int(m[2].replace(",", "")), "what": m[3],
                             "cold_s": float(m[4]), "warm_s": float(m[5]),
                             "simulated_gb_per_s": float(m[6])})
        return rows or None
    if name == "bench_sweep":
        fig: dict[str, Any] = {}
        for line in lines:
            line = line.strip()
            if m := _SWEEP["points"].match(line):
                fig.update(points=int(m[1]), computed=int(m[2]), cached=int(m[3]),
                           failed=int(m[4]), workers=int(m[5]))
            elif m := _SWEEP["cold"].match(line):
                fig.update(cold_s=float(m[1]), cold_points_per_s=float(m[2]))
            elif m := _SWEEP["cache"].match(line):
                fig.update(cache_s=float(m[1]), cache_points_per_s=float(m[2]))
            elif m := _SWEEP["identical"].match(line):
                fig["tables_identical"] = m[1] == "True"
        return [fig] if fig else None
    return None


# --- running --------------------------------------------------------------------------

@dataclass
class Outcome:
    name: str
    what: str
    argv: list[str]
    returncode: int
    wall_s: float
    figures: Any = None
    stdout: str = ""
    stderr_tail: str = ""
    notes: list[str] = field(default_factory=list)


def run_script(s: Script, quick: bool, timeout: float) -> Outcome:
    argv = [sys.executable, str(HERE / f"{s.name}.py"), *(s.quick if quick else s.full)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    t = time.perf_counter()
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=env,
                              timeout=timeout)
        code, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        code = -1
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = f"timed out after {timeout:.0f} s"
    wall = time.perf_counter() - t
    o = Outcome(s.name, s.what, [Path(a).name if i < 2 else a for i, a in enumerate(argv)],
                code, wall, stderr_tail="\n".join(err.strip().splitlines()[-5:]))
    if s.json:
        try:
            o.figures = json.loads(out)
        except json.JSONDecodeError:
            o.stdout = out
            o.notes.append("output was not JSON")
    else:
        o.stdout = out
        o.figures = parse_text(s.name, out)
    return o


# --- reporting ------------------------------------------------------------------------

def _fmt(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _table(rows: list[dict[str, Any]]) -> list[str]:
    cols: list[str] = []
    for r in rows:
        cols += [k for k, v in r.items()
                 if k not in cols and not isinstance(v, (list, dict))]
    if not cols:
        return []
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
    return out


def _scalesim_lines(fig: dict[str, Any]) -> list[str]:
    out = [f"SCALE-Sim run: {fig.get('scalesim_run')}"]
    out += [f"note: {n}" for n in fig.get("notes", [])]
    out += ["", *_table([fig.get("summary", {})])]
    runs = [{k: v for k, v in r.items() if k != "rows"} for r in fig.get("runs", [])]
    if runs:
        out += ["", *_table(runs)]
    return out


def render_md(meta: dict[str, Any], outcomes: list[Outcome]) -> str:
    lines = [
        "# npusim benchmark results",
        "",
        f"Generated by `python bench/run_all.py{' --quick' if meta['quick'] else ''}` at "
        f"{meta['generated_utc']} on {meta['machine']} ({meta['cpus']} CPUs, Python "
        f"{meta['python']}). Wall times are medians as each script reports them; they depend "
        "on the machine and its load. Regenerate rather than edit.",
        "",
        "| script | what | exit | wall (s) |",
        "|---|---|---|---|",
    ]
    lines += [f"| {o.name} | {o.what} | {o.returncode} | {o.wall_s:.1f} |" for o in outcomes]
    for o in outcomes:
        lines += ["", f"## {o.name}", "", f"`{' '.join(o.argv)}` — {o.what}", ""]
        if o.name == "scalesim_compare" and isinstance(o.figures, dict):
            lines += _scalesim_lines(o.figures)
        elif isinstance(o.figures, list) and o.figures and isinstance(o.figures[0], dict):
            lines += _table(o.figures)
        elif isinstance(o.figures, dict) and isinstance(o.figures.get("cases"), list):
            lines += _table(o.figures["cases"])  # scripts that print {"cases": [...]}
        if o.stdout.strip():
            lines += ["", "```", o.stdout.strip(), "```"]
        if o.returncode != 0:
            lines += ["", f"**exit {o.returncode}**", "", "```", o.stderr_tail, "```"]
        lines += [f"note: {n}" for n in o.notes]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="every script in its quick form")
    ap.add_argument("--out", type=Path, default=HERE, help="folder for results.md/.json")
    ap.add_argument("--only", help="comma-separated script names")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds per script")
    args = ap.parse_args(argv)
    todo = scripts()
    if args.only:
        want = set(args.only.split(","))
        unknown = want - {s.name for s in todo}
        if unknown:
            print(f"error: unknown script(s): {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
        todo = [s for s in todo if s.name in want]
    outcomes = []
    for s in todo:
        print(f"running {s.name} ...", file=sys.stderr, flush=True)
        o = run_script(s, args.quick, args.timeout)
        print(f"  exit {o.returncode} in {o.wall_s:.1f} s", file=sys.stderr, flush=True)
        outcomes.append(o)
    meta = {
        "generated_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": args.quick, "machine": platform.platform(), "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    doc = {**meta, "scripts": {o.name: asdict(o) for o in outcomes}}
    atomic_write_text(args.out / "results.json", json.dumps(doc, indent=1) + "\n")
    atomic_write_text(args.out / "results.md", render_md(meta, outcomes))
    print(f"wrote {args.out / 'results.md'} and {args.out / 'results.json'}", file=sys.stderr)
    return 0 if all(o.returncode == 0 for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
