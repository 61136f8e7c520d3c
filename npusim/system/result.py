"""The result of one system step: per-chip rows, per-link rows, communication by cause.

``SystemResult.chips`` has one row per chip used: its place in the plan (replica, stage,
rank), ``time_compute_s``, ``time_comm_s`` (and one ``time_comm_<cause>_s`` column per
cause: attention / MLP / embedding all-reduce, logits all-gather, pipeline send),
``time_idle_s`` (pipeline bubble and waiting for slower chips; the three add up to the step
latency) and its energy. ``SystemResult.links`` has one row per link direction that carried
bytes: bytes, busy time, utilisation over the step, energy. ``summary()`` holds the totals;
``stage_results`` the chip Result of each pipeline stage (one micro-batch on one chip).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from npusim._views import view
from npusim.engine.system import StepStats
from npusim.engine.topology import is_network_link
from npusim.result import Result
from npusim.spec.system import Link, System
from npusim.system.experts import StageExperts
from npusim.system.parallel import Plan
from npusim.workloads.ir import Workload

__all__ = ["COMM_CAUSES", "SystemResult", "cause_column"]

#: communication causes, in report order
COMM_CAUSES: tuple[str, ...] = ("attention all-reduce", "mlp all-reduce",
                                "embedding all-reduce", "logits all-gather", "pipeline send",
                                "moe dispatch all-to-all", "moe combine all-to-all")


def cause_column(cause: str) -> str:
    """``attention all-reduce`` → ``time_comm_attention_all_reduce_s``."""
    return "time_comm_" + cause.replace("-", "_").replace(" ", "_") + "_s"


@dataclass(frozen=True)
class SystemResult:
    system: System = field(repr=False)
    plan: Plan
    workload_name: str
    batch: int  # per replica
    stage_results: tuple[Result, ...] = field(repr=False)
    step: StepStats = field(repr=False)
    meta: dict[str, Any] = field(default_factory=dict, repr=False)
    #: the workload the step ran (one replica's whole batch, before sharding)
    workload: Workload | None = field(default=None, repr=False)
    #: under expert parallelism, each stage's members and their routed experts
    experts: tuple[StageExperts, ...] = field(default=(), repr=False)

    @property
    def latency_s(self) -> float:
        return self.step.latency_s

    @property
    def chips(self) -> pd.DataFrame:
        lat = self.latency_s
        leak = self.system.chip_spec.energy.leakage
        mb = self.plan.micro_batches
        stage_e = [float(r.summary()["energy_j"]) for r in self.stage_results]
        rows = []
        ep = self.plan.ep
        for st in self.step.chips:
            comm = sum(st.comm_s.values())
            chip_e = mb * stage_e[st.stage]
            shard = None
            if self.experts:
                m = (st.replica * self.plan.tp + st.rank) % ep
                shard = self.experts[st.stage].shards[m]
                chip_e += mb * self.experts[st.stage].energy_j[m]
            row: dict[str, Any] = {
                "chip": st.position, "replica": st.replica, "stage": st.stage,
                "rank": st.rank, "time_compute_s": st.compute_s, "time_comm_s": comm,
                "time_idle_s": max(lat - st.compute_s - comm, 0.0),
            }
            for cause in COMM_CAUSES:
                row[cause_column(cause)] = st.comm_s.get(cause, 0.0)
            if shard is not None:  # its routed experts, one micro-batch
                row.update({"first_expert": shard.first_expert, "experts_held": shard.experts,
                            "expert_rows": shard.rows, "experts_touched": shard.touched})
            # The chip's simulated runs carry their own static energy; leakage goes on
            # while it waits in collectives or idles.
            row["energy_j"] = chip_e + leak * max(lat - st.compute_s, 0.0)
            rows.append(row)
        return pd.DataFrame(rows)

    @property
    def links(self) -> pd.DataFrame:
        lat, net = self.latency_s, self.system.network

        def fig(name: str) -> Link:
            return net if net is not None and is_network_link(name) else self.system.link

        rows = [{"link": n, "kind": fig(n).kind, "bytes": b,
                 "busy_s": self.step.link_busy_s.get(n, 0.0),
                 "utilization": self.step.link_busy_s.get(n, 0.0) / lat if lat > 0 else 0.0,
                 "energy_j": b * 8 * fig(n).energy_per_bit}
                for n, b in self.step.link_bytes.items() if b > 0]
        return pd.DataFrame(rows, columns=["link", "kind", "bytes", "busy_s", "utilization",
                                           "energy_j"])

    def summary(self) -> dict[str, Any]:
        chips, links = self.chips, self.links
        n = len(chips)
        s: dict[str, Any] = {
            "system": self.system.name, "chip": self.system.chip_spec.name,
            "workload": self.workload_name, "tp": self.plan.tp, "pp": self.plan.pp,
            "dp": self.plan.dp, "ep": self.plan.ep, "micro_batches": self.plan.micro_batches,
            "chips_used": n, "chips_in_system": self.system.count,
            "batch": self.batch * self.plan.dp, "latency_s": self.latency_s,
            # latency split, averaged over the chips used
            "time_compute_s": float(chips["time_compute_s"].mean()),
            "time_comm_s": float(chips["time_comm_s"].mean()),
            "time_idle_s": float(chips["time_idle_s"].mean()),
        }
        for cause in COMM_CAUSES:
            s[cause_column(cause)] = float(chips[cause_column(cause)].mean())
        if "expert_rows" in chips:  # load across the chips: most routed rows over the mean
            rows = chips["expert_rows"].astype(float)
            s["expert_rows_max"] = float(rows.max())
            s["expert_load_imbalance"] = float(rows.max() / rows.mean()) if rows.mean() else 1.0
        link_e = float(links["energy_j"].sum())
        chip_e = float(chips["energy_j"].sum())
        s.update({
            "energy_j": chip_e + link_e, "energy_chips_j": chip_e, "energy_links_j": link_e,
            "link_bytes": float(links["bytes"].sum()),
            "link_utilization_max": float(links["utilization"].max()) if len(links) else 0.0,
            "link_utilization_mean": (float(links["busy_s"].sum())
                                      / (len(self.step.links) * self.latency_s)
                                      if self.latency_s > 0 else 0.0),
            "inferences_per_s": (self.batch * self.plan.dp / self.latency_s
                                 if self.latency_s > 0 else 0.0),
        })
        s.update(self.meta)
        return s

    def to_chrome_trace(self, path: str | os.PathLike[str]) -> Path:
        """A Perfetto timeline: one track per chip and one per link (see report.trace)."""
        path_out: Path = view("system.chrome_trace")(self, path)
        return path_out

    def __repr__(self) -> str:
        s = self.summary()
        return (f"SystemResult({s['system']!r} x {s['workload']!r}, {self.plan.describe()}: "
                f"{s['latency_s'] * 1e3:.3f} ms, comm {s['time_comm_s'] * 1e3:.3f} ms)")
