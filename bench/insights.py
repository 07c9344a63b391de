"""Benchmark: insights over ten years of one person's data.

    python bench/insights.py [--years 10] [--records 1500000] [--labs-per-quarter 8]
                             [--direct] [--generator PATH] [--work-dir DIR] [--repeat 5]

Builds one person's health space: the shared Apple Health generator's export for the
span, imported through the Apple importer (or, with ``--direct`` or when the importer
is missing, the same volume of samples written straight into the series store), plus
quarterly lab panels, visits, conditions, medications and an allergy written with
``store.ingest``. Then times, best of ``--repeat``: the cholesterol trend (indexed
lookup), loading every lab result, the latest panel, the visit brief, and the 90-day
wearable summary. Prints the volumes and the figures.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

from healthspace.insights.labs import Labs, trend
from healthspace.insights.visit_brief import visit_brief
from healthspace.model import (
    LOINC,
    SNOMED,
    Allergy,
    AnyRecord,
    Code,
    Condition,
    Encounter,
    Medication,
    Observation,
    PartialDateTime,
    Provenance,
    Quantity,
    QuantityValue,
    SampleBatch,
)
from healthspace.sources.pipeline import import_paths
from healthspace.store import HealthGrant, RecordRepository, Space, SpaceSession, Store, ingest
from healthspace.store.engine import create_engine
from healthspace.store.keystore import KeyStore
from healthspace.vault import MemoryKeySource, Vault

START = date(2022, 1, 1)  # where the shared generator starts its export
DAY_MS = 86_400_000
# analyte LOINC, unit, mean, sd, yearly drift: a slow cholesterol rise, the rest steady.
LABS: tuple[tuple[str, str, float, float, float], ...] = (
    ("2093-3", "mg/dL", 185, 12, 2.5),
    ("18262-6", "mg/dL", 110, 10, 2.0),
    ("2085-9", "mg/dL", 52, 5, -0.3),
    ("2571-8", "mg/dL", 140, 30, 1.0),
    ("2345-7", "mg/dL", 95, 8, 0.8),
    ("4548-4", "%", 5.5, 0.2, 0.05),
    ("2160-0", "mg/dL", 0.9, 0.08, 0.01),
    ("2823-3", "mmol/L", 4.2, 0.3, 0.0),
    ("2951-2", "mmol/L", 140, 2, 0.0),
    ("718-7", "g/dL", 13.5, 0.6, 0.0),
    ("6690-2", "10*3/uL", 6.5, 1.2, 0.0),
    ("777-3", "10*3/uL", 260, 40, 0.0),
)


def best_of(n: int, fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def pdt(day: date) -> PartialDateTime:
    return PartialDateTime.parse(f"{day.isoformat()}T08:30:00-05:00")


def clinical_records(years: int, per_quarter: int, seed: int = 7) -> list[AnyRecord]:
    """Quarterly visits with lab panels, plus conditions, medications and an allergy."""
    rng = np.random.default_rng(seed)
    prov = Provenance(source="bench", file_name="bench-labs.json")
    out: list[AnyRecord] = []
    for quarter in range(years * 4):
        day = START + timedelta(days=int(quarter * 91.3) + 10)
        out.append(Encounter(source_id=f"enc:{quarter}", start=pdt(day), provenance=prov))
        for code, unit, mean, sd, drift in LABS[:per_quarter]:
            value = mean + drift * quarter / 4 + float(rng.normal(0, sd))
            out.append(
                Observation(
                    source_id=f"lab:{quarter}:{code}",
                    code=Code(system=LOINC, code=code),
                    category="laboratory",
                    value=QuantityValue(quantity=Quantity(value=round(value, 2), unit=unit)),
                    effective=pdt(day),
                    provenance=prov,
                )
            )
    out += [
        Condition(
            source_id="cond:htn",
            code=Code(system=SNOMED, code="38341003", display="Hypertension"),
            clinical_status="active",
            onset=pdt(START),
            provenance=prov,
        ),
        Condition(
            source_id="cond:hld",
            code=Code(system=SNOMED, code="55822004", display="Hyperlipidemia"),
            clinical_status="active",
            onset=pdt(START + timedelta(days=400)),
            provenance=prov,
        ),
        Medication(
            source_id="med:lisinopril",
            medication_kind="request",
            text="Lisinopril 10 MG Oral Tablet",
            status="active",
            start=pdt(START),
            provenance=prov,
        ),
        Medication(
            source_id="med:atorvastatin",
            medication_kind="request",
            text="Atorvastatin 20 MG Oral Tablet",
            status="active",
            start=pdt(START + timedelta(days=420)),
            provenance=prov,
        ),
        Allergy(source_id="allergy:pen", text="Penicillin", provenance=prov),
    ]
    return out


def direct_samples(years: int, records: int, seed: int = 11) -> list[SampleBatch]:
    """The generator's mix of sample types, same volume, written without the importer."""
    rng = np.random.default_rng(seed)
    start = int(datetime(START.year, START.month, START.day, tzinfo=UTC).timestamp() * 1000)
    span = years * 365 * DAY_MS
    mix = {  # share of the generator's 1.5 M records, unit, value mean/sd
        "heart_rate": (0.38, "/min", 72, 12),
        "active_energy": (0.28, "kcal", 0.5, 0.3),
        "steps": (0.14, "{steps}", 60, 40),
        "blood_glucose": (0.16, "mg/dL", 105, 18),
        "body_mass": (0.005, "kg", 78, 1.5),
    }
    batches = []
    for metric, (share, unit, mean, sd) in mix.items():
        n = int(records * share)
        t = np.sort(start + rng.integers(0, span, n, dtype=np.int64))
        values = np.abs(rng.normal(mean, sd, n))
        batches.append(SampleBatch(metric, unit, t, np.zeros(n, dtype=np.int64), values, "bench"))
    return batches


def generate(generator: Path, out_dir: Path, records: int, days: int) -> Path:
    subprocess.run(
        [
            sys.executable,
            str(generator),
            "--records",
            str(records),
            "--workouts",
            str(max(40, days // 9)),
            "--days",
            str(days),
            "--out-dir",
            str(out_dir),
            "--no-zip",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return out_dir / "apple_health_export" / "export.xml"


def build(session: SpaceSession, args: argparse.Namespace, work: Path) -> None:
    days = args.years * 365
    have_importer = importlib.util.find_spec("healthspace.sources.apple_health") is not None
    if args.direct or not have_importer or not args.generator.is_file():
        why = "--direct" if args.direct else "no Apple importer or generator"
        t0 = time.perf_counter()
        result = ingest(session, direct_samples(args.years, args.records), source="bench")
        print(
            f"samples written directly ({why}): {result.samples:,} "
            f"in {time.perf_counter() - t0:.1f} s"
        )
    else:
        t0 = time.perf_counter()
        export = generate(args.generator, work / "apple", args.records, days)
        print(
            f"generated {export.stat().st_size / 1e6:,.0f} MB export.xml "
            f"({args.records:,} records, {days} days) in {time.perf_counter() - t0:.1f} s"
        )
        t0 = time.perf_counter()
        report = import_paths(session, [export])
        if report.errors:
            raise SystemExit(f"import failed: {report.errors}")
        samples = sum(f.result.samples for f in report.files if f.result is not None)
        print(
            f"imported through the Apple importer: {samples:,} samples, records "
            f"{report.imported} in {time.perf_counter() - t0:.1f} s"
        )
        export.unlink()
    records = clinical_records(args.years, args.labs_per_quarter)
    t0 = time.perf_counter()
    result = ingest(session, records, source="bench")
    print(f"clinical records written: {result.imported} in {time.perf_counter() - t0:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--records", type=int, default=1_500_000)
    parser.add_argument("--labs-per-quarter", type=int, default=8, choices=range(1, 13))
    parser.add_argument("--direct", action="store_true", help="write samples, skip the importer")
    parser.add_argument(
        "--generator",
        type=Path,
        default=Path(__file__).resolve().parents[2] / "shared" / "bench" / "gen_apple_export.py",
    )
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.work_dir) as tmp:
        work = Path(tmp)
        store = Store(
            create_engine(f"sqlite:///{work / 'healthspace.db'}"),
            Vault(MemoryKeySource()),
            KeyStore(create_engine(f"sqlite:///{work / 'keystore.db'}")),
            actor="bench",
        )
        store.initialize()
        user = store.create_user("bench@example.org")
        grant = HealthGrant.operator("bench")
        try:
            with store.open_session(user.user_id, Space.HEALTH, grant=grant) as session:
                build(session, args, work)
                run(session, args)
        finally:
            store.close()


def run(session: SpaceSession, args: argparse.Namespace) -> None:
    today = START + timedelta(days=args.years * 365)
    counts = RecordRepository(session).count_by_kind()
    print(f"records in the space: {counts}")
    cholesterol = trend(session, "total_cholesterol")
    labs = Labs.load(session)
    brief = visit_brief(session, today=today)
    assert cholesterol is not None
    print(f"cholesterol trend: {cholesterol.statement()}")
    print(
        f"lab results: {len(labs.results)}; brief: {len(brief.facts())} facts, "
        f"{len(brief.section('questions').facts)} questions, "
        f"{len(brief.to_html()):,} bytes of HTML"
    )
    figures = {
        "cholesterol trend (indexed)": best_of(args.repeat, lambda: trend(session, "2093-3")),
        "every lab result (Labs.load)": best_of(args.repeat, lambda: Labs.load(session)),
        "latest panel": best_of(args.repeat, lambda: Labs.load(session).latest_panel()),
        "visit brief (+ HTML)": best_of(
            args.repeat, lambda: visit_brief(session, today=today).to_html()
        ),
    }
    if importlib.util.find_spec("healthspace.insights.wearables") is not None:
        from healthspace.insights.wearables import wearable_summary

        summary = wearable_summary(session, days=90)
        print(f"90-day wearable summary ending {summary.end}: {len(summary.facts)} facts")
        figures["90-day wearable summary"] = best_of(
            args.repeat, lambda: wearable_summary(session, days=90)
        )
    else:
        print("90-day wearable summary: insights/wearables.py does not exist, not timed")
    print(f"\nbest of {args.repeat}:")
    for name, seconds in figures.items():
        print(f"  {name:<32} {seconds * 1000:9.1f} ms")


if __name__ == "__main__":
    main()
