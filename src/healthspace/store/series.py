"""Time series as encrypted per-day chunks (DESIGN.md, "Data flow" point 2).

One row of ``series_chunks`` holds one (user, space, metric, UTC day): the samples
as a compressed block (:mod:`healthspace.store._chunk`) and the day's aggregates,
each in its own AES-GCM envelope bound to the row by ``row_id`` =
``"<metric index hex>:<day>"``. The metric name itself is never stored, only its
blind index. ``job_key`` is not part of the associated data, so folding a pending
chunk into view is a plain UPDATE with no re-encryption.

Window semantics everywhere: ``start_ms <= t_ms < end_ms`` on a sample's start
time. A sample belongs to the UTC day its start falls in.

Values must be finite: NaN and infinity are refused at write time with
ValueError, because a single NaN would poison every aggregate of its day.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from healthspace.errors import StoreError
from healthspace.model import Sample, SampleBatch
from healthspace.store._chunk import (
    ChunkData,
    decode,
    empty,
)
from healthspace.store._chunk_days import DayChunks, encode_days, merge_days
from healthspace.store._chunk_stats import DayStats, stats_days
from healthspace.store.session import SpaceSession
from healthspace.store.tables import series_chunks as sc

__all__ = ["DAY_MS", "DayAggregate", "SeriesRepository"]

DAY_MS: Final = 86_400_000
TABLE: Final = "series_chunks"
TARGET: Final = "series"  # audit target: never a metric name
_EPOCH: Final = date(1970, 1, 1)
# Above this many days, look existing chunks up by range instead of an IN list,
# so one query per metric stays under every driver's bind-parameter limit.
_MAX_IN_DAYS: Final = 900
# finalize_job merges this many days of one metric at a time (bounds its memory).
_FINALIZE_DAYS: Final = 1024


@dataclass(frozen=True, slots=True)
class DayAggregate:
    """One UTC day of one metric, from the chunk's stored aggregates."""

    day: date
    n: int
    sum: float
    min: float
    max: float
    mean: float


def _row_id(metric_index: bytes, day: int) -> str:
    return f"{metric_index.hex()}:{day}"


_DAY_MIN, _DAY_MAX = -(2**31), 2**31 - 1  # the day column is a 32-bit integer


def _day_bounds(start_ms: int | None, end_ms: int | None) -> tuple[int | None, int | None]:
    # Clamped: an open-ended window such as (0, 2**62) must not overflow the column.
    first = None if start_ms is None else max(_DAY_MIN, min(_DAY_MAX, start_ms // DAY_MS))
    last = None if end_ms is None else max(_DAY_MIN, min(_DAY_MAX, (end_ms - 1) // DAY_MS))
    return first, last


def _check_values(chunk: ChunkData, metric: str) -> None:
    if not np.isfinite(chunk.values).all():
        raise ValueError(f"samples of a series must be finite numbers (metric {metric!r})")
    if len(chunk) and int(chunk.duration_ms.min()) < 0:
        raise ValueError(f"sample durations must not be negative (metric {metric!r})")


def _from_samples(samples: Iterable[Sample]) -> dict[str, ChunkData]:
    """Columns per metric. A Python loop is unavoidable here: the input is objects."""
    cols: dict[str, tuple[list[int], list[int], list[float], list[int], dict[str, int]]] = {}
    for s in samples:
        entry = cols.get(s.metric)
        if entry is None:
            entry = cols[s.metric] = ([], [], [], [], {})
        t, d, v, src, names = entry
        t.append(s.t_ms)
        d.append(s.duration_ms)
        v.append(s.value)
        src.append(names.setdefault(s.source, len(names)))
    return {
        metric: ChunkData(
            np.array(t, dtype=np.int64),
            np.array(d, dtype=np.int64),
            np.array(v, dtype=np.float64),
            np.array(src, dtype=np.uint16),
            tuple(names),
        )
        for metric, (t, d, v, src, names) in cols.items()
    }


def _concat_sorted(chunks: Sequence[ChunkData]) -> ChunkData:
    """Chunks of consecutive days, in day order, as one canonical ChunkData."""
    if not chunks:
        return empty()
    names = sorted({name for c in chunks for name in c.sources})
    position = {name: i for i, name in enumerate(names)}
    # Remapping to the sorted union keeps each chunk's (t, duration, source) order.
    src = [
        np.array([position[n] for n in c.sources], dtype=np.uint16)[c.source_idx]
        if len(c)
        else c.source_idx
        for c in chunks
    ]
    return ChunkData(
        np.concatenate([c.t_ms for c in chunks]),
        np.concatenate([c.duration_ms for c in chunks]),
        np.concatenate([c.values for c in chunks]),
        np.concatenate(src),
        tuple(names),
    )


class SeriesRepository:
    """Reads and writes one space's time series through a :class:`SpaceSession`."""

    def __init__(self, session: SpaceSession) -> None:
        self.session = session
        self._indexes: dict[str, bytes] = {}

    def __repr__(self) -> str:
        return f"SeriesRepository({self.session!r})"

    # -- helpers ------------------------------------------------------------------------

    def _metric_index(self, metric: str) -> bytes:
        index = self._indexes.get(metric)
        if index is None:
            index = self._indexes[metric] = self.session.blind(metric, domain="metric")
        return index

    def _scope(self, metric_index: bytes, job_key: str) -> list[sa.ColumnElement[bool]]:
        s = self.session
        return [
            sc.c.user_id == s.user_id,
            sc.c.space == s.space.value,
            sc.c.metric_index == metric_index,
            sc.c.job_key == job_key,
        ]

    def _open(self, envelope: bytes, row_id: str, column: str) -> bytes:
        return self.session.decrypt(bytes(envelope), table=TABLE, row_id=row_id, column=column)

    def _load(self, payload: bytes, row_id: str) -> ChunkData:
        plain = self._open(payload, row_id, "payload")
        try:
            return decode(plain)
        except ValueError as exc:
            # It authenticated, so this is a format this code does not know, not tampering.
            raise StoreError(f"a series chunk could not be decoded: {exc}") from None

    def _sealed(self, metric_index: bytes, merged: DayChunks) -> list[tuple[int, dict[str, Any]]]:
        """(day, stored columns) of each merged day that changed: encrypted payload and
        stats, plaintext sizes. Encoding and statistics run over all days at once."""
        which = np.flatnonzero(merged.changed).tolist()
        days = merged.days.tolist()
        enc = self.session.encrypt
        prefix = _row_id(metric_index, 0)[:-1]  # "<index hex>:"
        out = []
        for i, payload, stats in zip(
            which, encode_days(merged, which), stats_days(merged, which), strict=True
        ):
            row_id = f"{prefix}{days[i]}"
            row = {
                "n": stats.n,
                "first_ms": stats.first_ms,
                "last_ms": stats.last_ms,
                "stats": enc(stats.pack(), table=TABLE, row_id=row_id, column="stats"),
                "payload": enc(payload, table=TABLE, row_id=row_id, column="payload"),
            }
            out.append((days[i], row))
        return out

    def _update_rows(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        stmt = (
            sc.update()
            .where(
                sc.c.user_id == sa.bindparam("k_user"),
                sc.c.space == sa.bindparam("k_space"),
                sc.c.metric_index == sa.bindparam("k_metric"),
                sc.c.day == sa.bindparam("k_day"),
                sc.c.job_key == sa.bindparam("k_job"),
            )
            .values(
                n=sa.bindparam("n"),
                first_ms=sa.bindparam("first_ms"),
                last_ms=sa.bindparam("last_ms"),
                stats=sa.bindparam("stats"),
                payload=sa.bindparam("payload"),
                updated_at=sa.bindparam("updated_at"),
            )
        )
        conn.execute(stmt, rows)

    # -- writing ------------------------------------------------------------------------

    def write(
        self, conn: Connection, samples: SampleBatch | Iterable[Sample], *, job_key: str = ""
    ) -> int:
        """Merge samples into their day chunks (visible, or pending under ``job_key``).

        Returns how many samples were new or changed a stored value; writing the same
        samples again returns 0 and leaves every row untouched. Raises ValueError on
        NaN, infinite values or negative durations.
        """
        if isinstance(samples, SampleBatch):
            src = np.zeros(len(samples), dtype=np.uint16)
            by_metric = {
                samples.metric: ChunkData(
                    samples.t_ms, samples.duration_ms, samples.values, src, (samples.source,)
                )
            }
        else:
            by_metric = _from_samples(samples)
        for metric, chunk in by_metric.items():
            _check_values(chunk, metric)
        self.session.audit(conn, "series.write", target=TARGET)
        return sum(
            self._write_metric(conn, metric, chunk, job_key)
            for metric, chunk in by_metric.items()
            if len(chunk)
        )

    def _write_metric(self, conn: Connection, metric: str, chunk: ChunkData, job_key: str) -> int:
        s = self.session
        index = self._metric_index(metric)
        # Every day is merged at once (merge_days): a day with no stored chunk costs
        # no more than its share of one sort of the batch.
        days = chunk.t_ms // DAY_MS
        if bool((days[1:] >= days[:-1]).all()):
            day_list = days[np.concatenate(([0], np.flatnonzero(days[1:] != days[:-1]) + 1))]
        else:
            day_list = np.unique(days)
        wanted = day_list.tolist()

        query = sa.select(sc.c.day, sc.c.payload).where(*self._scope(index, job_key))
        if len(wanted) <= _MAX_IN_DAYS:
            query = query.where(sc.c.day.in_(wanted))
        else:
            query = query.where(sc.c.day.between(wanted[0], wanted[-1]))
        stored = {int(r.day): r.payload for r in conn.execute(query.with_for_update())}
        # A range lookup also finds days the batch does not touch: leave those alone.
        old = [
            (day, self._load(stored[day], _row_id(index, day))) for day in wanted if day in stored
        ]
        merged = merge_days(old, chunk, days)

        now = datetime.now(UTC)
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        for day, row in self._sealed(index, merged):
            row["updated_at"] = now
            if day not in stored:
                row.update(
                    user_id=s.user_id,
                    space=s.space.value,
                    metric_index=index,
                    day=day,
                    job_key=job_key,
                )
                inserts.append(row)
            else:
                row.update(
                    k_user=s.user_id,
                    k_space=s.space.value,
                    k_metric=index,
                    k_day=day,
                    k_job=job_key,
                )
                updates.append(row)
        if inserts:
            conn.execute(sc.insert(), inserts)
        self._update_rows(conn, updates)
        return int(merged.changed.sum())

    def _replace_days(
        self, conn: Connection, metric: str, chunk: ChunkData, job_key: str, *, only: Any
    ) -> None:
        """Overwrite stored days of ``metric`` with ``chunk``'s rows of those days.

        For days known to be stored under ``job_key`` (the caller just read them): no
        read, no merge. ``only`` holds instants; their days are the ones rewritten.
        """
        s = self.session
        index = self._metric_index(metric)
        days = chunk.t_ms // DAY_MS
        keep = np.isin(days, np.unique(np.asarray(only) // DAY_MS))
        merged = merge_days([], chunk.take(keep), days[keep])
        now = datetime.now(UTC)
        rows = []
        for day, row in self._sealed(index, merged):
            row.update(k_user=s.user_id, k_space=s.space.value, k_metric=index, k_day=day)
            row.update(k_job=job_key, updated_at=now)
            rows.append(row)
        self._update_rows(conn, rows)

    # -- import jobs --------------------------------------------------------------------

    def finalize_job(self, conn: Connection, job_id: str) -> int:
        """Make a job's pending chunks visible; pending samples win over visible ones.

        Returns how many samples are new or changed in the visible data: what
        the job really added, whatever it re-wrote.
        """
        if not job_id:
            raise ValueError("a job id is required (the empty key is the visible data)")
        s = self.session
        self.session.audit(conn, "series.write", target=TARGET)
        p, v = sc.alias("p"), sc.alias("v")
        pairs = conn.execute(
            sa.select(p.c.metric_index, p.c.day, p.c.payload, v.c.payload.label("visible"))
            .join(
                v,
                sa.and_(
                    v.c.user_id == p.c.user_id,
                    v.c.space == p.c.space,
                    v.c.metric_index == p.c.metric_index,
                    v.c.day == p.c.day,
                    v.c.job_key == "",
                ),
            )
            .where(p.c.user_id == s.user_id, p.c.space == s.space.value, p.c.job_key == job_id)
            .with_for_update()
        ).all()
        now = datetime.now(UTC)
        updates: list[dict[str, Any]] = []
        added = 0
        by_metric: dict[bytes, list[tuple[int, Any]]] = {}
        for r in pairs:
            by_metric.setdefault(bytes(r.metric_index), []).append((int(r.day), r))
        for index, rows in by_metric.items():
            rows.sort(key=lambda dr: dr[0])  # days in order: the merge then sorts nothing
            for lo in range(0, len(rows), _FINALIZE_DAYS):
                part = rows[lo : lo + _FINALIZE_DAYS]
                visible = [(d, self._load(r.visible, _row_id(index, d))) for d, r in part]
                pending = [(d, self._load(r.payload, _row_id(index, d))) for d, r in part]
                merged = merge_days(visible, pending)
                added += int(merged.changed.sum())
                for day, row in self._sealed(index, merged):
                    row.update(k_user=s.user_id, k_space=s.space.value, k_metric=index, k_day=day)
                    row.update(k_job="", updated_at=now)
                    updates.append(row)
        self._update_rows(conn, updates)
        if pairs:
            conn.execute(
                sc.delete().where(
                    sc.c.user_id == s.user_id,
                    sc.c.space == s.space.value,
                    sc.c.metric_index == sa.bindparam("k_metric"),
                    sc.c.day == sa.bindparam("k_day"),
                    sc.c.job_key == job_id,
                ),
                [{"k_metric": bytes(r.metric_index), "k_day": int(r.day)} for r in pairs],
            )
        # What is left has no visible twin: it becomes visible as it is.
        alone = sa.and_(
            sc.c.user_id == s.user_id, sc.c.space == s.space.value, sc.c.job_key == job_id
        )
        added += int(
            conn.execute(sa.select(sa.func.coalesce(sa.func.sum(sc.c.n), 0)).where(alone)).scalar()
            or 0
        )
        conn.execute(
            sc.update()
            .where(sc.c.user_id == s.user_id, sc.c.space == s.space.value, sc.c.job_key == job_id)
            .values(job_key="", updated_at=now)
        )
        return added

    def discard_job(self, conn: Connection, job_id: str) -> int:
        """Delete a job's pending chunks; returns how many there were."""
        if not job_id:
            raise ValueError("a job id is required (the empty key is the visible data)")
        s = self.session
        self.session.audit(conn, "series.write", target=TARGET)
        result = conn.execute(
            sc.delete().where(
                sc.c.user_id == s.user_id, sc.c.space == s.space.value, sc.c.job_key == job_id
            )
        )
        return int(result.rowcount)

    # -- reading ------------------------------------------------------------------------

    def _select_days(
        self,
        conn: Connection,
        column: sa.Column[Any],
        metric: str,
        start_ms: int | None,
        end_ms: int | None,
    ) -> tuple[bytes, Sequence[Row[int, Any]]]:
        index = self._metric_index(metric)
        first, last = _day_bounds(start_ms, end_ms)
        query = sa.select(sc.c.day, column).where(*self._scope(index, ""))
        # The day range uses the primary key; first/last_ms then drop days whose
        # samples all lie outside a window that starts or ends mid-day.
        if first is not None:
            query = query.where(sc.c.day >= first, sc.c.last_ms >= start_ms)
        if last is not None:
            query = query.where(sc.c.day <= last, sc.c.first_ms < end_ms)
        return index, conn.execute(query.order_by(sc.c.day)).all()

    def daily(
        self, metric: str, start_ms: int | None = None, end_ms: int | None = None
    ) -> list[DayAggregate]:
        """Whole-day aggregates of every day with samples in the window, oldest first.

        Reads only the small stats envelopes; sample payloads are never decoded.
        """
        with self.session.begin() as conn:
            self.session.audit(conn, "series.read", target=TARGET)
            index, rows = self._select_days(conn, sc.c.stats, metric, start_ms, end_ms)
        out: list[DayAggregate] = []
        for day, envelope in rows:
            raw = self._open(envelope, _row_id(index, day), "stats")
            try:
                st = DayStats.unpack(raw)
            except ValueError as exc:
                raise StoreError(f"series day statistics could not be decoded: {exc}") from None
            out.append(
                DayAggregate(_EPOCH + timedelta(days=day), st.n, st.sum, st.min, st.max, st.mean)
            )
        return out

    def samples(self, metric: str, start_ms: int, end_ms: int) -> ChunkData:
        """The visible samples with ``start_ms <= t_ms < end_ms``, sorted by time."""
        with self.session.begin() as conn:
            self.session.audit(conn, "series.read", target=TARGET)
            index, rows = self._select_days(conn, sc.c.payload, metric, start_ms, end_ms)
        data = _concat_sorted([self._load(payload, _row_id(index, day)) for day, payload in rows])
        inside = (data.t_ms >= start_ms) & (data.t_ms < end_ms)
        return data if bool(inside.all()) else data.take(inside)
