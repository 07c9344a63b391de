"""Benchmark: ten years of minute heart rate through SeriesRepository vs a plain table.

    python bench/series.py [--years 10] [--batch year|month] [--db-dir DIR]
    python bench/series.py --import [--records 1500000] [--repeat 3] [--profile]

Writes once-a-minute heart rate (integer bpm, as watches report it: a circadian
curve, activity bursts and noise, fixed seed) for one user in yearly or monthly
SampleBatches, one transaction each, then asks for the daily mean over the whole
span (best of 5). Beside it, the same samples go into a plain SQLite table
``(time INTEGER, value REAL)`` queried with a GROUP BY. Prints sizes, times, the
ratios, and the goals as pass/fail: query < 50 ms, write > 1 M samples/s.

``--import`` instead replays what an Apple Health import asks of the repository:
about 1.5 M samples over three years, 6 metrics (plus the ``.overlap`` series of
the two cumulative ones) from 1 to 3 sources, written as pending chunks of an
import job in batches of 100k per (metric, source), one transaction each, then
``finalize_job``; then the same export imported again over it (every pending
chunk now meets a visible twin: the merge path, nothing changes). Small chunks
(~170 samples a day per metric), so the per-chunk cost dominates. Prints the
best of ``--repeat`` runs and a digest of the decrypted chunks and stats, which
must not change when the code is only made faster. ``--profile`` prints a cProfile
of one run instead.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import itertools
import pstats
import sqlite3
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from healthspace.model import SampleBatch
from healthspace.store import HealthGrant, SeriesRepository, Space, SpaceSession, Store
from healthspace.store.engine import create_engine
from healthspace.store.keystore import KeyStore
from healthspace.store.tables import series_chunks
from healthspace.vault import MemoryKeySource, Vault

DAY_MS = 86_400_000
MINUTE_MS = 60_000
START = datetime(2015, 1, 1, tzinfo=UTC)
QUERY_GOAL_MS = 50.0
WRITE_GOAL = 1_000_000.0


def heart_rate(years: int, seed: int = 20_150_101) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic minute heart rate: (t_ms int64, bpm float64)."""
    rng = np.random.default_rng(seed)
    start = int(START.timestamp() * 1000)
    n = int(years * 365.25) * 1440
    t = start + np.arange(n, dtype=np.int64) * MINUTE_MS
    hour = (t % DAY_MS) / 3_600_000
    circadian = 64 + 9 * np.sin(2 * np.pi * (hour - 9) / 24)  # low at night, high afternoon
    awake = (hour > 7) & (hour < 23)
    # Activity: bursts of a few dozen minutes now and then while awake.
    bursts = np.convolve(rng.random(n) < 0.002, np.ones(30), mode="same") * awake
    drift = np.repeat(rng.normal(0, 3, n // 1440 + 1), 1440)[:n]  # day-to-day fitness
    bpm = circadian + 45 * np.clip(bursts, 0, 1) + drift + rng.normal(0, 2.5, n)
    return t, np.round(np.clip(bpm, 38, 190))


def split(t: np.ndarray, by: str) -> list[slice]:
    """Yearly or monthly slices of the (sorted) timestamps."""
    dt = t.astype("datetime64[ms]")
    unit = "Y" if by == "year" else "M"
    period = dt.astype(f"datetime64[{unit}]").astype(np.int64)
    cuts = np.flatnonzero(period[1:] != period[:-1]) + 1
    edges = [0, *cuts.tolist(), len(t)]
    return [slice(a, b) for a, b in itertools.pairwise(edges)]


def best_of(n: int, fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bench_healthspace(db: Path, t: np.ndarray, v: np.ndarray, by: str) -> dict[str, float]:
    keystore = KeyStore(create_engine(f"sqlite:///{db.with_name('keystore.db')}"))
    store = Store(
        create_engine(f"sqlite:///{db}"), Vault(MemoryKeySource()), keystore, actor="bench"
    )
    store.initialize()
    user = store.create_user("bench@example.org")
    grant = HealthGrant.operator("bench")
    with store.open_session(user.user_id, Space.HEALTH, grant=grant) as session:
        repo = SeriesRepository(session)
        durations = np.full(len(t), MINUTE_MS, dtype=np.int64)
        batches = [
            SampleBatch("heart_rate", "/min", t[s], durations[s], v[s], "Apple Watch")
            for s in split(t, by)
        ]
        t0 = time.perf_counter()
        for batch in batches:
            with session.begin() as conn:
                repo.write(conn, batch)
        write_s = time.perf_counter() - t0
        days = repo.daily("heart_rate")
        query_s = best_of(5, lambda: repo.daily("heart_rate"))
    store.compact()  # checkpoint the WAL into the file and drop free pages
    store.close()
    return {
        "write_s": write_s,
        "query_s": query_s,
        "bytes": db.stat().st_size,
        "days": len(days),
        "batches": len(batches),
        "mean0": days[0].mean,
    }


def bench_plain(db: Path, t: np.ndarray, v: np.ndarray) -> dict[str, float]:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE hr (time INTEGER, value REAL)")
    t0 = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO hr VALUES (?, ?)", zip(t.tolist(), v.tolist(), strict=True))
    conn.execute("COMMIT")
    write_s = time.perf_counter() - t0
    sql = f"SELECT time / {DAY_MS} AS day, avg(value) FROM hr GROUP BY day ORDER BY day"
    rows = conn.execute(sql).fetchall()
    query_s = best_of(5, lambda: conn.execute(sql).fetchall())
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("VACUUM")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return {
        "write_s": write_s,
        "query_s": query_s,
        "bytes": db.stat().st_size,
        "days": len(rows),
        "mean0": rows[0][1],
    }


# --- --import: an Apple Health import's pattern ---------------------------------------

IMPORT_START_DAY = 18_628  # 2021-01-01
IMPORT_DAYS = 1096
IMPORT_BATCH = 100_000
# (metric, source, samples a day, values, durations). Values: "int" (bpm, steps),
# "d1"/"d3" (decimals: breaths/min, kcal), "float" (arbitrary float64 bits: km).
IMPORT_SERIES: tuple[tuple[str, str, float, str, bool], ...] = (
    ("heart_rate", "Apple Watch", 500, "int", False),
    ("active_energy", "Apple Watch", 250, "d3", True),
    ("steps", "Apple Watch", 150, "int", True),
    ("steps", "iPhone", 100, "int", True),
    ("steps", "Oura", 20, "int", True),
    ("steps.overlap", "iPhone", 100, "int", True),
    ("distance", "Apple Watch", 120, "float", True),
    ("distance", "iPhone", 80, "float", True),
    ("distance.overlap", "iPhone", 50, "float", True),
    ("hrv", "Apple Watch", 5, "float", False),
    ("respiratory_rate", "Apple Watch", 20, "d1", False),
)


def import_batches(records: int, seed: int = 20_210_101) -> list[SampleBatch]:
    """Deterministic batches of <= 100k samples per (metric, source), time-ordered."""
    rng = np.random.default_rng(seed)
    scale = records / (IMPORT_DAYS * sum(s[2] for s in IMPORT_SERIES))
    out: list[SampleBatch] = []
    for metric, source, per_day, kind, spans in IMPORT_SERIES:
        counts = rng.poisson(per_day * scale, IMPORT_DAYS)
        day = IMPORT_START_DAY + np.repeat(np.arange(IMPORT_DAYS, dtype=np.int64), counts)
        t = np.sort(day * DAY_MS + rng.integers(0, DAY_MS, len(day)))
        n = len(t)
        d = rng.integers(60_000, 600_000, n) if spans else np.zeros(n, dtype=np.int64)
        if kind == "int":
            v = rng.integers(0, 180, n).astype(np.float64)
        elif kind == "float":
            v = rng.random(n) * 0.2
        else:
            v = np.round(rng.gamma(2.0, 8.0, n), 1 if kind == "d1" else 3)
        for lo in range(0, n, IMPORT_BATCH):
            hi = lo + IMPORT_BATCH
            out.append(SampleBatch(metric, "1", t[lo:hi], d[lo:hi], v[lo:hi], source))
    return out


def import_run(
    session: SpaceSession, batches: list[SampleBatch], job: str
) -> tuple[float, float, int, int]:
    """Write ``batches`` as job ``job``, then finalize: (write s, finalize s, written, added)."""
    repo = SeriesRepository(session)
    t0 = time.perf_counter()
    written = 0
    for batch in batches:
        with session.begin() as conn:
            written += repo.write(conn, batch, job_key=job)
    t1 = time.perf_counter()
    with session.begin() as conn:
        added = repo.finalize_job(conn, job)
    return t1 - t0, time.perf_counter() - t1, written, added


def chunk_digest(session: SpaceSession) -> tuple[int, str]:
    """Number of visible chunks and a SHA-256 over their decrypted stats and payloads,
    in an order that does not depend on the (random) keys."""
    with session.begin() as conn:
        rows = conn.execute(
            sa.select(
                series_chunks.c.metric_index,
                series_chunks.c.day,
                series_chunks.c.stats,
                series_chunks.c.payload,
            ).where(series_chunks.c.job_key == "")
        ).all()
    plain: list[tuple[int, bytes, bytes]] = []
    for index, day, stats, payload in rows:
        row_id = f"{bytes(index).hex()}:{day}"

        def opened(envelope: bytes, column: str, row_id: str = row_id) -> bytes:
            return session.decrypt(
                bytes(envelope), table="series_chunks", row_id=row_id, column=column
            )

        plain.append((int(day), opened(stats, "stats"), opened(payload, "payload")))
    digest = hashlib.sha256()
    for day, stats, payload in sorted(plain):
        digest.update(day.to_bytes(8, "little", signed=True) + stats + payload)
    return len(rows), digest.hexdigest()


def bench_import(db_dir: Path | None, records: int, repeat: int, profile: bool) -> None:
    batches = import_batches(records)
    n = sum(len(b) for b in batches)
    print(f"samples: {n:,} in {len(batches)} batches, {IMPORT_DAYS} days, 8 series")
    best: dict[str, float] = {}
    for _ in range(1 if profile else repeat):
        with tempfile.TemporaryDirectory(dir=db_dir) as tmp:
            db = Path(tmp) / "healthspace.db"
            keystore = KeyStore(create_engine(f"sqlite:///{db.with_name('keystore.db')}"))
            store = Store(
                create_engine(f"sqlite:///{db}"), Vault(MemoryKeySource()), keystore, actor="b"
            )
            store.initialize()
            user = store.create_user("bench@example.org")
            grant = HealthGrant.operator("bench")
            with store.open_session(user.user_id, Space.HEALTH, grant=grant) as session:
                profiler = cProfile.Profile() if profile else None
                if profiler:
                    profiler.enable()
                first = import_run(session, batches, "job-1")
                again = import_run(session, batches, "job-2")
                if profiler:
                    profiler.disable()
                chunks, digest = chunk_digest(session)
            store.close()
        times = {
            "import write": first[0],
            "import finalize": first[1],
            "re-import write": again[0],
            "re-import finalize": again[1],
        }
        for key, value in times.items():
            best[key] = min(best.get(key, float("inf")), value)
        assert again[3] == 0, "importing the same export again must change nothing"
    print(f"chunks: {chunks:,}  samples stored: {first[3]:,}  digest: {digest[:16]}")
    for key, value in best.items():
        print(f"{key:<20} {value:6.3f} s  ({value / chunks * 1e6:5.1f} us/chunk)")
    total = best["import write"] + best["import finalize"]
    print(f"{'import total':<20} {total:6.3f} s  ({n / total / 1e6:.2f} M samples/s)")
    if profiler:
        stats = pstats.Stats(profiler)
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats("healthspace", 30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--batch", choices=("year", "month"), default="year")
    parser.add_argument("--db-dir", type=Path, default=None)
    parser.add_argument(
        "--import", dest="import_", action="store_true", help="an import job's write pattern"
    )
    parser.add_argument("--records", type=int, default=1_500_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="cProfile one --import run")
    args = parser.parse_args()
    if args.import_:
        bench_import(args.db_dir, args.records, args.repeat, args.profile)
        return

    with tempfile.TemporaryDirectory(dir=args.db_dir) as tmp:
        t, v = heart_rate(args.years)
        n = len(t)
        print(f"samples: {n:,} ({args.years} years of minute heart rate, by {args.batch})")
        hs = bench_healthspace(Path(tmp) / "healthspace.db", t, v, args.batch)
        plain = bench_plain(Path(tmp) / "plain.db", t, v)
    assert hs["days"] == plain["days"], "both stores must see the same days"
    assert abs(hs["mean0"] - plain["mean0"]) < 1e-9, "both stores must agree on the means"

    rate = n / hs["write_s"]
    rows = [
        ("", "healthspace chunks", "plain SQLite rows", "ratio"),
        (
            "write",
            f"{hs['write_s']:.2f} s  {rate / 1e6:.2f} M/s",
            f"{plain['write_s']:.2f} s  {n / plain['write_s'] / 1e6:.2f} M/s",
            f"{plain['write_s'] / hs['write_s']:.1f}x faster",
        ),
        (
            f"daily mean, {hs['days']:.0f} days",
            f"{hs['query_s'] * 1e3:.1f} ms",
            f"{plain['query_s'] * 1e3:.1f} ms",
            f"{plain['query_s'] / hs['query_s']:.1f}x faster",
        ),
        (
            "bytes / sample",
            f"{hs['bytes'] / n:.3f}  ({hs['bytes'] / 1e6:.1f} MB)",
            f"{plain['bytes'] / n:.3f}  ({plain['bytes'] / 1e6:.1f} MB)",
            f"{plain['bytes'] / hs['bytes']:.1f}x smaller",
        ),
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)))
    print("healthspace: encrypted (AES-256-GCM per chunk and per day's stats), synchronous=FULL;")
    print("plain: unencrypted, no index, one transaction, default synchronous.")
    query_ms = hs["query_s"] * 1e3
    print(f"goal query < {QUERY_GOAL_MS:.0f} ms: {'PASS' if query_ms < QUERY_GOAL_MS else 'FAIL'}")
    print(f"goal write > 1 M samples/s: {'PASS' if rate > WRITE_GOAL else 'FAIL'}")


if __name__ == "__main__":
    main()
