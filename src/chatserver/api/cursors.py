"""Keyset cursors of the paged lists (``?before=``): opaque to clients.

A bad cursor is reported like any other bad query parameter, at ``["query", "before"]``.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from fastapi.exceptions import RequestValidationError

MAX_ID_DIGITS = 19
"""A 64-bit id has at most 19 digits; longer would overflow the databases' BIGINT."""


def invalid_cursor() -> RequestValidationError:
    return RequestValidationError(
        [{"loc": ("query", "before"), "msg": "invalid cursor", "type": "value_error"}]
    )


def decode_id_cursor(cursor: str) -> int:
    """An integer id cursor, as the message and event lists use."""
    if not cursor.isdigit() or len(cursor) > MAX_ID_DIGITS:
        raise invalid_cursor()
    return int(cursor)


def encode_stamp_cursor(stamp: datetime, row_id: str) -> str:
    raw = f"{stamp.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_stamp_cursor(cursor: str) -> tuple[datetime, str]:
    """A (timestamp, id) cursor, as lists ordered by time with an id tie-break use."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, row_id = raw.split("|", 1)
        return datetime.fromisoformat(stamp), row_id
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise invalid_cursor() from error
