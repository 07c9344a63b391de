"""``healthspace labs`` and ``healthspace brief`` over the demo person."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from tests.cli.test_cli import env, ok_json, run  # noqa: F401 - env is a fixture


def test_demo_then_labs_and_brief(env: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    demo = ok_json(env, "demo")
    records = demo["records"]
    assert isinstance(records, dict)
    assert records["observation"] > 50
    assert records["condition"] == 2

    trends = ok_json(env, "labs", "--user", "demo@example.org")["trends"]
    assert isinstance(trends, list)
    names = {t["analyte"] for t in trends}
    assert len(trends) >= 8
    ldl = ok_json(env, "labs", "--user", "demo@example.org", "--analyte", "18262-6")["trends"]
    assert isinstance(ldl, list)
    assert len(ldl) == 1
    assert ldl[0]["analyte"] in names
    assert ldl[0]["n"] == 10
    assert ldl[0]["direction"] == "up"

    page = tmp_path / "brief.html"
    doc = ok_json(env, "brief", "--user", "demo@example.org", "--html", str(page))
    assert isinstance(doc, dict)
    text = json.dumps(doc)
    assert "Prediabetes" in text
    assert "Simvastatin" in text
    assert stat.S_IMODE(page.stat().st_mode) == 0o600
    html = page.read_text().lower()
    assert "<html" in html
    assert 'src="http' not in html
    assert 'href="http' not in html

    bad = run(env, "brief", "--user", "demo@example.org", "--since", "yesterday")
    assert bad.returncode == 1
    assert "--since" in bad.stderr
