"""Hypothesis strategies for model objects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import strategies as st

from healthspace.model import (
    LOINC,
    SNOMED,
    Code,
    Money,
    PartialDateTime,
    Provenance,
    Quantity,
)

text = st.text(st.characters(codec="utf-8"), max_size=20)
ids = st.text("abcdefghijklmnopqrstuvwxyz0123456789-:/", min_size=1, max_size=30)
finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12)

offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
aware_datetimes = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2100, 12, 31), timezones=offsets
)


@st.composite
def partial_datetimes(draw: st.DrawFn) -> PartialDateTime:
    moment = draw(aware_datetimes)
    cut = draw(st.sampled_from([4, 7, 10, 16, 19, None]))
    iso = moment.isoformat()
    # Date-only prefixes carry no zone; time forms keep theirs.
    if cut is not None and cut <= 10:
        return PartialDateTime.parse(iso[:cut])
    if cut is not None:
        zone = iso[26:] if moment.microsecond else iso[19:]
        return PartialDateTime.parse(iso[:cut] + zone)
    return PartialDateTime.from_datetime(moment)


codes = st.builds(
    Code,
    system=st.sampled_from([LOINC, SNOMED, "urn:oid:1.2.3"]),
    code=ids,
    display=st.none() | text,
)
quantities = st.builds(
    Quantity,
    value=finite,
    unit=st.sampled_from(["", "mg/dL", "mmol/L", "%", "/min", "kg"]),
    comparator=st.sampled_from([None, "<", "<=", ">=", ">"]),
)
money = st.builds(
    Money,
    amount=st.decimals(min_value=Decimal(-100000), max_value=Decimal(100000), places=2),
    currency=st.sampled_from(["USD", "EUR"]),
)
provenances = st.none() | st.builds(
    Provenance,
    source=st.sampled_from(["fhir", "ccda", "apple_health"]),
    file_name=st.none() | text,
    file_sha256=st.none() | st.text("0123456789abcdef", min_size=64, max_size=64),
    original_ref=st.none() | text,
    imported_at=st.none() | aware_datetimes.map(lambda d: d.astimezone(UTC)),
)
