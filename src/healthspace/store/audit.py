"""A hash-chained audit log: who did what, when, to which space. Never contents.

Each user has a chain (system events use user id ""). Row ``seq`` carries
``hash = SHA-256(prev_hash || canonical(row))``; editing or deleting any row
breaks the chain at that index, which :func:`verify_chain` reports.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from healthspace.store.engine import reader
from healthspace.store.tables import audit_log

__all__ = ["ChainBreak", "ChainReport", "append", "verify_chain"]

GENESIS = bytes(32)
SYSTEM = ""


def _clean(text: str | None, limit: int) -> str | None:
    # One line, printable: a user-controlled string must not forge log lines.
    if text is None:
        return None
    out = "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)
    return out[:limit]


def _digest(prev: bytes, row: dict[str, object]) -> bytes:
    at = row["at"]
    assert isinstance(at, datetime)
    fields = [
        str(row["user_id"]),
        str(row["seq"]),
        at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        str(row["actor"]),
        str(row["action"]),
        str(row["space"] or ""),
        str(row["target"] or ""),
        str(row["outcome"]),
    ]
    h = hashlib.sha256(prev)
    for f in fields:
        raw = f.encode()
        h.update(len(raw).to_bytes(4, "big"))
        h.update(raw)
    return h.digest()


def append(
    conn: Connection,
    *,
    user_id: str,
    actor: str,
    action: str,
    space: str | None = None,
    target: str | None = None,
    outcome: str = "ok",
) -> None:
    """Append one event inside the caller's transaction."""
    last = conn.execute(
        sa.select(audit_log.c.seq, audit_log.c.hash)
        .where(audit_log.c.user_id == user_id)
        .order_by(audit_log.c.seq.desc())
        .limit(1)
        .with_for_update()
    ).first()
    seq, prev = (0, GENESIS) if last is None else (int(last.seq) + 1, bytes(last.hash))
    # Microsecond precision survives every engine's timestamp type unchanged.
    row: dict[str, object] = {
        "user_id": user_id,
        "seq": seq,
        "at": datetime.now(UTC),
        "actor": _clean(actor, 128) or "",
        "action": _clean(action, 64) or "",
        "space": space,
        "target": _clean(target, 255),
        "outcome": _clean(outcome, 16) or "",
    }
    row["prev_hash"] = prev
    row["hash"] = _digest(prev, row)
    conn.execute(audit_log.insert().values(**row))


@dataclass(frozen=True)
class ChainBreak:
    user_id: str
    index: int
    reason: str


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    rows: int
    breaks: tuple[ChainBreak, ...]


def verify_chain(engine: Engine, user_id: str | None = None) -> ChainReport:
    """Recompute every chain (or one user's); report the first break in each."""
    query = sa.select(audit_log).order_by(audit_log.c.user_id, audit_log.c.seq)
    if user_id is not None:
        query = query.where(audit_log.c.user_id == user_id)
    breaks: list[ChainBreak] = []
    rows = 0
    current: str | None = None
    prev = GENESIS
    expected_seq = 0
    broken: set[str] = set()
    with reader(engine) as conn:
        for row in conn.execute(query).mappings():
            rows += 1
            uid = str(row["user_id"])
            if uid != current:
                current, prev, expected_seq = uid, GENESIS, 0
            if uid in broken:
                continue
            at = row["at"]
            if at.tzinfo is None:  # SQLite returns naive datetimes; we store UTC
                at = at.replace(tzinfo=UTC)
            data = dict(row)
            data["at"] = at
            reason = None
            if int(row["seq"]) != expected_seq:
                reason = f"missing or reordered row (expected seq {expected_seq})"
            elif bytes(row["prev_hash"]) != prev:
                reason = "prev_hash does not match the previous row"
            elif _digest(prev, data) != bytes(row["hash"]):
                reason = "row contents do not match its hash"
            if reason is not None:
                breaks.append(ChainBreak(uid, expected_seq, reason))
                broken.add(uid)
                continue
            prev = bytes(row["hash"])
            expected_seq += 1
        conn.rollback()
    return ChainReport(ok=not breaks, rows=rows, breaks=tuple(breaks))
