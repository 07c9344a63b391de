"""The C-CDA importer over the sample documents, through the real pipeline and the parser.

Expected numbers are read from each file with plain lxml XPath in the test itself, never
typed in: per section, the entries the importer must turn into records of each kind.
"""

from __future__ import annotations

import base64
import hashlib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from healthspace.errors import SourceError
from healthspace.model import (
    CodedValue,
    Document,
    Observation,
    QuantityValue,
    StringValue,
    normalize_unit,
)
from healthspace.sources.base import ImportContext, InputFile
from healthspace.sources.ccda import CcdaSource
from healthspace.sources.pipeline import import_paths
from healthspace.sources.registry import all_sources, detect
from healthspace.store import FileRepository, RecordRepository, SpaceSession
from tests.conftest import SHARED_DATA

CCDA = SHARED_DATA / "ccda"
FILES = sorted(CCDA.iterdir())
HL7_CCD = CCDA / "hl7_CCD1_Eve_Betterhalf.XML"
PARTNERS = CCDA / "partners_LMR1TEST.xml"
UNSTRUCTURED = CCDA / "hl7_Unstructured_Document_embedded_pdf.xml"
NS = {"h": "urn:hl7-org:v3", "xsi": "http://www.w3.org/2001/XMLSchema-instance"}
S = "2.16.840.1.113883.10.20.22.2."
E = "2.16.840.1.113883.10.20.22.4."
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
# The only unit in these two files not already in UCUM's case-sensitive spelling.
SPELLING_FIXES = {"mEq/L": "meq/L"}


def tree(path: Path) -> Any:
    return etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True))


def sections(doc: Any, templates: tuple[str, ...], loinc: str) -> list[Any]:
    test = " or ".join([f"h:templateId/@root='{S}{t}'" for t in templates])
    return list(doc.xpath(f"//h:section[{test} or h:code/@code='{loinc}']", namespaces=NS))


def count(doc: Any, templates: tuple[str, ...], loinc: str, path: str) -> int:
    return sum(len(s.xpath(path, namespaces=NS)) for s in sections(doc, templates, loinc))


def expected_counts(path: Path) -> Counter[str]:
    """What each mapped section holds, counted straight from the XML."""
    doc = tree(path)
    organizer_obs = "h:entry/h:organizer/h:component/h:observation | h:entry/h:observation"
    concern = "h:entry/h:act/h:entryRelationship/h:observation[h:templateId/@root='{}'] "
    meds = (
        "h:entry/h:substanceAdministration"
        " | h:entry/h:act/h:entryRelationship/h:substanceAdministration"
    )
    found = Counter(
        {
            "observation/laboratory": count(doc, ("3", "3.1"), "30954-2", organizer_obs),
            "report": count(doc, ("3", "3.1"), "30954-2", "h:entry/h:organizer"),
            "observation/vital-signs": count(doc, ("4", "4.1"), "8716-3", organizer_obs),
            "observation/social-history": count(doc, ("17",), "29762-2", organizer_obs),
            "condition": count(
                doc, ("5", "5.1"), "11450-4", concern.format(E + "4") + "| h:entry/h:observation"
            ),
            "allergy": count(
                doc, ("6", "6.1"), "48765-2", concern.format(E + "7") + "| h:entry/h:observation"
            ),
            "medication": count(doc, ("1", "1.1"), "10160-0", meds)
            + count(doc, ("38",), "29549-3", meds),
            "immunization": count(
                doc, ("2", "2.1"), "11369-6", "h:entry/h:substanceAdministration"
            ),
            "encounter": count(doc, ("22", "22.1"), "46240-8", "h:entry/h:encounter"),
            "procedure": count(
                doc,
                ("7", "7.1"),
                "47519-4",
                "h:entry/h:procedure | h:entry/h:observation | h:entry/h:act",
            ),
            "coverage": count(
                doc,
                ("18",),
                "48768-6",
                f"h:entry/h:act/h:entryRelationship/h:act[h:templateId/@root='{E}61']",
            ),
            "care_plan": count(doc, ("10",), "18776-5", "h:entry/*"),
            "patient": len(
                doc.xpath(
                    "/h:ClinicalDocument/h:recordTarget/h:patientRole/h:patient", namespaces=NS
                )
            ),
            "document": 1,
        }
    )
    return +found  # drop zeros


def stored_counts(health: SpaceSession) -> Counter[str]:
    found: Counter[str] = Counter()
    for stored in RecordRepository(health).list():
        record = stored.record
        key = f"observation/{record.category}" if isinstance(record, Observation) else record.kind
        found[key] += 1
    return found


def parse(path: Path) -> tuple[list[Any], ImportContext]:
    file = InputFile.from_path(path)
    ctx = ImportContext(file=file, file_sha256=file.sha256())
    return list(CcdaSource().parse(file, ctx)), ctx


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_sample_imports_with_the_counts_its_sections_hold(
    path: Path, health: SpaceSession
) -> None:
    report = import_paths(health, [path])
    assert report.errors == []
    assert report.files[0].source == "ccda"
    expected = expected_counts(path)
    assert stored_counts(health) == expected
    assert sum(report.imported.values()) == sum(expected.values())
    again = import_paths(health, [path])
    assert again.errors == []
    assert again.imported == {}
    assert again.skipped_duplicates == sum(expected.values())
    assert stored_counts(health) == expected


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_source_ids_are_unique_and_stable(path: Path) -> None:
    first, _ = parse(path)
    second, _ = parse(path)
    ids = [item.record.source_id for item in first]
    assert ids == [item.record.source_id for item in second]
    assert len(set(ids)) == len(ids)  # a shared id would silently drop a record


def _observations_by_key(health: SpaceSession) -> dict[tuple[str, str, str], Observation]:
    out: dict[tuple[str, str, str], Observation] = {}
    for stored in RecordRepository(health).list(kind="observation"):
        record = stored.record
        assert isinstance(record, Observation)
        when = record.effective.original if record.effective else ""
        out[(record.category or "", record.code.code, when)] = record
    return out


def code_of(obs: Any) -> str:
    # One vendor ends a code attribute with a character reference to CR LF.
    return str(obs.find("h:code", NS).get("code") or "").strip()


def _xml_observations(path: Path) -> list[tuple[str, Any]]:
    doc = tree(path)
    found = []
    for category, templates, loinc in (
        ("laboratory", ("3", "3.1"), "30954-2"),
        ("vital-signs", ("4", "4.1"), "8716-3"),
    ):
        for section in sections(doc, templates, loinc):
            for obs in section.xpath(
                "h:entry/h:organizer/h:component/h:observation", namespaces=NS
            ):
                found.append((category, obs))
    return found


@pytest.mark.parametrize("path", [HL7_CCD, PARTNERS], ids=lambda p: p.name)
def test_result_and_vital_values_match_the_xml(path: Path, health: SpaceSession) -> None:
    assert import_paths(health, [path]).errors == []
    stored = _observations_by_key(health)
    checked = Counter[str]()
    for category, obs in _xml_observations(path):
        code = code_of(obs)
        if not code:
            continue
        time_el = obs.find("h:effectiveTime", NS)
        when = time_el.get("value") or time_el.find("h:low", NS).get("value")
        record = stored[(category, code, when)]
        value_el = obs.find("h:value", NS)
        kind = value_el.get(XSI_TYPE).split(":")[-1]
        if kind == "PQ" and value_el.get("value") is not None:
            assert isinstance(record.value, QuantityValue)
            assert record.value.quantity.value == float(value_el.get("value"))
            raw = value_el.get("unit", "")  # no unit is UCUM's "1": unitless
            assert record.value.quantity.unit == SPELLING_FIXES.get(raw, raw)
            checked["PQ"] += 1
        elif kind == "ST":
            assert isinstance(record.value, StringValue)
            assert record.value.text == " ".join(value_el.text.split())
            checked["ST"] += 1
        elif kind in ("CD", "CE") and value_el.get("code"):
            assert isinstance(record.value, CodedValue)
            assert record.value.code.code == value_el.get("code")
        for interp in obs.findall("h:interpretationCode", NS):
            assert interp.get("code") in [c.code for c in record.interpretation]
        ranges = obs.findall("h:referenceRange/h:observationRange", NS)
        assert len(record.reference_ranges) == len(ranges)
        for ref, xml_range in zip(record.reference_ranges, ranges, strict=True):
            low = xml_range.find("h:value/h:low", NS)
            high = xml_range.find("h:value/h:high", NS)
            text = xml_range.findtext("h:text", namespaces=NS)
            if low is not None and high is not None:
                assert ref.low is not None
                assert ref.high is not None
                assert (ref.low.value, ref.high.value) == (
                    float(low.get("value")),
                    float(high.get("value")),
                )
                checked["IVL_PQ range"] += 1
            if text:
                assert ref.text == " ".join(text.split())
                bounds, _, _unit = text.strip().partition(" ")
                low_text, _, high_text = bounds.partition("-")
                assert ref.low is not None
                assert ref.high is not None
                assert (ref.low.value, ref.high.value) == (float(low_text), float(high_text))
                checked["text range"] += 1
    assert checked["PQ"] >= 5
    if path == PARTNERS:
        assert checked["ST"] >= 1
        assert checked["text range"] >= 10
    else:
        assert checked["IVL_PQ range"] >= 5


def test_a_result_date_keeps_its_zone(health: SpaceSession) -> None:
    assert import_paths(health, [HL7_CCD]).errors == []
    doc = tree(HL7_CCD)
    obs = sections(doc, ("3", "3.1"), "30954-2")[0].xpath(
        ".//h:observation[h:value/@xsi:type='PQ']", namespaces=NS
    )[0]
    raw = obs.find("h:effectiveTime", NS).get("value")  # YYYYMMDDHHMM-ZZZZ
    record = _observations_by_key(health)[("laboratory", obs.find("h:code", NS).get("code"), raw)]
    assert record.effective is not None
    sign = -1 if raw[12] == "-" else 1
    offset = sign * (int(raw[13:15]) * 60 + int(raw[15:17]))
    assert record.effective.utc_offset_minutes == offset
    local = record.effective.local_start()
    assert local.strftime("%Y%m%d%H%M") == raw[:12]


@pytest.mark.parametrize(
    ("name", "raw_units"),
    [
        ("greenway_26775_ExportSummary_CCDA.xml", ("[lb_av]", "kg/m²", "[in_us]")),
        ("allscripts_sunrise_Williams_John.xml", ("mMol/L",)),
    ],
)
def test_vendor_unit_spellings_come_out_as_ucum(
    name: str, raw_units: tuple[str, ...], health: SpaceSession
) -> None:
    ucum = {"[lb_av]": "[lb_av]", "kg/m²": "kg/m2", "[in_us]": "[in_us]", "mMol/L": "mmol/L"}
    path = CCDA / name
    assert import_paths(health, [path]).errors == []
    stored = _observations_by_key(health)
    seen: Counter[str] = Counter()
    for category, obs in _xml_observations(path):
        value_el = obs.find("h:value", NS)
        unit = value_el.get("unit")
        if unit not in raw_units:
            continue
        when = obs.find("h:effectiveTime", NS).get("value")
        record = stored[(category, code_of(obs), when)]
        assert isinstance(record.value, QuantityValue)
        assert record.value.quantity.unit == ucum[unit]
        assert record.value.quantity.value == float(value_el.get("value"))
        seen[unit] += 1
    assert set(seen) == set(raw_units)


def test_embedded_pdf_becomes_a_document_with_its_file(health: SpaceSession) -> None:
    assert import_paths(health, [UNSTRUCTURED]).errors == []
    text = tree(UNSTRUCTURED).find("h:component/h:nonXMLBody/h:text", NS)
    pdf = base64.b64decode("".join(text.text.split()))
    docs = [s.record for s in RecordRepository(health).list(kind="document")]
    assert len(docs) == 1
    document = docs[0]
    assert isinstance(document, Document)
    assert document.media_type == text.get("mediaType") == "application/pdf"
    assert document.sha256 == hashlib.sha256(pdf).hexdigest()
    assert document.size == len(pdf)
    assert document.content_ref is not None
    stored = FileRepository(health).read(document.content_ref)
    assert hashlib.sha256(stored).hexdigest() == hashlib.sha256(pdf).hexdigest()
    assert document.title == tree(UNSTRUCTURED).findtext("h:title", namespaces=NS)


def test_structured_document_is_kept_whole_and_entries_keep_their_xml(
    health: SpaceSession,
) -> None:
    assert import_paths(health, [HL7_CCD]).errors == []
    repo = RecordRepository(health)
    (doc_row,) = repo.list(kind="document")
    assert isinstance(doc_row.record, Document)
    assert doc_row.record.content_ref is not None
    assert FileRepository(health).read(doc_row.record.content_ref) == HL7_CCD.read_bytes()
    xml_ids = {
        el.get("root") for el in tree(HL7_CCD).xpath("//h:section//h:id[@root]", namespaces=NS)
    }
    for stored in repo.list():
        if stored.kind == "document":
            continue
        original = repo.original(stored.record_id)
        assert original is not None, stored.kind
        element = etree.fromstring(original)
        assert etree.QName(element).namespace == NS["h"]
        if stored.kind != "patient":
            ids = {el.get("root") for el in element.iter("{urn:hl7-org:v3}id")}
            assert ids & xml_ids, stored.kind


def test_medication_schedule_dose_and_route_come_from_the_activity(health: SpaceSession) -> None:
    assert import_paths(health, [HL7_CCD]).errors == []
    meds = {s.record.code.code: s.record for s in RecordRepository(health).list(kind="medication")}
    section = sections(tree(HL7_CCD), ("1", "1.1"), "10160-0")[0]
    for activity in section.xpath("h:entry/h:substanceAdministration", namespaces=NS):
        code = activity.find(".//h:manufacturedMaterial/h:code", NS).get("code")
        med = meds[code]
        period = activity.find("h:effectiveTime[@xsi:type='PIVL_TS']/h:period", NS)
        assert med.schedule is not None
        assert med.schedule.period == float(period.get("value"))
        assert med.schedule.period_unit == period.get("unit")
        assert med.dose is not None
        assert med.dose.value == float(activity.find("h:doseQuantity", NS).get("value"))
        assert med.route == activity.find("h:routeCode", NS).get("displayName")
        start = activity.find("h:effectiveTime/h:low", NS).get("value")
        assert med.start is not None
        assert med.start.original == start


def test_immunizations_coverage_and_problems_match_the_xml(health: SpaceSession) -> None:
    assert import_paths(health, [HL7_CCD]).errors == []
    repo = RecordRepository(health)
    doc = tree(HL7_CCD)
    cvx = sorted(
        doc.xpath(
            "//h:section[h:code/@code='11369-6']//h:manufacturedMaterial/"
            "h:code[@codeSystem='2.16.840.1.113883.12.292']/@code",
            namespaces=NS,
        )
    )
    stored_cvx = sorted(s.record.code.code for s in repo.list(kind="immunization"))
    assert stored_cvx == cvx
    policy = doc.xpath(f"//h:act[h:templateId/@root='{E}61']", namespaces=NS)[0]
    (coverage,) = [s.record for s in repo.list(kind="coverage")]
    payer = policy.xpath(
        f"h:performer[h:templateId/@root='{E}87']//h:representedOrganization/h:name/text()",
        namespaces=NS,
    )[0]
    member = policy.xpath(
        "h:participant[@typeCode='COV']/h:participantRole/h:id/@extension", namespaces=NS
    )[0]
    assert (coverage.payer, coverage.member_id) == (payer, member)
    problem_codes = sorted(
        doc.xpath(
            f"//h:section[h:code/@code='11450-4']//h:observation[h:templateId/@root='{E}4']/h:value/@code",
            namespaces=NS,
        )
    )
    assert sorted(s.record.code.code for s in repo.list(kind="condition")) == problem_codes


def test_a_bad_date_is_a_warning_not_an_error(health: SpaceSession) -> None:
    path = CCDA / "greenway_26775_ExportSummary_CCDA.xml"
    report = import_paths(health, [path])
    assert report.errors == []
    warnings = report.files[0].warnings
    assert warnings
    assert all(w.startswith(f"{path}: section ") for w in warnings)
    assert any("not valid HL7 TS" in w for w in warnings)


def test_sniff_recognises_clinical_documents_whatever_the_extension() -> None:
    source = CcdaSource()
    for path in FILES:
        file = InputFile.from_path(path)
        assert source.sniff(file, file.head(65536)), path.name
        assert detect(file) is source or detect(file).manifest.id == "ccda"  # type: ignore[union-attr]
    assert any(s.manifest.id == "ccda" for s in all_sources())

    def sniff(data: bytes) -> bool:
        return source.sniff(InputFile.from_bytes(data, "x"), data)

    assert sniff(
        b'\xef\xbb\xbf\r\n<?xml-stylesheet href="cda.xsl"?>\r\n<!-- c -->\r\n'
        b'<ClinicalDocument xmlns="urn:hl7-org:v3"/>'
    )
    assert sniff(b'<v3:ClinicalDocument xmlns:v3="urn:hl7-org:v3"></v3:ClinicalDocument>')
    assert not sniff(b'<ClinicalDocument xmlns="urn:other"/>')
    assert not sniff(b'<v3:ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:v3="urn:x"/>')
    assert not sniff(b'<HealthData locale="en_US"/>')
    assert not sniff(b'{"resourceType": "Bundle"}')


def test_truncated_xml_names_the_file_and_line(tmp_path: Path, health: SpaceSession) -> None:
    data = HL7_CCD.read_bytes()
    cut = data[: len(data) // 2]
    last_line = cut.count(b"\n") + 1
    path = tmp_path / "cut.xml"
    path.write_bytes(cut)
    with pytest.raises(SourceError) as caught:
        parse(path)
    assert caught.value.file == str(path)
    assert caught.value.place is not None
    assert caught.value.place.startswith(f"line {last_line},")
    report = import_paths(health, [path])
    assert report.imported == {}
    assert len(report.errors) == 1
    assert str(path) in report.errors[0]
    assert "line " in report.errors[0]
    assert RecordRepository(health).list() == []


def synthetic(*section_xml: str) -> bytes:
    """A small ClinicalDocument with the given sections (written here, not a sample copy)."""
    body = "".join(f"<component>{xml}</component>" for xml in section_xml)
    return f"""<?xml-stylesheet type="text/xsl" href="CDA.xsl"?>
<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <id root="1.2.3.4.5" extension="synthetic-1"/>
  <code code="34133-9" codeSystem="2.16.840.1.113883.6.1"/>
  <title>Synthetic summary</title>
  <effectiveTime value="2024"/>
  <recordTarget><patientRole><id root="1.2.3.4.6" extension="p1"/><patient>
    <name><given>Ada</given><family>Example</family></name>
    <administrativeGenderCode code="F" codeSystem="2.16.840.1.113883.5.1"/>
    <birthTime value="1980"/></patient></patientRole></recordTarget>
  <component><structuredBody>{body}</structuredBody></component>
</ClinicalDocument>""".replace("\n", "\r\n").encode()


def _result(ident: str, code: str, when: str, value: str) -> str:
    return f"""<component><observation classCode="OBS" moodCode="EVN">
      <templateId root="{E}2"/><id root="1.2.3.4.7" extension="{ident}"/>
      <code code="{code}" codeSystem="2.16.840.1.113883.6.1"/>
      <statusCode code="completed"/><effectiveTime value="{when}"/>{value}
    </observation></component>"""


RANGE = (
    '<value xsi:type="IVL_PQ"><low value="1" unit="mg/dL"/><high value="2" unit="mg/dL"/></value>'
)
RESULTS = f"""<section><templateId root="{S}3.1"/><code code="30954-2"/><title>Results</title>
  <entry><organizer classCode="BATTERY" moodCode="EVN"><templateId root="{E}1"/>
    <id root="1.2.3.4.7" extension="panel"/>
    <code code="24323-8" codeSystem="2.16.840.1.113883.6.1"/>
    <statusCode code="completed"/>
    {_result("r1", "2345-7", "20130218031000-05", '<value xsi:type="PQ" value="95" unit="UNK"/>')}
    {_result("r2", "2093-3", "20240102101112.345+0100", RANGE)}
    {_result("r3", "718-7", "2019", '<value xsi:type="PQ" nullFlavor="NA"/>')}
  </organizer></entry></section>"""
UNKNOWN = """<section><templateId root="9.9.9.9"/><code code="99999-9"/><title>Something new</title>
  <entry><observation classCode="OBS" moodCode="EVN"><code code="1"/></observation></entry>
  <entry><observation classCode="OBS" moodCode="EVN"><code code="2"/></observation></entry>
</section>"""
NO_KNOWN_ALLERGIES = f"""<section><templateId root="{S}6.1"/><code code="48765-2"/>
  <entry><act classCode="ACT" moodCode="EVN"><templateId root="{E}30"/><id root="1.2.3.4.8"/>
    <code code="CONC" codeSystem="2.16.840.1.113883.5.6"/><statusCode code="active"/>
    <entryRelationship typeCode="SUBJ">
      <observation classCode="OBS" moodCode="EVN" negationInd="true">
      <templateId root="{E}7"/><id root="1.2.3.4.9"/>
      <code code="ASSERTION" codeSystem="2.16.840.1.113883.5.4"/>
      <statusCode code="completed"/><effectiveTime><low nullFlavor="UNK"/></effectiveTime>
      <value xsi:type="CD" code="419199007" codeSystem="2.16.840.1.113883.6.96"/>
      <participant typeCode="CSM"><participantRole classCode="MANU"><playingEntity classCode="MMAT">
        <code nullFlavor="NA"/></playingEntity></participantRole></participant>
    </observation></entryRelationship></act></entry></section>"""


def test_unknown_section_is_counted_and_known_sections_still_import(
    tmp_path: Path, health: SpaceSession
) -> None:
    path = tmp_path / "synthetic.txt"
    path.write_bytes(synthetic(RESULTS, UNKNOWN, NO_KNOWN_ALLERGIES))
    items, ctx = parse(path)
    assert ctx.unmapped == Counter({"section 99999-9": 2})
    kinds = Counter(item.record.kind for item in items)
    assert kinds == Counter(observation=3, report=1, allergy=1, document=1, patient=1)
    report = import_paths(health, [path])
    assert report.errors == []
    assert report.files[0].unmapped == {"section 99999-9": 2}
    assert stored_counts(health) == Counter(
        {"observation/laboratory": 3, "report": 1, "allergy": 1, "document": 1, "patient": 1}
    )


def test_synthetic_quirks_map_as_the_standard_says(tmp_path: Path) -> None:
    path = tmp_path / "quirks.xml"
    path.write_bytes(synthetic(RESULTS, NO_KNOWN_ALLERGIES))
    items, ctx = parse(path)
    assert ctx.warnings == []
    records = {item.record.source_id.rsplit("|", 1)[-1]: item.record for item in items}
    glucose, cholesterol, hemoglobin = records["r1"], records["r2"], records["r3"]
    assert isinstance(glucose, Observation)
    assert isinstance(glucose.value, QuantityValue)
    assert glucose.value.quantity.value == 95.0
    assert glucose.value.quantity.unit == normalize_unit("UNK") == ""
    assert glucose.effective is not None
    assert glucose.effective.utc_offset_minutes == -300  # "-05" read as -05:00
    assert glucose.effective.start.isoformat() == "2013-02-18T08:10:00+00:00"
    assert isinstance(cholesterol, Observation)
    assert cholesterol.effective is not None
    assert cholesterol.effective.start.isoformat() == "2024-01-02T09:11:12.345000+00:00"
    assert cholesterol.value is not None
    assert cholesterol.value.type == "range"
    assert isinstance(hemoglobin, Observation)
    assert hemoglobin.effective is not None
    assert hemoglobin.effective.precision == "year"
    assert hemoglobin.value is None
    assert hemoglobin.data_absent_reason == "not-applicable"
    (allergy,) = [i.record for i in items if i.record.kind == "allergy"]
    assert allergy.no_known_allergy
    assert allergy.code is None
    assert allergy.display_text() == "No known allergies" or allergy.text
    (patient,) = [i.record for i in items if i.record.kind == "patient"]
    assert (patient.given, patient.family, patient.sex) == (("Ada",), "Example", "female")


def test_an_embedded_file_larger_than_libxml2s_text_limit_still_imports(tmp_path: Path) -> None:
    payload = b"%PDF-1.7\n" + bytes(range(256)) * 40_000  # 10 MB; 13.7 MB as base64
    encoded = base64.b64encode(payload).decode()
    path = tmp_path / "big.xml"
    path.write_bytes(
        synthetic().replace(
            b"<component><structuredBody></structuredBody></component>",
            b'<component><nonXMLBody><text mediaType="application/pdf" representation="B64">'
            + encoded.encode()
            + b"</text></nonXMLBody></component>",
        )
    )
    items, _ = parse(path)
    (document,) = [i for i in items if i.record.kind == "document"]
    assert document.file == payload
    assert document.record.sha256 == hashlib.sha256(payload).hexdigest()


def test_an_embedded_file_that_is_not_what_it_claims_is_refused(tmp_path: Path) -> None:
    body = base64.b64encode(b"MZ\x90\x00 not a pdf").decode()
    path = tmp_path / "fake.xml"
    path.write_bytes(
        synthetic().replace(
            b"<component><structuredBody></structuredBody></component>",
            f'<component><nonXMLBody><text mediaType="application/pdf" representation="B64">'
            f"{body}</text></nonXMLBody></component>".encode(),
        )
    )
    with pytest.raises(SourceError) as caught:
        parse(path)
    assert caught.value.file == str(path)
    assert caught.value.place == "nonXMLBody/text"
