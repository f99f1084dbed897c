"""Untrusted text and numbers (request bodies, cursors, a model's tool arguments): one check.

Python's ``json`` module accepts what no database stores and no response can carry back: unpaired
surrogates (``"\\ud800"`` is a valid JSON escape, but not UTF-8), integers of any size (and fails
with a ``ValueError`` past 4,300 digits), ``NaN`` and ``Infinity``, and nesting until the stack runs
out (``RecursionError``). ``parse_json`` refuses all of them with the path of the offending value, so
the caller can answer a 4xx naming the field. ``ascii_int`` does the same for numbers in text:
``str.isdigit`` is true for ``"²"``, which ``int`` refuses.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_JSON_DEPTH = 32
MAX_JSON_INT = 2**63 - 1
"""Both databases store 64-bit integers; a larger one could only fail later, deeper down."""

Path = tuple[str | int, ...]


class UntrustedJsonError(ValueError):
    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(reason)
        self.path = path
        self.reason = reason


class _Refused:
    """Stands in, while parsing, for a number we refuse; the walk reports it with its path."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _int(text: str) -> int | _Refused:
    digits = len(text) - text.startswith("-")
    if digits > 19 or abs(int(text)) > MAX_JSON_INT:
        return _Refused(f"integers must be within ±{MAX_JSON_INT}")
    return int(text)


def _float(text: str) -> float | _Refused:
    value = float(text)
    return value if math.isfinite(value) else _Refused("numbers must be finite")


def _constant(_: str) -> _Refused:
    return _Refused("NaN and Infinity are not JSON numbers")


def parse_json(raw: str | bytes) -> Any:
    """The parsed value; ``UntrustedJsonError`` for a value we refuse, ``ValueError`` for bad JSON."""
    try:
        value = json.loads(raw, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except RecursionError:
        raise UntrustedJsonError((), f"JSON must not nest deeper than {MAX_JSON_DEPTH} levels") from None
    check_json_value(value)
    return value


def check_json_value(value: Any) -> None:
    """Walked iteratively (deep input must not exhaust the stack), depth-first, first problem wins."""
    pending: list[tuple[Any, Path]] = [(value, ())]
    while pending:
        item, path = pending.pop()
        if isinstance(item, _Refused):
            raise UntrustedJsonError(path, item.reason)
        if isinstance(item, str):
            _check_text(item, path)
            continue
        if not isinstance(item, dict | list):
            continue
        if len(path) >= MAX_JSON_DEPTH:
            raise UntrustedJsonError(path, f"JSON must not nest deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(item, list):
            pending.extend((child, (*path, index)) for index, child in reversed(list(enumerate(item))))
            continue
        for key, child in reversed(list(item.items())):
            _check_text(key, (*path, key))
            pending.append((child, (*path, key)))


def _check_text(text: str, path: Path) -> None:
    if not text.isascii() and not encodable(text):
        raise UntrustedJsonError(path, "text must be valid Unicode (no unpaired surrogates)")


def encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable(text: str) -> str:
    """``text`` as it may appear in an error message: an unpaired surrogate as its escape."""
    return text if encodable(text) else text.encode("utf-8", "backslashreplace").decode()


def error_location(path: Path) -> list[str | int]:
    return [printable(part) if isinstance(part, str) else part for part in path]


def ascii_int(text: str, *, max_digits: int) -> int | None:
    """The number ``text`` spells in ASCII digits, at most ``max_digits`` of them; else None."""
    if not text or len(text) > max_digits or not (text.isascii() and text.isdigit()):
        return None
    return int(text)
