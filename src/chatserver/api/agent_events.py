"""A run's events as pydantic-ai's agent stream events, which the framework's UI protocol streams render.

pydantic-ai's UI adapters (``pydantic_ai.ui``) drive ``Agent.run``, which our run loop replaces, but
their event streams turn agent stream events into each protocol's chunks. So a run's log is read
back as those events: ``token`` -> a text part, ``tool_call`` -> a tool-call part (announced as a
call once its response has ended), ``tool_result`` -> the call's return part. A failed run raises
``RunFailed`` and a cancelled one ``RunCancelled``, so each protocol ends the way the framework
ends its own failed or cancelled runs; a completed run leaves its ``done`` data on ``done``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Iterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pydantic_ai.exceptions import RunCancelled
from pydantic_ai.messages import (
    AgentStreamEvent,
    FunctionToolCallEvent,
    FunctionToolResultEvent,
    PartDeltaEvent,
    PartEndEvent,
    PartStartEvent,
    TextPart,
    TextPartDelta,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.ui import UIEventStream

from chatserver.api.errors import status_and_code
from chatserver.domain import RunEvent
from chatserver.errors import ChatServerError

log = logging.getLogger("chatserver.api")
E = TypeVar("E")

NO_RESULT = "the tool call failed"
"""A call with no result event: the loop hands a retried call back to the model as a prompt, not a result."""


class RunFailed(Exception):
    """A run that ended in an error: its detail is the message, its code the protocol may carry."""

    def __init__(self, detail: str, code: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code


@dataclass
class AgentEvents:
    """One reading of one run's events, as agent stream events (iterate ``events()`` once)."""

    run_id: str
    chat_id: str | None
    source: AsyncGenerator[RunEvent, None]
    done: dict[str, Any] | None = None
    """The run's ``done`` data, once it has completed."""
    _turn: Literal["response", "request"] = "response"
    _index: int = 0
    _text: TextPart | None = None
    _streamed_text: bool = False
    _called: list[ToolCallPart] = field(default_factory=list[ToolCallPart])
    """Calls of the current response, announced once it has ended."""
    _pending: list[ToolCallPart] = field(default_factory=list[ToolCallPart])
    """Announced calls that have no result yet, oldest first."""

    async def events(self) -> AsyncGenerator[AgentStreamEvent, None]:
        try:
            async with aclosing(self.source) as source:
                async for event in source:
                    for native in self._translate(event):
                        yield native
                    if event.terminal:
                        _raise_unless_done(event)
                        return
        except ChatServerError as error:
            # The 200 is already sent: the protocol's error carries the failure, with our code.
            raise RunFailed(error.detail, status_and_code(error)[1]) from error
        except (RunFailed, RunCancelled):
            raise
        except Exception as error:
            log.exception("run stream failed")
            raise RunFailed("internal server error", "internal_error") from error

    def _translate(self, event: RunEvent) -> Iterator[AgentStreamEvent]:
        data = event.data
        if event.kind == "token":
            yield from self._token(str(data.get("delta", "")))
        elif event.kind == "tool_call":
            part = ToolCallPart(str(data.get("name")), data.get("args") or {}, f"{self.run_id}-{event.id}")
            yield from self._tool_call(part)
        elif event.kind == "tool_result":
            yield from self._tool_result(str(data.get("name")), data.get("result"))
        elif event.terminal:
            if event.kind == "done" and not self._streamed_text and data.get("response"):
                # The run's log was gone (an expired or replayed run): its answer comes from the record.
                yield from self._token(str(data["response"]))
            yield from self._end_text(None)
            yield from self._announce()
            if event.kind == "done":
                yield from self._unanswered()
                self.done = data

    def _token(self, delta: str) -> Iterator[AgentStreamEvent]:
        yield from self._respond()
        self._streamed_text = True
        if self._text is None:
            self._text = TextPart(delta)
            yield PartStartEvent(index=self._index, part=self._text)
            return
        self._text = TextPart(self._text.content + delta)
        yield PartDeltaEvent(index=self._index, delta=TextPartDelta(delta))

    def _tool_call(self, part: ToolCallPart) -> Iterator[AgentStreamEvent]:
        yield from self._respond()
        yield from self._end_text("tool-call")
        yield PartStartEvent(index=self._index, part=part)
        yield PartEndEvent(index=self._index, part=part)
        self._index += 1
        self._called.append(part)

    def _tool_result(self, name: str, result: Any) -> Iterator[AgentStreamEvent]:
        yield from self._announce()
        call = next((call for call in self._pending if call.tool_name == name), None)
        if call is None:
            return
        self._pending.remove(call)
        yield FunctionToolResultEvent(ToolReturnPart(name, result, call.tool_call_id))

    def _respond(self) -> Iterator[AgentStreamEvent]:
        """Text or a call after the tools ran: the model's next response has begun."""
        if self._turn == "request":
            yield from self._unanswered()
            self._turn, self._index = "response", 0

    def _end_text(self, next_kind: Literal["tool-call"] | None) -> Iterator[AgentStreamEvent]:
        if self._text is not None:
            yield PartEndEvent(index=self._index, part=self._text, next_part_kind=next_kind)
            self._text = None
            self._index += 1

    def _announce(self) -> Iterator[AgentStreamEvent]:
        """The response has ended: its calls are made (they run on the server, validated there)."""
        for part in self._called:
            yield FunctionToolCallEvent(part, args_valid=True)
        if self._called:
            self._turn = "request"
        self._pending.extend(self._called)
        self._called = []

    def _unanswered(self) -> Iterator[AgentStreamEvent]:
        for call in self._pending:
            failed = ToolReturnPart(call.tool_name, NO_RESULT, call.tool_call_id, outcome="failed")
            yield FunctionToolResultEvent(failed)
        self._pending = []


def _raise_unless_done(event: RunEvent) -> None:
    if event.kind == "error":
        raise RunFailed(str(event.data.get("detail") or "the run failed"), str(event.data.get("code")))
    if event.kind == "cancelled":
        raise RunCancelled("the run was cancelled")


async def encoded(stream: UIEventStream[Any, E, Any, Any], events: AgentEvents) -> AsyncGenerator[str, None]:
    """The run as ``stream``'s protocol, encoded; closed (and the run's events with it) however it ends."""
    chunks = stream.transform_stream(events.events())
    try:
        async for chunk in chunks:
            yield stream.encode_event(chunk)
    finally:
        if isinstance(chunks, AsyncGenerator):
            await chunks.aclose()
