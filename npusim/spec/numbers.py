"""Number types of the spec models: a YAML ``true`` or ``"256"`` is not a number.

Pydantic's lax mode turns ``rows: true`` into 1 and ``clock: "7"`` into 7.0; a spec file
that says either is a mistake, so every integer or real field of a spec model is declared
with :data:`Int` or :data:`Float`, which refuse booleans and strings and otherwise validate
as ``int`` and ``float`` do (an integer field still takes ``256.0``, a real one ``3``).
Fields with units (``24 MiB``) parse strings themselves (npusim.units) and refuse booleans.
A real field is finite: ``.inf``, ``.nan`` and a number past the float range are refused by
:func:`npusim.units.finite_real`, the check every real-valued input path shares.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

from npusim.units import finite_real

__all__ = ["Float", "Int"]


def _refuse(kind: str) -> BeforeValidator:
    def check(v: Any) -> Any:
        if type(v).__name__ in ("bool", "bool_"):  # Python's bool and numpy's
            raise ValueError(f"expected {kind}, not a boolean")
        if isinstance(v, (str, bytes)):
            raise ValueError(f"expected {kind}, not a string")
        return v
    return BeforeValidator(check)


Int = Annotated[int, _refuse("an integer")]
def _finite(v: float) -> float:
    return finite_real(v)


Float = Annotated[float, _refuse("a number"), AfterValidator(_finite)]
