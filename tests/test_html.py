"""Jupyter HTML views of chips and results (npusim.report.html)."""

from __future__ import annotations

import dataclasses
from html.parser import HTMLParser

import pytest

import npusim
from npusim.presets import list_presets
from npusim.report.html import chip_html, result_html
from npusim.workloads import resnet50


class _Tags(HTMLParser):
    """Counts start tags and checks every opened tag is closed in order."""

    VOID = frozenset({"br", "hr", "img", "meta"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.count: dict[str, int] = {}
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: object) -> None:
        self.count[tag] = self.count.get(tag, 0) + 1
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, (tag, self.stack[-3:])
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(html: str) -> _Tags:
    p = _Tags()
    p.feed(html)
    p.close()
    assert not p.stack, p.stack
    return p


@pytest.mark.parametrize("preset", list_presets())
def test_chip_html_every_preset(preset: str) -> None:
    chip = npusim.load_arch(preset)
    html = chip._repr_html_()
    assert html == chip_html(chip)
    text = " ".join(_parse(html).text)
    assert chip.name in text
    assert chip.dram.standard in text
    assert f"{chip.dram.peak_bandwidth / 1e9:.4g} GB/s" in text
    for p in chip.cores.core.systolic.precisions:
        assert f"{chip.peak_ops_per_second(p) / 1e12:.4g} TOPS" in text


def test_chip_html_escapes() -> None:
    chip = npusim.load_arch("tpu_v1").model_copy(
        update={"name": "<script>alert(1)</script>", "sources": ["a & <b>"]})
    html = chip_html(chip)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "a &amp; &lt;b&gt;" in html
    _parse(html)


@pytest.fixture(scope="module")
def res() -> npusim.Result:
    return npusim.simulate("tpu_v1", resnet50())


def test_result_html_top_layers(res: npusim.Result) -> None:
    html = res._repr_html_()
    tags = _parse(html)
    df = res.layers
    top = df.nlargest(10, "latency_s")
    text = " ".join(tags.text)
    for name in top["layer"]:
        assert name in text
    # summary rows + header + 10 layer rows
    summary_rows = html.split("top 10")[0].count("<tr><th>")
    assert tags.count["tr"] == 1 + summary_rows + 1 + 10
    assert f"{res.summary()['latency_s'] * 1e3:.4g} ms" in text


def test_result_html_escapes(res: npusim.Result) -> None:
    rows = list(res.rows)
    worst = max(range(len(rows)), key=lambda i: rows[i]["latency_s"])
    rows[worst] = {**rows[worst], "layer": "<img src=x onerror=alert(1)>"}
    bad = dataclasses.replace(res, rows=tuple(rows))
    html = result_html(bad)
    assert "<img" not in html and "&lt;img src=x" in html


def test_terminal_table_and_summary_use_engineering_units() -> None:
    """The table a human reads shows µs/µJ/MiB strings; the saved CSV keeps seconds."""
    from npusim.report.export import format_summary, format_table

    res = npusim.simulate("tpu_v1", resnet50())
    first = res.layers.iloc[0]
    table = format_table(res, 1)
    lat_us = first["latency_s"] * 1e6  # conv1 runs for tens of µs
    assert 1 <= lat_us < 1000
    assert f"{lat_us:.3g} µs" in table
    assert "lat_us" not in table and "0.000" not in table
    summary = format_summary(res)
    mac_uj = res.summary()["energy_mac_j"] * 1e6
    assert 1 <= mac_uj < 1000 and f"MAC {mac_uj:.3g} µJ" in summary
