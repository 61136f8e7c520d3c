"""A precision per tensor class on a system of many chips, and the prefill's logits at every
position there: each chip's weights counted class by class against a hand count from
gpt-oss-20b's config fields, the mapping and ``--logits all`` carried to every shard."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from npusim.cli import main
from npusim.spec.system import load_system
from npusim.system import run_llm_system
from npusim.system import simulate as system_simulate
from npusim.system.parallel import shard_config, stage_weight_bytes
from npusim.system.simulate import check_shards
from npusim.workloads.hf_config import load_hf_config
from npusim.workloads.llm import Footprint, from_hf_config

ROOT = Path(__file__).resolve().parent.parent
GPT_OSS = json.loads((ROOT / "workloads" / "hf" / "gpt_oss_20b.json").read_text())
MXFP4 = {"experts": "mxfp4", "default": "bf16"}

# gpt-oss-20b (its config.json): hidden 2880, 64 query heads and 8 KV heads of 64, 32
# experts of width 2880 (gate and up fused, with biases), vocabulary 201088, untied head.
H, HEADS, KV, D, E, FF, V = 2880, 64, 8, 64, 32, 2880, 201088


def _hand(layers: int, tp: int = 1, ep: int = 1, embed: bool = True,
          head: bool = True) -> tuple[int, int]:
    """(other parameters, routed-expert parameters) one chip holds: per block q, k, v, o
    with their biases and one attention sink per query head, the router with its bias, two
    RMSNorm scales, and the chip's E/ep experts (each gate_up H x 2F + 2F and down F x H
    + H, F the expert width, split by columns under tp without ep); the embedding table on
    the first stage, the final norm and the LM head on the last, split by vocabulary rows
    under tp."""
    q, kv = HEADS // tp * D, KV // tp * D
    attn = H * (q + 2 * kv) + (q + 2 * kv) + q * H + H + HEADS // tp
    width = FF // tp if ep == 1 else FF
    experts = E // ep * (H * 2 * width + 2 * width + width * H + H)
    router, norms = H * E + E, 2 * H
    rest = layers * (attn + router + norms)
    rest += (V // tp * H if embed else 0) + (H + V // tp * H if head else 0)
    return rest, layers * experts


def _bytes(rest: int, experts: int) -> int:
    """bf16 for the rest (2 B), MXFP4 for the experts: 4 bits each and an 8-bit scale per
    32 (4.25 bits)."""
    return 2 * rest + math.ceil(experts * (4 + 8 / 32) / 8)


@pytest.fixture(scope="module")
def cut(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """gpt-oss-20b cut to its first two blocks (one local, one global)."""
    path = tmp_path_factory.mktemp("gptoss") / "gpt_oss_2l.json"
    path.write_text(json.dumps({**GPT_OSS, "num_hidden_layers": 2,
                                "layer_types": GPT_OSS["layer_types"][:2]}))
    return path


@pytest.mark.parametrize(("tp", "ep"), [(1, 1), (2, 1), (1, 2), (1, 4)])
def test_a_chip_holds_each_class_at_its_precision(tp: int, ep: int) -> None:
    cfg = load_hf_config("gpt_oss_20b")
    got = stage_weight_bytes(shard_config(cfg, tp, ep), 0, 1, MXFP4, ep)
    rest, experts = _hand(24, tp, ep)
    assert got == _bytes(rest, experts)
    # what one precision for all, or MXFP4 without its scales, would give
    assert got not in (2 * (rest + experts), 2 * rest + experts // 2)


def test_pipeline_stages_hold_embeddings_first_and_the_head_last(cut: Path) -> None:
    cfg = load_hf_config(cut)
    first = stage_weight_bytes(shard_config(cfg, 2), 0, 2, MXFP4)
    last = stage_weight_bytes(shard_config(cfg, 2), 1, 2, MXFP4)
    assert first == _bytes(*_hand(1, tp=2, head=False))
    assert last == _bytes(*_hand(1, tp=2, embed=False))


@pytest.mark.parametrize(("plan", "tp", "ep"), [({"tp": 2}, 2, 1),
                                                ({"dp": 2, "ep": 2}, 1, 2)])
def test_the_shards_of_a_system_carry_the_mapping(plan: dict[str, int], tp: int, ep: int,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # check_shards sizes every chip with the workload's mapping and its share of experts:
    # gpt-oss-20b on the 4-chip LPDDR card.
    seen: list[Footprint] = []
    real = system_simulate.stage_footprint

    def spy(*args: Any, **kwargs: Any) -> Footprint:
        seen.append(real(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(system_simulate, "stage_footprint", spy)
    wl = from_hf_config("gpt_oss_20b", "decode", batch=1, prompt_len=16, context_len=16,
                        weights=MXFP4, activations="bf16", kv="bf16")
    check_shards(load_system("lpddr_llm_4chip"), wl, **plan)
    assert [fp.weight_bytes for fp in seen] == [_bytes(*_hand(24, tp, ep))]


def test_cli_runs_gpt_oss_with_fp8_experts_over_eight_cards(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["llm", "rngd_8card", "gpt_oss_20b", "--weights", "experts=fp8,default=bf16",
                 "--dp", "8", "--ep", "8", "--prompt", "32", "--gen", "2",
                 "--decode-points", "1"]) == 0
    out = capsys.readouterr().out
    assert "dp 8, ep 8" in out and "weights experts=fp8,default=bf16" in out


def test_serve_and_a_sweep_take_a_mapping_on_a_system(
        cut: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from npusim.sweep import run_sweep
    from npusim.sweep.spec import sweep_from_data

    assert main(["serve", "rngd_8card", str(cut), "--weights", "experts=mxfp4,default=bf16",
                 "--tp", "2", "--ep", "2", "--requests", "4", "--rate", "5",
                 "--prompt", "fixed:16", "--output", "fixed:2", "--max-batch", "2",
                 "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["chips"] == 2 and s["requests"] == 4
    data = {"name": "cls", "system": "rngd_8card",
            "workloads": [{"hf_config": cut.name,
                           "options": {"phase": "decode", "prompt_len": 16,
                                       "context_len": 16}}],
            "parallel": {"dp": 2, "ep": 2},
            "axes": {"workload.weights": ["bf16", {"experts": "mxfp4", "default": "bf16"}]}}
    df = run_sweep(sweep_from_data(data, root=cut.parent), workers=0, cache_dir=None,
                   progress=False)
    assert len(df) == 2 and df["error"].isna().all()


TINY = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 512,
        "intermediate_size": 1024, "num_attention_heads": 8, "num_key_value_heads": 4,
        "num_hidden_layers": 2, "vocab_size": 2048, "max_position_embeddings": 1024,
        "hidden_act": "silu"}


def test_logits_all_on_a_system_runs_the_head_at_every_position(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # tp 2 x pp 2, 2 micro-batches of a batch of 4: the last stage's LM head computes a
    # micro-batch's 2 sequences x (32 positions, or the last) x hidden 512 x vocab 2048 / 2.
    kw: dict[str, Any] = dict(prompt=32, gen=2, batch=4, tp=2, pp=2, micro_batches=2)
    macs = {}
    for logits in ("last", "all"):
        r = run_llm_system("rngd_8card", TINY, logits=logits, **kw)
        head = r.prefill.stage_results[-1].layers.set_index("layer").loc["lm_head"]
        macs[logits] = int(head["macs"])
        assert r.summary()["logits"] == logits
        assert int(r.decode.stage_results[-1].layers.set_index("layer")
                   .loc["lm_head", "macs"]) == 2 * 512 * 2048 // 2
    assert macs == {"last": 2 * 512 * 2048 // 2, "all": 2 * 32 * 512 * 2048 // 2}
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps(TINY))
    assert main(["llm", "rngd_8card", str(cfg), "--logits", "all", "--tp", "2",
                 "--prompt", "16", "--gen", "2"]) == 0
    assert "logits at every prefill position" in capsys.readouterr().out
