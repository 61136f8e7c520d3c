"""What ``npusim serve`` says and refuses: the header with its defaults, the wording of each
figure, the queue length counted by hand, prices from a chip's ``price:`` block, and the
requests refused before any step is simulated.

The synthetic server (ConstantSteps) gives every expected number by hand; the chip runs use
a tiny two-layer LLaMA so each takes seconds.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from npusim.cli import main
from npusim.errors import SpecError, WorkloadError
from npusim.serving import ConstantSteps, Requests, serve
from npusim.spec.arch import load_arch, loads_arch

TINY = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 512,
        "intermediate_size": 1024, "num_attention_heads": 8, "num_key_value_heads": 2,
        "num_hidden_layers": 2, "vocab_size": 2048, "max_position_embeddings": 4096,
        "hidden_act": "silu"}
YEAR_S = 365.25 * 86400


@pytest.fixture
def tiny(tmp_path: Path) -> str:
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps(TINY))
    return str(cfg)


def test_queue_length_is_the_most_requests_waiting_at_once() -> None:
    """Batch 1, one-token outputs, 1 s steps; arrivals at 0, 0.1, 0.2 s: the first starts
    at 0, the second waits until 1 s, the third until 2 s, so from 0.2 s to 1 s two wait.
    (When each step starts, at most one is left waiting: the steps' queue column says 1.)"""
    req = Requests(np.array([0.0, 0.1, 0.2]), np.array([8, 8, 8]), np.array([1, 1, 1]))
    res = serve(None, None, requests=req, max_batch=1, step_model=ConstantSteps(1.0, 0.0))
    s = res.summary()
    assert s["max_queue_length"] == 2
    assert int(res.steps["queue_length"].max()) == 1
    np.testing.assert_allclose(res.requests["queue_s"], [0.0, 0.9, 1.8])
    # offered: 2 gaps over 0.2 s; completed: 3 requests from 0 s to the last finish, 3 s
    assert s["offered_rate"] == pytest.approx(2 / 0.2)
    assert s["requests_per_s"] == pytest.approx(3 / 3.0)


def test_a_request_arriving_when_a_step_starts_never_waits() -> None:
    req = Requests(np.array([0.0, 1.0]), np.array([8, 8]), np.array([1, 1]))
    res = serve(None, None, requests=req, max_batch=1, step_model=ConstantSteps(1.0, 0.0))
    assert res.summary()["max_queue_length"] == 0


def test_header_and_wording(tiny: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "lpddr_llm", tiny, "--requests", "20", "--rate", "3",
                 "--prompt", "fixed:64", "--output", "fixed:4", "--quiet"]) == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert "(1 chip)" in first and "1 chips" not in out
    assert "weights int8, activations int8, KV int8" in first
    assert "prompt tokens fixed:64, output tokens fixed:4" in first
    assert "offered at 3/s (poisson)" in out and "completed at" in out
    assert "no SLO given" in out and "meet no SLO" not in out
    assert "queue time" in out and "queue length max" in out


def test_rates_sweep_header_says_what_ran(tiny: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "lpddr_llm", tiny, "--requests", "20", "--rates", "2,4",
                 "--output", "fixed:2", "--weights", "int4", "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "(1 chip): weights int4, activations int8, KV int8" in lines[0]
    assert "prompt tokens fixed:512, output tokens fixed:2" in lines[0]
    assert "20 requests at each offered rate" in lines[1] and "no SLO given" in lines[1]


def test_help_shows_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for default in ("default fixed:512", "default fixed:128", "weight precision (default int8)",
                    "KV cache precision (default int8)", "activation precision (default int8)"):
        assert default in text


class _NoTable:
    """Stands in for the step table: building it is a failure of the test."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise AssertionError("the step table was built")


@pytest.mark.parametrize("kw,msg", [
    ({"prompt": "fixed:3000"}, "exceeds max tokens per step 2048"),
    # LLaMA-30B at INT4 leaves about 22k tokens of KV cache on the 32 GiB chip
    ({"prompt": "fixed:512", "output": "fixed:40000", "chunked_prefill": True},
     "tokens of KV cache, more than the"),
])
def test_unservable_requests_are_refused_before_the_step_table(
        monkeypatch: pytest.MonkeyPatch, kw: dict, msg: str) -> None:
    import warnings

    import npusim.serving.service as service

    monkeypatch.setattr(service, "TableSteps", _NoTable)
    with warnings.catch_warnings(), pytest.raises(WorkloadError, match=msg):
        warnings.simplefilter("ignore")  # past the model's max_position_embeddings
        serve("lpddr_llm", "llama_30b", weights="int4", n=3, rate=1.0, **kw)


def test_unservable_request_is_one_line_exit_2(monkeypatch: pytest.MonkeyPatch, tiny: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    import npusim.serving.service as service

    monkeypatch.setattr(service, "TableSteps", _NoTable)
    assert main(["serve", "lpddr_llm", tiny, "--prompt", "fixed:3000", "--rates", "1,2"]) == 2
    err = capsys.readouterr().err.strip()
    assert "exceeds max tokens per step" in err and "\n" not in err


# Prices ------------------------------------------------------------------------------------

COST = "amortisation_years: 2\npue: 1.5\nelectricity_usd_per_kwh: 0.2\n"


def test_cost_takes_the_chip_price_when_the_file_gives_none(tmp_path: Path) -> None:
    (tmp_path / "cost.yaml").write_text(COST)
    step = ConstantSteps(0.5, 0.0, power_w=100.0)
    req = Requests(np.array([0.0]), np.array([8]), np.array([1]))
    from npusim.serving import Backend

    using = Backend(step, 1 << 20, chips=2, chip_price_usd=3000.0, price_source="test")
    s = serve(None, None, requests=req, using=using, cost=tmp_path / "cost.yaml").summary()
    # one 0.5 s step on 2 chips at $3,000, amortised over 2 years; 50 J of energy
    assert s["cost_hardware_usd"] == pytest.approx(2 * 3000 * 0.5 / (2 * YEAR_S))
    assert s["cost_electricity_usd"] == pytest.approx(50 / 3.6e6 * 1.5 * 0.2)
    assert s["card_price_usd"] == 3000.0 and s["price_source"] == "test"
    # the file's own price wins
    (tmp_path / "own.yaml").write_text(COST + "card_price_usd: 100\n")
    s = serve(None, None, requests=req, using=using, cost=tmp_path / "own.yaml").summary()
    assert s["cost_hardware_usd"] == pytest.approx(2 * 100 * 0.5 / (2 * YEAR_S))


def test_the_two_llm_reference_chips_carry_labelled_example_prices() -> None:
    lp, hbm = load_arch("lpddr_llm").price, load_arch("hbm_llm").price
    assert lp is not None and hbm is not None
    assert lp.basis == hbm.basis == "assumption"
    assert "not a quote" in lp.source and "not a quote" in hbm.source
    assert hbm.usd > lp.usd


@pytest.mark.parametrize("preset", ["tpu_v1", "tpu_v4", "atom", "warboy", "rngd", "x220"])
def test_presets_without_a_published_price_carry_none(preset: str) -> None:
    assert load_arch(preset).price is None


def test_a_price_needs_a_basis_and_a_source_and_a_finite_amount() -> None:
    base = Path("arch/lpddr_llm.yaml").read_text().split("\nprice:")[0]
    for block, key in (("price: {usd: 10, source: x}", "price.basis"),
                       ("price: {usd: 10, basis: list}", "price.source"),
                       ("price: {usd: .inf, basis: list, source: x}", "price.usd"),
                       ("price: {usd: 0, basis: list, source: x}", "price.usd")):
        with pytest.raises(SpecError) as exc:
            loads_arch(base + "\n" + block + "\n")
        assert key in exc.value.paths


def test_serve_cost_without_any_price_is_refused_before_simulating(
        monkeypatch: pytest.MonkeyPatch, tiny: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    import npusim.serving.service as service

    (tmp_path / "cost.yaml").write_text(COST)
    monkeypatch.setattr(service, "TableSteps", _NoTable)
    assert main(["serve", "rngd", tiny, "--cost", str(tmp_path / "cost.yaml")]) == 2
    err = capsys.readouterr().err.strip()
    assert "no card_price_usd" in err and "price:" in err and "\n" not in err


def test_system_price_is_shared_over_its_chips() -> None:
    from npusim.serving.service import chip_price
    from npusim.spec.arch import Price
    from npusim.spec.system import load_system

    system = load_system("arch/systems/lpddr_llm_4chip.yaml")
    each, source = chip_price(system)  # no system price: the chip's own
    assert each == load_arch("lpddr_llm").price.usd and "assumption" in source  # type: ignore[union-attr]
    priced = system.model_copy(update={"price": Price(usd=40000.0, basis="list",
                                                      source="a catalogue")})
    each, source = chip_price(priced)
    assert each == pytest.approx(40000.0 / system.count) and "list price" in source
    assert math.isclose(each * system.count, 40000.0)
