"""Benchmark: ten years of minute heart rate through SeriesRepository vs a plain table.

    python bench/series.py [--years 10] [--batch year|month] [--db-dir DIR]

Writes once-a-minute heart rate (integer bpm, as watches report it: a circadian
curve, activity bursts and noise, fixed seed) for one user in yearly or monthly
SampleBatches, one transaction each, then asks for the daily mean over the whole
span (best of 5). Beside it, the same samples go into a plain SQLite table
``(time INTEGER, value REAL)`` queried with a GROUP BY. Prints sizes, times, the
ratios, and the goals as pass/fail: query < 50 ms, write > 1 M samples/s.
"""

from __future__ import annotations

import argparse
import itertools
import sqlite3
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from healthspace.model import SampleBatch
from healthspace.store import HealthGrant, SeriesRepository, Space, Store
from healthspace.store.engine import create_engine
from healthspace.store.keystore import KeyStore
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--batch", choices=("year", "month"), default="year")
    parser.add_argument("--db-dir", type=Path, default=None)
    args = parser.parse_args()

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
