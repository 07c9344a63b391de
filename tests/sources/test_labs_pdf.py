"""Lab reports from PDFs and photos: rows, codes, review, OCR (sources/labs_pdf.py)."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps

from healthspace.model import (
    LOINC,
    Attached,
    Document,
    Observation,
    QuantityValue,
    StringValue,
    is_valid_loinc,
)
from healthspace.sources._labs_analytes import find_analyte
from healthspace.sources._labs_rows import parse_line
from healthspace.sources._labs_text import document_hints, normalize_line
from healthspace.sources.base import ImportContext, InputFile, Item
from healthspace.sources.labs_pdf import LOCAL_NAME_SYSTEM, LabReportSource
from healthspace.sources.pipeline import import_files, import_paths
from healthspace.sources.registry import detect
from healthspace.store import RecordRepository, SpaceSession, review
from tests.conftest import SHARED_DATA

REAL_PDF = SHARED_DATA / "labs" / "wouk1805_blood_test.pdf"
TABLE_JSON = Path(__file__).resolve().parents[2] / "src/healthspace/sources/data/lab_analytes.json"
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
CJK_FONTS = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
)


# -- helpers ---------------------------------------------------------------------------


def parse_bytes(data: bytes, name: str) -> tuple[list[Item], ImportContext]:
    file = InputFile.from_bytes(data, name)
    ctx = ImportContext(file=file, file_sha256=file.sha256())
    return list(LabReportSource().parse(file, ctx)), ctx


def observations(items: Iterable[object]) -> list[Observation]:
    return [i for i in items if isinstance(i, Observation)]


def quantity(obs: Observation) -> tuple[float, str]:
    assert isinstance(obs.value, QuantityValue)
    return obs.value.quantity.value, obs.value.quantity.unit


def text_layer_rows(path: Path) -> list[tuple[str, float]]:
    """(name, value) of every line of the PDF's text that reads 'name number unit'.

    Computed with pypdfium2 and a plain regex, independently of the source's parser.
    """
    pdf = pdfium.PdfDocument(path.read_bytes())
    text = "\n".join(page.get_textpage().get_text_bounded() for page in pdf)
    unit = r"(?:mmol/L|mg/dL|mg/L|g/dL|%|x10\S*/L)"
    row = re.compile(rf"^(?P<name>\D+?)\s*(?P<num>\d+(?:\.\d+)?)\s*{unit}\s*$")
    return [(m["name"], float(m["num"])) for line in text.splitlines() if (m := row.match(line))]


def lab_pdf(header: list[str], rows: list[list[str]], font: str | None = None) -> bytes:
    """A one-page lab report with a ruled table, made with reportlab."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Table, TableStyle

    style = [("GRID", (0, 0), (-1, -1), 0.5, colors.black)]
    if font is not None:
        pdfmetrics.registerFont(UnicodeCIDFont(font))
        style.append(("FONT", (0, 0), (-1, -1), font))
    buf = io.BytesIO()
    table = Table([header, *rows])
    table.setStyle(TableStyle(style))
    title = Paragraph("Laboratory Report", getSampleStyleSheet()["Title"])
    SimpleDocTemplate(buf, pagesize=A4).build([title, table])
    return buf.getvalue()


def require_ocr() -> None:
    if importlib.util.find_spec("rapidocr_onnxruntime") is not None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail("rapidocr-onnxruntime is missing under CI=true: pip install -e '.[test]'")
    pytest.skip("OCR extra not installed (pip install -e '.[ocr]')")


def require_latin_font() -> None:
    if not DEJAVU.exists():
        pytest.skip("DejaVu fonts missing to draw the test images (Debian: fonts-dejavu-core)")


def cjk_font() -> Path | None:
    return next((p for p in CJK_FONTS if p.exists()), None)


def render(lines: list[str], font: Path, size: int = 30) -> Image.Image:
    face = ImageFont.truetype(str(font), size)
    width = max(int(face.getlength(line)) for line in lines) + 60
    image = Image.new("L", (width, (size + 14) * len(lines) + 40), 255)
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((30, 20 + i * (size + 14)), line, font=face, fill=0)
    return image


def degrade(image: Image.Image) -> Image.Image:
    """A phone-photo look: tilted, blurred, smaller, greyer."""
    image = image.rotate(1.5, expand=True, fillcolor=235, resample=Image.Resampling.BICUBIC)
    image = image.filter(ImageFilter.GaussianBlur(1.0))
    image = image.resize((int(image.width * 0.6), int(image.height * 0.6)))
    return image.point(lambda p: int(p * 0.75 + 40))


def rendered_page(path: Path) -> Image.Image:
    """Page 1 of a PDF as a greyscale image, cropped to its text as a photo would be."""
    page = pdfium.PdfDocument(path.read_bytes())[0].render(scale=1.5).to_pil().convert("L")
    box = ImageOps.invert(page).getbbox()
    assert box is not None
    return page.crop((box[0] - 20, box[1] - 20, box[2] + 20, box[3] + 20))


def png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


# -- the analyte table -----------------------------------------------------------------


def test_analyte_table_is_valid_and_trilingual() -> None:
    entries = json.loads(TABLE_JSON.read_text("utf-8"))["analytes"]
    assert len(entries) >= 60
    for entry in entries:
        codes = [entry["loinc"], *entry.get("by_unit", {}).values()]
        assert all(is_valid_loinc(code) for code in codes), entry["id"]
        assert all(entry[language] for language in ("en", "fr", "zh")), entry["id"]


@pytest.mark.parametrize(
    ("name", "analyte"),
    [
        ("LDL Cholesterol", "ldl"),
        ("低密度脂蛋白胆固醇", "ldl"),
        ("Cholestérol LDL", "ldl"),
        ("Glucose à jeun", "glucose_fasting"),
        ("空腹血糖", "glucose_fasting"),
        ("Hémoglobine glyquée", "hba1c"),
        ("糖化血红蛋白", "hba1c"),
        ("TSH", "tsh"),
        ("Créatinine", "creatinine"),
        ("肌酐", "creatinine"),
        ("HDLCholesterol", "hdl"),  # OCR without spaces
        ("Glycemie a jeun", "glucose_fasting"),  # OCR without accents
    ],
)
def test_names_in_three_languages(name: str, analyte: str) -> None:
    match = find_analyte(f"{name} 1.0")
    assert match is not None
    assert match.entry.id == analyte


def test_short_names_do_not_match_inside_words_or_units() -> None:
    assert find_analyte("Kaliémie 4.2").entry.id == "potassium"  # type: ignore[union-attr]
    assert find_analyte("Unknown test 5 mg/dL 1-9") is None  # "mg" is not magnesium
    assert find_analyte("Transferase 12") is None  # no "Fe" inside a word


# -- one line ------------------------------------------------------------------------

LINES = [
    # text, loinc, value, unit, low, high, flag
    ("LDL Cholesterol 162 mg/dL <100 H", "2089-1", 162, "mg/dL", None, 100, "H"),
    ("HDLCholesterol38mg/dL>40L", "2085-9", 38, "mg/dL", 40, None, "L"),
    ("TSH 2.45 ulU/mL 0.45-4.50", "3016-3", 2.45, "u[IU]/mL", 0.45, 4.5, None),
    ("WBC 7.2 x10~3/uL 4.0-11.0", "6690-2", 7.2, "10*3/uL", 4.0, 11.0, None),
    ("WBC (White Blood Cells) 15.8 x10⁹/L", "6690-2", 15.8, "10*9/L", None, None, None),
    ("Platelets 390 x10°/L", "777-3", 390, "10*9/L", None, None, None),  # exponent lost
    ("Neutrophils 83%", "770-8", 83, "%", None, None, None),
    ("Neutrophils, Absolute 4.1 K/uL 1.4-7.0", "751-8", 4.1, "10*3/uL", 1.4, 7.0, None),
    ("Glycémie à jeun 5,9 mmol/L 3,9-5,8 H", "14771-0", 5.9, "mmol/L", 3.9, 5.8, "H"),
    ("Créatinine 80 µmol/L 45-90", "14682-9", 80, "umol/L", 45, 90, None),
    ("Leucocytes 7,2 G/L 4,0-10,0", "6690-2", 7.2, "10*9/L", 4.0, 10.0, None),
    ("空腹血糖　６．２　ｍｍｏｌ／Ｌ　３．９－６．１　↑", "14771-0", 6.2, "mmol/L", 3.9, 6.1, "H"),
    ("钾 5.9 ↑ mmol/L 3.5~5.3", "2823-3", 5.9, "mmol/L", 3.5, 5.3, "H"),
    ("TSH (3rd generation) 2.1 uIU/mL", "3016-3", 2.1, "u[IU]/mL", None, None, None),
    ("Hemoglobin A1c 48 mmol/mol 20-42 H", "59261-8", 48, "mmol/mol", 20, 42, "H"),
]


@pytest.mark.parametrize(("text", "loinc", "value", "unit", "low", "high", "flag"), LINES)
def test_one_line(
    text: str,
    loinc: str,
    value: float,
    unit: str,
    low: float | None,
    high: float | None,
    flag: str | None,
) -> None:
    line = normalize_line(text)
    hints = document_hints([line])
    (row,) = parse_line(line, hints)
    assert row.entry is not None
    assert row.entry.code_for(row.unit)[0] == loinc
    assert (row.value, row.unit, row.low, row.high, row.flag) == (value, unit, low, high, flag)
    assert 0.0 < row.confidence <= 1.0


def test_two_tables_side_by_side_and_unknown_names() -> None:
    line = normalize_line("1 白细胞计数 6.5 10^9/L 3.5-9.5  2 红细胞 4.5 10^12/L 4.3-5.8")
    rows = parse_line(line, document_hints([line]))
    assert [(r.entry.id if r.entry else None, r.value) for r in rows] == [
        ("wbc", 6.5),
        ("rbc", 4.5),
    ]
    (fibrinogen,) = parse_line("Fibrinogen 3.2 g/L 2.0-4.0", document_hints(["x"]))
    assert fibrinogen.entry is None
    assert fibrinogen.name == "Fibrinogen"
    assert fibrinogen.confidence < 0.6  # an unknown name is less certain


@pytest.mark.parametrize(
    ("text", "name", "word"),
    [
        ("HBsAg Négatif", "HBsAg", "Négatif"),
        ("Glucose, Urine Negative", "Glucose, Urine", "Negative"),
    ],
)
def test_worded_results_keep_their_printed_name(text: str, name: str, word: str) -> None:
    (row,) = parse_line(normalize_line(text), document_hints([text]))
    # Qualitative: never given the quantitative (serum) LOINC code of a same-named analyte.
    assert (row.entry, row.name, row.text_value, row.value) == (None, name, word, None)


@pytest.mark.parametrize(
    "text",
    ["Page 1 of 2", "Date of birth: 01/02/1970", "Basic Metabolic Panel (BMP)", "Test Result",
     "Phone 555 0100", "Patient ID 12345"],
)  # fmt: skip
def test_lines_that_are_not_results(text: str) -> None:
    assert parse_line(normalize_line(text), document_hints([text])) == []


def test_document_hints() -> None:
    en = document_hints(["Date of birth: 01/02/1970", "Collected: 03/04/2024 08:30", "Glucose 95"])
    assert (en.language, en.decimal_comma, en.collected) == ("en", False, "2024-03-04T08:30")
    fr = document_hints(["Prélevé le 03/04/2024 à 08h15", "Glycémie à jeun 5,9 mmol/L"])
    assert (fr.language, fr.decimal_comma, fr.collected) == ("fr", True, "2024-04-03T08:15")
    zh = document_hints(["采样时间：2024年3月5日", "空腹血糖 6.2 mmol/L", "报告日期 2024-03-06"])
    assert (zh.language, zh.collected, zh.reported) == ("zh", "2024-03-05", "2024-03-06")


# -- the real PDF, through the pipeline and review --------------------------------------


def test_sniff_claims_pdfs_and_images() -> None:
    assert isinstance(detect(InputFile.from_path(REAL_PDF)), LabReportSource)
    assert isinstance(
        detect(InputFile.from_bytes(png(Image.new("L", (8, 8))), "x")), LabReportSource
    )


def test_real_pdf_held_for_review_then_confirmed(health: SpaceSession) -> None:
    expected = text_layer_rows(REAL_PDF)
    assert len(expected) >= 10
    report = import_paths(health, [REAL_PDF])
    assert report.errors == []
    (outcome,) = report.files
    assert outcome.source == "labs_pdf"
    assert outcome.held_for_review
    assert outcome.job_id is not None
    assert RecordRepository(health).count_by_kind() == {}  # nothing counts before review

    pending = [p.record for p in review.pending_records(health, outcome.job_id)]
    obs = observations(pending)
    assert sorted(quantity(o)[0] for o in obs) == sorted(v for _, v in expected)
    by_code = {o.code.code: o for o in obs if o.code.system == LOINC}
    assert quantity(by_code["2951-2"]) == (135.0, "mmol/L")  # Sodium (Na⁺)
    assert quantity(by_code["6690-2"]) == (15.8, "10*9/L")  # x10⁹/L, superscript
    assert quantity(by_code["770-8"]) == (83.0, "%")  # Neutrophils 83%
    assert quantity(by_code["1988-5"]) == (68.0, "mg/L")  # CRP
    for o in obs:
        assert o.category == "laboratory"
        assert o.effective is not None
        assert o.effective.isoformat() == "2025-07-25"
        assert o.reference_ranges == ()  # the report prints none; none is invented
        assert o.interpretation == ()
        assert o.note is not None
        assert "confidence" in o.note
        assert "PDF" in o.note
    (doc,) = [r for r in pending if isinstance(r, Document)]
    assert doc.media_type == "application/pdf"
    assert doc.sha256 == InputFile.from_path(REAL_PDF).sha256()

    # Reject discards everything; importing again holds it again; confirm keeps it.
    review.reject(health, outcome.job_id)
    assert review.pending_jobs(health) == []
    again = import_paths(health, [REAL_PDF]).files[0]
    assert again.job_id is not None
    kept = review.confirm(health, again.job_id)
    assert kept == len(expected) + 1
    counts = RecordRepository(health).count_by_kind()
    assert counts == {"observation": len(expected), "document": 1}
    third = import_paths(health, [REAL_PDF])
    assert third.imported == {}
    assert third.skipped_duplicates == len(expected) + 1
    assert RecordRepository(health).count_by_kind() == counts


# -- generated PDFs: English, French, Chinese ------------------------------------------

EN_ROWS = [
    # name, result, flag, unit, reference | loinc, value, ucum, low, high
    (["LDL Cholesterol", "162", "H", "mg/dL", "<100"], ("2089-1", 162, "mg/dL", None, 100)),
    (["HDL Cholesterol", "38", "L", "mg/dL", ">40"], ("2085-9", 38, "mg/dL", 40, None)),
    (["Triglycerides", "150", "", "mg/dL", "0-149"], ("2571-8", 150, "mg/dL", 0, 149)),
    (["Cholesterol, Total", "231", "H", "mg/dL", "100-199"], ("2093-3", 231, "mg/dL", 100, 199)),
    (["Glucose, Fasting", "112", "H", "mg/dL", "70-99"], ("1558-6", 112, "mg/dL", 70, 99)),
    (["Hemoglobin A1c", "6.1", "H", "%", "4.8-5.6"], ("4548-4", 6.1, "%", 4.8, 5.6)),
    (["TSH", "2.45", "", "uIU/mL", "0.450-4.500"], ("3016-3", 2.45, "u[IU]/mL", 0.45, 4.5)),
    (["Creatinine", "0.92", "", "mg/dL", "0.76-1.27"], ("2160-0", 0.92, "mg/dL", 0.76, 1.27)),
    (
        ["eGFR", "88", "", "mL/min/1.73m2", ">59"],
        ("62238-1", 88, "mL/min/{1.73_m2}", 59, None),
    ),
    (["ALT (SGPT)", "45", "H", "U/L", "0-44"], ("1742-6", 45, "U/L", 0, 44)),
    (["WBC", "7.2", "", "x10^3/uL", "3.4-10.8"], ("6690-2", 7.2, "10*3/uL", 3.4, 10.8)),
    (["Hemoglobin", "13.1", "", "g/dL", "13.0-17.7"], ("718-7", 13.1, "g/dL", 13.0, 17.7)),
    (["Platelets", "250", "", "x10^3/uL", "150-450"], ("777-3", 250, "10*3/uL", 150, 450)),
    (
        ["Vitamin D, 25-Hydroxy", "24.5", "L", "ng/mL", "30.0-100.0"],
        ("62292-8", 24.5, "ng/mL", 30, 100),
    ),
]
FR_ROWS = [
    # name, result, unit, reference, flag
    (["Cholestérol total", "2,31", "g/L", "<2,00", "H"], ("2093-3", 2.31, "g/L", None, 2.0)),
    (["Cholestérol LDL", "1,62", "g/L", "<1,60", "H"], ("2089-1", 1.62, "g/L", None, 1.6)),
    (["Cholestérol HDL", "0,38", "g/L", ">0,40", "L"], ("2085-9", 0.38, "g/L", 0.4, None)),
    (["Triglycérides", "1,20", "g/L", "<1,50", ""], ("2571-8", 1.2, "g/L", None, 1.5)),
    (["Glycémie à jeun", "5,9", "mmol/L", "3,9-5,8", "H"], ("14771-0", 5.9, "mmol/L", 3.9, 5.8)),
    (["Hémoglobine glyquée", "6,1", "%", "4,0-6,0", "H"], ("4548-4", 6.1, "%", 4.0, 6.0)),
    (["Créatinine", "80", "µmol/L", "45-90", ""], ("14682-9", 80, "umol/L", 45, 90)),
    (["TSH ultrasensible", "1,85", "mUI/L", "0,40-4,00", ""], ("3016-3", 1.85, "m[IU]/L", 0.4, 4)),
    (["Hémoglobine", "13,5", "g/dL", "12,0-16,0", ""], ("718-7", 13.5, "g/dL", 12, 16)),
    (["Leucocytes", "7,2", "G/L", "4,0-10,0", ""], ("6690-2", 7.2, "10*9/L", 4, 10)),
    (["Plaquettes", "250", "G/L", "150-400", ""], ("777-3", 250, "10*9/L", 150, 400)),
    (["Protéine C réactive", "12,5", "mg/L", "<5,0", "H"], ("1988-5", 12.5, "mg/L", None, 5)),
    (["ALAT (TGP)", "45", "UI/L", "<41", "H"], ("1742-6", 45, "[IU]/L", None, 41)),
]
ZH_ROWS = [
    # name, result, unit, reference, flag
    (["低密度脂蛋白胆固醇", "4.19", "mmol/L", "<3.4", "↑"], ("22748-8", 4.19, "mmol/L", None, 3.4)),
    (["空腹血糖", "6.2", "mmol/L", "3.9-6.1", "↑"], ("14771-0", 6.2, "mmol/L", 3.9, 6.1)),
    (["糖化血红蛋白", "6.1", "%", "4.0-6.0", "↑"], ("4548-4", 6.1, "%", 4.0, 6.0)),
    (["肌酐", "78", "μmol/L", "57-111", ""], ("14682-9", 78, "umol/L", 57, 111)),
    (["总胆固醇", "5.6", "mmol/L", "<5.2", "↑"], ("14647-2", 5.6, "mmol/L", None, 5.2)),
    (["促甲状腺激素", "2.1", "mIU/L", "0.27-4.2", ""], ("3016-3", 2.1, "m[IU]/L", 0.27, 4.2)),
]
# header, rows, font, (reference column, flag column)
REPORTS = {
    "en": (["Test", "Result", "Flag", "Units", "Reference Interval"], EN_ROWS, None, (4, 2)),
    "fr": (["Analyse", "Résultat", "Unité", "Valeurs de référence", ""], FR_ROWS, None, (3, 4)),
    "zh": (["项目", "结果", "单位", "参考范围", "提示"], ZH_ROWS, "STSong-Light", (3, 4)),
}


@pytest.mark.parametrize("language", sorted(REPORTS))
def test_generated_pdf_every_row(language: str) -> None:
    header, rows, font, (ref_column, flag_column) = REPORTS[language]
    data = lab_pdf(header, [cells for cells, _ in rows], font)
    items, ctx = parse_bytes(data, f"report-{language}.pdf")
    obs = observations(items)
    assert len(obs) == len(rows)
    assert ctx.unmapped == {}
    for o, (cells, (loinc, value, unit, low, high)) in zip(obs, rows, strict=True):
        assert o.code.code == loinc, cells[0]
        assert quantity(o) == (pytest.approx(value), unit), cells[0]
        (ref,) = o.reference_ranges
        assert ref.text == cells[ref_column], cells[0]
        assert (ref.low.value if ref.low else None) == low, cells[0]
        assert (ref.high.value if ref.high else None) == high, cells[0]
        printed_flag = cells[flag_column]
        expected_flag = {"": (), "↑": ("H",)}.get(printed_flag, (printed_flag,))
        assert tuple(c.code for c in o.interpretation) == expected_flag, cells[0]
        assert o.note is not None
        assert "pdfplumber" in o.note
    assert isinstance(items[0], Attached)
    assert isinstance(items[0].record, Document)
    assert items[0].record.language == language


def test_worded_result_becomes_a_string_value() -> None:
    header = ["Test", "Result", "Flag", "Units", "Reference Interval"]
    data = lab_pdf(header, [["HBsAg", "Negative", "", "", ""], ["TSH", "2.45", "", "uIU/mL", ""]])
    items, ctx = parse_bytes(data, "serology.pdf")
    hbsag, tsh = observations(items)
    assert isinstance(hbsag.value, StringValue)
    assert hbsag.value.text == "Negative"
    assert (hbsag.code.system, hbsag.text) == (LOCAL_NAME_SYSTEM, "HBsAg")
    assert ctx.unmapped == {"lab analyte name not in the table": 1}
    assert (tsh.code.code, quantity(tsh)) == ("3016-3", (2.45, "u[IU]/mL"))
    assert tsh.reference_ranges == ()  # none printed, none invented


# -- OCR: photos and scans ---------------------------------------------------------------

EN_LINES = [
    "LDL Cholesterol 162 mg/dL <100 H",
    "HDL Cholesterol 38 mg/dL >40 L",
    "Glucose, Fasting 112 mg/dL 70-99 H",
    "Hemoglobin A1c 6.1 % 4.0-5.6 H",
    "TSH 2.45 uIU/mL 0.45-4.50",
    "WBC 7.2 x10^3/uL 4.0-11.0",
    "Creatinine 0.92 mg/dL 0.60-1.30",
    "Triglycerides 150 mg/dL <150",
]
EN_EXPECTED = {
    "2089-1": (162, "mg/dL"),
    "2085-9": (38, "mg/dL"),
    "1558-6": (112, "mg/dL"),
    "4548-4": (6.1, "%"),
    "3016-3": (2.45, "u[IU]/mL"),
    "6690-2": (7.2, "10*3/uL"),
    "2160-0": (0.92, "mg/dL"),
    "2571-8": (150, "mg/dL"),
}
FR_LINES = [
    "Cholestérol LDL 1,62 g/L <1,00 H",
    "Glycémie à jeun 5,9 mmol/L 3,9-5,8 H",
    "Hémoglobine glyquée 6,1 % 4,0-6,0 H",
    "Créatinine 80 µmol/L 45-90",
]
FR_EXPECTED = {
    "2089-1": (1.62, "g/L"),
    "14771-0": (5.9, "mmol/L"),
    "4548-4": (6.1, "%"),
    "14682-9": (80, "umol/L"),
}
ZH_LINES = [
    "低密度脂蛋白胆固醇 4.19 mmol/L <3.4 H",
    "空腹血糖 6.2 mmol/L 3.9-6.1 H",
    "肌酐 78 umol/L 57-111",
]
ZH_EXPECTED = {"22748-8": (4.19, "mmol/L"), "14771-0": (6.2, "mmol/L"), "14682-9": (78, "umol/L")}


@pytest.fixture(scope="module")
def ocr_pages() -> dict[str, list[Observation]]:
    """One multi-page TIFF (one OCR process) holding every test image, read once."""
    require_ocr()
    require_latin_font()
    frames = {
        "en-clean": render(EN_LINES, DEJAVU),
        "en-photo": degrade(render(EN_LINES, DEJAVU)),
        "fr": render(FR_LINES, DEJAVU),
        "real-pdf": rendered_page(REAL_PDF),
    }
    font = cjk_font()
    if font is not None:
        frames["zh"] = render(ZH_LINES, font)
    names = list(frames)
    images = list(frames.values())
    buf = io.BytesIO()
    images[0].save(buf, "TIFF", save_all=True, append_images=images[1:], compression="tiff_deflate")
    items, _ = parse_bytes(buf.getvalue(), "scan.tiff")
    pages: dict[str, list[Observation]] = {name: [] for name in names}
    for o in observations(items):
        assert o.provenance is not None
        assert o.provenance.original_ref is not None
        page = int(o.provenance.original_ref.split(",")[0].removeprefix("page "))
        pages[names[page - 1]].append(o)
    return pages


def _values(obs: list[Observation]) -> dict[str, tuple[float, str]]:
    return {o.code.code: quantity(o) for o in obs}


def test_ocr_english_clean(ocr_pages: dict[str, list[Observation]]) -> None:
    got = ocr_pages["en-clean"]
    assert _values(got) == EN_EXPECTED
    ldl = next(o for o in got if o.code.code == "2089-1")
    assert ldl.reference_ranges[0].high is not None
    assert ldl.reference_ranges[0].high.value == 100
    assert [c.code for c in ldl.interpretation] == ["H"]
    assert all(o.note is not None and "OCR" in o.note for o in got)


def test_ocr_english_degraded(ocr_pages: dict[str, list[Observation]]) -> None:
    got = _values(ocr_pages["en-photo"])
    key = ("2089-1", "1558-6", "4548-4", "3016-3", "2160-0")
    assert {k: got.get(k) for k in key} == {k: EN_EXPECTED[k] for k in key}
    assert all(EN_EXPECTED.get(code) == value for code, value in got.items())  # none wrong


def test_ocr_french(ocr_pages: dict[str, list[Observation]]) -> None:
    assert _values(ocr_pages["fr"]) == FR_EXPECTED


def test_ocr_chinese(ocr_pages: dict[str, list[Observation]]) -> None:
    if "zh" not in ocr_pages:
        pytest.skip("no CJK font to draw the test image (Debian: fonts-wqy-microhei)")
    assert _values(ocr_pages["zh"]) == ZH_EXPECTED


def test_ocr_of_the_real_pdf_rendered(ocr_pages: dict[str, list[Observation]]) -> None:
    expected = text_layer_rows(REAL_PDF)
    got = ocr_pages["real-pdf"]
    assert sorted(quantity(o)[0] for o in got) == sorted(v for _, v in expected)
    # OCR reads "x10⁹/L" as "x10°/L": the exponent comes from the analyte, and it says so.
    wbc = next(o for o in got if o.code.code == "6690-2")
    assert quantity(wbc) == (15.8, "10*9/L")
    assert all(0.0 <= float(o.note.split("confidence ")[1][:4]) <= 1.0 for o in got if o.note)


def test_scanned_pdf_without_text_layer_goes_through_ocr() -> None:
    require_ocr()
    require_latin_font()
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen.canvas import Canvas

    scan = render(EN_LINES[3:5], DEJAVU)
    buf = io.BytesIO()
    canvas = Canvas(buf, pagesize=(scan.width * 0.75, scan.height * 0.75))
    canvas.drawImage(ImageReader(scan), 0, 0, scan.width * 0.75, scan.height * 0.75)
    canvas.save()
    assert pdfium.PdfDocument(buf.getvalue())[0].get_textpage().get_text_bounded().strip() == ""
    items, _ = parse_bytes(buf.getvalue(), "scan.pdf")
    got = observations(items)
    assert _values(got) == {k: EN_EXPECTED[k] for k in ("4548-4", "3016-3")}
    assert all(o.note is not None and "OCR" in o.note for o in got)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_photo_through_the_pipeline(health: SpaceSession) -> None:
    require_ocr()
    require_latin_font()
    image = render(EN_LINES[:2], DEJAVU).convert("RGB")
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=90)
    file = InputFile.from_bytes(buf.getvalue(), "photo.jpg")
    report = import_files(health, [file])
    assert report.errors == []
    (outcome,) = report.files
    assert outcome.held_for_review
    assert outcome.job_id is not None
    pending = [p.record for p in review.pending_records(health, outcome.job_id)]
    (doc,) = [r for r in pending if isinstance(r, Document)]
    assert doc.media_type == "image/jpeg"
    assert {o.code.code for o in observations(pending)} == {"2089-1", "2085-9"}
