"""Measured amounts (value + UCUM unit) and money."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from healthspace.model.units import convert, normalize_unit

__all__ = ["Comparator", "FiniteFloat", "Money", "Quantity"]

# NaN and infinities cannot round-trip through JSON, and no source means them.
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]

Comparator = Literal["<", "<=", ">=", ">"]


class Quantity(BaseModel):
    """A value with its unit as recorded (a UCUM code; "" when unitless).

    ``comparator`` carries results such as ``<0.1`` ("below the detection limit").
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    value: FiniteFloat
    unit: str = ""
    comparator: Comparator | None = None

    def converted(self, unit: str, *, analyte: str | None = None) -> Quantity:
        """This quantity in ``unit`` (see :func:`units.convert`); raises UnitConversionError."""
        value = convert(self.value, self.unit, unit, analyte=analyte)
        return Quantity(value=value, unit=normalize_unit(unit), comparator=self.comparator)

    def __str__(self) -> str:
        number = f"{self.value:g}"
        text = f"{self.comparator or ''}{number}"
        return f"{text} {self.unit}" if self.unit else text


class Money(BaseModel):
    """An amount of money; Decimal so cents add up exactly."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    amount: Annotated[Decimal, Field(allow_inf_nan=False)]
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")

    def __str__(self) -> str:
        return f"{self.amount:.2f} {self.currency}"
