"""Reports: exporters (export), plots, Chrome traces (trace, system_trace) and Jupyter HTML
(html) of the records the simulation fills (npusim.result, npusim.system).

Importing this package registers the records' views (``res.plot``,
``res.to_chrome_trace(path)``, ``_repr_html_``; see npusim._views); each view imports its
module on first use, so registering costs no matplotlib.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from npusim._views import register

if TYPE_CHECKING:
    from npusim.result import Result
    from npusim.spec.arch import Chip
    from npusim.system.result import SystemResult

__all__: list[str] = []


def _result_plot(result: Result) -> Any:
    from npusim.report.plots import ResultPlots

    return ResultPlots(result)


def _result_trace(result: Result, path: str | os.PathLike[str]) -> Path:
    from npusim.report.trace import to_chrome_trace

    return to_chrome_trace(result, path)


def _result_html(result: Result) -> str:
    from npusim.report.html import result_html

    return result_html(result)


def _chip_html(chip: Chip) -> str:
    from npusim.report.html import chip_html

    return chip_html(chip)


def _system_trace(result: SystemResult, path: str | os.PathLike[str]) -> Path:
    from npusim.report.system_trace import to_system_trace

    return to_system_trace(result, path)


register("result.plot", _result_plot)
register("result.chrome_trace", _result_trace)
register("result.html", _result_html)
register("chip.html", _chip_html)
register("system.chrome_trace", _system_trace)
