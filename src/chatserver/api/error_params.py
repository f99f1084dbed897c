"""OpenAI's ``error.param`` and ``error.message`` from a list of field errors (``loc``, ``msg``).

A loc starts with where the value came from (``body``, ``header``, ...), which OpenAI's ``param``
leaves out. Pydantic also puts the member of a union it tried into a loc (``str``,
``list[ContentPart]``); with the request body at hand the path is followed only as far as the body
goes, so ``param`` names the field the client sent, never a type.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

_SOURCES = frozenset({"body", "query", "path", "header", "cookie"})


def first_problem(detail: Any, sent: Any = None) -> tuple[str, str | None]:
    """The message and param of the first field error; further errors are counted in the message."""
    if not isinstance(detail, list) or not detail or not isinstance(detail[0], dict):
        return "invalid request", None
    first = detail[0]
    loc = list(first.get("loc", ()))
    path = _path_in_body(loc[1:], sent) if loc[:1] == ["body"] and sent is not None else _strip_source(loc)
    param = ".".join(str(part) for part in path) or None
    message = str(first.get("msg", "invalid value"))
    if param:
        message = f"{param}: {message}"
    if len(detail) > 1:
        message += f" (and {len(detail) - 1} more)"
    return message, param


def _strip_source(loc: list[Any]) -> list[Any]:
    return loc[1:] if loc[:1] and loc[0] in _SOURCES else loc


def _path_in_body(loc: Sequence[Any], sent: Any) -> list[Any]:
    """The leading part of ``loc`` that exists in ``sent``, plus a missing last key (a missing field)."""
    path: list[Any] = []
    value = sent
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if isinstance(value, dict) and isinstance(part, str) and (part in value or last):
            value = value.get(part)
        elif isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value):
            value = value[part]
        else:
            break
        path.append(part)
    return path
