"""Codec between stored chat messages and pydantic-ai model messages.

Stored shape (one row per message):

* ``user``      -> ``ModelRequest([UserPromptPart(content)])``
* ``assistant`` -> ``ModelResponse([TextPart(content)?, ToolCallPart(name, args, id)...])``
* ``tool``      -> ``ToolReturnPart(tool_name, content, tool_call_id)``; consecutive tool messages
                   share one ``ModelRequest``

Tool calls and results are kept in pairs: a call without a later result, or a result without an
earlier call (the window cut a pair in two, or a turn failed half-way), is dropped, so a
provider never sees an orphan.

A run's new messages are stored the same way: each ``ModelResponse`` becomes one assistant message,
each tool result one tool message whose content is the text the model saw (strings as-is, other
values JSON). Retries (a rejected call and the feedback asking the model to try again) are not
stored: the retried call is left out of its assistant message, so the pairing above holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import pydantic_core
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelRequestPart,
    ModelResponse,
    ModelResponsePart,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)

from chatserver.domain import NewMessage, Role, ToolCall, ToolCallRecord


class StoredMessage(Protocol):
    """What the codec reads from a stored message: ``Message`` and ``NewMessage`` both fit."""

    @property
    def role(self) -> Role: ...
    @property
    def content(self) -> str: ...
    @property
    def tool_calls(self) -> tuple[ToolCall, ...]: ...
    @property
    def tool_call_id(self) -> str | None: ...
    @property
    def tool_name(self) -> str | None: ...


def to_model_messages(messages: Sequence[StoredMessage]) -> list[ModelMessage]:
    """Stored messages (oldest first) -> the model-visible history, without orphan tool parts.

    Each part and message carries its stored time (``created_at``; now for a message not stored
    yet) rather than the framework's default of the moment of decoding. A window is decoded on
    every turn, so messages without tool calls, nearly all, take the shortest path.
    """
    answered = _answered_call_ids(messages)
    now = datetime.now(UTC)
    called: set[str] = set()
    result: list[ModelMessage] = []
    pending_returns: list[ModelRequestPart] = []
    for message in messages:
        role = message.role
        if role == "tool":
            if message.tool_call_id in called:
                pending_returns.append(_tool_return(message))
            continue
        if pending_returns:
            result.append(ModelRequest(parts=pending_returns, timestamp=now))
            pending_returns = []
        at = getattr(message, "created_at", now)
        if role == "user":
            result.append(ModelRequest(parts=[UserPromptPart(message.content, timestamp=at)], timestamp=at))
        elif not message.tool_calls:
            if message.content:
                result.append(ModelResponse(parts=[TextPart(message.content)], timestamp=at))
        else:
            response = _assistant_response(message, answered, at)
            if response is not None:
                called.update(p.tool_call_id for p in response.parts if isinstance(p, ToolCallPart))
                result.append(response)
    if pending_returns:
        result.append(ModelRequest(parts=pending_returns, timestamp=now))
    return result


def _answered_call_ids(messages: Sequence[StoredMessage]) -> set[str]:
    """Ids of tool calls that have a result stored after them."""
    called: set[str] = set()
    answered: set[str] = set()
    for message in messages:
        if message.role == "tool" and message.tool_call_id in called:
            answered.add(message.tool_call_id)
        elif message.tool_calls:
            called.update(call.id for call in message.tool_calls)
    return answered


def _assistant_response(message: StoredMessage, answered: set[str], at: datetime) -> ModelResponse | None:
    parts: list[ModelResponsePart] = [TextPart(message.content)] if message.content else []
    parts.extend(
        ToolCallPart(call.name, dict(call.args), call.id)
        for call in message.tool_calls
        if call.id in answered
    )
    return ModelResponse(parts=parts, timestamp=at) if parts else None


def _tool_return(message: StoredMessage) -> ToolReturnPart:
    return ToolReturnPart(message.tool_name or "", message.content, message.tool_call_id or "")


def result_text(part: ToolReturnPart) -> str:
    """The tool result as the model saw it: strings as-is, other values JSON, failures ``{"error": ...}``."""
    return part.model_response_str()


def result_value(part: ToolReturnPart) -> Any:
    """The tool result as JSON-compatible data for API responses and stream events."""
    if part.outcome != "success":
        return {"error": part.model_response_str(wrap_if_error=False)}
    return pydantic_core.to_jsonable_python(part.content, fallback=str)


def from_new_messages(
    new_messages: Sequence[ModelMessage],
    output: str | None = None,
    handed: Sequence[ToolCall] = (),
) -> tuple[list[NewMessage], list[ToolCallRecord], str]:
    """A run's ``new_messages()`` -> (messages to store, this turn's tool calls, final text).

    The user prompt is skipped (the service stored it before the run). ``output`` is the run's
    output; without it the final text is the last assistant text. ``handed``: calls of the caller's
    tools the run ended at, stored on their assistant message though their results come later.
    """
    calls = {
        part.tool_call_id: part
        for message in new_messages
        if isinstance(message, ModelResponse)
        for part in message.parts
        if isinstance(part, ToolCallPart)
    }
    returns = _settled_returns(new_messages, calls)
    kept = set(returns) | {call.id for call in handed}
    stored: list[NewMessage] = []
    records: list[ToolCallRecord] = []
    last_text = ""
    prompts = 0
    for message in new_messages:
        if isinstance(message, ModelResponse):
            assistant = _assistant_message(message, kept)
            if assistant is not None:
                stored.append(assistant)
                last_text = assistant.content or last_text
            continue
        for part in message.parts:
            if isinstance(part, ToolReturnPart) and returns.get(part.tool_call_id) is part:
                call = calls[part.tool_call_id]
                stored.append(_tool_message(part))
                records.append(ToolCallRecord(call.tool_name, call.args_as_dict(), result_value(part)))
            elif isinstance(part, UserPromptPart):
                prompts += 1
                if prompts > 1:  # the first is the run's own message, stored before the run
                    stored.append(NewMessage("user", _prompt_text(part)))
    return stored, records, output if output is not None else last_text


def _settled_returns(
    new_messages: Sequence[ModelMessage], calls: dict[str, ToolCallPart]
) -> dict[str, ToolReturnPart]:
    """tool_call_id -> the result that settled a call of this run (retried attempts excluded)."""
    returns: dict[str, ToolReturnPart] = {}
    for message in new_messages:
        if isinstance(message, ModelRequest):
            for part in message.parts:
                if not isinstance(part, ToolReturnPart) or part.outcome == "retried":
                    continue
                if part.tool_call_id in calls:
                    returns[part.tool_call_id] = part
    return returns


def _assistant_message(response: ModelResponse, kept: set[str]) -> NewMessage | None:
    text = "".join(part.content for part in response.parts if isinstance(part, TextPart))
    calls = tuple(
        ToolCall(id=part.tool_call_id, name=part.tool_name, args=part.args_as_dict())
        for part in response.parts
        if isinstance(part, ToolCallPart) and part.tool_call_id in kept
    )
    if not text and not calls:
        return None
    return NewMessage(role="assistant", content=text, tool_calls=calls)


def _prompt_text(part: UserPromptPart) -> str:
    return part.content if isinstance(part.content, str) else "".join(str(item) for item in part.content)


def _tool_message(part: ToolReturnPart) -> NewMessage:
    return NewMessage(
        role="tool", content=result_text(part), tool_call_id=part.tool_call_id, tool_name=part.tool_name
    )
