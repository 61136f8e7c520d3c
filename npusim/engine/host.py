"""The host path of one query: upload, runtime dispatch, download.

A query's input crosses the chip's host link (``host:`` in the chip file) before the first
layer can start and its result crosses back after the last layer ends; the host runtime
spends ``overheads.per_query_s`` on the query and ``overheads.per_layer_s`` launching each
layer. Within one query none of this overlaps the chip's work (each step waits for the one
before), so the link is a server in series with the layer timeline: a transfer takes the
link's latency plus its bytes at the link's bandwidth, and its time is added to the layer it
precedes or follows, under the cause ``time_host_s``. Across queries (the offline scenario)
the link and the per-query runtime work of one batch overlap the chip's work on another:
see :func:`overlapped_rate`.

What crosses the link: the first layer's activation input and the last layer's activation
output, at the workload's batch (weights are resident on the card before the first query).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from npusim.report.result import Result
from npusim.spec.arch import Chip
from npusim.workloads.ir import Workload

__all__ = ["HostPath", "apply_host", "host_path", "overlapped_rate"]


@dataclass(frozen=True)
class HostPath:
    """One query's host-side times in seconds."""

    upload_s: float
    download_s: float
    per_query_s: float
    per_layer_s: float

    @property
    def link_s(self) -> float:
        """Time the host link is busy for the query (both directions)."""
        return self.upload_s + self.download_s


def _transfer(chip: Chip, nbytes: float) -> float:
    if chip.host is None or nbytes <= 0:
        return 0.0
    return chip.host.latency + nbytes / chip.host.bandwidth


def host_path(chip: Chip, workload: Workload) -> HostPath:
    """The host times of one query of ``workload`` (at its batch) on ``chip``; the
    transfers are 0 when the chip has no ``host`` link."""
    layers = workload.layers
    up = float(layers[0].input_bytes().get("act", 0)) if layers else 0.0
    down = float(layers[-1].output_bytes().get("act", 0)) if layers else 0.0
    return HostPath(_transfer(chip, up), _transfer(chip, down),
                    chip.overheads.per_query_s, chip.overheads.per_layer_s)


def apply_host(result: Result, path: HostPath) -> Result:
    """``result`` with the host path in series: each layer gains its dispatch time, the
    first the upload and the per-query time, the last the download; ``latency_s``,
    ``cycles`` and ``time_host_s`` grow by the same amount, so the causes still add up."""
    rows = [dict(r) for r in result.rows]
    if not rows:
        return result
    extra = [path.per_layer_s] * len(rows)
    extra[0] += path.upload_s + path.per_query_s
    extra[-1] += path.download_s
    clock = result.chip.clock
    for row, add in zip(rows, extra, strict=True):
        if add <= 0.0:
            continue
        old = row["latency_s"]
        row["latency_s"] = old + add
        row["cycles"] = row["latency_s"] * clock
        row["stall_cycles"] = row["stall_cycles"] + add * clock
        row["time_host_s"] = row.get("time_host_s", 0.0) + add
        if row["utilization"] and old > 0:
            row["utilization"] = row["utilization"] * old / row["latency_s"]
    meta = {**result.meta, "host_path": True, "host_upload_s": path.upload_s,
            "host_download_s": path.download_s, "host_per_query_s": path.per_query_s,
            "host_per_layer_s": path.per_layer_s}
    return replace(result, rows=tuple(rows), meta=meta)


def overlapped_rate(result: Result, path: HostPath) -> float:
    """Queries per second when the host path of one batch overlaps the chip's work on
    another (offline): the slower of the chip (its layers with their dispatch time) and the
    host (link transfers plus per-query runtime work) sets the pace. ``result`` is the
    batch's result with the host path applied (:func:`apply_host`)."""
    latency = float(result.summary()["latency_s"])
    chip_s = latency - path.link_s - path.per_query_s
    pace = max(chip_s, path.link_s + path.per_query_s)
    return result.batch / pace if pace > 0 else 0.0
