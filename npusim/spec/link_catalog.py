"""Chip-to-chip link kinds with their published rates: a system's ``link: {kind: pcie5_x16}``
takes its bandwidth, latency and energy from here unless the file gives them.

Bandwidth is payload per direction after line encoding. PCIe (PCI-SIG base specifications
3.0/4.0/5.0): 8, 16 and 32 GT/s per lane with 128b/130b encoding, so x16 moves
``rate x 16 x 128/130 / 8`` bytes per second each way (15.75, 31.5, 63.0 GB/s). Ethernet
(IEEE 802.3): 100 and 400 Gb/s per direction, 12.5 and 50 GB/s before framing (Ethernet,
IP and RoCE headers are not deducted). TPU v4 ICI: 46.9 GB/s per link per direction, derived
from the 24 TB/s bisection bandwidth of the 16x16x16 pod (cloud.google.com/tpu/docs/v4) over
its 2 x 16 x 16 = 512 cut links. Latency and energy per bit are not published for any of
them; the values below are assumptions of their class (PCIe through one switch with DMA
start-up 1 µs; RDMA over Ethernet through one switch 5 µs; an ICI hop 0.5 µs; 5 pJ/bit for
a PCIe or ICI SerDes link, 10 pJ/bit for an Ethernet NIC and optics), to be overridden when
known.
"""

from __future__ import annotations

__all__ = ["LINK_KINDS"]


def _pcie(gts: float, lanes: int) -> float:
    return gts * 1e9 * lanes * 128 / 130 / 8


#: kind → (bandwidth B/s per direction, latency s per hop, energy J per bit)
LINK_KINDS: dict[str, tuple[float, float, float]] = {
    "pcie3_x16": (_pcie(8, 16), 1e-6, 5e-12),
    "pcie4_x8": (_pcie(16, 8), 1e-6, 5e-12),
    "pcie4_x16": (_pcie(16, 16), 1e-6, 5e-12),
    "pcie5_x8": (_pcie(32, 8), 1e-6, 5e-12),
    "pcie5_x16": (_pcie(32, 16), 1e-6, 5e-12),
    "ethernet_100g": (100e9 / 8, 5e-6, 10e-12),
    "ethernet_400g": (400e9 / 8, 5e-6, 10e-12),
    "ici_v4": (24e12 / (2 * 16 * 16), 0.5e-6, 5e-12),
}
