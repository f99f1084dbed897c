"""Text a request may carry into storage: refused at the schema when a database cannot hold it.

PostgreSQL text and JSON cannot hold NUL (``\\x00``), and no database driver can encode an unpaired
surrogate (``"\\ud800"`` is valid JSON, but not UTF-8). Both are a 422 naming the field, on SQLite
too, so the two databases accept the same requests. The NUL rule is a ``pattern`` so the OpenAPI
schema states it; the storage layer maps whatever still slips through to a 4xx as well.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from chatserver.errors import InvalidInput
from chatserver.untrusted import encodable

NO_NUL_PATTERN = r"^[^\x00]*$"


def _encodable(value: str) -> str:
    if not encodable(value):
        raise ValueError("text must be valid Unicode (no unpaired surrogates)")
    return value


StoredText = Annotated[str, Field(pattern=NO_NUL_PATTERN), AfterValidator(_encodable)]
"""A string field whose value may be stored or looked up: no NUL, no unpaired surrogate."""


def checked_text(text: str, field: str) -> str:
    """Text read from inside a body (a message's parts): refused as ``StoredText`` would refuse it."""
    if "\x00" in text or not encodable(text):
        raise InvalidInput("text must be valid Unicode without NUL characters", field=field)
    return text
