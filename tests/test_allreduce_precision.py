"""Tensor-parallel all-reduce at the accumulation precision.

After a row-parallel projection every rank holds a partial sum of the whole output; it stays
at the accumulation precision (fp32: 4 B) until reduced, so the all-reduce moves
hidden x tokens x 4 B whatever the activations' precision, unless a quantised all-reduce is
asked for (``allreduce_precision="activations"`` or a precision name). The embedding's
all-reduce sums whole rows with zeros, exact at the output precision. Counted by hand here.
"""

from __future__ import annotations

import pytest

from npusim.cli import main
from npusim.errors import MappingError
from npusim.spec.system import load_system
from npusim.system import simulate_system
from npusim.system.parallel import Plan
from npusim.system.simulate import simulate_shards, stage_program
from npusim.workloads import from_hf_config

TINY = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 512,
        "intermediate_size": 1024, "num_attention_heads": 8, "num_key_value_heads": 4,
        "num_hidden_layers": 2, "vocab_size": 2048, "max_position_embeddings": 1024,
        "hidden_act": "silu"}
H, LAYERS, BATCH, PROMPT = 512, 2, 2, 16
TOKENS = BATCH * PROMPT


def _segments(precision: str, tp: int = 2) -> list[tuple[str, float]]:
    sys_ = load_system("rngd_8card")
    wl = from_hf_config(TINY, "prefill", batch=BATCH, prompt_len=PROMPT, activations="int8")
    stages, results, _ = simulate_shards(sys_, wl, Plan(tp, 1, 1, 1))
    prog = stage_program(results[0], stages[0], tp, allreduce_precision=precision)
    return [(s.cause, s.nbytes) for s in prog.segments if s.collective == "all_reduce"]


@pytest.mark.parametrize(("precision", "nbytes"), [("accum", 4), ("activations", 1),
                                                   ("fp16", 2), ("fp32", 4)])
def test_partial_sums_cross_at_the_accumulation_precision(precision, nbytes):
    segs = _segments(precision)
    partial = [b for c, b in segs if c in ("attention all-reduce", "mlp all-reduce")]
    assert len(partial) == 2 * LAYERS
    assert partial == [H * TOKENS * nbytes] * (2 * LAYERS)
    # The embedding's rows are whole or zero on each rank: sent at its output precision.
    (emb,) = [b for c, b in segs if c == "embedding all-reduce"]
    assert emb in (H * TOKENS * 1, H * TOKENS * 2)


def test_link_bytes_follow_the_precision():
    # A ring all-reduce over n ranks sends 2 (n - 1) steps of bytes / n from each of n
    # ranks: 2 (n - 1) x bytes, each over two links through rngd_8card's switch (the
    # sender's up-link, the receiver's down-link). Only the 2 x LAYERS partial-sum
    # all-reduces change between fp32 and a quantised int8 all-reduce: 3 B per element.
    wl = from_hf_config(TINY, "prefill", batch=BATCH, prompt_len=PROMPT, activations="int8")
    tp = 4
    got = {p: float(simulate_system("rngd_8card", wl, tp=tp,
                                    allreduce_precision=p).summary()["link_bytes"])
           for p in ("accum", "activations")}
    assert got["accum"] - got["activations"] == pytest.approx(
        2 * LAYERS * 2 * (tp - 1) * 2 * H * TOKENS * 3)


def test_unknown_precision_is_one_line(capsys):
    with pytest.raises(MappingError, match="unknown all-reduce precision 'int3'"):
        simulate_system("rngd_8card", from_hf_config(TINY, "decode"), tp=2,
                        allreduce_precision="int3")
    assert main(["llm", "rngd_8card", "llama2_7b", "--tp", "2", "--allreduce-precision",
                 "int3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown all-reduce precision 'int3'" in err


def test_sweep_axis_parallel_allreduce_precision(tmp_path):
    # tp 2, one decode token per sequence (batch 1): the two partial-sum all-reduces per
    # block send 2 (n - 1) / n x hidden x bytes each over the link; quantised (int8) they
    # save 3 B per element: 2 x LAYERS x (2 (n - 1) / n) x H x 3 / bandwidth.
    import json

    from npusim.sweep import run_sweep
    from npusim.sweep.spec import sweep_from_data

    (tmp_path / "tiny.json").write_text(json.dumps(TINY))
    data = {"name": "ar", "system": "rngd_8card",
            "workloads": [{"hf_config": "tiny.json",
                           "options": {"phase": "decode", "prompt_len": 16,
                                       "context_len": 17}}],
            "parallel": {"tp": 2},
            "axes": {"parallel.allreduce_precision": ["accum", "activations"]}}
    df = run_sweep(sweep_from_data(data, root=tmp_path), workers=0, cache_dir=None,
                   progress=False)
    assert (df["status"] == "ok").all()
    comm = dict(zip(df["allreduce_precision"], df["time_comm_s"], strict=True))
    bw = load_system("rngd_8card").link.bandwidth
    assert comm["accum"] - comm["activations"] == pytest.approx(
        2 * LAYERS * (2 * 1 / 2) * H * 3 / bw, rel=1e-9)
    with pytest.raises(Exception, match="allreduce_precision"):
        sweep_from_data({**data, "axes": {"parallel.allreduce_precision": ["int3"]}},
                        root=tmp_path)


def test_sweep_system_has_an_allreduce_precision_axis():
    from npusim.system import sweep_system

    wl = from_hf_config(TINY, "decode", batch=1, prompt_len=16, context_len=17)
    df = sweep_system("rngd_8card", wl, tp=2, allreduce_precision=["accum", "activations"])
    comm = dict(zip(df["allreduce_precision"], df["time_comm_s"], strict=True))
    bw = load_system("rngd_8card").link.bandwidth
    assert comm["accum"] - comm["activations"] == pytest.approx(
        2 * LAYERS * (2 * 1 / 2) * H * 3 / bw, rel=1e-9)
