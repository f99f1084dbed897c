"""A chat's first title, from its first message: words, not a command's syntax."""

from __future__ import annotations

import re

TITLE_CHARS = 80
_COMMAND = re.compile(r"^/(tool\s+)?")
_SYNTAX = re.compile(r"[{}\[\]\"`*#>_~|]+|\\n")
_SPACE = re.compile(r"\s+")


def title_from(message: str) -> str:
    """``/tool remember {"note": "milk"}`` -> ``remember note: milk``; cut at a word, within 80."""
    text = _COMMAND.sub("", message.strip())
    text = _SPACE.sub(" ", _SYNTAX.sub(" ", text)).strip(" ,:")
    text = re.sub(r"\s+([,:])", r"\1", text)
    if len(text) <= TITLE_CHARS:
        return text or message.strip()[:TITLE_CHARS]
    cut = text[: TITLE_CHARS - 1].rsplit(" ", 1)[0]
    return cut + "…"
