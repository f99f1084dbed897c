"""The loop's tool steps: a response's calls run concurrently (as the framework runs them), each
result stored as it finishes (``StepLog``), and a run that goes on from its stored steps settles
the calls its last response left open first (``agents/continuation.py``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from dataclasses import dataclass, replace

from pydantic_ai import RunContext
from pydantic_ai.exceptions import ToolFailedError, ToolRetryError
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelRequestPart,
    ModelResponse,
    ToolCallPart,
    ToolReturn,
    ToolReturnPart,
)
from pydantic_ai.models import Model
from pydantic_ai.settings import ModelSettings
from pydantic_ai.tool_manager import ToolManager

from chatserver.agents.continuation import Continuation, unknown_outcome
from chatserver.agents.history import result_value
from chatserver.agents.types import StreamEvent, ToolCallEvent, ToolResultEvent, TurnDeps
from chatserver.domain import TurnOptions


@dataclass(slots=True)
class LoopState:
    """A run of the loop as it goes: its messages so far, its tools at this step."""

    model: Model
    label: str
    """The agent's model string: who answered, unless a fallback model did (``answering``)."""
    ctx: RunContext[TurnDeps]
    tools: ToolManager[TurnDeps]
    instructions: str | None
    messages: list[ModelMessage]
    first_new: int
    streamed: bool
    options: TurnOptions
    settings: ModelSettings | None
    """The model settings of every request: the turn's options', and a fallback chain's deadline."""
    approval: frozenset[str] = frozenset()
    """Tools whose calls wait for the user's decision."""


NO_WAY_TO_ASK = (
    "denied: this tool needs the user's approval, which a run without a stored chat "
    "(or with the caller's own tools or output format) cannot ask for"
)


async def call_tools(
    run: LoopState,
    calls: list[ToolCallPart],
    into: list[ModelRequestPart] | None = None,
    *,
    refused: Sequence[ToolCallPart] = (),
) -> AsyncGenerator[StreamEvent, None]:
    """Run the response's tool calls (concurrently, as the framework does) and send their results
    back; with ``into``, only collect the results there (the run pauses or has more to add).
    ``refused``: calls that need an approval this run cannot wait for: denied, never run."""
    for call in calls:
        yield ToolCallEvent(call.tool_name, call.args_as_dict())
    parts = await asyncio.gather(*(_call_tool(run, call) for call in calls))
    parts += [ToolReturnPart(c.tool_name, NO_WAY_TO_ASK, tool_call_id=c.tool_call_id) for c in refused]
    for part in parts:
        if isinstance(part, ToolReturnPart):
            yield ToolResultEvent(part.tool_name, result_value(part))
    if into is not None:
        into.extend(parts)
        return
    await _answered(run, list(parts))


async def _answered(run: LoopState, parts: list[ModelRequestPart]) -> None:
    run.messages.append(ModelRequest(parts=parts))
    run.ctx = replace(run.ctx, run_step=run.ctx.run_step + 1, messages=run.messages)
    run.tools = await run.tools.for_run_step(run.ctx)


async def go_on(run: LoopState, continued: Continuation) -> AsyncGenerator[StreamEvent, None]:
    """Settle the last stored response's calls: run the approved ones, the rest have results."""
    last = run.messages[-1]
    assert isinstance(last, ModelResponse)
    steps = run.ctx.deps.steps
    results = dict(continued.settled)
    for call in continued.unknown:
        results[call.tool_call_id] = unknown_outcome(call)
        if steps is not None:
            await steps.called(call, results[call.tool_call_id])
    if steps is not None:
        for call in continued.run:
            await steps.calling(call)
    ran: list[ModelRequestPart] = []
    async with aclosing(call_tools(run, continued.run, ran)) as called:
        async for event in called:
            yield event
    results.update((call.tool_call_id, part) for call, part in zip(continued.run, ran, strict=True))
    # The calls as run: an edited call's arguments are those the model is told it ran with.
    edited = {call.tool_call_id: call for call in continued.run}
    parts = [edited.get(p.tool_call_id, p) if isinstance(p, ToolCallPart) else p for p in last.parts]
    run.messages[-1] = replace(last, parts=parts)
    await _answered(run, [results[c.tool_call_id] for c in last.tool_calls if c.tool_call_id in results])


async def _call_tool(run: LoopState, call: ToolCallPart) -> ModelRequestPart:
    part = await _handled(run.tools, call)
    steps = run.ctx.deps.steps
    if steps is not None:
        await steps.called(call, part)
    return part


async def _handled(tools: ToolManager[TurnDeps], call: ToolCallPart) -> ModelRequestPart:
    try:
        value = await tools.handle_call(call)
    except ToolRetryError as exc:
        return exc.tool_retry
    except ToolFailedError as exc:
        return exc.tool_failed
    if isinstance(value, ToolReturn):
        value = value.return_value
    return ToolReturnPart(tool_name=call.tool_name, content=value, tool_call_id=call.tool_call_id)
