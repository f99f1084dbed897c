"""Keyset cursors of the paged lists (``?before=``): opaque to clients.

A bad cursor is reported like any other bad query parameter, at ``["query", "before"]``.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime

from fastapi.exceptions import RequestValidationError

from chatserver.untrusted import ascii_int

MAX_ID_DIGITS = 18
"""Every 18-digit number fits the databases' signed 64-bit ids; a 19-digit one may not."""
ROW_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
"""The ids of rows paged by time (chats, runs): what a cursor may name."""


def invalid_cursor() -> RequestValidationError:
    return RequestValidationError(
        [{"loc": ("query", "before"), "msg": "invalid cursor", "type": "value_error"}]
    )


def decode_id_cursor(cursor: str) -> int:
    """An integer id cursor, as the message and event lists use."""
    number = ascii_int(cursor, max_digits=MAX_ID_DIGITS)
    if number is None:
        raise invalid_cursor()
    return number


def encode_stamp_cursor(stamp: datetime, row_id: str) -> str:
    raw = f"{stamp.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_stamp_cursor(cursor: str) -> tuple[datetime, str]:
    """A (timestamp, id) cursor, as lists ordered by time with an id tie-break use."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, row_id = raw.split("|", 1)
        moment = datetime.fromisoformat(stamp)
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise invalid_cursor() from error
    # A naive time cannot be compared with the stored (aware) ones; we never issue one.
    if moment.tzinfo is None or not ROW_ID.fullmatch(row_id):
        raise invalid_cursor()
    return moment, row_id
