"""Lab insights: trends, latest panel and flags checked against values read from the sample
bundles' JSON inside each test, plus unit conversions through the trend code."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from healthspace.insights._labs_units import to_unit
from healthspace.insights.catalogue import catalogue
from healthspace.insights.labs import Labs, latest_panel, trend
from healthspace.model import (
    LOINC,
    Code,
    Observation,
    PartialDateTime,
    Provenance,
    Quantity,
    QuantityValue,
    ReferenceRange,
)
from healthspace.sources.pipeline import import_paths
from healthspace.store import HealthGrant, Space, SpaceSession, Store, StoredRecord, ingest
from healthspace.store.engine import create_engine
from healthspace.store.keystore import KeyStore
from healthspace.vault import MemoryKeySource, Vault
from tests.conftest import SHARED_DATA

SYNTHEA = SHARED_DATA / "fhir" / "synthea-r4"
GHP = SHARED_DATA / "fhir" / "hl7-r4-examples" / "Bundle-ghp.json"
PATIENTS = ["Buster_Hoeger", "Evelyn_McCullough", "Jonelle_Kohler"]


def bundle_path(prefix: str) -> Path:
    (path,) = SYNTHEA.glob(f"{prefix}_*.json")
    return path


def observations(path: Path) -> list[dict[str, Any]]:
    bundle = json.loads(path.read_text(encoding="utf-8"))
    return [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"
    ]


def loinc_codes(resource: dict[str, Any]) -> set[str]:
    return {c["code"] for c in resource["code"].get("coding", []) if c.get("system") == LOINC}


def is_laboratory(resource: dict[str, Any]) -> bool:
    return any(
        c.get("code") == "laboratory"
        for cat in resource.get("category", [])
        for c in cat.get("coding", [])
    )


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# -- the sample bundles, imported once per module through the real FHIR importer -----------


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, SpaceSession]]:
    """One user per bundle in a SQLite store (the importer's engine coverage is its own)."""
    tmp = tmp_path_factory.mktemp("labs")
    keystore = KeyStore(create_engine(f"sqlite:///{tmp / 'keys.db'}"))
    store = Store(
        create_engine(f"sqlite:///{tmp / 'hs.db'}"),
        Vault(MemoryKeySource()),
        keystore,
        actor="test",
    )
    store.initialize()
    sessions: dict[str, SpaceSession] = {}
    try:
        for name, path in [(p, bundle_path(p)) for p in PATIENTS] + [("ghp", GHP)]:
            user = store.create_user(f"{name.lower()}@example.org")
            session = store.open_session(
                user.user_id, Space.HEALTH, grant=HealthGrant.operator("test")
            ).__enter__()
            sessions[name] = session
            report = import_paths(session, [path])
            assert report.errors == [], report.errors
        yield sessions
    finally:
        for session in sessions.values():
            session.__exit__(None, None, None)
        store.close()


def expected_series(path: Path, code: str) -> list[tuple[datetime, float, str]]:
    found = []
    for r in observations(path):
        if code in loinc_codes(r) and "valueQuantity" in r:
            q = r["valueQuantity"]
            found.append((instant(r["effectiveDateTime"]), float(q["value"]), q.get("code")))
    return sorted(found)


@pytest.mark.parametrize("patient", PATIENTS)
@pytest.mark.parametrize(("code", "unit"), [("2093-3", "mg/dL"), ("4548-4", "%")])
def test_trend_matches_the_bundle(
    imported: dict[str, SpaceSession], patient: str, code: str, unit: str
) -> None:
    expected = expected_series(bundle_path(patient), code)
    result = trend(imported[patient], code)
    if not expected:
        assert result is None
        return
    assert result is not None
    assert result.unit == unit
    assert result.series.unit == unit
    points = sorted(
        (instant(p.date), p.value, p.original_value, p.original_unit) for p in result.series.points
    )
    assert [(t, u) for t, _, _, u in points] == [(t, u) for t, _, u in expected]
    assert [v for _, v, _, _ in points] == pytest.approx([v for _, v, _ in expected])
    assert [o for _, _, o, _ in points] == pytest.approx([v for _, v, _ in expected])
    assert result.n == len(expected)
    assert instant(result.first.date_text) == expected[0][0]
    assert instant(result.last.date_text) == expected[-1][0]
    assert all(p.record_id for p in result.series.points)
    if len(expected) > 1:
        # Independent least squares over the bundle's own numbers.
        years = np.array([(t - expected[0][0]).total_seconds() for t, _, _ in expected])
        years /= 365.25 * 86_400
        values = np.array([v for _, v, _ in expected])
        slope = float(np.polyfit(years, values, 1)[0])
        assert result.rate_per_year == pytest.approx(slope, rel=1e-6, abs=1e-9)
        ordered = [p.value for p in result.series.points]  # oldest first
        assert result.change_over_span == pytest.approx(ordered[-1] - ordered[0])
        assert result.change_since_previous == pytest.approx(ordered[-1] - ordered[-2])
        tolerance = 0.05 * abs(values.mean())
        fitted = slope * (years[-1] - years[0])
        expected_direction = (
            "stable" if abs(fitted) <= tolerance else ("up" if fitted > 0 else "down")
        )
        assert result.direction == expected_direction
        assert f"{result.direction}" in result.statement()
    # A fact that cites exactly the trend's records.
    fact = result.fact()
    assert set(fact.record_ids()) == {p.record_id for p in result.series.points}


@pytest.mark.parametrize("patient", PATIENTS)
def test_latest_panel_is_every_lab_result_of_the_latest_day(
    imported: dict[str, SpaceSession], patient: str
) -> None:
    labs = [r for r in observations(bundle_path(patient)) if is_laboratory(r)]
    latest_day = max(r["effectiveDateTime"][:10] for r in labs)
    expected = sorted(
        (min(loinc_codes(r)), float(r["valueQuantity"]["value"]))
        for r in labs
        if r["effectiveDateTime"][:10] == latest_day
    )
    panel = latest_panel(imported[patient])
    assert panel is not None
    assert panel.collected.isoformat() == latest_day
    assert sorted((r.loinc, r.value) for r in panel.results) == expected
    summary = panel.summary()
    assert summary.values["results"] == len(expected)
    assert set(summary.record_ids()) == {r.record_id for r in panel.results}


def test_for_analyte_finds_what_a_full_load_finds(imported: dict[str, SpaceSession]) -> None:
    session = imported["Jonelle_Kohler"]
    full = Labs.load(session)
    for key in ("total_cholesterol", "ldl_cholesterol", "hba1c", "2339-0", "egfr"):
        one = Labs.for_analyte(session, key).trend(key)
        other = full.trend(key)
        assert one is not None
        assert other is not None
        assert [p.to_dict() for p in one.series.points] == [
            p.to_dict() for p in other.series.points
        ]


def test_ghp_flags_follow_each_observations_own_range(imported: dict[str, SpaceSession]) -> None:
    expected: dict[str, str] = {}
    for r in observations(GHP):
        ranges = r.get("referenceRange", [])
        if "valueQuantity" not in r or not ranges:
            continue
        value = float(r["valueQuantity"]["value"])
        low, high = ranges[0].get("low"), ranges[0].get("high")
        if low is not None and value < float(low["value"]):
            flag = "low"
        elif high is not None and value > float(high["value"]):
            flag = "high"
        else:
            flag = "normal"
        (code,) = loinc_codes(r)
        expected[code] = flag
    assert expected  # the bundle has ranged results to check
    results = {r.loinc: r for r in Labs.load(imported["ghp"]).results}
    for code, flag in expected.items():
        result = results[code]
        assert result.range_flag == flag, code
        assert result.range_used is not None
        assert result.range_used.source == "reported"
        if flag != "normal":
            assert flag in {"high", "low"}
            assert result.fact().severity in ("warning", "critical")


def test_ghp_values_convert_to_canonical_units(imported: dict[str, SpaceSession]) -> None:
    results = {r.loinc: r for r in Labs.load(imported["ghp"]).results}
    glucose = results["14749-6"]  # 7.4 mmol/L in the bundle
    assert glucose.canonical_unit == "mg/dL"
    assert glucose.canonical_value == pytest.approx(7.4 * 18.0156, rel=1e-4)
    hemoglobin = results["718-7"]  # 176 g/L
    assert hemoglobin.canonical_value == pytest.approx(17.6)
    assert hemoglobin.canonical_unit == "g/dL"
    creatinine = results["14682-9"]  # 0.09 mmol/L
    assert creatinine.canonical_value == pytest.approx(0.09 * 113.12 / 10, rel=1e-6)


# -- records built here: conversions, synonyms, range sources, bands (both engines) -------

PROV = Provenance(source="test", file_name="labs.json")


def lab(
    n: int,
    code: str,
    value: float,
    unit: str,
    day: str,
    *,
    low: float | None = None,
    high: float | None = None,
    range_unit: str | None = None,
    interpretation: str | None = None,
) -> Observation:
    ranges: tuple[ReferenceRange, ...] = ()
    if low is not None or high is not None:
        r_unit = range_unit if range_unit is not None else unit
        ranges = (
            ReferenceRange(
                low=None if low is None else Quantity(value=low, unit=r_unit),
                high=None if high is None else Quantity(value=high, unit=r_unit),
            ),
        )
    return Observation(
        source_id=f"test-lab:{n}",
        code=Code(system=LOINC, code=code),
        category="laboratory",
        value=QuantityValue(quantity=Quantity(value=value, unit=unit)),
        reference_ranges=ranges,
        interpretation=(
            (
                Code(
                    system="http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                    code=interpretation,
                ),
            )
            if interpretation
            else ()
        ),
        effective=PartialDateTime.parse(day),
        provenance=PROV,
    )


def test_known_conversion_pairs_through_trends(health: SpaceSession) -> None:
    ingest(
        health,
        [
            lab(1, "18262-6", 4.19, "mmol/L", "2023-01-10"),
            lab(2, "13457-7", 162, "mg/dL", "2023-06-10"),
            lab(3, "2089-1", 150, "mg/dL", "2024-01-10"),
            lab(4, "59261-8", 48, "mmol/mol", "2023-01-10"),
            lab(5, "4548-4", 6.5, "%", "2024-01-10"),
        ],
        source="test",
    )
    ldl = trend(health, "ldl_cholesterol")
    assert ldl is not None
    assert ldl.n == 3  # three LDL codes, one analyte
    first, second, _ = ldl.series.points
    assert (round(first.value), first.original_value, first.original_unit) == (162, 4.19, "mmol/L")
    assert second.value == pytest.approx(162)
    assert round(to_unit(162, "mg/dL", "mmol/L", codes=("18262-6",)) or 0, 2) == 4.19
    hba1c = trend(health, "4548-4")
    assert hba1c is not None
    assert hba1c.unit == "%"
    assert round(hba1c.series.points[0].value, 1) == 6.5  # 48 mmol/mol
    assert round(to_unit(6.5, "%", "mmol/mol", codes=("4548-4",)) or 0) == 48
    # The same trend found by any of its codes, or by its id.
    by_code = trend(health, "2089-1")
    assert by_code is not None
    assert [p.record_id for p in by_code.series.points] == [p.record_id for p in ldl.series.points]


def test_ranges_flags_and_bands(health: SpaceSession) -> None:
    ingest(
        health,
        [
            # glucose in mg/dL with the laboratory's range given in mmol/L
            lab(10, "2345-7", 110, "mg/dL", "2024-01-01", low=3.9, high=5.5, range_unit="mmol/L"),
            # no range, no interpretation: the typical range decides
            lab(11, "2345-7", 95, "mg/dL", "2024-02-01"),
            # no range but the laboratory's own flag
            lab(12, "1742-6", 30, "U/L", "2024-02-01", interpretation="H"),
            # an analyte the catalogue does not know, with its range
            lab(13, "2243-4", 3.0, "mg/dL", "2024-02-01", low=0, high=2.0),
        ],
        source="test",
    )
    labs = Labs.load(health)
    by_id = {r.source_id: r for r in labs.results}
    reported = by_id["test-lab:10"]
    assert reported.range_flag == "high"  # 110 mg/dL is above 5.5 mmol/L (99 mg/dL)
    assert reported.range_used is not None
    assert reported.range_used.source == "reported"
    assert reported.range_used.high == pytest.approx(5.5 * 18.0156, rel=1e-4)
    typical = by_id["test-lab:11"]
    assert typical.range_used is not None
    assert typical.range_used.source == "typical"
    glucose = catalogue().get("glucose")
    assert glucose is not None
    assert typical.range_used.reference == glucose.typical_range.source.title
    assert glucose.typical_range.source.title in typical.fact().statement
    assert typical.range_flag == "normal"
    flagged = by_id["test-lab:12"]
    assert (flagged.range_flag, flagged.range_used) == ("high", None)
    unknown = by_id["test-lab:13"]
    assert unknown.analyte_id == "loinc:2243-4"
    assert unknown.range_flag == "high"
    # The chart band is the latest result's range, in the series unit.
    series = labs.trend("glucose")
    assert series is not None
    assert series.series.band is not None
    assert series.series.band.source == "typical"
    assert (series.series.band.low, series.series.band.high) == (70, 99)
    assert [p.flag for p in series.series.points] == ["high", "normal"]
    panel = labs.latest_panel()
    assert panel is not None
    assert {r.source_id for r in panel.results} == {"test-lab:11", "test-lab:12", "test-lab:13"}


def _stored(obs: Observation) -> StoredRecord:
    return StoredRecord(f"rec-{obs.source_id}", "observation", 0, "job", obs)


def test_statements_never_round_a_value_onto_the_limit_it_crosses() -> None:
    chloride = catalogue().get("chloride")
    assert chloride is not None
    high = chloride.typical_range.bounds.high
    assert high is not None
    (result,) = Labs.from_records(
        [_stored(lab(1, "2075-0", high + 0.4, "mmol/L", "2024-01-01"))]
    ).results
    assert result.range_flag == "high"
    assert f"{high + 0.4:.1f} mmol/L" in result.statement()
    # The typical range's caveat travels with the statement.
    (glucose,) = Labs.from_records([_stored(lab(2, "2345-7", 120, "mg/dL", "2024-01-01"))]).results
    entry = catalogue().get("glucose")
    assert entry is not None
    assert entry.typical_range.note
    assert entry.typical_range.note in glucose.statement()


@given(st.floats(min_value=0.3, max_value=15.0, allow_nan=False))
def test_ldl_round_trips_through_the_trend(mmol: float) -> None:
    labs = Labs.from_records([_stored(lab(1, "22748-8", mmol, "mmol/L", "2024-01-01"))])
    result = labs.trend("ldl_cholesterol")
    assert result is not None
    (point,) = result.series.points
    assert result.unit == "mg/dL"
    back = to_unit(point.value, "mg/dL", "mmol/L", codes=("18262-6",))
    assert back == pytest.approx(mmol, rel=1e-9)


@given(st.floats(min_value=3.0, max_value=18.0, allow_nan=False))
def test_hba1c_round_trips_through_the_trend(percent: float) -> None:
    ifcc = to_unit(percent, "%", "mmol/mol", codes=("4548-4",))
    assert ifcc is not None
    labs = Labs.from_records([_stored(lab(1, "59261-8", ifcc, "mmol/mol", "2024-01-01"))])
    result = labs.trend("hba1c")
    assert result is not None
    (point,) = result.series.points
    assert point.value == pytest.approx(percent, rel=1e-9)
    assert point.original_unit == "mmol/mol"
