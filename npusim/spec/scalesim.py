"""SCALE-Sim input files, read as they are: the architecture ``.cfg`` and topology CSVs.

``scalesim_cfg_data(path)`` reads a SCALE-Sim v2 or v3 configuration as the data of a chip,
which :func:`npusim.spec.arch.load_scalesim_cfg` (and ``load_arch`` given a ``.cfg``)
validates into a :class:`~npusim.spec.arch.Chip`:

* ``[architecture_presets]`` ArrayHeight x ArrayWidth is one systolic array (rows x cols) of
  one core, with its ``Dataflow`` (os / ws / is). A word is one byte: the array computes int8.
* The npusim SRAM is the sum of IfmapSramSzkB + FilterSramSzkB + OfmapSramSzkB, each x 1024
  bytes. (SCALE-Sim halves each SRAM into working and prefetch buffers; npusim's compiler
  does its own double buffering within the total.)
* SCALE-Sim has no clock. Assumption: 1 GHz (``clock_hz`` overrides it). DRAM is the catalog
  standard DDR4-3200 with its bandwidth set to ``Bandwidth`` words/cycle x clock; a
  comma-separated ``Bandwidth`` (one value per memory bank) is summed. With
  ``InterfaceBandwidth: CALC`` and no ``Bandwidth``, the DDR4-3200 peak is used.
* Keys SCALE-Sim uses for its own memory model (offsets, request buffers, ``[layout]`` bank
  bandwidths, ``[sparsity]``) are accepted and listed in the chip's ``assumptions`` when they
  matter, but not modelled.

``load_scalesim_topology(path)`` turns a topology CSV into a :class:`Workload`. The header
line tells the format: ``name, M, N, K,`` is GEMM (``Matmul(m=M, n=N, k=K)``, B a weight,
as SCALE-Sim treats it: an M x K input times a K x N filter); otherwise rows are
convolutions ``name, IFMAP H, IFMAP W, Filter H, Filter W, Channels, Num Filter, Stride,``
(an optional ninth column is a stride width or an ``N:M`` sparsity ratio; sparsity is
recorded in ``meta`` and not modelled). Like SCALE-Sim, the text after a row's last comma is
ignored; a row with more columns than that is an error naming its line, and a layer whose name contains ``DP`` is depthwise: SCALE-Sim runs it as one
single-channel layer per channel, which is ``Conv2d(groups=Channels, out_c=Channels x Num
Filter)`` here (same GEMMs, same MACs).

Output size. SCALE-Sim's inputs are pre-padded and its output height is
ceil((H - Fh + S) / S), one more than PyTorch's floor((H - Fh) / S) + 1 when S does not
divide H - Fh. To give the compiler SCALE-Sim's GEMM (M = out_h x out_w) the Conv2d gets the
smallest symmetric padding whose floor-based output equals SCALE-Sim's: pad = 0 when S
divides H - Fh, else ceil((S - r) / 2) with r = (H - Fh) mod S. The input size (and bytes)
stay as written.
"""

from __future__ import annotations

import configparser
import math
import os
import re
from pathlib import Path
from typing import Any, Literal

from npusim.errors import Issue, SpecError
from npusim.spec.dram_catalog import get_standard
from npusim.spec.yamlio import read_text
from npusim.workloads.ir import Conv2d, Layer, Matmul, Workload

__all__ = ["ARCH_SECTION", "conv_padding_for_scalesim", "load_scalesim_topology",
           "scalesim_cfg_data"]

_SOURCE = ("SCALE-Sim configuration and topology formats: github.com/scalesim-project/"
           "scale-sim-v2 (scalesim/scale_config.py, scalesim/topology_utils.py), v3 likewise")
_DRAM = "DDR4-3200"
_ARCH = ARCH_SECTION = "architecture_presets"


# --- architecture .cfg ------------------------------------------------------------------

def _cfg_lines(text: str) -> dict[str, int]:
    """``section.key`` (key lower-cased, as configparser stores it) -> 1-based line."""
    lines: dict[str, int] = {}
    section = ""
    for n, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        if s.startswith("[") and "]" in s:
            section = s[1:s.index("]")].strip()
            lines.setdefault(section, n)
        else:
            m = re.match(r"^\s*([^:=\s#;][^:=]*?)\s*[:=]", line)
            if m:
                lines.setdefault(f"{section}.{m.group(1).lower()}", n)
    return lines


def scalesim_cfg_data(path: str | os.PathLike[str], clock_hz: float = 1e9,
                      ) -> tuple[dict[str, Any], str, int | None]:
    """The data of a one-core, one-array chip from a SCALE-Sim ``.cfg`` (v2 or v3), the
    file's name and the line of its ``[architecture_presets]`` section."""
    p = Path(path)
    source = str(p)
    text = read_text(p)
    parser = configparser.ConfigParser(inline_comment_prefixes=("#", ";"))
    try:
        parser.read_string(text, source=source)
    except configparser.Error as exc:
        line = getattr(exc, "lineno", None)
        msg = str(exc).splitlines()[0]
        raise SpecError(Issue("", f"malformed SCALE-Sim config: {msg}", line), source) from None
    lines = _cfg_lines(text)
    issues: list[Issue] = []

    def get(key: str, section: str = _ARCH) -> str | None:
        if parser.has_option(section, key):
            return parser.get(section, key).strip()
        return None

    def issue(key: str, msg: str, section: str = _ARCH) -> None:
        line = lines.get(f"{section}.{key.lower()}", lines.get(section))
        issues.append(Issue(f"{section}.{key}", msg, line))

    def positive_int(key: str) -> int:
        raw = get(key)
        if raw is None:
            issue(key, "required key is missing")
            return 0
        try:
            value = int(raw)
        except ValueError:
            issue(key, f"expected a positive integer, got {raw!r}")
            return 0
        if value <= 0:
            issue(key, f"must be positive (got {value})")
        return value

    if not parser.has_section(_ARCH):
        raise SpecError(Issue(_ARCH, "section [architecture_presets] is missing", None), source)
    rows = positive_int("ArrayHeight")
    cols = positive_int("ArrayWidth")
    srams = [positive_int(k) for k in ("IfmapSramSzkB", "FilterSramSzkB", "OfmapSramSzkB")]
    dataflow = (get("Dataflow") or "").lower()
    if get("Dataflow") is None:
        issue("Dataflow", "required key is missing")
    elif dataflow not in ("os", "ws", "is"):
        issue("Dataflow", f"expected one of os, ws, is, got {get('Dataflow')!r}")
    mode = (get("InterfaceBandwidth", "run_presets") or "USER").upper()
    if mode not in ("USER", "CALC"):
        issue("InterfaceBandwidth", f"expected USER or CALC, got {mode!r}", "run_presets")

    assumptions = [
        f"clock {clock_hz / 1e9:g} GHz: SCALE-Sim has no clock (assumption)",
        "one word = one byte: int8 operands, 1 MAC per PE per cycle",
        f"SRAM = IfmapSramSzkB + FilterSramSzkB + OfmapSramSzkB = {sum(srams)} kB x 1024 B",
        "vector unit: a single lane, so that depthwise (DP) layers run on the array as "
        "SCALE-Sim runs them; DMA, energy table: npusim defaults (SCALE-Sim models neither)",
    ]
    dram: dict[str, Any] = {"standard": _DRAM}
    raw_bw = get("Bandwidth")
    if raw_bw is None:
        if mode == "USER":
            issue("Bandwidth", "required key is missing (InterfaceBandwidth is USER)")
        else:
            peak = get_standard(_DRAM).channel_bandwidth * get_standard(_DRAM).default_channels
            assumptions.append(f"DRAM: {_DRAM} peak {peak / 1e9:g} GB/s (InterfaceBandwidth "
                               "CALC and no Bandwidth given)")
    else:
        try:
            words = [float(x) for x in raw_bw.split(",") if x.strip()]
            if not words or any(w <= 0 or not math.isfinite(w) for w in words):
                raise ValueError
        except ValueError:
            issue("Bandwidth", f"expected positive words per cycle, got {raw_bw!r}")
        else:
            total = sum(words)
            dram["bandwidth"] = total * clock_hz  # one word = one byte
            assumptions.append(
                f"DRAM: {_DRAM} with bandwidth Bandwidth {raw_bw} words/cycle"
                f"{' (summed over banks)' if len(words) > 1 else ''} x clock = "
                f"{total * clock_hz / 1e9:g} GB/s")
            if mode == "CALC":
                assumptions.append("InterfaceBandwidth CALC: SCALE-Sim would size the "
                                   "bandwidth to avoid stalls; npusim uses Bandwidth as given")
    if parser.has_section("layout") or get("IfmapSRAMBankBandwidth") is not None:
        assumptions.append("[layout] SRAM bank bandwidths and custom layouts: not modelled")
    if parser.has_option("sparsity", "SparsitySupport") and \
            parser.get("sparsity", "SparsitySupport").strip().lower() == "true":
        assumptions.append("[sparsity] SparsitySupport true: not modelled (dense)")
    if issues:
        raise SpecError(issues, source)

    name = get("run_name", "general") if parser.has_section("general") else None
    data = {
        "name": name or p.stem,
        "sources": [source, _SOURCE],
        "assumptions": assumptions,
        "clock": clock_hz,
        "default_precision": "int8",
        "cores": {"count": 1, "core": {
            "systolic": {"rows": rows, "cols": cols, "count": 1, "dataflow": dataflow,
                         "macs_per_cycle": {"int8": 1}},
            "vector": {"lanes": 1},
            "sram": {"size": sum(srams) * 1024},
        }},
        "dram": dram,
    }
    return data, source, lines.get(_ARCH)


# --- topology CSV -----------------------------------------------------------------------

_CONV_COLUMNS = ("Layer name", "IFMAP Height", "IFMAP Width", "Filter Height", "Filter Width",
                 "Channels", "Num Filter", "Strides")
_GEMM_COLUMNS = ("Layer name", "M", "N", "K")
_RATIO = re.compile(r"^\s*(\d+)\s*:\s*(\d+)\s*$")


def conv_padding_for_scalesim(size: int, kernel: int, stride: int) -> int:
    """Smallest symmetric padding whose floor-based output is SCALE-Sim's ceil-based one."""
    target = -(-(size - kernel + stride) // stride)
    for pad in range(stride + 1):
        if (size + 2 * pad - kernel) // stride + 1 == target:
            return pad
    raise AssertionError("unreachable: pad = ceil((S - r) / 2) always works")  # pragma: no cover


def _split_row(line: str, needed: int) -> list[str]:
    """Fields of a row; like SCALE-Sim, drop what follows the last comma (unless needed)."""
    fields = [f.strip() for f in line.split(",")]
    if len(fields) > 1 and (not fields[-1] or len(fields) - 1 >= needed):
        fields = fields[:-1]
    return fields


def load_scalesim_topology(path: str | os.PathLike[str],
                           fmt: Literal["auto", "conv", "gemm"] = "auto") -> Workload:
    """A :class:`Workload` from a SCALE-Sim topology CSV (convolution or GEMM format)."""
    p = Path(path)
    source = str(p)
    text = read_text(p)
    rows = text.splitlines()
    if not rows or not rows[0].strip():
        raise SpecError(Issue("", "expected a header line first (SCALE-Sim skips line 1)", 1),
                        source)
    header = [h.strip() for h in rows[0].split(",")]
    while header and not header[-1]:
        header.pop()
    if fmt == "auto":
        fmt = "gemm" if [h.lower() for h in header[1:4]] == ["m", "n", "k"] and \
            len(header) <= 5 else "conv"
    canon = _GEMM_COLUMNS if fmt == "gemm" else _CONV_COLUMNS
    columns = [header[i] if i < len(header) and header[i] else canon[i]
               for i in range(len(canon))]
    issues: list[Issue] = []
    layers: list[Layer] = []
    sparsity: dict[str, str] = {}
    renamed: dict[str, str] = {}
    seen: set[str] = set()

    for n, line in enumerate(rows[1:], start=2):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = _split_row(line, len(canon))
        if not any(fields):
            continue  # a row of empty cells, as spreadsheet exports leave
        row_issues: list[Issue] = []
        if len(fields) < len(canon):
            missing = ", ".join(repr(c) for c in columns[len(fields):])
            issues.append(Issue(columns[len(fields)], f"row has {len(fields)} of "
                                f"{len(canon)} columns: missing {missing}", n))
            continue
        label = fields[0] or f"row{n}"
        allowed = len(canon) + (1 if fmt == "conv" else 0)  # conv: a ninth column may follow
        if any(fields[allowed:]):
            issues.append(Issue("", f"layer {label!r}: row has {len(fields)} columns where the "
                                f"{fmt} format takes at most {allowed} (extra: "
                                f"{', '.join(repr(f) for f in fields[allowed:])})", n))
            continue
        values: list[int] = []
        for col, raw in zip(columns[1:], fields[1:len(canon)], strict=True):
            try:
                v = int(raw)
                if v <= 0:
                    raise ValueError
            except ValueError:
                row_issues.append(Issue(col, f"layer {label!r}: expected a positive integer, "
                                             f"got {raw!r}", n))
                v = 0
            values.append(v)
        stride_w = None
        if fmt == "conv" and len(fields) > len(canon) and fields[len(canon)]:
            extra = fields[len(canon)]
            col = header[len(canon)] if len(header) > len(canon) else "column 9"
            if extra.isdigit() and int(extra) > 0:
                stride_w = int(extra)
            elif _RATIO.match(extra):
                sparsity[label] = extra.replace(" ", "")
            else:
                row_issues.append(Issue(col or "column 9", f"layer {label!r}: expected a stride "
                                        f"width or an N:M sparsity ratio, got {extra!r}", n))
        if not row_issues:
            name = label
            k = 2
            while name in seen:
                name = f"{label}_{k}"
                k += 1
            if name != label:
                renamed[name] = label
            try:
                layer = _conv(name, values, stride_w) if fmt == "conv" else _gemm(name, values)
            except ValueError as exc:
                row_issues.append(Issue(columns[3], f"layer {label!r}: {exc}", n))
            else:
                seen.add(name)
                layers.append(layer)
        issues += row_issues
    if not layers and not issues:
        issues.append(Issue("", "no layers: the file has a header and no rows", 1))
    if issues:
        raise SpecError(issues, source)
    meta: dict[str, object] = {"source": source, "format": f"scalesim-{fmt}", "batch": 1,
                               "precision": "int8"}
    if sparsity:
        meta["sparsity_not_modelled"] = sparsity
    if renamed:
        meta["renamed_duplicates"] = renamed
    return Workload(p.stem, tuple(layers), meta)


def _conv(name: str, v: list[int], stride_w: int | None) -> Conv2d:
    h, w, fh, fw, c, f, s = v
    sw = stride_w or s
    if fh > h or fw > w:
        raise ValueError(f"filter {fh}x{fw} is larger than the {h}x{w} input")
    depthwise = "DP" in name
    return Conv2d(name, batch=1, in_h=h, in_w=w, in_c=c, out_c=c * f if depthwise else f,
                  kernel_h=fh, kernel_w=fw, stride_h=s, stride_w=sw,
                  pad_h=conv_padding_for_scalesim(h, fh, s),
                  pad_w=conv_padding_for_scalesim(w, fw, sw),
                  groups=c if depthwise else 1)


def _gemm(name: str, v: list[int]) -> Matmul:
    m, n, k = v
    return Matmul(name, m=m, n=n, k=k, b_kind="weight")
