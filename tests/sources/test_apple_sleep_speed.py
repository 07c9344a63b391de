"""Apple Health sleep sessions are built without pydantic validation (see
``_apple_records``); they must be exactly what the validating builder made before.

The oracle below is that builder, kept verbatim. Every night, from hand-picked edges to
generated ones, is built both ways and compared: the JSON bytes, equality, ``repr``,
hashes, the fields set, the JSON round trip, and, for errors, the exception raised.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from healthspace.model import (
    SLEEP_STAGE_VALUES,
    PartialDateTime,
    Precision,
    Provenance,
    SleepSession,
    SleepStagePeriod,
    record_from_json,
    record_to_json,
)
from healthspace.model.wellness import SleepStage
from healthspace.sources._apple_records import moment, moments, sleep_session, stable_id
from healthspace.sources._apple_series import SleepNight, sleep_nights

PROV = Provenance(source="apple_health", file_name="export.zip", original_ref="sleep session 1")
HOUR = 3_600_000
MIN = 60_000
# 2022-01-06T02:15:53Z, a whole second; a night starts around here unless said otherwise.
T0 = 1_641_435_353_000
FIRST_MS = int((datetime(1, 1, 1, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds())
FIRST_MS *= 1000  # 0001-01-01T00:00:00Z
LAST_MS = 253_402_300_799_000  # 9999-12-31T23:59:59Z


# -- the oracle: the validating builder as it was -----------------------------------------


def _old_zone(offset_min: int) -> str:
    if offset_min == 0:
        return "Z"
    hours, minutes = divmod(abs(offset_min), 60)
    return f"{'-' if offset_min < 0 else '+'}{hours:02d}:{minutes:02d}"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def old_moments(ms: npt.NDArray[np.int64], offset_min: int) -> list[PartialDateTime]:
    local = (ms + offset_min * 60_000).astype("datetime64[ms]")
    precise = ms % 1000 != 0
    texts = np.datetime_as_string(local, unit="ms" if bool(precise.any()) else "s").tolist()
    zone = _old_zone(offset_min)
    made: dict[int, PartialDateTime] = {}
    out: list[PartialDateTime] = []
    for t, text, fine in zip(ms.tolist(), texts, precise.tolist(), strict=True):
        found = made.get(t)
        if found is None:
            found = made[t] = PartialDateTime(
                original=text + zone,
                precision=Precision.millisecond if fine else Precision.second,
                start=_EPOCH + timedelta(milliseconds=t),
                tz_known=True,
                utc_offset_minutes=offset_min,
            )
        out.append(found)
    return out


def old_sleep_session(night: SleepNight, prov: Provenance) -> SleepSession:
    off = night.offset_min
    ends = night.t + night.d
    bounds = old_moments(np.concatenate((night.t, ends)), off)
    n = len(night.t)
    stages = tuple(
        SleepStagePeriod(stage=SLEEP_STAGE_VALUES[int(code)], start=bounds[i], end=bounds[n + i])
        for i, code in enumerate(night.codes.tolist())
    )
    first = int(night.t[0])
    last = int(ends.max())
    return SleepSession(
        source_id=stable_id("sleep", night.source, str(first)),
        provenance=prov,
        start=bounds[0] if n else old_moments(np.array([first]), off)[0],
        end=old_moments(np.array([last], dtype=np.int64), off)[0],
        stages=stages,
        source_name=night.source or None,
        device=night.device or None,
    )


# -- comparing ----------------------------------------------------------------------------


def _slots(obj: BaseModel) -> tuple[Any, ...]:
    get = object.__getattribute__
    return (
        get(obj, "__dict__"),
        get(obj, "__pydantic_fields_set__"),
        get(obj, "__pydantic_extra__"),
        get(obj, "__pydantic_private__"),
    )


def _moments_of(session: SleepSession) -> Iterator[PartialDateTime]:
    yield session.start
    yield session.end
    for period in session.stages:
        yield period.start
        yield period.end


def _outcome(call: Callable[[], object]) -> object:
    """What ``call`` returns, or the type it raises (local times past 9999 cannot be shown)."""
    try:
        return call()
    except OverflowError as exc:
        return type(exc)


def assert_same(new: SleepSession, old: SleepSession) -> None:
    assert record_to_json(new) == record_to_json(old)
    assert new == old
    assert repr(new) == repr(old)  # field order, datetimes and their tzinfo included
    assert hash(new) == hash(old)
    assert _slots(new)[1:] == _slots(old)[1:]
    assert type(new.stages) is tuple
    assert len(new.stages) == len(old.stages)
    for a, b in zip(new.stages, old.stages, strict=True):
        assert _slots(a) == _slots(b)
        assert hash(a) == hash(b)
    for p, q in zip(_moments_of(new), _moments_of(old), strict=True):
        assert _slots(p) == _slots(q)
        assert type(p.precision) is Precision
        assert p.start.tzinfo is q.start.tzinfo is UTC
        assert hash(p) == hash(q)
        assert _outcome(p.isoformat) == _outcome(q.isoformat)
        assert _outcome(p.end) == _outcome(q.end)
    assert record_from_json(record_to_json(new)) == new
    # What was shared stays shared: equal instants are one object, as before.
    for a, b in zip(new.stages, new.stages[1:], strict=False):
        if a.end == b.start:
            assert a.end is b.start


def night(
    t: list[int],
    d: list[int],
    codes: list[float],
    offset_min: int = -480,
    source: str = "Alice’s Apple Watch",
    device: str = "Apple Watch",
) -> SleepNight:
    return SleepNight(
        source,
        device,
        offset_min,
        np.array(t, dtype=np.int64),
        np.array(d, dtype=np.int64),
        np.array(codes, dtype=np.float64),
    )


def contiguous(start: int, minutes: list[int], codes: list[float], offset_min: int) -> SleepNight:
    t, d, at = [], [], start
    for m in minutes:
        t.append(at)
        d.append(m * MIN)
        at += m * MIN
    return night(t, d, codes, offset_min)


# -- nights picked by hand -------------------------------------------------------------------

EDGES: dict[str, SleepNight] = {
    "one stage": night([T0], [1800_000], [0.0]),
    "contiguous stages share instants": contiguous(
        T0, [30, 45, 20, 60, 15], [3.0, 4.0, 3.0, 5.0, 2.0], -420
    ),
    "gaps and overlaps": night(
        [T0, T0 + 10 * MIN, T0 + 10 * MIN, T0 + 3 * HOUR],
        [20 * MIN, 5 * MIN, 0, 40 * MIN],
        [0.0, 3.0, 4.0, 1.0],
    ),
    "the longest stage is not the last": night([T0, T0 + MIN], [8 * HOUR, 2 * MIN], [0.0, 3.0]),
    "UTC": night([T0, T0 + HOUR], [HOUR, HOUR], [3.0, 4.0], 0),
    "half-hour zone, across local midnight": contiguous(
        T0 - 4 * HOUR, [90, 90, 90], [3.0, 5.0, 2.0], 330
    ),
    "+05:45": night([T0], [HOUR], [4.0], 345),
    "-09:30": night([T0], [HOUR], [4.0], -570),
    "+14:00": night([T0], [HOUR], [4.0], 840),
    "-23:59, the last valid offset": night([T0], [HOUR], [4.0], -1439),
    "across new year": contiguous(
        int(datetime(2023, 1, 1, 7, 30, tzinfo=UTC).timestamp() * 1000),
        [60, 60, 60],
        [3.0, 4.0, 5.0],
        -480,
    ),
    "across a leap day": contiguous(
        int(datetime(2024, 2, 29, 22, 0, tzinfo=UTC).timestamp() * 1000),
        [90, 90, 90],
        [3.0, 4.0, 5.0],
        60,
    ),
    "milliseconds everywhere": night([T0 + 123, T0 + HOUR + 7], [HOUR + 1, 999], [3.0, 4.0]),
    "milliseconds, last end a whole second": night([T0 + 250, T0 + MIN], [HOUR, 2 * HOUR], [3, 4]),
    "milliseconds, last end has one": night([T0, T0 + MIN], [HOUR, 2 * HOUR + 5], [3.0, 4.0]),
    "a single millisecond instant": night([T0 + 1], [0], [2.0]),
    "before 1970": contiguous(-86_400_000 * 400 + 17_000, [30, 30], [3.0, 4.0], -300),
    "year 1, east of UTC": night([FIRST_MS], [HOUR], [0.0], 600),
    "year 9999, local time in year 10000": night([LAST_MS - HOUR], [HOUR], [0.0], 300),
    "year 9999 with milliseconds": night([LAST_MS - HOUR + 5], [HOUR - 5], [0.0], 60),
    "integral codes as floats": night([T0, T0 + HOUR], [HOUR, HOUR], [5.0, 0.0]),
    "no source name or device": night([T0], [HOUR], [3.0], source="", device=""),
}


@pytest.mark.parametrize("name", EDGES)
def test_edge_nights_build_as_before(name: str) -> None:
    assert_same(sleep_session(EDGES[name], PROV), old_sleep_session(EDGES[name], PROV))


def test_numpy_offset_is_stored_as_int() -> None:
    n = EDGES["one stage"]
    odd = SleepNight(n.source, n.device, np.int64(-480), n.t, n.d, n.codes)  # type: ignore[arg-type]
    assert_same(sleep_session(odd, PROV), old_sleep_session(n, PROV))
    assert type(sleep_session(odd, PROV).start.utc_offset_minutes) is int


def _raised(build: Any, n: SleepNight) -> type[BaseException] | None:
    try:
        build(n, PROV)
    except Exception as exc:  # the type is what is compared
        return type(exc)
    return None


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (night([T0], [HOUR], [3.0], 1440), ValidationError),  # offset out of range
        (night([T0], [HOUR], [3.0], -2000), ValidationError),
        (night([T0], [HOUR], [9.0]), KeyError),  # a code sleep_nights would have dropped
        (night([], [], []), IndexError),
        (night([LAST_MS], [2000], [3.0]), OverflowError),  # ends past 9999
        (night([FIRST_MS - 1000], [2000], [3.0]), OverflowError),  # starts before year 1
    ],
    ids=["offset +24:00", "offset -33:20", "unknown code", "empty", "past 9999", "before 1"],
)
def test_bad_nights_fail_as_before(n: SleepNight, expected: type[BaseException]) -> None:
    assert _raised(old_sleep_session, n) is expected
    assert _raised(sleep_session, n) is expected


# -- nights as the importer groups them ----------------------------------------------------


def _stage_of(code: float) -> str | None:  # what the builder passes to sleep_nights
    return SLEEP_STAGE_VALUES.get(int(code)) if code == int(code) else None


def _samples(
    rows: list[tuple[str, int, int, float, int]],
) -> dict[tuple[str, str], tuple[list[Any], list[Any], list[Any], list[Any]]]:
    out: dict[tuple[str, str], tuple[list[Any], list[Any], list[Any], list[Any]]] = {}
    for source, t, d, code, off in rows:
        cols = out.setdefault((source, ""), ([], [], [], []))
        for col, value, dtype in zip(
            cols, (t, d, code, off), (np.int64, np.int64, np.float64, np.int64), strict=True
        ):
            col.append(np.array([value], dtype=dtype))
    return out


def test_grouped_nights_build_as_before() -> None:
    """Unknown codes dropped, a DST change within a night, local midnight crossed, a
    pause that splits a session, two sources, samples given out of order."""
    watch, phone = "Alice’s Apple Watch", "Alice’s iPhone"
    pst, pdt = -480, -420
    start = int(datetime(2023, 3, 12, 6, 30, tzinfo=UTC).timestamp() * 1000)  # 22:30 PST
    rows = [
        (watch, start, 40 * MIN, 3.0, pst),
        (watch, start + 40 * MIN, 30 * MIN, 7.0, pst),  # unknown: dropped
        (watch, start + 70 * MIN, 25 * MIN, 2.5, pst),  # not integral: dropped
        (watch, start + 40 * MIN, 50 * MIN, 4.0, pst),  # crosses local midnight
        (watch, start + 3 * HOUR, 60 * MIN, 5.0, pdt),  # after the clocks went forward
        (watch, start + 90 * MIN, 45 * MIN, 3.0, pst),
        (watch, start + 9 * HOUR, 30 * MIN, 2.0, pdt),  # > 2 h pause: a new session
        (watch, start + 24 * HOUR, 8 * HOUR + 5, 0.0, pdt),  # next night, a fraction
        (phone, start - 30 * MIN, 9 * HOUR, 0.0, pst),
        (phone, start + 23 * HOUR, 20 * MIN, -1.0, pdt),  # unknown: dropped
    ]
    nights = list(sleep_nights(_samples(rows), _stage_of))
    assert len(nights) == 4
    assert {n.offset_min for n in nights} == {pst, pdt}
    for n in nights:
        assert_same(sleep_session(n, PROV), old_sleep_session(n, PROV))


# -- generated nights ------------------------------------------------------------------------


@st.composite
def nights(draw: st.DrawFn) -> SleepNight:
    offset = draw(st.integers(-1439, 1439) | st.sampled_from([0, -480, -420, 60, 330, 345]))
    fine = draw(st.booleans())
    count = draw(st.integers(1, 25))
    span = count * (4 * HOUR + 2 * HOUR) + 2 * 86_400_000
    first = draw(
        st.integers(FIRST_MS + 86_400_000, LAST_MS - span)
        | st.integers(1_400_000_000_000, 1_800_000_000_000)
    )
    if not fine:
        first -= first % 1000
    t, d, at = [], [], first
    for _ in range(count):
        at += draw(st.sampled_from([0, 0, MIN, 2 * HOUR]) | st.integers(0, HOUR))
        length = draw(st.integers(0, 4 * HOUR))
        if not fine:
            at, length = at - at % 1000, length - length % 1000
        t.append(at)
        d.append(length)
        if draw(st.booleans()):
            at += length  # contiguous: this end is the next start
    codes = draw(
        st.lists(st.sampled_from(sorted(SLEEP_STAGE_VALUES)), min_size=count, max_size=count)
    )
    return night(t, d, [float(c) for c in codes], offset, draw(st.sampled_from(["", "Watch"])))


@given(nights())
def test_generated_nights_build_as_before(n: SleepNight) -> None:
    assert_same(sleep_session(n, PROV), old_sleep_session(n, PROV))


@given(
    st.lists(st.integers(FIRST_MS + 86_400_000, LAST_MS - 86_400_000), min_size=1, max_size=30),
    st.integers(-1439, 1439),
)
def test_moments_as_before(instants: list[int], offset: int) -> None:
    ms = np.array(instants, dtype=np.int64)
    new, old = moments(ms, offset), old_moments(ms, offset)
    assert [_slots(p) for p in new] == [_slots(q) for q in old]
    firsts = dict(zip(instants, new, strict=True))
    assert all(firsts[t] is p for t, p in zip(instants, new, strict=True))


# -- what the shortcut relies on ---------------------------------------------------------


def test_stage_names_are_sleep_stages() -> None:
    """Stages skip the Literal check: every name they can take must pass it."""
    assert set(SLEEP_STAGE_VALUES.values()) <= set(get_args(SleepStage))


@pytest.mark.parametrize("cls", [PartialDateTime, SleepStagePeriod, SleepSession])
def test_models_built_unvalidated_stay_plain(cls: type[BaseModel]) -> None:
    """Frozen, no extras, no private attributes, no post-init: what _trusted assumes."""
    assert cls.model_config.get("frozen") is True
    assert cls.model_config.get("extra") == "forbid"
    assert not cls.__private_attributes__
    assert not cls.__pydantic_post_init__


def test_shared_fields_set_survives_copies() -> None:
    session = sleep_session(EDGES["contiguous stages share instants"], PROV)
    first, second = session.stages[0], session.stages[1]
    changed = first.model_copy(update={"stage": "rem"})
    moved = first.start.model_copy(update={"original": "x"})
    assert changed.stage == "rem"
    assert moved.original == "x"
    assert second.model_fields_set == {"stage", "start", "end"}
    assert second.start.model_fields_set == set(PartialDateTime.model_fields)
    with pytest.raises(ValidationError):
        first.stage = "rem"


def test_moment_is_cached_and_unchanged() -> None:
    text = "2022-01-01 07:52:03 -0800"
    assert moment(text) == PartialDateTime.parse(text)
    assert moment(text) is moment(text)
    assert moment("2022-13-01 07:52:03 -0800") is None
    assert moment("") is None
    assert moment(None) is None
