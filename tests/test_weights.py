"""Where weights live (npusim/compiler/weights.py) and how ``run`` and ``llm`` say it.

Weight bytes are counted here from the layer shapes (conv: kh x kw x C/groups x filters;
a linear layer: K x N; a norm's scale and shift: 2 x its width; an embedding: the rows it
gathers, tokens x hidden), not by the function under test. For
ResNet-50 the count is checked against torchvision's published parameter count: 25,557,032
parameters, less the 53,120 of its batch norms (2 x 26,560 channels, folded into the convs
here) and the 1,000 of the classifier's bias, is 25,502,912 weights (24.3 MiB).
"""

from __future__ import annotations

import pytest

import npusim
from npusim.cli import main
from npusim.compiler.weights import place_weights
from npusim.errors import MappingError
from npusim.llm import run_llm
from npusim.workloads.ir import Conv2d, Embedding, Matmul, Norm, Workload

RESNET50_WEIGHTS = 25_557_032 - 53_120 - 1_000
MIB = 2**20


_BYTES = {"int8": 1, "fp16": 2}


def _weights_by_hand(wl: Workload) -> int:
    total = 0
    for layer in wl.layers:
        if isinstance(layer, Conv2d):
            b = _BYTES[layer.weight_precision]
            total += b * layer.kernel_h * layer.kernel_w * layer.in_c // layer.groups * layer.out_c
        elif isinstance(layer, Matmul) and layer.b_kind == "weight":
            total += _BYTES[layer.weight_precision] * layer.k * layer.n
        elif isinstance(layer, Norm):
            total += _BYTES[layer.precision] * 2 * layer.cols
        elif isinstance(layer, Embedding):
            total += _BYTES[layer.precision] * layer.tokens * layer.hidden
    return total


@pytest.fixture(scope="module")
def resnet() -> Workload:
    wl = npusim.workloads.resnet50()
    assert _weights_by_hand(wl) == RESNET50_WEIGHTS
    return wl


@pytest.fixture(scope="module")
def hbm_llm():
    chip = npusim.load_arch("hbm_llm")
    assert chip.shared_sram is not None and chip.shared_sram.size == 32 * MIB
    return chip


def test_streamed_weights_are_read_from_dram(hbm_llm, resnet) -> None:
    s = npusim.simulate(hbm_llm, resnet, weights_resident=False).summary()
    assert s["weights_resident"] is False
    assert s["weight_bytes"] == RESNET50_WEIGHTS
    assert s["dram_read_bytes"] >= RESNET50_WEIGHTS
    assert s["weights_reason"].startswith("read from DRAM (24.3 MiB, as asked")


@pytest.mark.parametrize("want", [None, True])
def test_resident_weights_are_not_read_from_dram(hbm_llm, resnet, want) -> None:
    # 24.3 MiB fit the 32 MiB shared SRAM: auto keeps them there, as yes does.
    s = npusim.simulate(hbm_llm, resnet, weights_resident=want).summary()
    assert s["weights_resident"] is True
    # Only the input image (224 x 224 x 3 B) and what activations spill may come from DRAM.
    assert s["dram_read_bytes"] < RESNET50_WEIGHTS / 10
    assert s["weights_reason"].startswith("resident in shared SRAM (24.3 MiB of 32.0 MiB")


def test_yes_when_weights_do_not_fit_names_the_sizes(hbm_llm) -> None:
    bert = npusim.workloads.bert_large()
    need = _weights_by_hand(bert)  # 24 x 12.6 M int8 GEMM weights, far over 32 MiB
    assert need > 24 * 12 * 1024**2
    with pytest.raises(MappingError, match=r"more than the 32\.0 MiB shared SRAM"):
        place_weights(hbm_llm, bert, True)
    auto = place_weights(hbm_llm, bert)
    assert not auto.resident and auto.reason == (
        f"read from DRAM ({need / 2**20:.1f} MiB do not fit the 32.0 MiB shared SRAM)")


def test_cli_run_says_where_weights_live(capsys) -> None:
    assert main(["run", "hbm_llm", "resnet50", "--rows", "0"]) == 0
    out = capsys.readouterr().out
    mib = f"{RESNET50_WEIGHTS / MIB:.1f} MiB"
    assert (f"weights         resident in shared SRAM ({mib} of 32.0 MiB; repeated "
            "inferences, first load not counted) — --weights-resident no to stream them"
            ) in out.splitlines()
    assert main(["run", "hbm_llm", "resnet50", "--rows", "0", "--weights-resident", "no"]) == 0
    out = capsys.readouterr().out
    assert (f"weights         read from DRAM ({mib}, as asked; they would fit the 32.0 MiB "
            "shared SRAM)") in out.splitlines()


def test_cli_yes_on_a_chip_without_room_is_one_line(capsys) -> None:
    mib = f"{RESNET50_WEIGHTS / MIB:.1f} MiB"
    assert main(["run", "tpu_v1", "resnet50", "--weights-resident", "yes"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"npusim: error: weights cannot stay resident: 'Google TPU v1' has no "
                   f"shared SRAM for the {mib} of weights of 'resnet50'"]
    assert main(["llm", "hbm_llm", "llama2_7b", "--weights-resident", "yes"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "more than the 32.0 MiB shared SRAM" in err[0]


# A LLaMA-style model small enough (5.5 M int8 weights) to stay in 32 MiB.
TINY = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 512,
        "intermediate_size": 1024, "num_attention_heads": 8, "num_key_value_heads": 2,
        "num_hidden_layers": 2, "vocab_size": 2048, "max_position_embeddings": 1024,
        "hidden_act": "silu"}


def _tiny_matmul_weights() -> int:
    h, f, v, layers = 512, 1024, 2048, 2
    kv = 2 * (h // 8)  # two KV heads of 64
    per_layer = h * h + 2 * h * kv + h * h + 3 * h * f  # q, k, v, o; gate, up, down
    return layers * per_layer + h * v  # + the LM head (the token table is only gathered)


@pytest.mark.parametrize("want", [False, True])
def test_llm_weights_resident(hbm_llm, want, capsys) -> None:
    res = run_llm(hbm_llm, TINY, prompt=8, gen=2, weights="int8", decode_points=1,
                  weights_resident=want)
    s = res.summary()
    w = _tiny_matmul_weights()
    assert s["weights_resident"] is want
    if want:
        assert s["decode_dram_read_bytes"] < w
        assert s["weights_reason"].startswith("resident in shared SRAM")
    else:
        assert s["decode_dram_read_bytes"] >= w
        assert s["weights_reason"].startswith("read from DRAM")


def test_sweep_passes_weights_resident() -> None:
    """A sweep's ``weights_resident`` reaches every run, and the table says where they were."""
    from npusim.sweep import run_sweep
    from npusim.sweep.spec import sweep_from_data

    layers = [{"op": "matmul", "name": "fc1", "m": 8, "n": 256, "k": 512},
              {"op": "matmul", "name": "fc2", "m": 8, "n": 128, "k": 256}]
    weights = 512 * 256 + 256 * 128  # int8, one byte each
    tables = {}
    for mode in ("auto", "no"):
        data = {"name": "w", "base": "hbm_llm", "workloads": [{"inline": {"name": "mlp",
                                                                          "layers": layers}}],
                "weights_resident": mode}
        tables[mode] = run_sweep(sweep_from_data(data), workers=0, cache_dir=None,
                                 progress=False)
    auto, no = tables["auto"].iloc[0], tables["no"].iloc[0]
    assert auto["weights_resident"] == 1.0 and no["weights_resident"] == 0.0
    assert auto["dram_read_bytes"] < weights <= no["dram_read_bytes"]
    assert auto["key"] != no["key"]
