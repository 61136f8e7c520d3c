"""A register-level, cycle-by-cycle model of a small systolic array, for the timing tests.

The array is ``rows x cols`` processing elements (PEs). Every cycle each PE reads the
registers its left and upper neighbours wrote the cycle before and writes its own: actual
numbers move, so the product the model computes is checked against numpy. Every value also
carries a tag (the index of the row of the streamed operand, or of the reduction step, it
belongs to; -1 for a bubble) and a PE asserts that the two operands it combines carry the
same tag: a wrong skew fails loudly instead of computing nonsense.

Timing follows SCALE-Sim (its ``systolic_compute_*``; docs/model.md "Systolic array"):

* **WS** (weights stationary; K on rows, N on columns, the M rows of A stream): R cycles
  shift a K x N block of B down the columns into the PEs' weight registers (last row
  first). Then row ``m`` of A enters array row ``r`` at stream cycle ``m + r`` (the skew
  the SRAM feeder applies), moves one PE right per cycle, and each PE adds its product to
  the partial sum from above; sums leave the bottom row, ``m + R - 1 + c`` cycles into the
  stream. An output row is written when its last column arrives (a C-wide write).
* **IS** (inputs stationary; K on rows, M on columns, the N columns of B stream): WS with
  the roles of A and B swapped: R cycles load a K x M block of A^T, the columns of B
  stream, the bottom row emits (A @ B)^T.
* **OS** (outputs stationary; M on rows, N on columns, K streams): row ``r`` of A enters
  from the left and column ``c`` of B from the top, each skewed by one cycle per row or
  column; PE (r, c) accumulates its output in place and, on its K-th MAC, writes it out
  through its column's output port (the skew finishes the PEs of a column on different
  cycles, so one port per column suffices and draining costs no extra cycles).

Folds run back to back, never overlapping, and the sequencer is static: a partial fold runs
the full R x C schedule with zeros in the unused lanes (SCALE-Sim pads its demand matrices
the same way), so a fold takes the same time however full it is. ``cycles`` is the count
of cycles up to and including the last output write (SCALE-Sim reports that minus one).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["RtlResult", "run"]

BUBBLE = -1


@dataclass(frozen=True)
class RtlResult:
    out: np.ndarray  # the product A @ B the array computed
    cycles: int  # cycles until the last output write, inclusive
    folds: int
    macs: int  # MACs on real (non-padding) operands


class _Clock:
    def __init__(self) -> None:
        self.t = 0  # the cycle being simulated
        self.last_write = -1

    def tick(self) -> None:
        self.t += 1


def _stationary(s: np.ndarray, x: np.ndarray, rows: int, cols: int, clock: _Clock,
                skew: int = 1) -> tuple[np.ndarray, int, int]:
    """``x @ s`` with ``s`` (K x P) held in the PEs and the rows of ``x`` (Q x K) streamed.

    Returns (Q x P product, folds, real MACs). ``skew`` is the per-row delay the feeder
    applies (1 is right; anything else makes the tags disagree).
    """
    k_dim, p_dim = s.shape
    q_dim = x.shape[0]
    out = np.zeros((q_dim, p_dim), dtype=np.int64)
    folds = macs = 0
    for p0 in range(0, p_dim, cols):
        for k0 in range(0, k_dim, rows):
            folds += 1
            block = np.zeros((rows, cols), dtype=np.int64)
            kk, pp = min(rows, k_dim - k0), min(cols, p_dim - p0)
            block[:kk, :pp] = s[k0:k0 + kk, p0:p0 + pp]
            real = np.zeros((rows, cols), dtype=bool)
            real[:kk, :pp] = True
            # Load: the block shifts down one row per cycle, its last row pushed first.
            w = np.zeros((rows, cols), dtype=np.int64)
            for i in range(rows):
                w[1:] = w[:-1].copy()
                w[0] = block[rows - 1 - i]
                clock.tick()
            assert np.array_equal(w, block)
            # Stream.
            a = np.zeros((rows, cols), dtype=np.int64)
            a_tag = np.full((rows, cols), BUBBLE)
            psum = np.zeros((rows, cols), dtype=np.int64)
            p_tag = np.full((rows, cols), BUBBLE)
            step = 0
            while True:
                edge = np.zeros(rows, dtype=np.int64)
                edge_tag = np.full(rows, BUBBLE)
                for r in range(rows):
                    q = step - skew * r
                    if 0 <= q < q_dim:
                        edge_tag[r] = q
                        edge[r] = x[q, k0 + r] if k0 + r < k_dim else 0
                new_a = np.empty_like(a)
                new_tag = np.empty_like(a_tag)
                new_a[:, 1:], new_tag[:, 1:] = a[:, :-1], a_tag[:, :-1]
                new_a[:, 0], new_tag[:, 0] = edge, edge_tag
                above = np.zeros_like(psum)
                above_tag = np.full_like(p_tag, BUBBLE)
                above[1:], above_tag[1:] = psum[:-1], p_tag[:-1]
                # The sum from above and the input from the left must belong together.
                valid = new_tag != BUBBLE
                mismatch = (above_tag != new_tag) & ((above_tag != BUBBLE) | valid)
                mismatch[0] = False  # the top row starts a new sum
                if mismatch.any():
                    raise AssertionError(f"cycle {clock.t}: partial sum and input misaligned")
                psum = above + w * new_a
                p_tag = new_tag
                a, a_tag = new_a, new_tag
                macs += int((valid & real).sum())
                for c in range(cols):  # the bottom row emits finished sums
                    q = int(p_tag[rows - 1, c])
                    if q != BUBBLE:
                        if c < pp:
                            out[q, p0 + c] += psum[rows - 1, c]
                        clock.last_write = clock.t
                clock.tick()
                step += 1
                fed = step > skew * (rows - 1) + q_dim - 1
                moving = (a_tag[:, :-1] != BUBBLE).any() or (p_tag[:-1] != BUBBLE).any()
                if fed and not moving:
                    break
    return out, folds, macs


def _output_stationary(a_mat: np.ndarray, b_mat: np.ndarray, rows: int, cols: int,
                       clock: _Clock, skew: int = 1) -> tuple[np.ndarray, int, int]:
    """``a_mat @ b_mat`` with each PE accumulating one output in place."""
    m_dim, k_dim = a_mat.shape
    n_dim = b_mat.shape[1]
    out = np.zeros((m_dim, n_dim), dtype=np.int64)
    folds = macs = 0
    for n0 in range(0, n_dim, cols):
        for m0 in range(0, m_dim, rows):
            folds += 1
            mm, nn = min(rows, m_dim - m0), min(cols, n_dim - n0)
            real = np.zeros((rows, cols), dtype=bool)
            real[:mm, :nn] = True
            a = np.zeros((rows, cols), dtype=np.int64)
            a_tag = np.full((rows, cols), BUBBLE)
            b = np.zeros((rows, cols), dtype=np.int64)
            b_tag = np.full((rows, cols), BUBBLE)
            acc = np.zeros((rows, cols), dtype=np.int64)
            done = np.zeros((rows, cols), dtype=np.int64)
            step = 0
            while True:
                new_a = np.empty_like(a)
                new_at = np.empty_like(a_tag)
                new_a[:, 1:], new_at[:, 1:] = a[:, :-1], a_tag[:, :-1]
                new_b = np.empty_like(b)
                new_bt = np.empty_like(b_tag)
                new_b[1:], new_bt[1:] = b[:-1], b_tag[:-1]
                for r in range(rows):
                    kk = step - skew * r
                    ok = 0 <= kk < k_dim
                    new_at[r, 0] = kk if ok else BUBBLE
                    new_a[r, 0] = a_mat[m0 + r, kk] if ok and m0 + r < m_dim else 0
                for c in range(cols):
                    kk = step - c
                    ok = 0 <= kk < k_dim
                    new_bt[0, c] = kk if ok else BUBBLE
                    new_b[0, c] = b_mat[kk, n0 + c] if ok and n0 + c < n_dim else 0
                a, a_tag, b, b_tag = new_a, new_at, new_b, new_bt
                if ((a_tag != b_tag) & ((a_tag != BUBBLE) | (b_tag != BUBBLE))).any():
                    raise AssertionError(f"cycle {clock.t}: A and B operands misaligned")
                valid = a_tag != BUBBLE
                acc += np.where(valid, a * b, 0)
                done += valid
                macs += int((valid & real).sum())
                finished = valid & (done == k_dim)
                # One output port per column: at most one PE of a column finishes a cycle.
                assert finished.sum(axis=0).max(initial=0) <= 1
                for r, c in zip(*np.nonzero(finished), strict=True):
                    if real[r, c]:
                        out[m0 + r, n0 + c] = acc[r, c]
                    clock.last_write = clock.t
                clock.tick()
                step += 1
                if (done == k_dim).all():
                    break
                if step > 4 * (k_dim + rows + cols):
                    raise AssertionError("the fold never finished")
    return out, folds, macs


def run(a: np.ndarray, b: np.ndarray, rows: int, cols: int, dataflow: str,
        skew: int = 1) -> RtlResult:
    """Multiply ``a`` (M x K) by ``b`` (K x N) on a ``rows x cols`` array."""
    clock = _Clock()
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    if dataflow == "ws":
        out, folds, macs = _stationary(b, a, rows, cols, clock, skew)
    elif dataflow == "is":
        out_t, folds, macs = _stationary(a.T, b.T, rows, cols, clock, skew)
        out = out_t.T
    elif dataflow == "os":
        out, folds, macs = _output_stationary(a, b, rows, cols, clock, skew)
    else:
        raise ValueError(f"unknown dataflow {dataflow!r}")
    return RtlResult(out, clock.last_write + 1, folds, macs)
