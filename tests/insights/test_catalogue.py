"""The lab catalogue and critical-value list: read from the shipped JSON independently of
the loader, then checked against what the loader and the flagging code make of them."""

from __future__ import annotations

import json
import re
from collections import Counter
from importlib.resources import files
from typing import Any

import pytest

from healthspace.insights.catalogue import LANGUAGES, Bounds, catalogue
from healthspace.insights.labs import Labs
from healthspace.model import (
    LOINC,
    Code,
    Observation,
    PartialDateTime,
    Provenance,
    Quantity,
    QuantityValue,
    analyte_info,
    can_convert,
    is_ucum,
    is_valid_loinc,
    normalize_unit,
)
from healthspace.store import StoredRecord

DATA = files("healthspace.insights").joinpath("data")
# A sentence ends at . ! ? followed by a space or the end, or at a CJK full stop / ! / ?.
TERMINATOR = re.compile(r"[.!?](?=\s|$)|[。！？]")


def raw_analytes() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for entry in DATA.iterdir():
        if entry.name.startswith("lab_catalogue_") and entry.name.endswith(".json"):
            out.extend(json.loads(entry.read_text(encoding="utf-8"))["analytes"])
    return out


def raw_json(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DATA.joinpath(name).read_text(encoding="utf-8"))
    return data


def test_at_least_80_analytes_and_the_loader_sees_them_all() -> None:
    raw = raw_analytes()
    assert len(raw) >= 80
    assert len(catalogue()) == len(raw)
    assert {a.id for a in catalogue()} == {entry["id"] for entry in raw}


def test_every_analyte_speaks_every_language_in_two_to_four_sentences() -> None:
    for entry in raw_analytes():
        for language in LANGUAGES:
            name = entry["name"].get(language, "")
            text = entry["explanation"].get(language, "")
            assert name.strip(), (entry["id"], language)
            sentences = len(TERMINATOR.findall(text))
            assert 2 <= sentences <= 4, (entry["id"], language, sentences)
            # The text ends a sentence, and no stray full stop hides inside one.
            assert TERMINATOR.search(text[-1:]), (entry["id"], language)
        assert re.search(r"[\u4e00-\u9fff]", entry["explanation"]["zh"]), entry["id"]
        assert not re.search(r"[\u4e00-\u9fff]", entry["explanation"]["fr"]), entry["id"]


def test_loinc_codes_are_valid_and_never_shared() -> None:
    counts: Counter[str] = Counter()
    for entry in raw_analytes():
        assert entry["loinc"], entry["id"]
        for code in entry["loinc"]:
            assert is_valid_loinc(code), (entry["id"], code)
            counts[code] += 1
    assert [code for code, n in counts.items() if n > 1] == []
    for code in counts:
        found = catalogue().by_loinc(code)
        assert found is not None
        assert code in found.loinc


def test_typical_ranges_name_a_published_source_and_use_the_analyte_unit() -> None:
    sources = raw_json("lab_sources.json")["sources"]
    for entry in raw_analytes():
        typical = entry["typical_range"]
        assert typical["source"] in sources, entry["id"]
        assert sources[typical["source"]]["title"].strip()
        assert typical.get("low") is not None or typical.get("high") is not None
        analyte = catalogue().get(entry["id"])
        assert analyte is not None
        assert analyte.typical_range.unit == normalize_unit(entry["unit"])
        assert analyte.typical_range.source.title == sources[typical["source"]]["title"]
        assert is_ucum(analyte.unit), (entry["id"], analyte.unit)


def test_units_agree_with_the_model_tables() -> None:
    """Where the model knows a code's preferred unit, the group's unit converts to it."""
    for analyte in catalogue():
        for code in analyte.loinc:
            info = analyte_info(code)
            if info is not None and info.unit is not None:
                assert can_convert(info.unit, analyte.unit, analyte=code), (analyte.id, code)
        info = analyte_info(analyte.loinc[0])
        if info is not None and info.unit is not None:
            assert info.unit == analyte.unit, analyte.id


def test_bounds_semantics() -> None:
    below = Bounds(None, 200, high_inclusive=False)
    assert below.position(199.9) == "normal"
    assert below.position(200) == "high"
    closed = Bounds(3.5, 5.0)
    assert [closed.position(v) for v in (3.4, 3.5, 5.0, 5.1)] == ["low", "normal", "normal", "high"]


def _result(code: str, value: float, unit: str) -> StoredRecord:
    obs = Observation(
        source_id=f"t:{code}:{value}:{unit}",
        code=Code(system=LOINC, code=code),
        category="laboratory",
        value=QuantityValue(quantity=Quantity(value=value, unit=unit)),
        effective=PartialDateTime.parse("2024-05-01"),
        provenance=Provenance(source="test"),
    )
    return StoredRecord(f"r-{code}-{value}-{unit}", "observation", 0, "job", obs)


def _flag(code: str, value: float, unit: str) -> str | None:
    results = Labs.from_records([_result(code, value, unit)]).results
    assert len(results) == 1
    return results[0].flag


def test_every_critical_limit_is_flagged_at_the_limit_and_not_inside_it() -> None:
    raw = raw_json("critical_values.json")
    assert raw["sources"]
    for limit in raw["limits"]:
        assert limit["source"] in raw["sources"]
        analyte = catalogue().get(limit["analyte"])
        assert analyte is not None, limit["analyte"]
        code, unit = analyte.loinc[0], limit["unit"]
        for side, step in (("low", 1.0), ("high", -1.0)):
            bound = limit.get(side)
            if bound is None:
                continue
            assert _flag(code, bound, unit) == "critical", (limit["analyte"], side)
            inside = bound + step * max(abs(bound) * 0.01, 0.001)
            assert _flag(code, inside, unit) != "critical", (limit["analyte"], side)


@pytest.mark.parametrize(
    ("code", "value", "unit", "critical"),
    [
        ("2823-3", 6.0, "mmol/L", True),  # potassium at the high limit
        ("2823-3", 6.0, "meq/L", True),  # the same in mEq/L
        ("2823-3", 5.9, "mmol/L", False),
        ("2345-7", 45, "mg/dL", True),  # low glucose
        ("14749-6", 2.5, "mmol/L", True),  # 45 mg/dL given in mmol/L: a molar conversion
        ("14749-6", 5.5, "mmol/L", False),
        ("2951-2", 119, "mmol/L", True),  # low sodium
        ("718-7", 65, "g/L", True),  # hemoglobin 6.5 g/dL given in g/L
    ],
)
def test_known_critical_values(code: str, value: float, unit: str, critical: bool) -> None:
    results = Labs.from_records([_result(code, value, unit)]).results
    mark = results[0].critical
    assert (mark is not None) is critical
    if mark is not None:
        limits = {entry["analyte"]: entry for entry in raw_json("critical_values.json")["limits"]}
        titles = {k: v["title"] for k, v in raw_json("critical_values.json")["sources"].items()}
        assert mark.source == titles[limits[results[0].analyte_id]["source"]]
        fact = results[0].fact()
        assert fact.topic == "lab.critical"
        assert fact.severity == "critical"
        assert mark.source in fact.statement
