"""The run loop: model requests and tool calls, one step at a time, on pydantic-ai's lower layers.

The framework's ``Agent.run`` walks a general graph (capabilities, output modes, deferred tools,
durable replay) whose CPU cost exceeds the rest of a turn. A chat turn needs less: ask the model,
run the tools it called, repeat until it answers in text. The loop keeps what the framework is good
at: the ``Model`` and its providers, sent through ``pydantic_ai.direct`` (which prepares the
messages as the model needs them and enforces the model's request timeouts), the message types,
and the ``ToolManager`` (tool schemas, argument validation, ``ModelRetry`` and the
retry budget). Steering messages join the request about to be sent, so each one reaches the model's
next request.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field, replace

from pydantic_ai import RunContext
from pydantic_ai.direct import model_request, model_request_stream
from pydantic_ai.exceptions import (
    UnexpectedModelBehavior,
    UsageLimitExceeded,
    UserError,
)
from pydantic_ai.messages import (
    InstructionPart,
    ModelMessage,
    ModelRequest,
    ModelRequestPart,
    ModelResponse,
    PartDeltaEvent,
    PartStartEvent,
    TextPart,
    TextPartDelta,
    ToolCallPart,
    UserPromptPart,
)
from pydantic_ai.models import ModelRequestParameters
from pydantic_ai.settings import ModelSettings
from pydantic_ai.tool_manager import ToolManager
from pydantic_ai.toolsets import AbstractToolset
from pydantic_ai.usage import RunUsage

from chatserver.agents import turn_options
from chatserver.agents.continuation import Continuation
from chatserver.agents.fallback import answering
from chatserver.agents.loop_tools import LoopState, call_tools, go_on
from chatserver.agents.types import (
    BuiltAgent,
    Meter,
    StreamEvent,
    TokenEvent,
    TurnDeps,
)
from chatserver.domain import NO_OPTIONS, TurnOptions
from chatserver.errors import InvalidInput


@dataclass(slots=True)
class LoopResult:
    """What a finished loop leaves: the run's own messages (from its prompt on), output and usage.

    ``client_calls``: the calls of the caller's tools the loop stopped at, to hand back.
    """

    new_messages: list[ModelMessage]
    output: str
    usage: RunUsage
    client_calls: list[ToolCallPart] = field(default_factory=list)
    pending: list[ToolCallPart] = field(default_factory=list)
    """Calls that wait for the user's approval: the run pauses there, its steps stored."""


async def run_loop(
    built: BuiltAgent,
    prompt: str | None,
    *,
    history: Sequence[ModelMessage],
    deps: TurnDeps,
    max_requests: int,
    instructions: str | None = None,
    result: list[LoopResult],
    streamed: bool = True,
    options: TurnOptions = NO_OPTIONS,
    continued: Continuation | None = None,
) -> AsyncGenerator[StreamEvent, None]:
    """A turn's events; on a text answer, append the ``LoopResult`` to ``result`` and stop.

    ``streamed=False`` sends plain model requests (no token events), for models that cannot stream.
    ``prompt=None``: no new user message, the history ends with the results the model is to answer.
    A response calling the caller's tools ends the loop too, once the agent's own calls in it ran:
    those calls are the result's ``client_calls``. A call of a tool that requires approval pauses
    the run once the other calls of its response ran: it is the result's ``pending``.
    ``continued``: the run goes on from its stored steps, its prompt not sent again.

    Raises what the model and tools raise (the caller maps them to domain errors), and
    ``UsageLimitExceeded`` before a request past ``max_requests``.
    """
    tools = turn_options.toolset(built.toolset, options)
    async with tools:
        run = await _start(built, prompt, history, deps, instructions, streamed, options, tools, continued)
        last = run.messages[-1]
        if continued is not None and isinstance(last, ModelResponse):
            if not last.tool_calls:
                # Its answer was stored as a step before the run was cut off: that is the answer.
                result.append(LoopResult(run.messages[run.first_new :], last.text or "", run.ctx.usage))
                return
            async with aclosing(go_on(run, continued)) as going:
                async for event in going:
                    yield event
        while True:
            await _steer(run)
            _check_limit(run.ctx.usage, max_requests)
            if deps.meter is not None:
                await _admit(deps.meter, run)
            response: list[ModelResponse] = []
            async with aclosing(_request(run, response)) as requested:
                async for event in requested:
                    yield event
            calls = response[0].tool_calls
            theirs = turn_options.external_calls(run.tools.tool_defs, [c.tool_name for c in calls])
            own = [call for call in calls if call.tool_name not in theirs]
            gated = [call for call in own if call.tool_name in run.approval]
            ready = [call for call in own if call not in gated]
            steps = deps.steps
            if steps is not None and (own or run.ctx.run_step > 0):
                await steps.responded(response[0], ready, gated)
            if gated and steps is None:
                async with aclosing(call_tools(run, ready, refused=gated)) as called:
                    async for event in called:
                        yield event
            elif gated:
                parts: list[ModelRequestPart] = []
                async with aclosing(call_tools(run, ready, parts)) as called:
                    async for event in called:
                        yield event
                result.append(LoopResult(run.messages[run.first_new :], "", run.ctx.usage, pending=gated))
                return
            elif own:
                async with aclosing(call_tools(run, own)) as called:
                    async for event in called:
                        yield event
            if theirs or not calls:
                new = run.messages[run.first_new :]
                text = (
                    turn_options.checked_output(response[0].text or "", options.output) if not theirs else ""
                )
                handed = [call for call in calls if call.tool_name in theirs]
                result.append(LoopResult(new, text, run.ctx.usage, handed))
                return


async def _start(
    built: BuiltAgent,
    prompt: str | None,
    history: Sequence[ModelMessage],
    deps: TurnDeps,
    instructions: str | None,
    streamed: bool,
    options: TurnOptions,
    toolset: AbstractToolset[TurnDeps],
    continued: Continuation | None,
) -> LoopState:
    rendered = "\n\n".join(text for text in (built.system_prompt, instructions or "") if text) or None
    messages = _opening(history, prompt, rendered)
    if continued is not None:
        messages += continued.messages
    ctx = RunContext(deps=deps, model=built.model, usage=RunUsage(), prompt=prompt, messages=messages)
    manager = ToolManager[TurnDeps](toolset, root_capability=built.tool_hooks)
    try:
        tools = await manager.for_run_step(ctx)
    except UserError as error:
        if not options.client_tools or "conflicts" not in error.message:
            raise
        raise InvalidInput(
            "a tool of the request is named like one of the agent's tools", field="tools"
        ) from None
    settings = _settings(turn_options.model_settings(options), built.attempt_timeout, streamed)
    # The run's own messages begin after the history: with its prompt, or with its first response.
    return LoopState(
        built.model,
        built.config.model,
        ctx,
        tools,
        rendered,
        messages,
        len(history),
        streamed,
        options,
        settings,
        frozenset(built.config.tools_requiring_approval),
    )


def _opening(
    history: Sequence[ModelMessage], prompt: str | None, instructions: str | None
) -> list[ModelMessage]:
    """The messages of the first request: the history and the prompt, or the history ending with
    the tool results (then the results' request carries the instructions)."""
    if prompt is not None:
        return [*history, ModelRequest(parts=[UserPromptPart(prompt)], instructions=instructions)]
    last = history[-1] if history else None
    if not isinstance(last, ModelRequest):
        raise InvalidInput("the request has no message to answer", field="messages")
    return [*history[:-1], replace(last, instructions=instructions)]


class Refused(Exception):
    """The meter refused the run's next model request (``cause``) after the run did something."""

    def __init__(self, cause: Exception, done: LoopResult) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.done = done


async def _admit(meter: Meter, run: LoopState) -> None:
    try:
        await meter.before_request()
    except Exception as error:
        raise Refused(error, LoopResult(run.messages[run.first_new :], "", run.ctx.usage)) from error


def _check_limit(usage: RunUsage, max_requests: int) -> None:
    if usage.requests >= max_requests:
        raise UsageLimitExceeded(f"The next request would exceed the request_limit of {max_requests}")


async def _steer(run: LoopState) -> None:
    """Hand the user's steering messages to the request about to be sent."""
    steering = run.ctx.deps.steering
    taken = await steering.take() if steering is not None else []
    if taken:
        last = run.messages[-1]
        assert isinstance(last, ModelRequest)
        parts: list[ModelRequestPart] = [*last.parts, *(UserPromptPart(text) for text in taken)]
        run.messages[-1] = replace(last, parts=parts)


def _parameters(run: LoopState) -> ModelRequestParameters:
    parts = [InstructionPart(content=run.instructions)] if run.instructions else None
    params = ModelRequestParameters(
        function_tools=run.tools.tool_defs,
        output_mode="text",
        allow_text_output=True,
        instruction_parts=parts,
    )
    return turn_options.with_output(params, run.model, run.options.output)


async def _request(run: LoopState, into: list[ModelResponse]) -> AsyncGenerator[StreamEvent, None]:
    """One model request: its text deltas as tokens when streamed, its response appended to ``into``."""
    params = _parameters(run)
    with answering() as answered:
        if run.streamed:
            streaming = model_request_stream(
                run.model, run.messages, model_settings=run.settings, model_request_parameters=params
            )
            async with streaming as stream:
                async for event in stream:
                    token = _token(event)
                    if token:
                        yield TokenEvent(token)
                response = stream.get()
        else:
            response = await model_request(
                run.model, run.messages, model_settings=run.settings, model_request_parameters=params
            )
    if not response.parts:
        # A provider answer with no choices or no message: nothing to show or to call.
        raise UnexpectedModelBehavior("the model's response was empty")
    run.ctx.usage.incr(response.usage)
    run.ctx.usage.requests += 1
    meter = run.ctx.deps.meter
    if meter is not None:
        meter.record(answered[-1] if answered else run.label, response)
    run.messages.append(response)
    into.append(response)


def _settings(
    chosen: ModelSettings | None, attempt_timeout: float | None, streamed: bool
) -> ModelSettings | None:
    """The turn's settings, with a fallback chain's deadline per model: to its first event when
    streamed (never cutting an answer that has begun), else to its whole answer."""
    if attempt_timeout is None:
        return chosen
    deadline = (
        ModelSettings(first_event_timeout=attempt_timeout)
        if streamed
        else ModelSettings(request_timeout=attempt_timeout)
    )
    return ModelSettings(**(chosen or {}), **deadline)


def _token(event: object) -> str | None:
    if isinstance(event, PartStartEvent) and isinstance(event.part, TextPart):
        return event.part.content
    if isinstance(event, PartDeltaEvent) and isinstance(event.delta, TextPartDelta):
        return event.delta.content_delta
    return None
