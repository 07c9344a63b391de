"""Nutrition totals, energy shares, protein per kg and goals, checked by hand in the test."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from healthspace.insights.nutrition import NutritionGoals, nutrition_summary
from healthspace.model import (
    LOINC,
    Code,
    NutritionDay,
    Observation,
    PartialDateTime,
    Provenance,
    Quantity,
    QuantityValue,
    Sample,
)
from healthspace.store import RecordRepository, SpaceSession, ingest

START = date(2024, 5, 1)
# day offset -> (kcal, protein g, carbs g, fat g, fiber g, sodium mg)
LOGS = {
    0: (2100.0, 90.0, 250.0, 70.0, 25.0, 2100.0),
    1: (1850.0, 120.0, 200.0, 60.0, 30.0, 2500.0),
    2: (2400.0, 80.0, 300.0, 95.0, 18.0, 3100.0),
    3: (1990.0, 130.0, 180.0, 66.0, 35.0, 1900.0),
    5: (2250.0, 110.0, 240.0, 85.0, 22.0, 2250.0),
    6: (1700.0, 95.0, 190.0, 55.0, 28.0, 2000.0),
}
WEIGHT_SAMPLE_KG = 75.0  # morning of day 1
WEIGHT_OBS_LB = 160.0  # noon of day 3
PROV = Provenance(source="test")


def log(
    offset: int, values: tuple[float, ...], *, source: str = "mfp", kj: bool = False
) -> NutritionDay:
    kcal, protein, carbs, fat, fiber, sodium = values
    calories = Quantity(value=kcal * 4.184, unit="kJ") if kj else Quantity(value=kcal, unit="kcal")
    return NutritionDay(
        source_id=f"{source}:{offset}",
        date=PartialDateTime.parse((START + timedelta(days=offset)).isoformat()),
        calories=calories,
        nutrients={
            "protein": Quantity(value=protein, unit="g"),
            "carbohydrate": Quantity(value=carbs, unit="g"),
            "fat": Quantity(value=fat, unit="g"),
            "fiber": Quantity(value=fiber, unit="g"),
            "sodium": Quantity(value=sodium / 1000, unit="g"),
        },
        source_name=source,
        provenance=PROV,
    )


def ms_at(day: date, hour: int) -> int:
    return int(datetime(day.year, day.month, day.day, hour, tzinfo=UTC).timestamp() * 1000)


@pytest.fixture
def logged(health: SpaceSession) -> None:
    logs = [log(o, v, kj=(o == 2)) for o, v in LOGS.items()]
    # A second, thinner log of day 1 from another app: not added to the fuller one.
    thin = NutritionDay(
        source_id="watch:1",
        date=PartialDateTime.parse((START + timedelta(days=1)).isoformat()),
        calories=Quantity(value=900.0, unit="kcal"),
        provenance=PROV,
    )
    weight = Observation(
        source_id="weight:3",
        code=Code(system=LOINC, code="29463-7", display="Body weight"),
        value=QuantityValue(quantity=Quantity(value=WEIGHT_OBS_LB, unit="[lb_av]")),
        effective=PartialDateTime.parse(f"{START + timedelta(days=3)}T12:00:00Z"),
        provenance=PROV,
    )
    sample = Sample("body_mass", ms_at(START + timedelta(days=1), 6), WEIGHT_SAMPLE_KG, 0, "scale")
    ingest(health, [*logs, thin, weight, sample], source="test", input_sha256="6" * 64)


def weight_on(offset: int) -> float | None:
    if offset >= 3:
        return WEIGHT_OBS_LB * 0.45359237
    if offset >= 1:
        return WEIGHT_SAMPLE_KG
    return None


GOALS = NutritionGoals(
    calories_kcal=2000, protein_g=100, protein_g_per_kg=1.4, fat_pct=30, sodium_mg=2300
)


def test_daily_values_shares_and_protein_per_kg(health: SpaceSession, logged: None) -> None:
    summary = nutrition_summary(health, start=START, end=START + timedelta(days=6), goals=GOALS)
    assert [d.day for d in summary.days] == [START + timedelta(days=o) for o in LOGS]
    for day in summary.days:
        offset = (day.day - START).days
        kcal, protein, carbs, fat, fiber, sodium = LOGS[offset]
        assert day.calories_kcal == pytest.approx(kcal)
        assert (day.protein_g, day.carbs_g, day.fat_g, day.fiber_g) == (protein, carbs, fat, fiber)
        assert day.sodium_mg == pytest.approx(sodium)
        # Atwater: 4 kcal/g protein and carbohydrate, 9 kcal/g fat, over logged calories.
        assert day.protein_pct == pytest.approx(protein * 4 / kcal * 100)
        assert day.carbs_pct == pytest.approx(carbs * 4 / kcal * 100)
        assert day.fat_pct == pytest.approx(fat * 9 / kcal * 100)
        kg = weight_on(offset)
        if kg is None:
            assert day.protein_g_per_kg is None
        else:
            assert day.protein_g_per_kg == pytest.approx(protein / kg)
        assert day.other_logs == (1 if offset == 1 else 0)
    avg = summary.averages
    assert avg["calories_kcal"] == pytest.approx(np.mean([v[0] for v in LOGS.values()]))
    assert avg["protein_g"] == pytest.approx(np.mean([v[1] for v in LOGS.values()]))
    per_kg = [LOGS[o][1] / kg for o in LOGS if (kg := weight_on(o)) is not None]
    assert avg["protein_g_per_kg"] == pytest.approx(np.mean(per_kg))
    fact = next(f for f in summary.facts if f.topic == "nutrition.average")
    assert f"on {len(LOGS)} days" in fact.statement
    assert f"{round(np.mean([v[0] for v in LOGS.values()]))} kcal" in fact.statement
    # Cited: every log used and the weight observation; the sample day as a window.
    repo = RecordRepository(health)
    kinds = sorted(repo.get(c.record_id).kind for c in fact.citations)
    assert kinds == ["nutrition"] * len(LOGS) + ["observation"]
    assert [(w.metric, w.start) for w in fact.windows] == [("body_mass", START + timedelta(days=1))]


def test_goals_against_hand_computed_rules(health: SpaceSession, logged: None) -> None:
    summary = nutrition_summary(health, start=START, end=START + timedelta(days=6), goals=GOALS)
    checks = {c.goal: c for c in summary.goals}
    assert set(checks) == {"calories_kcal", "protein_g", "protein_g_per_kg", "fat_pct", "sodium_mg"}
    kcal = [v[0] for v in LOGS.values()]
    # Calories: a target met within ±10% (1800..2200 kcal).
    assert checks["calories_kcal"].days_met == sum(1 for k in kcal if 1800 <= k <= 2200)
    assert checks["calories_kcal"].status == "met"  # mean 2048.3
    # Protein: a minimum of 100 g.
    assert checks["protein_g"].days_met == sum(1 for v in LOGS.values() if v[1] >= 100)
    assert checks["protein_g"].status == (
        "met" if np.mean([v[1] for v in LOGS.values()]) >= 100 else "below"
    )
    # Protein per kg: only days with a weight count.
    per_kg = [LOGS[o][1] / kg for o in LOGS if (kg := weight_on(o)) is not None]
    assert checks["protein_g_per_kg"].days == len(per_kg)
    assert checks["protein_g_per_kg"].days_met == sum(1 for p in per_kg if p >= 1.4)
    # Fat share: a target of 30% met within ±5 points.
    fat_pct = [v[3] * 9 / v[0] * 100 for v in LOGS.values()]
    assert checks["fat_pct"].days_met == sum(1 for p in fat_pct if abs(p - 30) <= 5)
    assert checks["fat_pct"].average == pytest.approx(np.mean(fat_pct))
    # Sodium: a maximum of 2300 mg.
    sodium = [v[5] for v in LOGS.values()]
    assert checks["sodium_mg"].days_met == sum(1 for s in sodium if s <= 2300)
    assert checks["sodium_mg"].status == ("met" if np.mean(sodium) <= 2300 else "above")
    goal_facts = [f for f in summary.facts if f.topic == "nutrition.goal"]
    assert len(goal_facts) == 5
    protein_fact = next(f for f in goal_facts if f.values["goal"] == "protein_g")
    assert f"met on {checks['protein_g'].days_met} of {len(LOGS)} days" in protein_fact.statement
    # Chart series: the calorie band is the goal ± 10%, protein's band starts at the goal.
    band = summary.series["calories_kcal"].band
    assert band is not None
    assert (band.low, band.high) == (1800.0, 2200.0)
    assert summary.series["protein_g"].band is not None
    assert summary.series["protein_g"].band.low == 100
    flags = {p.date: p.flag for p in summary.series["calories_kcal"].points}
    assert flags[str(START + timedelta(days=2))] == "high"
    assert flags[str(START + timedelta(days=6))] == "low"


def test_no_logs_no_average_fact(health: SpaceSession) -> None:
    summary = nutrition_summary(health, end=date(2024, 1, 7), goals=NutritionGoals(protein_g=90))
    assert summary.days == ()
    assert summary.start == date(2024, 1, 1)
    assert [c.status for c in summary.goals] == ["no data"]
    assert [f.topic for f in summary.facts] == ["nutrition.goal"]
