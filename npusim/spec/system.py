"""The system specification: many chips and the links between them, YAML → validated model.

A system composes, in this order: the chip (a preset name or a chip YAML path, resolved
relative to the system file), how many of them, the chip-to-chip link (bandwidth per
direction, latency per hop, energy per bit, kind), the topology the links form and the host
link. Quantities carry units as in the chip spec (``63 GB/s``, ``1 us``, ``5 pJ``); unknown
keys are errors; every problem of a file is reported at once with its key path and line.

Topologies (``npusim.engine.topology`` routes over them):

* ``switch``: every chip has one port (one link each way) to a non-blocking switch; a
  transfer holds the sender's up-link and the receiver's down-link, one hop of latency;
* ``ring``: chip ``i`` is linked to ``i ± 1`` (mod count) in both directions;
* ``torus2d`` / ``torus3d``: ``dims`` (their product is the count), a link each way to the
  next chip along every dimension with wrap-around; dimension-order routing;
* ``fully_connected``: a link each way between every pair of chips;
* ``two_level``: ``servers`` servers of ``count / servers`` chips each; inside a server as
  ``switch`` (the chips' ``link`` to the server's switch), and each server's switch has one
  ``network`` link each way to a non-blocking network switch (a NIC and an Ethernet
  switch, say); a transfer between servers holds the sender's link, both servers' network
  links and the receiver's link, at the slower of the two bandwidths.
"""

from __future__ import annotations

import math
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema

from npusim.errors import Issue, SpecError
from npusim.spec.arch import Chip, Price, load_arch
from npusim.spec.link_catalog import LINK_KINDS
from npusim.spec.numbers import Int
from npusim.spec.quantities import BytesPerSecond, Joules, Seconds
from npusim.spec.yamlio import is_system_data, line_for, load_yaml, loads_yaml, validate

__all__ = [
    "TOPOLOGIES",
    "Link",
    "System",
    "Topology",
    "is_system_data",
    "load_system",
    "loads_system",
    "system_from_data",
    "system_with",
]

TOPOLOGIES: tuple[str, ...] = ("switch", "ring", "torus2d", "torus3d", "fully_connected",
                               "two_level")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Link(_Spec):
    """One link direction's figures; every link of the system (or the host link) has them.

    A ``kind`` of :data:`~npusim.spec.link_catalog.LINK_KINDS` (``pcie5_x16``,
    ``ethernet_400g``, ``ici_v4`` …) fills the figures the file leaves out.
    """

    kind: str = Field(default="link", description="a link kind of the catalog (pcie3_x16, "
                      "pcie4_x8, pcie4_x16, pcie5_x8, pcie5_x16, ethernet_100g, "
                      "ethernet_400g, ici_v4), which fills the figures left out; or a free "
                      "label for reports")
    bandwidth: BytesPerSecond = Field(description="payload bandwidth per direction (after "
                                      "line encoding)")
    latency: Seconds = Field(default=0.0, description="one hop, first byte sent to first "
                             "byte received (a switch path counts as one hop)")
    energy_per_bit: Joules = Field(default=0.0, description="energy per payload bit moved "
                                   "over one hop")

    @model_validator(mode="before")
    @classmethod
    def _from_catalog(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("kind") not in LINK_KINDS:
            return data
        bw, lat, epb = LINK_KINDS[data["kind"]]
        return {"bandwidth": bw, "latency": lat, "energy_per_bit": epb, **data}


class Topology(_Spec):
    """How the links connect the chips (see the module docstring for each kind)."""

    kind: Literal["switch", "ring", "torus2d", "torus3d", "fully_connected", "two_level"] = \
        Field(description="switch: one port per chip to a non-blocking switch; ring: i to "
              "i ± 1; torus2d/torus3d: wrap-around links along each of dims; "
              "fully_connected: a link between every pair; two_level: servers of chips on a "
              "switch each, the servers on a network switch")
    dims: list[Annotated[Int, Field(gt=0)]] | None = Field(
        default=None, description="torus dimensions (2 for torus2d, 3 for torus3d; their "
        "product is count); none for the others")
    servers: Int | None = Field(
        default=None, gt=0, description="two_level: how many servers (they divide count; "
        "chips 0 … count/servers - 1 sit in server 0, and so on); none for the others")

    @model_validator(mode="after")
    def _dims(self) -> Topology:
        want = {"torus2d": 2, "torus3d": 3}.get(self.kind)
        if want is None and self.dims is not None:
            raise ValueError(f"dims apply to torus2d and torus3d only, not {self.kind}")
        if want is not None and (self.dims is None or len(self.dims) != want):
            raise ValueError(f"{self.kind} needs dims with {want} entries")
        if (self.kind == "two_level") != (self.servers is not None):
            raise ValueError("two_level needs servers" if self.kind == "two_level"
                             else f"servers apply to two_level only, not {self.kind}")
        return self


class System(_Spec):
    """A system of many chips: what a system YAML holds (the top level of the file)."""

    name: str = Field(description="the system's name in reports")
    sources: list[str] = Field(min_length=1, description="public documents the figures come "
                               "from (at least one)")
    assumptions: list[str] = Field(default_factory=list, description="each value not "
                                   "published: what was chosen and why")
    chip: str = Field(description="a chip preset name or a chip YAML path (relative to the "
                      "system file)")
    count: Int = Field(gt=0, description="chips in the system")
    link: Link = Field(description="the chip-to-chip link, one direction's figures (in a "
                       "two_level topology, a chip's link to its server's switch)")
    topology: Topology = Field(description="how the links connect the chips")
    network: Link | None = Field(default=None, description="two_level topologies: each "
                                 "server's link to the network switch, one direction's "
                                 "figures (latency: one network hop, switch included)")
    host: Link | None = Field(default=None, description="the host link (not modelled for "
                              "transfers in a system run)")
    price: Price | None = Field(default=None, description="what the whole system costs, "
                                "with its source; serve --cost charges a plan using k of "
                                "count chips k/count of it (none: each chip's own price, "
                                "if it has one)")
    #: the file the system came from (set by the loaders; resolves a relative chip path)
    source: SkipJsonSchema[str | None] = Field(default=None, exclude=True)

    @cached_property
    def chip_spec(self) -> Chip:
        """The chip every position of the system holds, loaded and validated."""
        p = Path(self.chip)
        if self.source is not None and p.suffix.lower() in (".yaml", ".yml") \
                and not p.is_absolute():
            p = Path(self.source).parent / p
        return load_arch(p if p.suffix else self.chip)


def _cross_field(system: System, lines: dict[str, int]) -> list[Issue]:
    issues = []
    dims = system.topology.dims
    if dims is not None and math.prod(dims) != system.count:
        issues.append(Issue("topology.dims", f"{'x'.join(map(str, dims))} hold "
                            f"{math.prod(dims)} chips; count is {system.count}",
                            line_for("topology.dims", lines)))
    servers = system.topology.servers
    if servers is not None and system.count % servers:
        issues.append(Issue("topology.servers", f"{servers} servers do not divide the "
                            f"{system.count} chips", line_for("topology.servers", lines)))
    if (system.topology.kind == "two_level") != (system.network is not None):
        issues.append(Issue("network", "a two_level topology needs a network link"
                            if system.network is None else
                            f"network applies to two_level topologies only, not "
                            f"{system.topology.kind}",
                            line_for("network" if system.network is not None else "topology",
                                     lines)))
    if system.topology.kind == "ring" and system.count < 2:
        issues.append(Issue("count", "a ring needs at least 2 chips", line_for("count", lines)))
    try:
        system.chip_spec  # noqa: B018  (load the chip now: its errors belong to this file)
    except SpecError as exc:
        first = exc.issues[0].format(exc.source) if exc.issues else str(exc)
        issues.append(Issue("chip", f"the chip does not load: {first}",
                            line_for("chip", lines)))
    return issues


def _build(data: Any, lines: dict[str, int], source: str | None) -> System:
    system = validate(System, data, lines, source)
    system = system.model_copy(update={"source": source})
    issues = _cross_field(system, lines)
    if issues:
        raise SpecError(issues, source)
    return system


def system_with(system: System, **changes: Any) -> System:
    """A validated copy of ``system`` with top-level fields replaced (``count=16``,
    ``link={"kind": "pcie4_x16"}``); the same checks as a file, as one SpecError."""
    data = system.model_dump(exclude={"source"})
    data.update({k: v.model_dump() if isinstance(v, BaseModel) else v
                 for k, v in changes.items()})
    return _build(data, {}, system.source)


def system_from_data(data: Any, source: str | None = None) -> System:
    """A validated system from parsed data (a relative chip YAML resolves against
    ``source``'s directory); the same checks as a file, as one SpecError."""
    return _build(data, {}, source)


def loads_system(text: str, source: str | None = None) -> System:
    data, lines = loads_yaml(text, source)
    return _build(data, lines, source)


def load_system(path: str | Path) -> System:
    """Load a system from a YAML file path or a system preset name (``rngd_8card``)."""
    p = Path(path)
    if not p.exists() and not p.suffix:
        from npusim.presets import system_path

        p = system_path(str(path))
    data, lines = load_yaml(p)
    return _build(data, lines, str(p))
