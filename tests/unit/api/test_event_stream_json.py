"""Server-sent events carry JSON every client parses: no bare NaN or Infinity."""

from __future__ import annotations

import json
from typing import Any

from chatserver.api.run_streams import sse


def strict_json(text: str) -> Any:
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def event_data(event: str) -> Any:
    data = next(line for line in event.splitlines() if line.startswith("data: "))
    return strict_json(data.removeprefix("data: "))


def test_a_tool_call_with_non_finite_numbers_is_sent_with_null_in_their_place() -> None:
    event = sse("tool_call", {"name": "t", "args": {"a": float("nan"), "b": [float("inf"), 1.5]}})
    assert event_data(event) == {"name": "t", "args": {"a": None, "b": [None, 1.5]}}


def test_an_event_with_finite_numbers_is_sent_as_it_is() -> None:
    payload = {"name": "t", "args": {"a": 1, "b": [2.5, "x"], "c": None}}
    assert event_data(sse("tool_call", payload)) == payload
