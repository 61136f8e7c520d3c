"""Progress bars and the compile notice (npusim/progress.py) as the CLI shows them.

stderr is replaced by a StringIO that says whether it is a terminal; DELAY is set to 0 so a
short run draws its bar (the real delay keeps quick runs silent)."""

from __future__ import annotations

import io
import sys

import pytest

from npusim import progress
from npusim.cli import main


class _Terminal(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def _stderr_of(argv: list[str], tty: bool, monkeypatch: pytest.MonkeyPatch) -> str:
    err = _Terminal(tty)
    monkeypatch.setattr(progress, "DELAY", 0.0)
    monkeypatch.setattr(sys, "stderr", err)
    assert main(argv) == 0
    return err.getvalue()


RUN = ["run", "warboy", "resnet50", "--memory", "cycle", "--rows", "1"]


def test_bar_on_a_terminal(monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str]) -> None:
    err = _stderr_of(RUN, True, monkeypatch)
    assert "layers:" in err
    layers = 72  # ResNet-50 as npusim lowers it ("72 layers" in the summary)
    assert f"0/{layers} [" in err  # a bar over every layer (cleared when it ends)


def test_no_bar_when_stderr_is_not_a_terminal(monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert _stderr_of(RUN, False, monkeypatch) == ""


def test_no_bar_with_quiet(monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str]) -> None:
    assert _stderr_of([*RUN, "--quiet"], True, monkeypatch) == ""


def test_llm_steps_bar(monkeypatch: pytest.MonkeyPatch,
                       capsys: pytest.CaptureFixture[str]) -> None:
    err = _stderr_of(["llm", "tpu_v4", "llama2_7b", "--prompt", "16", "--gen", "3",
                      "--decode-points", "2"], True, monkeypatch)
    assert "llm:" in err and "0/3 [" in err  # prefill and two decode contexts


def test_dram_bench_shows_elapsed_time(monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    err = _stderr_of(["dram-bench", "--standard", "HBM3", "--bytes", "1 MiB"], True,
                     monkeypatch)
    assert "dram-bench:" in err


def test_serve_shows_the_step_table_then_the_requests(
        monkeypatch: pytest.MonkeyPatch, tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from tests.test_serve_output import TINY

    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps(TINY))
    err = _stderr_of(["serve", "lpddr_llm", str(cfg), "--requests", "10", "--rate", "5",
                      "--prompt", "fixed:32", "--output", "fixed:2"], True, monkeypatch)
    assert "step table:" in err and "requests:" in err
    assert err.index("step table:") < err.index("requests:")
    assert "0/10 [" in err  # a bar over every request


def test_llm_on_a_system_shows_its_steps(monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    err = _stderr_of(["llm", "rngd_8card", "llama2_7b", "--tp", "2", "--prompt", "16",
                      "--gen", "3", "--decode-points", "2"], True, monkeypatch)
    assert "llm:" in err and "0/3 [" in err  # prefill and two decode contexts


def test_compile_notice_also_when_stderr_is_not_a_terminal(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A redirected first run says why it is slow: the notice, once, and no bar."""
    from numba.core import event

    err = _Terminal(False)
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setattr(progress._CompileNotice, "said", False)
    with progress.shown():
        assert not progress.enabled()
        for _ in range(2):
            with event.trigger_event("numba:compile", data={}):
                pass
    assert err.getvalue() == progress.COMPILING + "\n"


def test_compile_notice_once_and_only_on_a_compilation(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """numba announces a compilation only on a cache miss; the notice is printed at the
    first one, once per process, and never outside progress.shown() (nor with --quiet)."""
    from numba.core import event

    err = _Terminal(True)
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setattr(progress._CompileNotice, "said", False)
    with progress.shown():
        for _ in range(2):
            with event.trigger_event("numba:compile", data={}):
                pass
    assert err.getvalue() == progress.COMPILING + "\n"
    quiet = _Terminal(True)
    monkeypatch.setattr(sys, "stderr", quiet)
    monkeypatch.setattr(progress._CompileNotice, "said", False)
    with progress.shown(False), event.trigger_event("numba:compile", data={}):
        pass
    assert quiet.getvalue() == ""
