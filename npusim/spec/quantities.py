"""Field types of quantities users write with a unit (``24 MiB``, ``700 MHz``, ``0.2 pJ``).

Each type parses the written string into base units (bytes, Hz, bytes/s, transfers/s, J, W,
s) before pydantic checks its bound. Its JSON Schema accepts a number (base unit) or a
string with a unit, and carries the base unit (``x-unit``) and an example, which the
reference docs (docs/reference/) and editors show.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema

from npusim.units import (
    parse_bandwidth,
    parse_bytes,
    parse_data_rate,
    parse_energy,
    parse_frequency,
    parse_power,
    parse_time,
)

__all__ = ["Bytes", "BytesPerSecond", "Hertz", "Joules", "Seconds", "TransfersPerSecond",
           "Watts"]


def _parsed(parser: Callable[[object], float]) -> BeforeValidator:
    return BeforeValidator(lambda v: parser(v))


def _schema(unit: str, example: str, integer: bool = False) -> WithJsonSchema:
    number = {"type": "integer" if integer else "number"}
    text = {"type": "string", "description": f"a number and a unit, e.g. {example!r}"}
    schema: dict[str, Any] = {"anyOf": [number, text], "x-unit": unit, "examples": [example]}
    return WithJsonSchema(schema)


Bytes = Annotated[int, _parsed(parse_bytes), _schema("bytes", "24 MiB", True), Field(gt=0)]
Hertz = Annotated[float, _parsed(parse_frequency), _schema("Hz", "700 MHz"), Field(gt=0)]
BytesPerSecond = Annotated[float, _parsed(parse_bandwidth), _schema("bytes/s", "34 GB/s"), Field(gt=0)]
TransfersPerSecond = Annotated[float, _parsed(parse_data_rate), _schema("transfers/s per pin",
                                                 "6400 MT/s"), Field(gt=0)]
Joules = Annotated[float, _parsed(parse_energy), _schema("J", "0.2 pJ"), Field(ge=0)]
Watts = Annotated[float, _parsed(parse_power), _schema("W", "75 W"), Field(ge=0)]
Seconds = Annotated[float, _parsed(parse_time), _schema("s", "1 us"), Field(ge=0)]
