"""HTML views for Jupyter: a chip's hardware and peaks, a result's summary and top layers.

``Chip._repr_html_`` and ``Result._repr_html_`` call :func:`chip_html` and :func:`result_html`.
Every string that comes from a spec or a result is escaped.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from typing import TYPE_CHECKING, Any

from npusim.units import format_bytes, format_si

if TYPE_CHECKING:
    from npusim.result import Result
    from npusim.spec.arch import Chip

__all__ = ["chip_html", "result_html"]


_STYLE = ("<style>.npusim-t td,.npusim-t th{padding:1px 8px;text-align:left}"
          ".npusim-t th{font-weight:600}.npusim-t td.n{text-align:right}</style>")


def _bytes(n: float) -> str:
    return format_bytes(n)


def _table(rows: Iterable[tuple[str, Any]], caption: str) -> str:
    body = "".join(f"<tr><th>{escape(str(k))}</th><td>{escape(str(v))}</td></tr>"
                   for k, v in rows)
    return (f"<table class='npusim-t'><caption style='text-align:left;font-weight:600'>"
            f"{escape(caption)}</caption>{body}</table>")


def _pj(j: float) -> str:
    return f"{j * 1e12:.3g} pJ"


def chip_html(chip: Chip) -> str:
    """A readable table of the chip: cores, arrays, memories, peaks and energy defaults."""
    core = chip.cores.core
    sa = core.systolic
    d = chip.dram
    rows: list[tuple[str, Any]] = [
        ("clock", f"{chip.clock / 1e6:.4g} MHz"),
        ("process", f"{chip.process_nm:g} nm"),
        ("cores", chip.n_cores),
        ("systolic arrays per core", f"{sa.count} x {sa.rows}x{sa.cols}"),
        ("dataflow", {"ws": "weight-stationary", "os": "output-stationary",
                      "is": "input-stationary"}[sa.dataflow]),
        ("vector unit", f"{core.vector.lanes} lanes, "
         + ", ".join(f"{k} {v:g}/lane/cycle" for k, v in core.vector.ops_per_cycle.items())),
        ("SRAM per core", f"{_bytes(core.sram.size)}, {core.sram.banks} banks"),
    ]
    if core.matvec is not None:
        mv = core.matvec
        rows.insert(5, ("matrix-vector engine per core",
                        f"{mv.lanes} lanes x {mv.width} wide x {mv.rows} row(s)"))
    if core.accumulator is not None:
        rows.append(("accumulator SRAM", _bytes(core.accumulator.size)))
    if chip.shared_sram is not None:
        rows.append(("shared SRAM", _bytes(chip.shared_sram.size)))
    if chip.noc is not None:
        rows.append(("NoC", f"{chip.noc.bytes_per_cycle:g} B/cycle per core, "
                            f"{chip.noc.latency_cycles:g} cycles, "
                            f"{'multicast' if chip.noc.multicast else 'no multicast'}, "
                            f"{_pj(chip.noc.energy_per_byte / 8)}/bit"))
    rows.append(("DMA engines per core", core.dma.engines))
    rows += [
        ("DRAM", f"{d.standard}, {d.n_channels} channels x {d.width_bits} bit "
         f"@ {d.rate_tps / 1e6:.5g} MT/s"),
        ("DRAM bandwidth", f"{d.peak_bandwidth / 1e9:.4g} GB/s"),
        ("DRAM capacity", _bytes(d.capacity_bytes)),
        ("DRAM energy", f"{d.energy_pj_per_bit:.3g} pJ/bit (" + ", ".join(
            f"{name} {d.energy_parts_pj_per_bit[k]:.3g}" for k, name in
            (("core", "device core"), ("interface", "interface"),
             ("phy", "controller + PHY"))) + ")"),
        ("DRAM idle latency", f"{d.idle_latency_s * 1e9:.3g} ns"),
    ]
    if chip.tdp is not None:
        rows.append(("TDP", f"{chip.tdp:g} W"))
    peaks = [(f"peak {p}" + (" (default)" if p == chip.default_precision else ""),
              f"{chip.peak_ops_per_second(p) / 1e12:.4g} TOPS "
              f"({sa.macs_per_cycle[p]:g} MAC/PE/cycle)")  # type: ignore[index]
             for p in sa.precisions]
    ridge = chip.peak_ops_per_second() / d.peak_bandwidth
    peaks.append(("ridge point", f"{ridge:.4g} ops/byte ({chip.default_precision})"))
    energy = [(f"MAC {p}", _pj(chip.mac_energy(p))) for p in sa.precisions]
    energy += [("SRAM read", f"{_pj(chip.sram_energy_per_byte())}/byte"),
               ("SRAM write", f"{_pj(chip.sram_energy_per_byte(write=True))}/byte"),
               *([("accumulator SRAM", f"{_pj(chip.accumulator_energy_per_byte())}/byte")]
                 if core.accumulator is not None else []),
               ("vector ALU op", _pj(chip.vector_energy("alu"))),
               ("vector special op", _pj(chip.vector_energy("special"))),
               ("on-chip wire", f"{_pj(chip.wire_energy_per_byte_mm() / 8)}/bit/mm"),
               ("leakage", f"{chip.energy.leakage:g} W")]
    cells = "".join(f"<td style='vertical-align:top'>{t}</td>" for t in (
        _table(rows, "hardware"), _table(peaks, "peaks"), _table(energy, "energy")))
    sources = "".join(f"<li>{escape(s)}</li>" for s in chip.sources)
    notes = (f"<details><summary>{len(chip.sources)} source(s), {len(chip.assumptions)} "
             f"assumption(s)</summary><ul>{sources}</ul><ul>"
             + "".join(f"<li>{escape(a)}</li>" for a in chip.assumptions) + "</ul></details>")
    return (f"<div>{_STYLE}<b>{escape(chip.name)}</b><table><tr>{cells}</tr></table>"
            f"{notes}</div>")


def result_html(result: Result, top: int = 10) -> str:
    """The summary and the ``top`` layers by latency, as HTML."""
    s = result.summary()
    lat = s["latency_s"]
    rows: list[tuple[str, Any]] = [
        ("chip", s["chip"]), ("workload", f"{s['workload']} (batch {s['batch']})"),
        ("layers", s["layers"]),
        ("latency", f"{format_si(lat, 's', 4)} ({s['cycles']:.0f} cycles)"),
        ("throughput", f"{s['inferences_per_s']:.4g} inferences/s, "
         f"{s['effective_tops']:.3g} TOPS effective"),
        ("utilization", f"{100 * s['utilization']:.1f} % of peak MACs"),
        ("energy", format_si(s["energy_j"], "J", 4)),
        ("energy split", ", ".join(
            f"{k} {100 * s[f'energy_{k}_j'] / s['energy_j']:.0f} %"
            for k in ("mac", "sram", "dram", "noc", "vector", "static")) if s["energy_j"] > 0 else "-"),
        ("power", f"{format_si(s['average_power_w'], 'W')} average, {s['tops_per_w']:.3g} TOPS/W"),
        ("DRAM traffic", f"{_bytes(s['dram_read_bytes'])} read, "
         f"{_bytes(s['dram_write_bytes'])} written"),
        ("bound layers", f"compute {s['bound_compute_layers']}, memory "
         f"{s['bound_memory_layers']}, vector {s['bound_vector_layers']}"),
    ]
    if "memory_model" in s:
        rows.append(("memory model", s["memory_model"]))
    df = result.layers
    head = ("<tr><th>layer</th><th>op</th><th>bound</th><th>latency</th>"
            "<th>share</th><th>utilization</th><th>DRAM</th><th>energy</th></tr>")
    body = ""
    for _, r in df.nlargest(top, "latency_s").iterrows():
        share = r["latency_s"] / lat if lat > 0 else 0.0
        body += (f"<tr><td>{escape(str(r['layer']))}</td><td>{escape(str(r['op']))}</td>"
                 f"<td>{escape(str(r['bound']))}</td>"
                 f"<td class='n'>{format_si(r['latency_s'], 's')}</td>"
                 f"<td class='n'>{100 * share:.1f} %</td>"
                 f"<td class='n'>{100 * r['utilization']:.1f} %</td>"
                 f"<td class='n'>{_bytes(r['dram_read_bytes'] + r['dram_write_bytes'])}</td>"
                 f"<td class='n'>{format_si(r['energy_j'], 'J')}</td></tr>")
    layers = (f"<table class='npusim-t'><caption style='text-align:left;font-weight:600'>"
              f"top {min(top, len(df))} of {len(df)} layers by latency</caption>"
              f"{head}{body}</table>")
    return (f"<div>{_STYLE}<table><tr><td style='vertical-align:top'>"
            f"{_table(rows, 'summary')}</td><td style='vertical-align:top'>{layers}</td>"
            f"</tr></table></div>")
