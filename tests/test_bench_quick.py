"""The benchmark suite runs end to end in its quick form, so the scripts never rot.

Runs ``python bench/run_all.py --quick --out <tmp>`` as a subprocess: it must exit 0 and
write results.md and results.json with an entry for every benchmark script in ``bench/``
(each ``bench_*.py`` and the SCALE-Sim comparison), each with figures. No timing asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


# Minutes: every benchmark script in its quick form. Left out of the README's `pytest`,
# run by .ci/run (`pytest -m slow`).
@pytest.mark.slow
def test_run_all_quick(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(BENCH / "run_all.py"), "--quick", "--out",
                           str(tmp_path)], capture_output=True, text=True, timeout=600,
                          cwd=BENCH.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((tmp_path / "results.json").read_text())
    md = (tmp_path / "results.md").read_text()
    expected = {p.stem for p in BENCH.glob("bench_*.py")} | {"scalesim_compare"}
    assert set(doc["scripts"]) == expected
    assert doc["quick"] is True
    for name, entry in doc["scripts"].items():
        assert entry["returncode"] == 0, (name, entry["stderr_tail"])
        assert entry["figures"], f"{name}: no figures collected"
        assert f"## {name}" in md
    assert doc["scripts"]["scalesim_compare"]["figures"]["summary"]["mismatch"] == 0
