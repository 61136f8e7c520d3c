"""``npusim.simulate`` and ``npusim.llm.run_llm`` take a system of many chips as well as a chip.

The expected communication time is the ring all-reduce's and all-gather's closed forms at
the preset's link (PCIe Gen5 x16, which arch/systems/rngd_8card.yaml rounds to 63.0 GB/s per
direction, 1 us),
written here from the definitions; a chip run must be the very run it was before.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import npusim
from npusim.llm import run_llm
from npusim.result import Result
from npusim.spec.system import load_system
from npusim.system import SystemLLMResult, SystemResult
from npusim.workloads import from_hf_config

TINY = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 512,
        "intermediate_size": 1024, "num_attention_heads": 8, "num_key_value_heads": 4,
        "num_hidden_layers": 2, "vocab_size": 2048, "max_position_embeddings": 1024,
        "hidden_act": "silu"}
ROOT = Path(__file__).resolve().parent.parent
PCIE5_X16 = 63.0e9  # as the preset file writes it


def _tp2_comm(bw: float, lat: float) -> float:
    """tp 2, one token, int8 activations: an all-reduce of the hidden vector after each
    block's attention and MLP (partial sums at the fp32 accumulation precision, 4 B) and
    after the embedding (int8, 1 B), and the logits' all-gather."""
    n, h, layers, vocab = 2, TINY["hidden_size"], TINY["num_hidden_layers"], TINY["vocab_size"]
    def all_reduce(nbytes: float) -> float:
        return 2 * (n - 1) / n * nbytes / bw + 2 * (n - 1) * lat

    all_gather = (n - 1) / n * vocab / bw + (n - 1) * lat
    return 2 * layers * all_reduce(4 * h) + all_reduce(h) + all_gather


@pytest.fixture(scope="module")
def decode() -> npusim.workloads.Workload:  # type: ignore[name-defined]
    return from_hf_config(TINY, "decode", prompt_len=16, context_len=17)


@pytest.mark.parametrize("target", ["rngd_8card", str(ROOT / "arch/systems/rngd_8card.yaml"),
                                    ROOT / "arch/systems/rngd_8card.yaml", "object"])
def test_simulate_on_a_system_is_simulate_system(target: object, decode: object) -> None:
    system = load_system("rngd_8card") if target == "object" else target
    res = npusim.simulate(system, decode, tp=2)  # type: ignore[call-overload]
    assert isinstance(res, SystemResult)
    s = res.summary()
    assert (s["tp"], s["pp"], s["dp"], s["chips_used"]) == (2, 1, 1, 2)
    assert s["time_comm_s"] == pytest.approx(_tp2_comm(PCIE5_X16, 1e-6), rel=1e-9)
    twin = npusim.simulate_system("rngd_8card", decode, tp=2)  # type: ignore[arg-type]
    assert res.latency_s == twin.latency_s


def test_simulate_on_a_system_passes_dp_and_the_algorithm(decode: object) -> None:
    res = npusim.simulate("rngd_8card", decode, dp=4, algorithm="tree")  # type: ignore[arg-type]
    assert isinstance(res, SystemResult)
    s = res.summary()
    assert (s["dp"], s["chips_used"], s["algorithm"], s["time_comm_s"]) == (4, 4, "tree", 0.0)


def test_a_chip_is_simulated_as_before(decode: object) -> None:
    chip = npusim.load_arch("rngd")
    by_name = npusim.simulate("rngd", decode)  # type: ignore[arg-type]
    assert isinstance(by_name, Result)
    again = npusim.simulate(chip, decode)  # type: ignore[arg-type]
    assert by_name.summary()["latency_s"] == again.summary()["latency_s"]


@pytest.mark.parametrize("kw", [{"tp": 2}, {"dp": 1}, {"algorithm": "ring"},
                                {"micro_batches": 2}])
def test_plan_keywords_with_a_chip_are_an_error(kw: dict[str, object], decode: object) -> None:
    name = next(iter(kw))
    with pytest.raises(ValueError, match=f"^{name} apply to a system of many chips"):
        npusim.simulate("rngd", decode, **kw)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=f"^{name} apply to a system"):
        run_llm("rngd", TINY, prompt=16, gen=2, **kw)  # type: ignore[arg-type]


def test_a_system_runs_the_event_model_only(decode: object) -> None:
    with pytest.raises(ValueError, match="a system runs the event model"):
        npusim.simulate("rngd_8card", decode, fidelity="roofline")  # type: ignore[arg-type]


def test_run_llm_on_a_system_is_run_llm_system() -> None:
    res = run_llm("rngd_8card", TINY, prompt=16, gen=2, tp=2)
    assert isinstance(res, SystemLLMResult)
    assert res.decode.plan.tp == 2
    assert res.decode.summary()["time_comm_s"] == pytest.approx(_tp2_comm(PCIE5_X16, 1e-6),
                                                                rel=1e-9)
