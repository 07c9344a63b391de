"""The visit brief as Markdown and as a printable, self-contained HTML page.

Everything that comes from records (names, notes, values) is escaped: HTML with
``html.escape``; Markdown by backslash-escaping every character Markdown or inline HTML
could act on, so a note holding ``<script>`` is shown as text by any renderer. The page
loads nothing from outside (inline CSS, a Content-Security-Policy that forbids scripts
and remote resources) and prints cleanly.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from string import Template
from typing import Final, Protocol

from healthspace.insights.facts import Fact

__all__ = ["BriefLike", "escape_markdown", "to_html", "to_markdown"]

# Characters that can start emphasis, code, links, inline HTML, entities, tables or
# headings anywhere in a line; list markers cannot occur, since lines are flattened
# and always start with our own "- " or "#".
_MD_SPECIAL: Final = re.compile(r"([\\`*_\[\]<>#|&~])")
DISCLAIMER: Final = (
    "Prepared from your own records to help you talk with your clinician. "
    "It is not a diagnosis and does not replace medical advice."
)


class SectionLike(Protocol):
    @property
    def title(self) -> str: ...
    @property
    def facts(self) -> tuple[Fact, ...]: ...
    @property
    def empty_text(self) -> str: ...


class BriefLike(Protocol):
    @property
    def heading(self) -> str: ...
    @property
    def subheading(self) -> str: ...
    @property
    def sections(self) -> Sequence[SectionLike]: ...


def escape_markdown(text: str) -> str:
    """Text that Markdown renders literally (no emphasis, links, code, HTML)."""
    flat = " ".join(text.split())  # a record's line breaks must not start Markdown blocks
    return _MD_SPECIAL.sub(r"\\\1", flat)


def _sources_text(fact: Fact) -> str:
    parts = [c.record_id for c in fact.citations]
    parts += [f"{w.metric} {w.start.isoformat()}..{w.end.isoformat()}" for w in fact.windows]
    return ", ".join(parts)


def to_markdown(brief: BriefLike) -> str:
    lines = [f"# {escape_markdown(brief.heading)}", "", f"_{escape_markdown(brief.subheading)}_"]
    for section in brief.sections:
        lines += ["", f"## {escape_markdown(section.title)}", ""]
        if not section.facts:
            lines.append(f"- {escape_markdown(section.empty_text)}")
        for fact in section.facts:
            line = f"- {escape_markdown(fact.statement)}"
            sources = _sources_text(fact)
            if sources:
                line += f" (sources: {escape_markdown(sources)})"
            lines.append(line)
    lines += ["", f"_{escape_markdown(DISCLAIMER)}_", ""]
    return "\n".join(lines)


_PAGE: Final = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title>
<style>
body { font-family: Georgia, "Times New Roman", serif; max-width: 48rem; margin: 2rem auto;
       padding: 0 1rem; color: #111; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.15rem; border-bottom: 1px solid #999; margin-top: 1.6rem; }
.sub { color: #444; margin-top: 0; }
ul { padding-left: 1.2rem; }
li { margin: 0.35rem 0; }
li.critical { font-weight: bold; }
li.critical::before { content: "! "; }
.src { display: block; font-size: 0.72rem; color: #666; font-family: monospace;
       word-break: break-all; }
.empty { color: #666; font-style: italic; }
footer { margin-top: 2rem; font-size: 0.8rem; color: #444; }
@media print { body { margin: 0; max-width: none; } h2 { break-after: avoid; }
               li { break-inside: avoid; } }
</style>
</head>
<body>
<h1>$heading</h1>
<p class="sub">$subheading</p>
$sections
<footer>$disclaimer</footer>
</body>
</html>
""")


def _html_fact(fact: Fact) -> str:
    sources = _sources_text(fact)
    src = f'<span class="src">sources: {html.escape(sources)}</span>' if sources else ""
    return f'<li class="{html.escape(fact.severity)}">{html.escape(fact.statement)}{src}</li>'


def to_html(brief: BriefLike) -> str:
    parts = []
    for section in brief.sections:
        if section.facts:
            items = "\n".join(_html_fact(f) for f in section.facts)
        else:
            items = f'<li class="empty">{html.escape(section.empty_text)}</li>'
        parts.append(
            f"<section>\n<h2>{html.escape(section.title)}</h2>\n<ul>\n{items}\n</ul>\n</section>"
        )
    return _PAGE.substitute(
        title=html.escape(brief.heading),
        heading=html.escape(brief.heading),
        subheading=html.escape(brief.subheading),
        sections="\n".join(parts),
        disclaimer=html.escape(DISCLAIMER),
    )
