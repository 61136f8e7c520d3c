import pytest

from npusim.units import (
    format_bytes,
    parse_bandwidth,
    parse_bytes,
    parse_data_rate,
    parse_energy,
    parse_frequency,
    parse_time,
)


@pytest.mark.parametrize(("text", "value"), [
    ("32 MiB", 32 * 2**20), ("24MiB", 24 * 2**20), ("4 kB", 4000), ("1.5 GiB", int(1.5 * 2**30)),
    (4096, 4096), ("11 MB", 11_000_000),
])
def test_bytes(text: object, value: int) -> None:
    assert parse_bytes(text) == value


def test_other_units() -> None:
    assert parse_frequency("1.05 GHz") == pytest.approx(1.05e9)
    assert parse_frequency("700 MHz") == pytest.approx(7e8)
    assert parse_bandwidth("34 GB/s") == pytest.approx(34e9)
    assert parse_bandwidth("1.5 TB/s") == pytest.approx(1.5e12)
    assert parse_data_rate("6400 MT/s") == pytest.approx(6.4e9)
    assert parse_time("18 ns") == pytest.approx(18e-9)
    assert parse_energy("0.2 pJ") == pytest.approx(0.2e-12)
    assert format_bytes(32 * 2**20) == "32.0 MiB"


@pytest.mark.parametrize("bad", ["32 parsecs", "MiB", "", True, [1], "1.2.3 GHz"])
def test_bad_units_say_what_was_expected(bad: object) -> None:
    with pytest.raises(ValueError, match=r"expected|unknown unit"):
        parse_bytes(bad)


# --- format_si: what a human reads. Each expected string is written out by hand.
@pytest.mark.parametrize(("value", "unit", "text"), [
    (4.1234e-6, "s", "4.12 µs"),
    (999.4e-6, "s", "999 µs"),
    (999.9e-6, "s", "1 ms"),        # rounds to 1000 µs: the next prefix, never '1e+03 µs'
    (1e-3, "s", "1 ms"),
    (-4.1234e-6, "s", "-4.12 µs"),
    (-999.9e-6, "s", "-1 ms"),
    (0.0, "J", "0 J"),
    (12.3e-6, "J", "12.3 µJ"),      # a µJ, not '0.000' mJ
    (585e-6, "J", "585 µJ"),
    (26.13e-3, "J", "26.1 mJ"),
    (3.4e10, "B/s", "34 GB/s"),
    (1.0, "W", "1 W"),
    (2.5e-13, "J", "250 fJ"),
    (1e-18, "s", "1e-18 s"),        # below femto: scientific
    (2e18, "J", "2e+18 J"),
])
def test_format_si(value: float, unit: str, text: str) -> None:
    from npusim.units import format_si

    assert format_si(value, unit) == text


def test_format_si_nan_inf_and_digits() -> None:
    from npusim.units import format_si

    assert format_si(float("nan"), "s") == "nan s"
    assert format_si(float("inf"), "s") == "inf s"
    assert format_si(-float("inf"), "J") == "-inf J"
    assert format_si(1.00512e-3, "s", 4) == "1.005 ms"


def test_human_table_converts_base_units_only() -> None:
    import pandas as pd

    from npusim.report.export import human_table

    df = pd.DataFrame({"batch": [1], "latency_s": [4.1234e-6], "inferences_per_s": [2.5e5],
                       "energy_j": [12.3e-6], "sram_bytes": [2**20], "fits": [True]})
    row = human_table(df).iloc[0].to_dict()
    assert row == {"batch": 1, "latency": "4.12 µs", "inferences_per_s": 2.5e5,
                   "energy": "12.3 µJ", "sram": "1.0 MiB", "fits": True}
