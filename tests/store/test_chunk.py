"""The chunk codec: lossless round trips, safe decoding of garbage, merge semantics."""

from __future__ import annotations

import contextlib
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from healthspace.store._chunk import FORMAT_VERSION, ChunkData, decode, empty, encode
from healthspace.store._chunk_days import DayChunks, encode_days, merge_days
from healthspace.store._chunk_stats import DayStats, stats_days, stats_of
from tests.store import _chunk_reference as reference
from tests.store._chunk_reference import merge, merge_counting, normalize

DAY = 86_400_000


def cd(t: object, d: object, v: object, s: object, sources: tuple[str, ...]) -> ChunkData:
    """A ChunkData from lists or arrays of any dtype (the constructor coerces them)."""
    return ChunkData(
        np.asarray(t, dtype=np.int64),
        np.asarray(d, dtype=np.int64),
        np.asarray(v, dtype=np.float64),
        np.asarray(s, dtype=np.uint16),
        sources,
    )


@st.composite
def chunks(
    draw: st.DrawFn,
    *,
    max_size: int = 40,
    t_range: tuple[int, int] = (-(2**63), 2**63 - 1),
    finite: bool = False,
) -> ChunkData:
    n = draw(st.integers(0, max_size))
    sources = tuple(draw(st.lists(st.text(max_size=8), min_size=1, max_size=4)))
    ints = st.integers(*t_range)
    t = draw(hnp.arrays(np.int64, n, elements=ints))
    dur = draw(hnp.arrays(np.int64, n, elements=st.integers(-(2**63), 2**63 - 1)))
    floats = st.floats(allow_nan=not finite, allow_infinity=not finite, width=64)
    values = draw(hnp.arrays(np.float64, n, elements=floats | st.integers(-500, 500).map(float)))
    src = draw(hnp.arrays(np.uint16, n, elements=st.integers(0, len(sources) - 1)))
    return ChunkData(t, dur, values, src, sources)


@st.composite
def small_key_chunks(draw: st.DrawFn) -> ChunkData:
    """Few distinct keys, so merges see plenty of collisions."""
    n = draw(st.integers(0, 30))
    sources = tuple(draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3)))
    t = draw(hnp.arrays(np.int64, n, elements=st.integers(0, 6)))
    dur = draw(hnp.arrays(np.int64, n, elements=st.integers(0, 1)))
    values = draw(hnp.arrays(np.float64, n, elements=st.integers(0, 3).map(float)))
    src = draw(hnp.arrays(np.uint16, n, elements=st.integers(0, len(sources) - 1)))
    return ChunkData(t, dur, values, src, sources)


def as_dict(chunk: ChunkData) -> dict[tuple[int, int, str], int]:
    """Reference semantics: key -> value bits, later rows overwrite earlier ones."""
    out: dict[tuple[int, int, str], int] = {}
    for t, d, v, s in zip(
        chunk.t_ms.tolist(),
        chunk.duration_ms.tolist(),
        chunk.values.view(np.uint64).tolist(),
        chunk.source_names(),
        strict=True,
    ):
        out[(t, d, s)] = v
    return out


def is_canonical(chunk: ChunkData) -> bool:
    t, d = chunk.t_ms.tolist(), chunk.duration_ms.tolist()
    keys = list(zip(t, d, chunk.source_names(), strict=True))
    return keys == sorted(set(keys)) and list(chunk.sources) == sorted(set(chunk.sources))


def minute_day(day: int = 19_000, seed: int = 0) -> ChunkData:
    rng = np.random.default_rng(seed)
    t = day * DAY + np.arange(1440, dtype=np.int64) * 60_000
    hr = np.round(65 + 12 * np.sin(np.arange(1440) / 1440 * 2 * np.pi) + rng.normal(0, 4, 1440))
    return cd(t, np.full(1440, 60_000), hr, np.zeros(1440), ("watch",))


# --- round trips ----------------------------------------------------------------------


@given(chunks())
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_round_trip_is_bit_exact_for_any_columns(chunk: ChunkData) -> None:
    data = encode(chunk)
    assert data[0] == FORMAT_VERSION
    back = decode(data)
    assert back == chunk
    assert back.values.tobytes() == chunk.values.tobytes()  # NaN payloads, -0.0 included


@given(chunks(t_range=(0, 10 * DAY), finite=True))
def test_round_trip_of_decimal_values(chunk: ChunkData) -> None:
    values = np.round(chunk.values % 100, 2)
    scaled = cd(chunk.t_ms, chunk.duration_ms, values, chunk.source_idx, chunk.sources)
    assert decode(encode(scaled)) == scaled


@pytest.mark.parametrize("value", [-0.0, 0.1, 5.4, 1e300, 2.0**52, -(2.0**53), math.pi])
def test_round_trip_of_tricky_values(value: float) -> None:
    chunk = cd([0, 1], [0, 0], [value, 1.0], [0, 0], ("s",))
    back = decode(encode(chunk))
    assert back.values.tobytes() == chunk.values.tobytes()


def test_empty_round_trip() -> None:
    assert decode(encode(empty())) == empty()
    assert len(decode(encode(empty()))) == 0


def test_minute_heart_rate_compresses_below_one_byte_per_sample() -> None:
    day = minute_day()
    assert len(encode(day)) / len(day) < 1.0


# --- decoding hostile input ------------------------------------------------------------


@given(st.binary(max_size=200))
def test_garbage_raises_value_error_only(data: bytes) -> None:
    with contextlib.suppress(ValueError):
        decode(data)


@given(chunks(max_size=10), st.data())
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_corrupted_chunk_decodes_or_raises_value_error(
    chunk: ChunkData, data: st.DataObject
) -> None:
    raw = bytearray(encode(chunk))
    cut = data.draw(st.integers(0, len(raw)))
    flips = data.draw(st.lists(st.tuples(st.integers(0, len(raw) - 1), st.integers(1, 255))))
    for pos, mask in flips:
        raw[pos] ^= mask
    with contextlib.suppress(ValueError):
        decode(bytes(raw[:cut]))


def test_forged_sizes_are_refused_before_decompressing() -> None:
    import struct

    import zstandard

    body = zstandard.ZstdCompressor().compress(bytes(26))
    forged = struct.pack("<BIHBBI", FORMAT_VERSION, 1 << 30, 1, 0, 0, 0) + body
    with pytest.raises(ValueError, match="header is invalid"):
        decode(forged)
    # A frame whose declared size disagrees with the header is refused too.
    forged = struct.pack("<BIHBBI", FORMAT_VERSION, 1 << 20, 0, 0, 0, 0) + body
    with pytest.raises(ValueError, match="wrong size"):
        decode(forged)


def test_unknown_version_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown chunk format"):
        decode(b"\x09" + encode(empty())[1:])
    with pytest.raises(ValueError, match="truncated"):
        decode(encode(empty())[:5])


def test_columns_are_validated() -> None:
    with pytest.raises(ValueError, match="length"):
        cd([0, 0], [0], [0, 0], [0, 0], ("s",))
    with pytest.raises(ValueError, match="source_idx"):
        cd([0], [0], [0], [1], ("s",))
    with pytest.raises(ValueError, match="one-dimensional"):
        cd([[0]], [0], [0], [0], ("s",))


# --- canonical form and merge -------------------------------------------------------------


@given(small_key_chunks())
def test_normalize_sorts_and_keeps_the_last_duplicate(chunk: ChunkData) -> None:
    norm = normalize(chunk)
    assert is_canonical(norm)
    assert as_dict(norm) == as_dict(chunk)
    assert normalize(norm) == norm


@given(small_key_chunks())
def test_merge_with_itself_is_idempotent(chunk: ChunkData) -> None:
    a = normalize(chunk)
    assert merge(a, a) == a
    assert merge_counting(a, a)[1] == 0
    assert merge(a, chunk) == a


@given(small_key_chunks(), small_key_chunks())
def test_merge_is_a_union_where_new_wins(old: ChunkData, new: ChunkData) -> None:
    old = normalize(old)
    merged, changed = merge_counting(old, new)
    expected = as_dict(old) | as_dict(new)
    assert as_dict(merged) == expected
    assert is_canonical(merged)
    before = as_dict(old)
    assert changed == sum(1 for k, v in as_dict(new).items() if before.get(k) != v)
    # Merging the same new data again is a no-op.
    assert merge_counting(merged, new) == (merged, 0)


@given(chunks(max_size=15))
def test_merge_with_empty_is_normalize(chunk: ChunkData) -> None:
    assert merge(empty(), chunk) == normalize(chunk)
    assert merge(normalize(chunk), empty()) == normalize(chunk)


def test_merge_new_value_wins_for_the_same_key() -> None:
    old = cd([1, 2], [0, 0], [10.0, 20.0], [0, 0], ("w",))
    new = cd([2, 3], [0, 0], [99.0, 30.0], [0, 0], ("w",))
    merged, changed = merge_counting(old, new)
    assert merged.t_ms.tolist() == [1, 2, 3]
    assert merged.values.tolist() == [10.0, 99.0, 30.0]
    assert changed == 2


def test_same_time_from_two_sources_is_kept_twice() -> None:
    old = cd([1], [0], [10.0], [0], ("watch",))
    new = cd([1], [0], [11.0], [0], ("phone",))
    merged = merge(old, new)
    assert merged.sources == ("phone", "watch")
    assert merged.source_names() == ["phone", "watch"]
    assert merged.values.tolist() == [11.0, 10.0]


# --- statistics ------------------------------------------------------------------------------


@given(chunks(max_size=30, finite=True, t_range=(-(2**62), 2**62)))
def test_stats_match_numpy_and_round_trip(chunk: ChunkData) -> None:
    stats = stats_of(chunk)
    assert DayStats.unpack(stats.pack()) == stats or len(chunk) == 0
    assert stats.n == len(chunk)
    if len(chunk):
        with np.errstate(over="ignore"):
            assert stats.sum == float(np.sum(chunk.values))
        assert stats.min == float(chunk.values.min())
        assert stats.max == float(chunk.values.max())
        assert stats.first_ms == int(chunk.t_ms.min())
        assert stats.last_ms == int(chunk.t_ms.max())


def test_stats_of_empty_chunk() -> None:
    stats = stats_of(empty())
    assert stats.n == 0
    assert math.isnan(stats.min)
    assert math.isnan(stats.mean)
    back = DayStats.unpack(stats.pack())
    assert back.n == 0
    assert math.isnan(back.max)


def test_stats_mean() -> None:
    assert stats_of(minute_day()).mean == pytest.approx(float(minute_day().values.mean()))


@pytest.mark.parametrize("data", [b"", b"\x01" * 10, b"\x02" + bytes(48)])
def test_malformed_stats_raise_value_error(data: bytes) -> None:
    with pytest.raises(ValueError, match="malformed"):
        DayStats.unpack(data)


# --- the faster codec against the reference -------------------------------------------------


tricky_floats = st.sampled_from(
    [0.0, -0.0, 0.1, 0.25, 5.4, 1e-3, 123.456, 2.0**52 - 1, 2.0**52, 2.0**49 + 0.5, 4.5e12]
)
value_kinds = st.sampled_from(["int", "d1", "d3", "float", "tricky", "any"])


@st.composite
def values_of(draw: st.DrawFn, n: int) -> np.ndarray:
    """Values of one day: whole numbers, decimals, arbitrary bits, or a mix near the
    edges of the decimal mode (2**52, -0.0, NaN)."""
    kind = draw(value_kinds)
    if kind == "int":
        ints = st.integers(-(2**53), 2**53) if draw(st.booleans()) else st.integers(0, 250)
        return draw(hnp.arrays(np.float64, n, elements=ints.map(float)))
    if kind in ("d1", "d3"):
        raw = draw(hnp.arrays(np.float64, n, elements=st.floats(-1e6, 1e6)))
        return np.round(raw, 1 if kind == "d1" else 3)
    if kind == "float":
        return draw(hnp.arrays(np.float64, n, elements=st.floats(width=64)))
    if kind == "tricky":
        return draw(hnp.arrays(np.float64, n, elements=tricky_floats))
    return draw(hnp.arrays(np.float64, n, elements=tricky_floats | st.floats(width=64)))


@given(chunks())
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_encode_matches_the_reference_codec_byte_for_byte(chunk: ChunkData) -> None:
    data = encode(chunk)
    assert data == reference.encode(chunk)
    assert decode(data) == reference.decode(data)


@given(chunks(max_size=60), st.data())
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_decimal_modes_match_the_reference_codec(chunk: ChunkData, data: st.DataObject) -> None:
    values = data.draw(values_of(len(chunk)))
    chunk = cd(chunk.t_ms, chunk.duration_ms, values, chunk.source_idx, chunk.sources)
    encoded = encode(chunk)
    assert encoded == reference.encode(chunk)
    assert decode(encoded) == chunk
    assert decode(encoded).values.tobytes() == reference.decode(encoded).values.tobytes()


def test_chunks_of_the_reference_codec_decode() -> None:
    """Chunks already at rest (written by the first codec) still decode, bit for bit."""
    for chunk in (minute_day(), empty(), cd([5, 1], [0, 2], [-0.0, math.nan], [1, 0], ("b", "a"))):
        stored = reference.encode(chunk)
        back = decode(stored)
        assert back == chunk
        assert back.values.tobytes() == chunk.values.tobytes()
        assert encode(back) == stored


# --- merge_days: many days at once, the same as one day at a time -----------------------------


@st.composite
def day_rows(draw: st.DrawFn, *, days: int = 4, max_size: int = 40) -> ChunkData:
    """Rows over a few days with few distinct keys (plenty of duplicates and collisions,
    equal times with other durations or sources), values of every kind."""
    n = draw(st.integers(0, max_size))
    sources = tuple(draw(st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=4)))
    day = draw(hnp.arrays(np.int64, n, elements=st.integers(0, days - 1)))
    offset = draw(hnp.arrays(np.int64, n, elements=st.sampled_from([0, 1, 2, DAY - 1])))
    dur = draw(hnp.arrays(np.int64, n, elements=st.integers(0, 2)))
    values = draw(values_of(n)) if draw(st.booleans()) else np.floor(day + offset % 3 + dur)
    src = draw(hnp.arrays(np.uint16, n, elements=st.integers(0, len(sources) - 1)))
    if draw(st.booleans()):
        order = np.lexsort((dur, offset, day))
        day, offset, dur, values, src = (
            day[order],
            offset[order],
            dur[order],
            values[order],
            src[order],
        )
    return cd((19_000 + day) * DAY + offset, dur, values, src, sources)


def split_days(chunk: ChunkData) -> dict[int, ChunkData]:
    days = chunk.t_ms // DAY
    return {day: chunk.take(days == day) for day in np.unique(days).tolist()}


@st.composite
def stored_days(draw: st.DrawFn) -> dict[int, ChunkData]:
    """What a repository holds: canonical chunks (or, now and then, not canonical)."""
    raw = split_days(draw(day_rows()))
    return {day: c if draw(st.booleans()) else normalize(c) for day, c in raw.items()}


def check_against_one_day_at_a_time(
    result: DayChunks, old: dict[int, ChunkData], new: dict[int, ChunkData]
) -> None:
    want = {}
    for day in sorted(old.keys() | new.keys()):
        merged, changed = merge_counting(old.get(day, empty()), new.get(day, empty()))
        if len(merged):
            want[day] = (merged, changed)
    assert result.days.tolist() == list(want)
    assert np.diff(result.bounds).min(initial=1) >= 1
    for i, (merged, changed) in enumerate(want.values()):
        chunk = result.chunk(i)
        assert chunk == merged
        assert int(result.changed[i]) == changed
        # Columns fit for the constructor's checks, as it would have made them.
        assert (
            ChunkData(chunk.t_ms, chunk.duration_ms, chunk.values, chunk.source_idx, chunk.sources)
            == chunk
        )
    which = list(range(len(result)))
    encoded = encode_days(result, which)
    assert encoded == [reference.encode(m) for m, _ in want.values()]
    stats = stats_days(result, which)
    assert [s.pack() for s in stats] == [stats_of(m).pack() for m, _ in want.values()]


@given(day_rows(max_size=60))
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_merge_days_of_new_days_only_is_merge_of_each_day(new: ChunkData) -> None:
    """The fast path (nothing stored yet) gives what the general one gives, day by day."""
    result = merge_days([], new, new.t_ms // DAY)
    check_against_one_day_at_a_time(result, {}, split_days(new))


@given(st.data())
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_merge_days_is_merge_of_each_day(data: st.DataObject) -> None:
    old = data.draw(stored_days())
    new = data.draw(day_rows())
    if data.draw(st.booleans()):  # a re-import: some stored days come again, unchanged
        again = [c for day, c in old.items() if data.draw(st.booleans())]
        new = reference_concat([*again, new])
    result = merge_days(sorted(old.items()), new, new.t_ms // DAY)
    check_against_one_day_at_a_time(result, old, split_days(new))


@given(st.data())
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_merge_days_of_chunk_pairs_is_merge_of_each_pair(data: st.DataObject) -> None:
    """As finalize_job calls it: one old and one new chunk per day."""
    old = data.draw(stored_days())
    new = data.draw(stored_days())
    for day in list(old) if data.draw(st.booleans()) else []:
        new[day] = old[day]  # pending chunks equal to the visible ones
    days = sorted(old.keys() & new.keys())
    result = merge_days([(d, old[d]) for d in days], [(d, new[d]) for d in days])
    check_against_one_day_at_a_time(result, {d: old[d] for d in days}, {d: new[d] for d in days})


def reference_concat(chunks: list[ChunkData]) -> ChunkData:
    names = sorted({name for c in chunks for name in c.sources})
    src = [np.array([names.index(n) for n in c.sources], np.uint16)[c.source_idx] for c in chunks]
    return cd(
        np.concatenate([c.t_ms for c in chunks]),
        np.concatenate([c.duration_ms for c in chunks]),
        np.concatenate([c.values for c in chunks]),
        np.concatenate(src),
        tuple(names),
    )


def test_merge_days_keeps_a_stored_chunk_under_its_own_day() -> None:
    """Rows are grouped by the day they are stored under, as one chunk at a time would."""
    odd = cd([19_000 * DAY + 5, 7], [0, 0], [1.0, 2.0], [0, 0], ("w",))  # 7 is not day 19000
    new = cd([19_000 * DAY + 5], [0], [3.0], [0], ("w",))
    result = merge_days([(19_000, odd)], new, new.t_ms // DAY)
    want, changed = merge_counting(odd, new)
    assert result.days.tolist() == [19_000]
    assert result.chunk(0) == want
    assert result.changed.tolist() == [changed]


def test_merge_days_with_many_sources_names_each_day_its_own() -> None:
    t = (19_000 + np.arange(6)) * DAY
    new = cd(t, np.zeros(6), np.arange(6.0), [5, 4, 3, 2, 1, 0], ("f", "e", "d", "c", "b", "a"))
    result = merge_days([], new, t // DAY)
    assert list(result.sources) == [("a",), ("b",), ("c",), ("d",), ("e",), ("f",)]
    assert result.source_idx.tolist() == [0] * 6


def test_merge_days_needs_days_for_a_chunk() -> None:
    with pytest.raises(ValueError, match="new_days"):
        merge_days([], minute_day())


def test_take_validates_what_it_cannot_trust() -> None:
    chunk = minute_day()
    assert len(chunk.take(3)) == 1  # a scalar index: one row, as before
    picked = chunk.take(slice(None, None, 7))
    assert picked.t_ms.flags.c_contiguous
    assert picked == cd(
        chunk.t_ms[::7],
        chunk.duration_ms[::7],
        chunk.values[::7],
        chunk.source_idx[::7],
        ("watch",),
    )
    with pytest.raises(ValueError, match="one-dimensional"):
        chunk.take(np.array([[0, 1]]))


def test_merge_days_needs_one_day_per_row() -> None:
    chunk = minute_day()
    with pytest.raises(ValueError, match="broadcast"):
        merge_days([], chunk, chunk.t_ms[:5] // DAY)
