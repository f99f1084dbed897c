"""A run going on from its stored steps: after the user's decisions, or after a restart.

The steps (``domain.steps``) hold each model response and each tool call's result. Rebuilt, they
are the run's messages after its prompt; the last response's calls that have no result yet are
what the loop does first: an approved call runs (with the user's arguments, if edited), a denied
one returns ``denied by the user: <reason>``, and one that started and never finished returns
``interrupted: outcome unknown``: it is never run again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic_ai.messages import (
    ModelMessage,
    ModelMessagesTypeAdapter,
    ModelRequest,
    ModelRequestPart,
    ModelResponse,
    ToolCallPart,
    ToolReturnPart,
)

from chatserver.domain.steps import UNKNOWN_OUTCOME, RunStep


@dataclass(slots=True)
class Continuation:
    messages: list[ModelMessage]
    """The run's messages after its prompt, ending with the response whose calls are unsettled."""
    run: list[ToolCallPart] = field(default_factory=list)
    """Approved calls to run now."""
    settled: dict[str, ModelRequestPart] = field(default_factory=dict)
    """Results of the last response's calls known without running them, by tool call id."""
    unknown: list[ToolCallPart] = field(default_factory=list)
    """Calls that started and never finished: their result is ``UNKNOWN_OUTCOME``."""
    next_seq: int = 0


def response_json(response: ModelResponse) -> Any:
    return ModelMessagesTypeAdapter.dump_python([response], mode="json")[0]


def result_json(part: ModelRequestPart) -> Any:
    return ModelMessagesTypeAdapter.dump_python([ModelRequest(parts=[part])], mode="json")[0]


def _load(payload: Any) -> ModelMessage:
    return ModelMessagesTypeAdapter.validate_python([payload])[0]


def denied(call: ToolCallPart, reason: str | None) -> ToolReturnPart:
    return ToolReturnPart(
        tool_name=call.tool_name,
        content=f"denied by the user: {reason or 'no reason given'}",
        tool_call_id=call.tool_call_id,
    )


def unknown_outcome(call: ToolCallPart) -> ToolReturnPart:
    return ToolReturnPart(tool_name=call.tool_name, content=UNKNOWN_OUTCOME, tool_call_id=call.tool_call_id)


def continuation(steps: Sequence[RunStep]) -> Continuation:
    """Where a run with these steps goes on from."""
    groups: list[tuple[ModelResponse, list[RunStep]]] = []
    for step in steps:
        if step.kind == "model":
            response = _load(step.payload)
            assert isinstance(response, ModelResponse)
            groups.append((response, []))
        elif groups:
            groups[-1][1].append(step)
    done = Continuation([], next_seq=(steps[-1].seq + 1) if steps else 0)
    for index, (response, tools) in enumerate(groups):
        done.messages.append(response)
        calls = {call.tool_call_id: call for call in response.tool_calls}
        if index < len(groups) - 1:
            parts = [_result(step) for step in tools if step.payload is not None]
            done.messages.append(ModelRequest(parts=parts))
            continue
        for step in tools:
            if step.tool_call_id in calls:
                _settle(done, step, calls[step.tool_call_id])
    return done


def _result(step: RunStep) -> ModelRequestPart:
    message = _load(step.payload)
    assert isinstance(message, ModelRequest)
    return message.parts[0]


def _settle(done: Continuation, step: RunStep, call: ToolCallPart) -> None:
    if step.status == "approved":
        done.run.append(replace(call, args=step.args) if step.args is not None else call)
    elif step.status == "started":
        done.unknown.append(call)
    elif step.status == "denied" and step.payload is None:
        done.settled[call.tool_call_id] = denied(call, step.reason)
    elif step.payload is not None:
        done.settled[call.tool_call_id] = _result(step)
