"""Cost model of serving: hardware amortised over its life plus electricity with cooling.

A YAML file (every key required except ``card_price_usd`` and ``notes``; unknown keys are
errors)::

    card_price_usd: 2000        # price of one card (or chip) the model runs on; left out:
                                # the chip's (or system's) ``price:`` block
    amortisation_years: 3       # the card's cost spread evenly over this time
    pue: 1.3                    # power usage effectiveness: facility power / IT power
    electricity_usd_per_kwh: 0.10
    notes: [...]                # where the numbers came from (free text)

Cost of a run = ``cards x card_price / amortisation_s x duration`` (the hardware's share of
the run's wall time, busy or idle) ``+ energy_kWh x pue x electricity price``;
``usd_per_mtoken`` divides by the generated tokens (millions). Card power is the chip
energy the simulation counts (steps plus leakage while idle); the rest of a card (board,
host share) is not modelled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from npusim.errors import WorkloadError
from npusim.spec.numbers import Float
from npusim.spec.yamlio import load_yaml, validate

__all__ = ["CostModel", "load_cost_model"]

_YEAR_S = 365.25 * 86400


class CostModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    card_price_usd: Annotated[Float, Field(ge=0, allow_inf_nan=False)] | None = None
    amortisation_years: Annotated[Float, Field(gt=0)]
    pue: Annotated[Float, Field(ge=1)]
    electricity_usd_per_kwh: Annotated[Float, Field(ge=0)]
    notes: list[str] = Field(default_factory=list)

    def usd(self, cards: int, duration_s: float, energy_j: float,
            card_price_usd: float | None = None) -> tuple[float, float]:
        """(hardware USD, electricity USD) of ``cards`` busy for ``duration_s``, each card at
        the file's price, else at ``card_price_usd``."""
        price = self.card_price_usd if self.card_price_usd is not None else card_price_usd
        if price is None:
            raise WorkloadError("the cost model gives no card_price_usd and the hardware "
                                "has no price: block")
        hw = cards * price * duration_s / (self.amortisation_years * _YEAR_S)
        power = energy_j / 3.6e6 * self.pue * self.electricity_usd_per_kwh
        return hw, power


def load_cost_model(path: str | Path) -> CostModel:
    """A :class:`CostModel` from YAML; errors as ``file:line: key: message``."""
    data, lines = load_yaml(path)
    return validate(CostModel, data, lines, str(path))
