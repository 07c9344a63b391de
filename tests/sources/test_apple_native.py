"""The native Apple Health scanner reads exactly what the pure-Python reference reads.

``scan_block`` uses the C scanner when it is built; ``scan_block_python`` is the
regex-and-element-reader path it replaces. Every sample export, a generated export
and hypothesis-built documents (attribute orders, odd values and dates, metadata and
HRV children, comments, workouts, correlations, entities) give the same scan.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from xml.etree import ElementTree
from xml.sax.saxutils import quoteattr

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from healthspace.sources import _apple_scan
from healthspace.sources._apple_input import body_blocks, read_head
from healthspace.sources._apple_scan import BlockScan, scan_block, scan_block_python
from tests.conftest import SHARED_DATA

APPLE = SHARED_DATA / "apple-health"
GENERATOR = SHARED_DATA.parent / "bench" / "gen_apple_export.py"

native = pytest.mark.skipif(not _apple_scan.NATIVE, reason="native scanner not built")


def canonical(scan: BlockScan) -> tuple[Any, ...]:
    """A scan as comparable data: rows in ordinal order with their keys, not key ids.

    Keys without the device: the Python path names a (type, source, unit) group's
    device after its first record in each run, the native scanner after each record's
    own device (see ``same_scan``).
    """
    rows = sorted(
        zip(
            scan.ordinal.tolist(),
            [(k[0], k[1], k[3]) for k in (scan.keys[i] for i in scan.key_idx.tolist())],
            scan.start_ms.tolist(),
            scan.end_ms.tolist(),
            scan.offset_min.tolist(),
            [repr(v) for v in scan.values.tolist()],  # repr: nan compares equal
            strict=True,
        )
    )
    elements = [(n, e.tag, e.attrs, raw) for n, e, raw in scan.elements]
    return scan.records, rows, sorted(scan.problems), elements


def device_oracle(block: bytes) -> list[str]:
    """Each top-level Record's device name, read by ElementTree: ``name:`` up to ``,``."""
    names = []
    for elem in ElementTree.fromstring(b"<r>" + block + b"</r>"):
        if elem.tag == "Record":
            found = re.search(r"name:([^,>]*)", elem.get("device", ""))
            names.append(found.group(1).strip() if found else "")
    return names


def same_scan(block: bytes, *, oracle: bool = True) -> BlockScan:
    """Native and Python scans of ``block`` agree; returns the native one.

    Devices are checked against ElementTree: the native scanner names each row's
    device after its own record (the Python path after its group's first record).
    """
    fast, reference = scan_block(block), scan_block_python(block)
    assert canonical(fast) == canonical(reference)
    if oracle:
        expected = device_oracle(block)
        for ordinal, i in zip(fast.ordinal.tolist(), fast.key_idx.tolist(), strict=True):
            assert fast.keys[i][2] == expected[ordinal]
    return fast


def blocks_of(path: Path) -> list[bytes]:
    with path.open("rb") as stream:
        _, first = read_head(stream, path.name)
        return list(body_blocks(stream, first, path.name))


def test_native_scanner_is_built_where_ci_runs() -> None:
    # The speed goals are measured with it; a silent fallback would hide a broken build.
    if os.environ.get("CI"):
        assert _apple_scan.NATIVE


@native
@pytest.mark.parametrize(
    "path", sorted(p for p in APPLE.rglob("*.xml") if "cda" not in p.name), ids=str
)
def test_sample_exports_scan_the_same(path: Path) -> None:
    blocks = blocks_of(path)
    assert blocks
    for block in blocks:
        same_scan(block)


@native
def test_generated_export_scans_the_same(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(GENERATOR), "--records", "30000", "--out-dir", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    blocks = blocks_of(tmp_path / "apple_health_export" / "export.xml")
    total = 0
    for block in blocks:
        total += same_scan(block).records
    assert total == 30_000


# -- hypothesis: documents made of every kind of piece --------------------------------------

DATES = st.one_of(
    st.builds(
        "{:04d}-{:02d}-{:02d} {:02d}:{:02d}:{:02d} {}{:02d}{:02d}".format,
        st.integers(1, 9999),
        st.integers(0, 13),
        st.integers(0, 32),
        st.integers(0, 24),
        st.integers(0, 60),
        st.integers(0, 60),
        st.sampled_from("+-"),
        st.integers(0, 24),
        st.integers(0, 60),
    ),
    st.sampled_from(
        [
            "2023-11-05 08:10:00 -0800",
            "2024-02-29 23:59:59 +1400",
            "2023-02-29 10:00:00 +0000",
            "20150616071916-0700",
            "2023-11-05T08:10:00Z",
            "2023-11-05",
            "",
            "yesterday",
        ]
    ),
)
VALUES = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.integers(-(10**6), 10**6).map(str),
    st.sampled_from(
        [
            "0",
            "-0",
            "72",
            "0.5",
            ".5",
            "5.",
            "1e-3",
            "1E400",
            "1,5",
            " 3",
            "nan",
            "inf",
            "",
            "abc",
            "0x10",
            "1_000",
            "HKCategoryValueSleepAnalysisAsleepCore",
            "HKCategoryValueSomethingNew",
        ]
    ),
)
NAMES = st.sampled_from(
    ["Alice's Apple Watch", "iPhone", "Withings", "AT&T Watch", "Ünïcode ☃", 'a "q" b', ""]
)
TYPES = st.sampled_from(
    [
        "HKQuantityTypeIdentifierHeartRate",
        "HKQuantityTypeIdentifierStepCount",
        "HKQuantityTypeIdentifierBodyMass",
        "HKCategoryTypeIdentifierSleepAnalysis",
        "HKCategoryTypeIdentifierMindfulSession",
        "HKQuantityTypeIdentifierSomethingNew",
    ]
)
DEVICES = st.one_of(
    st.just(None),
    NAMES.map(
        lambda name: (
            f"<<HKDevice: 0x283b38460>, name:{name}, manufacturer:Apple Inc., "
            "model:Watch, hardware:Watch6,1, software:9.0>"
        )
    ),
    NAMES.map(lambda name: f"<<HKDevice: 0x1>, model:iPhone, name:{name}>"),
    st.just("no name here"),
)


@st.composite
def records(draw: st.DrawFn) -> str:
    attrs: list[tuple[str, str]] = [("type", draw(TYPES))]
    attrs.append((draw(st.sampled_from(["sourceName", "sourceName", "source"])), draw(NAMES)))
    if draw(st.booleans()):
        attrs.append(("sourceVersion", "9.6.3"))
    device = draw(DEVICES)
    if device is not None:
        attrs.append(("device", device))
    if draw(st.booleans()):
        attrs.append(("unit", draw(st.sampled_from(["count/min", "count", "kg", "lb", ""]))))
    if draw(st.booleans()):
        attrs.append(("creationDate", "2023-11-05 08:20:00 -0800"))
    start = draw(DATES)
    attrs.append(("startDate", start))
    if draw(st.integers(0, 9)):
        attrs.append(("endDate", draw(st.one_of(st.just(start), DATES))))
    if draw(st.integers(0, 9)):
        attrs.append(("value", draw(VALUES)))
    if draw(st.booleans()):
        attrs.append(("HKMetadataKeyLegacy", "1"))
    if draw(st.integers(0, 3)) == 0:
        attrs = draw(st.permutations(attrs))
    head = "<Record" + "".join(
        f"{draw(st.sampled_from([' ', chr(10) + '  ', chr(9)]))}{name}={quoteattr(value)}"
        for name, value in attrs
    )
    children = draw(
        st.sampled_from(
            [
                "",
                '<MetadataEntry key="HKTimeZone" value="Europe/Paris"/>',
                '\n  <MetadataEntry key="a" value="1"/>\n  <MetadataEntry key="b" value="x"/>\n',
                "<HeartRateVariabilityMetadataList>"
                '<InstantaneousBeatsPerMinute bpm="61" time="8:10:01.23 AM"/>'
                '<InstantaneousBeatsPerMinute bpm="63" time="08:10:02,50"/>'
                "</HeartRateVariabilityMetadataList>",
            ]
        )
    )
    if not children and draw(st.booleans()):
        return head + draw(st.sampled_from(["/>", " />"]))
    return f"{head}>{children}</Record>"


OTHERS = st.sampled_from(
    [
        '<!-- a comment with <Record type="x"/> inside -->',
        '<Workout workoutActivityType="HKWorkoutActivityTypeRunning" duration="30" '
        'durationUnit="min" sourceName="Watch" startDate="2023-11-05 08:10:00 -0800" '
        'endDate="2023-11-05 08:40:00 -0800">'
        '<MetadataEntry key="HKIndoorWorkout" value="0"/>'
        '<WorkoutStatistics type="HKQuantityTypeIdentifierActiveEnergyBurned" '
        'startDate="2023-11-05 08:10:00 -0800" endDate="2023-11-05 08:40:00 -0800" '
        'sum="250" unit="kcal"/></Workout>',
        '<Correlation type="HKCorrelationTypeIdentifierBloodPressure" sourceName="Cuff" '
        'startDate="2023-11-05 08:10:00 -0800" endDate="2023-11-05 08:10:00 -0800">'
        '<Record type="HKQuantityTypeIdentifierBloodPressureSystolic" sourceName="Cuff" '
        'unit="mmHg" startDate="2023-11-05 08:10:00 -0800" '
        'endDate="2023-11-05 08:10:00 -0800" value="120"/></Correlation>',
        '<ActivitySummary dateComponents="2023-11-05" activeEnergyBurned="500"/>',
        "<?pi something?>",
        "some stray text",
    ]
)


@native
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(records(), records(), records(), OTHERS), min_size=1, max_size=40))
def test_hypothesis_documents_scan_the_same(pieces: list[str]) -> None:
    same_scan("\n".join(pieces).encode())


# -- what the native scanner adds: it keeps the good records around a broken one -----------


GOOD = (
    '<Record type="HKQuantityTypeIdentifierHeartRate" sourceName="W" unit="count/min" '
    'startDate="2023-11-05 08:10:00 -0800" endDate="2023-11-05 08:10:00 -0800" value="{}"/>'
)


@native
@pytest.mark.parametrize(
    "broken",
    [
        '<Record type="x" sourceName="W" startDate="2023-11-05 08:10:00 -0800"',
        '<Record type="x" type="y" startDate="2023-11-05 08:10:00 -0800"/>',
        '<Record type="x" startDate=2023/>',
        '<Record type="x"><Unknown></Record>',
    ],
)
def test_a_broken_record_is_reported_and_its_neighbours_kept(broken: str) -> None:
    block = "\n".join([GOOD.format(60), broken, GOOD.format(61)]).encode()
    scan = scan_block(block)
    assert 60.0 in scan.values.tolist()
    assert scan.problems or scan.records >= 2


@native
def test_scan_positions_and_errors_of_the_native_function() -> None:
    from healthspace.sources._apple_fast import scan

    data = (GOOD.format(1) + "<Workout/>" + GOOD.format(2)).encode()
    stop, count, keys, *_columns, odd = scan(data, 0)
    assert (stop, count, len(keys), odd) == (data.index(b"<Workout"), 1, 1, [])
    assert scan(data, data.index(b"<Workout"))[:2] == (data.index(b"<Workout"), 0)
    assert scan(data, len(data))[:2] == (len(data), 0)
    with pytest.raises(ValueError, match="position"):
        scan(data, len(data) + 1)
    with pytest.raises(TypeError):
        scan("text", 0)  # type: ignore[arg-type]


@native
def test_thousands_of_keys_and_odd_rows_in_one_block() -> None:
    # Past every initial capacity of the scanner: keys, its hash table, odd rows.
    rec = (
        '<Record type="T{}" sourceName="S{}" unit="u" startDate="2023-11-05 08:10:00 -0800" '
        'endDate="2023-11-05 08:11:00 -0800" value="{}"/>'
    )
    block = "\n".join(rec.format(i % 300, i % 7, i if i % 3 else "1,5") for i in range(5000))
    scan = same_scan(block.encode())
    assert len(scan.keys) == 2100
    assert scan.records == 5000
