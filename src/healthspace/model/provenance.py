"""Where a record came from: which source, which file, which place in it, which import."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

__all__ = ["Provenance", "Sha256Hex"]

# hashlib writes lower case; accept upper case too, so one digest has one spelling.
Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-fA-F]{64}$"), AfterValidator(str.lower)]


class Provenance(BaseModel):
    """The origin of one record, kept so every answer can cite its source."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str = Field(min_length=1)  # "fhir", "ccda", "apple_health", ...
    file_name: str | None = None
    file_sha256: Sha256Hex | None = None
    original_ref: str | None = None  # "Observation/abc", or an XPath-ish place in a document
    import_job: str | None = None
    imported_at: AwareDatetime | None = None
