"""Structured logs: one JSON object per line, the request id bound in context, secrets kept out."""

from __future__ import annotations

import io
import json
import logging
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from chatserver.observability.logs import QUIET_LOGGERS, REDACTED, configure_logging, scrub

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXRoYXQtaXMtbG9uZw"
API_KEY = "cs_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0"


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    out = io.StringIO()
    configure_logging("DEBUG", json=True, stream=out)
    try:
        yield out
    finally:
        root.handlers[:], root.level = saved
        logging.captureWarnings(False)
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.NOTSET)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_record_is_one_json_line_with_level_logger_time_and_extra_fields(stream: io.StringIO) -> None:
    logging.getLogger("chatserver.test").info("turn done in %d ms", 12, extra={"agent": "assistant"})
    [line] = lines(stream)
    assert line["event"] == "turn done in 12 ms"
    assert (line["level"], line["logger"], line["agent"]) == ("info", "chatserver.test", "assistant")
    assert line["timestamp"].endswith("Z")


def test_the_bound_request_id_is_on_every_line_logged_inside_the_context(stream: io.StringIO) -> None:
    with structlog.contextvars.bound_contextvars(request_id="req-1"):
        logging.getLogger("chatserver.a").info("first")
        logging.getLogger("some.library").warning("second")
    logging.getLogger("chatserver.a").info("outside")
    first, second, outside = lines(stream)
    assert first["request_id"] == second["request_id"] == "req-1"
    assert "request_id" not in outside


def test_sensitive_fields_are_masked_and_token_shaped_strings_scrubbed(stream: io.StringIO) -> None:
    log = logging.getLogger("chatserver.test")
    log.info(
        "calling with Bearer %s and %s",
        JWT,
        API_KEY,
        extra={"authorization": "Bearer x", "content": "my diary", "nested": {"api_key": "k", "ok": 1}},
    )
    log.warning("cannot reach postgresql://app:hunter2@db.example/chat")
    text = stream.getvalue()
    for secret in (JWT, API_KEY, "my diary", "hunter2", "Bearer x"):
        assert secret not in text
    first, second = lines(stream)
    assert first["authorization"] == first["content"] == REDACTED
    assert first["nested"] == {"api_key": REDACTED, "ok": 1}
    assert second["event"] == f"cannot reach postgresql://app:{REDACTED}@db.example/chat"


def test_exception_text_is_scrubbed_too(stream: io.StringIO) -> None:
    try:
        raise ValueError(f"bad token {JWT}")
    except ValueError:
        logging.getLogger("chatserver.test").exception("failed")
    [line] = lines(stream)
    assert "ValueError" in line["exception"] and JWT not in line["exception"]


def test_libraries_that_log_request_bodies_stay_at_warning_even_at_debug(stream: io.StringIO) -> None:
    logging.getLogger("httpx").info("HTTP Request: POST https://api.example/v1/chat")
    logging.getLogger("openai").debug("Request options: {'messages': [...]}")
    logging.getLogger("chatserver.test").debug("ours")
    assert [line["event"] for line in lines(stream)] == ["ours"]


def test_configuring_twice_keeps_one_handler_and_a_bad_level_is_refused(stream: io.StringIO) -> None:
    configure_logging("INFO", json=True, stream=stream)
    logging.getLogger("chatserver.test").info("once")
    assert [line["event"] for line in lines(stream)] == ["once"]
    with pytest.raises(ValueError, match="LOUD"):
        configure_logging("LOUD")


def test_scrub_leaves_ordinary_text_alone() -> None:
    text = "GET /api/chats/chat-1/messages 200 in 3 ms; model openai:gpt-4.1-mini"
    assert scrub(text) == text


def test_python_warnings_become_log_lines(stream: io.StringIO) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("an old API", DeprecationWarning, stacklevel=1)
    [line] = lines(stream)
    assert line["logger"] == "py.warnings" and "an old API" in line["event"]
