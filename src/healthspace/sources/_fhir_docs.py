"""DocumentReference and attachments (also DiagnosticReport.presentedForm) -> Document.

An attachment with inline ``data`` (base64) becomes ``Attached(document, file=bytes)``:
the store keeps the bytes encrypted and sets ``content_ref``. An attachment that only
has a ``url`` is recorded without fetching (sources never touch the network): the
document holds no bytes (size 0, the digest of nothing) and the URL is kept in ``note``
so it can be fetched later by something allowed to. One Document per attachment: the
first takes the resource's source_id, the n-th (n >= 1) ``<source_id>#content/<n>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import Final

from healthspace.model import LOINC, Attached, Document, PartialDateTime
from healthspace.sources._fhir_env import Res
from healthspace.sources._fhir_types import (
    JSON,
    MappingError,
    Unusable,
    concept,
    concept_label,
    dicts,
    first_code,
    string,
    when,
)
from healthspace.sources.base import Item

__all__ = ["attachment_document", "map_document_reference"]

_MEDIA_RE: Final = re.compile(r"^[\w.+-]+/[\w.+-]+(\s*;.*)?$")
_EMPTY_SHA256: Final = hashlib.sha256(b"").hexdigest()
_B64_RE: Final = re.compile(rb"^[A-Za-z0-9+/=\s]*$")


def _decode(data: object, field: str) -> bytes:
    if not isinstance(data, str):
        raise MappingError(field, "not base64 text")
    raw = data.encode("ascii", "ignore")
    if _B64_RE.match(raw) is None:
        raise MappingError(field, "not valid base64")
    try:
        return base64.b64decode(b"".join(raw.split()), validate=True)
    except (binascii.Error, ValueError):
        raise MappingError(field, "not valid base64") from None


def attachment_document(
    r: Res,
    attachment: JSON,
    field: str,
    *,
    sid: str,
    title: str | None = None,
    date: PartialDateTime | None = None,
    doc_type: JSON | None = None,
    category: str | None = None,
    author: str | None = None,
    description: str | None = None,
    keep_original: bool = True,
) -> Attached | None:
    """One Attachment as a Document item; None if it has neither data nor url."""
    url = string(attachment.get("url"))
    data = attachment.get("data")
    if data is None and url is None:
        return None
    media = string(attachment.get("contentType")) or "application/octet-stream"
    if _MEDIA_RE.match(media) is None:
        raise MappingError(f"{field}.contentType", "not a media type")
    code, _, _ = concept(doc_type, (LOINC,))
    content = _decode(data, f"{field}.data") if data is not None else None
    record = Document(
        source_id=sid,
        provenance=r.provenance(),
        status=string(r.get("status")),
        title=string(attachment.get("title")) or title,
        media_type=media,
        sha256=hashlib.sha256(content).hexdigest() if content is not None else _EMPTY_SHA256,
        size=len(content) if content is not None else 0,
        date=when(attachment.get("creation"), f"{field}.creation") or date,
        doc_type=code,
        category=category,
        author=author,
        description=description,
        language=string(attachment.get("language")),
        note=None if content is not None else f"Not fetched: {url}",
    )
    return r.attach(record, file=content) if keep_original else Attached(record, file=content)


def map_document_reference(r: Res) -> list[Item]:
    r.resolve(r.get("subject"), "subject")
    context = r.get("context")
    served = context.get("period") if isinstance(context, dict) else None
    date = r.when("date") or (
        when(served.get("start"), "context.period.start") if isinstance(served, dict) else None
    )
    authors = r.names(r.get("author"))
    doc_type = r.get("type")
    items: list[Item] = []
    for n, content in enumerate(dicts(r.get("content"))):
        attachment = content.get("attachment")
        if not isinstance(attachment, dict):
            continue
        sid = r.source_id if not items else f"{r.source_id}#content/{n}"
        item = attachment_document(
            r,
            attachment,
            f"content[{n}].attachment",
            sid=sid,
            title=string(r.get("description")) or concept_label(doc_type),
            date=date,
            doc_type=doc_type if isinstance(doc_type, dict) else None,
            category=first_code(r.get("category")),
            author=authors[0] if authors else None,
            description=string(r.get("description")),
            keep_original=not items,
        )
        if item is not None:
            items.append(item)
    if not items:
        raise Unusable("no attachment with data or a url")
    return items
