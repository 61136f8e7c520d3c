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

What crosses the link is what the benchmark defines as a query's input and its answer
(:func:`host_io`), at the workload's batch; weights are resident on the card before the
first query:

* a decoder LLM step (``npusim.workloads.llm``: an embedding first, a ``phase`` in its
  meta): its token ids go up (prefill: the prompt's, decode: one per sequence; int32 each)
  and one sampled token id per sequence comes down (int32): the lm_head's logits stay on the
  chip, the sampling there is not costed (a vocabulary-wide compare);
* an encoder (an embedding first, BERT on SQuAD as MLPerf runs it): input ids, segment ids
  and the attention mask go up (3 x tokens x int32) and the start and end logits of every
  token come down (2 x tokens x fp32, MLPerf's SQuAD response: 3 KB at 384 tokens), not
  the hidden state (the QA head itself is not in the workload);
* an image classifier (a convolution first, a weight matmul last: ResNet-50, MobileNet):
  the image goes up at the first layer's input precision and the top-1 class id comes
  down (int32: the MLPerf ResNet-50 reference graph ends in an ArgMax);
* anything else: the first layer's activation input up, the last layer's activation
  output down.

Each transfer costs the link's ``energy_per_bit`` x its bits (``energy_host_j``), and the
chip's leakage runs on while it waits for the host (``energy_static_j`` grows by leakage x
the added time), so a query's energy stays at least leakage x its latency.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from npusim.spec.arch import Chip
from npusim.workloads.ir import BITS, Conv2d, Embedding, Matmul, Workload

__all__ = ["HostIO", "HostPath", "apply_host", "host_io", "host_path", "overlapped_rate"]

_ID_BYTES = 4  # a token id or a class index, int32
_LOGIT_BYTES = 4  # an fp32 logit (MLPerf's SQuAD response)


@dataclass(frozen=True)
class HostIO:
    """What one query (at the workload's batch) moves over the host link, in bytes."""

    upload_bytes: float
    download_bytes: float
    what: str  # in words, for reports


def host_io(workload: Workload) -> HostIO:
    """The bytes a query of ``workload`` uploads and downloads (the module docstring)."""
    layers = workload.layers
    if not layers:
        return HostIO(0.0, 0.0, "nothing")
    first, last = layers[0], layers[-1]
    if isinstance(first, Embedding) and "phase" in workload.meta:
        seqs = int(workload.meta.get("batch", 1))  # type: ignore[call-overload]
        return HostIO(float(first.tokens * _ID_BYTES), float(seqs * _ID_BYTES),
                      f"{first.tokens} token ids up, {seqs} sampled token id(s) down (int32)")
    if isinstance(first, Embedding):
        t = first.tokens
        return HostIO(float(3 * t * _ID_BYTES), float(2 * t * _LOGIT_BYTES),
                      f"ids, segments and mask of {t} tokens up (int32), start/end logits "
                      "down (fp32)")
    if isinstance(first, Conv2d) and isinstance(last, Matmul) and last.b_kind == "weight":
        image = float(first.input_bytes().get("act", 0))
        return HostIO(image, float(first.batch * _ID_BYTES),
                      f"{first.batch} image(s) up ({BITS[first.act_precision]}-bit), "
                      "top-1 class id(s) down (int32)")
    return HostIO(float(first.input_bytes().get("act", 0)),
                  float(last.output_bytes().get("act", 0)),
                  "first layer's activation input up, last layer's output down")


@dataclass(frozen=True)
class HostPath:
    """One query's host-side times in seconds."""

    upload_s: float
    download_s: float
    per_query_s: float
    per_layer_s: float
    upload_j: float = 0.0  # link energy of the upload
    download_j: float = 0.0
    leakage_w: float = 0.0  # the chip's static power while it waits for the host

    @property
    def link_s(self) -> float:
        """Time the host link is busy for the query (both directions)."""
        return self.upload_s + self.download_s


def _transfer(chip: Chip, nbytes: float) -> tuple[float, float]:
    """(seconds, joules) of one transfer of ``nbytes`` over the host link."""
    if chip.host is None or nbytes <= 0:
        return 0.0, 0.0
    h = chip.host
    return h.latency + nbytes / h.bandwidth, nbytes * 8 * h.energy_per_bit


def host_path(chip: Chip, workload: Workload) -> HostPath:
    """The host times and link energies of one query of ``workload`` (at its batch) on
    ``chip``; the transfers are 0 when the chip has no ``host`` link."""
    io = host_io(workload)
    (up_s, up_j), (down_s, down_j) = _transfer(chip, io.upload_bytes), _transfer(
        chip, io.download_bytes)
    return HostPath(up_s, down_s, chip.overheads.per_query_s, chip.overheads.per_layer_s,
                    up_j, down_j, chip.energy.leakage)


def apply_host(rows: tuple[dict[str, Any], ...], meta: dict[str, Any], clock: float,
               path: HostPath) -> tuple[tuple[dict[str, Any], ...], dict[str, Any]]:
    """A run's layer rows and meta with the host path in series, before they become its
    Result (the simulation calls this step; ``clock`` is the chip's): each layer gains its
    dispatch time, the first the upload and the per-query time, the last the download;
    ``latency_s``, ``cycles`` and ``time_host_s`` grow by the same amount, so the causes
    still add up. The first layer's ``energy_host_j`` is the upload's link energy and the
    last's the download's; each layer's ``energy_static_j`` grows by leakage x its added
    time. No layers: unchanged."""
    if not rows:
        return rows, meta
    out = [dict(r) for r in rows]
    extra = [path.per_layer_s] * len(out)
    extra[0] += path.upload_s + path.per_query_s
    extra[-1] += path.download_s
    link = [0.0] * len(out)
    link[0] += path.upload_j
    link[-1] += path.download_j
    for row, add, joules in zip(out, extra, link, strict=True):
        static = add * path.leakage_w
        row["energy_host_j"] = row.get("energy_host_j", 0.0) + joules
        row["energy_static_j"] = row["energy_static_j"] + static
        row["energy_j"] = row["energy_j"] + joules + static
        if add <= 0.0:
            continue
        old = row["latency_s"]
        row["latency_s"] = old + add
        row["cycles"] = row["latency_s"] * clock
        row["stall_cycles"] = row["stall_cycles"] + add * clock
        row["time_host_s"] = row.get("time_host_s", 0.0) + add
        if row["utilization"] and old > 0:
            row["utilization"] = row["utilization"] * old / row["latency_s"]
    meta = {**meta, "host_path": True, "host_upload_s": path.upload_s,
            "host_download_s": path.download_s, "host_per_query_s": path.per_query_s,
            "host_per_layer_s": path.per_layer_s, "host_upload_j": path.upload_j,
            "host_download_j": path.download_j}
    return tuple(out), meta


def overlapped_rate(latency_s: float, batch: int, path: HostPath) -> float:
    """Queries per second when the host path of one batch overlaps the chip's work on
    another (offline): the slower of the chip (its layers with their dispatch time) and the
    host (link transfers plus per-query runtime work) sets the pace. ``latency_s`` is the
    batch's latency with the host path in series (:func:`apply_host`)."""
    latency = float(latency_s)
    chip_s = latency - path.link_s - path.per_query_s
    pace = max(chip_s, path.link_s + path.per_query_s)
    return batch / pace if pace > 0 else 0.0
