"""Structured logs: stdlib ``logging`` records rendered by structlog, one JSON object per line
(readable text instead when a person watches a terminal).

Every library logs through stdlib; the formatter adds the request id bound in the request's context
(``structlog.contextvars``), so each line of a request carries it. Two guards keep secrets out: keys
that hold secrets or user content are masked, and token-shaped strings (JWTs, bearer tokens, API
keys, URL passwords) are scrubbed from every string value, exception text included.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "[redacted]"
SENSITIVE_KEYS = frozenset(
    {
        "authorization",
        "cookie",
        "set-cookie",
        "token",
        "access_token",
        "refresh_token",
        "api_key",
        "key",
        "secret",
        "password",
        "jwt",
        "content",
        "message",
        "messages",
        "prompt",
        "system_prompt",
        "response",
    }
)
_SCRUBS = (
    (re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), REDACTED),
    (re.compile(r"(?i)\b(bearer|basic)\s+[^\s,;\"']+"), r"\1 " + REDACTED),
    (re.compile(r"\bcs_[A-Za-z0-9_-]{16,}"), "cs_" + REDACTED),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"), "sk-" + REDACTED),
    (re.compile(r"(://[^/\s:@]+):[^@\s/]+@"), r"\1:" + REDACTED + "@"),
)
# Libraries whose DEBUG or INFO output can include request bodies, SQL parameters or URLs: they stay
# at WARNING whatever CHATSERVER_LOG_LEVEL says.
QUIET_LOGGERS = (
    "aiosqlite",
    "asyncpg",
    "sqlalchemy",
    "httpx",
    "httpcore",
    "openai",
    "anthropic",
    "google_genai",
    "google",
    "mcp",
    "redis",
    "uvicorn.access",
    "multipart",
)
_HANDLER_NAME = "chatserver"


def scrub(text: str) -> str:
    for pattern, replacement in _SCRUBS:
        text = pattern.sub(replacement, text)
    return text


def redact(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    """Mask sensitive keys and scrub token-shaped strings, recursively through dicts and lists."""
    event.pop("color_message", None)  # uvicorn's copy of the message with terminal colours
    _redact_mapping(event)
    return event


def _redact_mapping(mapping: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(mapping.items()):
        if key.lower() in SENSITIVE_KEYS and key != "event":
            mapping[key] = REDACTED
        else:
            mapping[key] = _redact_value(value)
    return mapping


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return _redact_mapping(dict(value))
    if isinstance(value, list | tuple):
        return [_redact_value(item) for item in value]
    return value


def _formatter(*, json: bool) -> logging.Formatter:
    pre_chain: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=pre_chain,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
    )


def json_wanted(setting: bool | None, stream: TextIO) -> bool:
    """``CHATSERVER_LOG_JSON`` when set; else text for a person at a terminal, JSON for collectors."""
    if setting is not None:
        return setting
    isatty = getattr(stream, "isatty", None)
    return not (callable(isatty) and isatty())


def configure_logging(level: str = "INFO", *, json: bool | None = True, stream: TextIO | None = None) -> None:
    """Send every log record to ``stream`` (stderr) as JSON (or readable text) at ``level``.

    ``json=None`` decides by the stream, as ``json_wanted`` does.

    Idempotent: replaces the handler it installed before, leaves others alone.
    """
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    target = stream or sys.stderr
    handler = logging.StreamHandler(target)
    handler.name = _HANDLER_NAME
    handler.setFormatter(_formatter(json=json_wanted(json, target)))
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.name == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    logging.captureWarnings(True)  # Python warnings become log lines too, not stray stderr text
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))
