"""A run in the shape of the OpenAI Responses API: the response object and its typed stream events.

A response's id is its run's (``resp_<run id>``); its output is the run's answer (a ``message``
item) or the calls of the caller's tools it ended at (``function_call`` items).
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

from chatserver.domain import Run, RunEvent
from chatserver.errors import ChatServerError, NotFound

PREFIX = "resp_"

_STATUSES = {
    "queued": "queued",
    "running": "in_progress",
    "requires_action": "in_progress",
    "completed": "completed",
    "failed": "failed",
    "interrupted": "failed",
    "cancelled": "cancelled",
}


def response_id(run_id: str) -> str:
    return PREFIX + run_id


def run_id_of(response: str) -> str:
    if not response.startswith(PREFIX) or len(response) <= len(PREFIX):
        raise NotFound(f"response '{response}' not found")
    return response[len(PREFIX) :]


@dataclass(frozen=True, slots=True)
class Shown:
    """What a response object repeats of its request and run."""

    run_id: str
    created_at: int
    model: str
    background: bool = False
    store: bool = True
    previous_response_id: str | None = None
    instructions: str | None = None

    @classmethod
    def of(cls, run: Run) -> Shown:
        return cls(run.id, int(run.created_at.timestamp()), run.agent_name, store=run.chat_id is not None)

    def response(
        self,
        status: str,
        *,
        done: dict[str, Any] | None = None,
        error: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        usage = (done or {}).get("usage") or {}
        return {
            "id": response_id(self.run_id),
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "background": self.background,
            "error": error,
            "incomplete_details": None,
            "instructions": self.instructions,
            "max_output_tokens": None,
            "metadata": {},
            "model": self.model,
            "output": output_items(self.run_id, done) if done is not None else [],
            "parallel_tool_calls": True,
            "previous_response_id": self.previous_response_id,
            "store": self.store,
            "temperature": None,
            "text": {"format": {"type": "text"}},
            "tool_choice": "auto",
            "tools": [],
            "top_p": None,
            "truncation": "disabled",
            "usage": _usage(usage) if done is not None else None,
        }


def of_run(run: Run) -> dict[str, Any]:
    """A stored run as a response (``GET /v1/responses/{id}``)."""
    shown = Shown.of(run)
    status = _STATUSES[run.status]
    error = {"code": run.error.code, "message": run.error.detail} if run.error else None
    return shown.response(status, done=run.result if run.status == "completed" else None, error=error)


def output_items(run_id: str, done: dict[str, Any]) -> list[dict[str, Any]]:
    calls = done.get("client_tool_calls") or []
    items = [function_call(call) for call in calls]
    text = done.get("response") or ""
    if text or not calls:
        items.insert(0, message(run_id, text))
    return items


def message(run_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    content = [output_text(text)] if status == "completed" else []
    return {
        "type": "message",
        "id": f"msg_{run_id}",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def function_call(call: dict[str, Any], status: str = "completed") -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": f"fc_{call['id']}",
        "call_id": call["id"],
        "name": call["name"],
        "arguments": json.dumps(call.get("args") or {}) if status == "completed" else "",
        "status": status,
    }


def _usage(usage: dict[str, Any]) -> dict[str, Any]:
    given, taken = int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))
    return {
        "input_tokens": given,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": taken,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": given + taken,
    }


def input_items(run: Run) -> list[dict[str, Any]]:
    items = (run.result or {}).get("input_items") or []
    return [{"id": f"in_{run.id}_{index}", **item} for index, item in enumerate(items)]


@dataclass(slots=True)
class EventWriter:
    """Typed events in order, each with its ``sequence_number``."""

    shown: Shown
    sequence: int = 0
    text: list[str] = field(default_factory=list)

    def event(self, kind: str, **data: Any) -> str:
        payload = {"type": kind, "sequence_number": self.sequence, **data}
        self.sequence += 1
        return f"event: {kind}\ndata: {json.dumps(payload)}\n\n"

    def token(self, delta: str) -> list[str]:
        item_id = f"msg_{self.shown.run_id}"
        opening = [] if self.text else self._message_start()
        self.text.append(delta)
        where = {"item_id": item_id, "output_index": 0, "content_index": 0}
        return [*opening, self.event("response.output_text.delta", **where, delta=delta, logprobs=[])]

    def _message_start(self) -> list[str]:
        item = message(self.shown.run_id, "", "in_progress")
        where = {"item_id": item["id"], "output_index": 0, "content_index": 0}
        return [
            self.event("response.output_item.added", output_index=0, item=item),
            self.event("response.content_part.added", **where, part=output_text("")),
        ]

    def done(self, done: dict[str, Any]) -> list[str]:
        events: list[str] = []
        items = output_items(self.shown.run_id, done)
        for index, item in enumerate(items):
            if item["type"] == "message":
                events += self._message_end(item)
            else:
                events += self._call(index, item)
        return [
            *events,
            self.event("response.completed", response=self.shown.response("completed", done=done)),
        ]

    def _message_end(self, item: dict[str, Any]) -> list[str]:
        text = item["content"][0]["text"]
        # Text that was not streamed (checked structured output, or none) comes now, whole.
        events: list[str] = []
        if not self.text:
            events = self.token(text) if text else self._message_start()
        where = {"item_id": item["id"], "output_index": 0, "content_index": 0}
        return [
            *events,
            self.event("response.output_text.done", **where, text=text, logprobs=[]),
            self.event("response.content_part.done", **where, part=output_text(text)),
            self.event("response.output_item.done", output_index=0, item=item),
        ]

    def _call(self, index: int, item: dict[str, Any]) -> list[str]:
        started = {**item, "arguments": "", "status": "in_progress"}
        where = {"item_id": item["id"], "output_index": index}
        return [
            self.event("response.output_item.added", output_index=index, item=started),
            self.event("response.function_call_arguments.delta", **where, delta=item["arguments"]),
            self.event(
                "response.function_call_arguments.done",
                **where,
                name=item["name"],
                arguments=item["arguments"],
            ),
            self.event("response.output_item.done", output_index=index, item=item),
        ]

    def failed(self, status: str, error: dict[str, str] | None) -> str:
        return self.event("response.failed", response=self.shown.response(status, error=error))


async def response_events(
    writer: EventWriter, events: AsyncGenerator[RunEvent, None], *, checked: bool
) -> AsyncGenerator[str, None]:
    """The run's events as the Responses API's; ``checked``: text comes whole once checked."""
    yield writer.event("response.created", response=writer.shown.response("in_progress"))
    yield writer.event("response.in_progress", response=writer.shown.response("in_progress"))
    try:
        async for event in events:
            for chunk in _rendered(writer, event, checked):
                yield chunk
    except ChatServerError as error:
        yield writer.failed("failed", {"code": "server_error", "message": error.detail})


def _rendered(writer: EventWriter, event: RunEvent, checked: bool) -> list[str]:
    if event.kind == "token" and not checked:
        return writer.token(event.data["delta"])
    if event.kind == "done":
        return writer.done(event.data)
    if event.kind == "cancelled":
        return [writer.failed("cancelled", None)]
    if event.kind == "error":
        error = {"code": str(event.data.get("code")), "message": str(event.data.get("detail"))}
        return [writer.failed("failed", error)]
    return []
