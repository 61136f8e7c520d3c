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
