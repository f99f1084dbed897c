"""Run one chat turn on a built agent (``agents/loop.py``), plain or streamed, mapping its failures.

* ``TimeoutError`` (the turn's timeout)     -> ``ModelTimeout("model timed out after Ns")``
* ``UsageLimitExceeded``                    -> ``ModelError("tool step limit reached")``
* provider failures (``ModelAPIError``, unexpected model output, provider SDK and HTTP client
  errors, a missing API key)               -> ``ModelError`` with a short message that never
                                              carries a response body, header or key
* ``asyncio.CancelledError``                -> propagates unchanged (the client went away)

History and deps are per run; the built agent is shared and never modified. Provider requests are
retried within the turn's timeout where it is safe (``agents/retries.py``).
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import AsyncGenerator, Iterator, Sequence
from contextlib import aclosing, contextmanager

import httpx
from pydantic_ai.exceptions import (
    AgentRunError,
    FallbackExceptionGroup,
    ModelAPIError,
    ModelAuthenticationError,
    ModelConnectionError,
    ModelContextWindowExceededError,
    ModelHTTPError,
    ModelNotFoundError,
    ModelQuotaExceededError,
    ModelRateLimitError,
    ModelRequestRejectedError,
    ModelRequestTimeout,
    ModelServerError,
    ModelUnavailableError,
    UnexpectedModelBehavior,
    UsageLimitExceeded,
    UserError,
)
from pydantic_ai.messages import ModelMessage
from pydantic_ai.usage import RunUsage

from chatserver.agents.context import fit_history
from chatserver.agents.continuation import Continuation
from chatserver.agents.history import from_new_messages
from chatserver.agents.loop import LoopResult, Refused, run_loop
from chatserver.agents.retries import turn_deadline
from chatserver.agents.types import (
    BuiltAgent,
    DoneEvent,
    StoppedEvent,
    StreamEvent,
    TurnDeps,
    TurnResult,
)
from chatserver.domain import NO_OPTIONS, ToolCall, TurnOptions, TurnUsage
from chatserver.errors import ModelError, ModelTimeout

_KEY_VARIABLE = re.compile(r"\b([A-Z][A-Z0-9]*_API_KEY)\b")


_SDK_ERRORS = (("httpx2", "HTTPError"), ("openai", "OpenAIError"), ("anthropic", "AnthropicError"))
"""Base errors of the HTTP client and provider SDKs that pydantic-ai may let through."""


def _model_failures() -> tuple[type[Exception], ...]:
    """pydantic-ai run errors plus those of the SDKs loaded so far (looked up when a run fails).

    An SDK that is not imported yet raised nothing; importing one here would cost about a second at
    every start, for a provider the agents may never use.
    """
    errors: list[type[Exception]] = [AgentRunError, httpx.HTTPError]
    for module, name in _SDK_ERRORS:
        sdk = sys.modules.get(module)
        if sdk is not None:
            errors.append(getattr(sdk, name))
    return tuple(errors)


async def run_turn(
    built: BuiltAgent,
    prompt: str | None,
    *,
    history: Sequence[ModelMessage],
    deps: TurnDeps,
    timeout_seconds: float,
    max_requests: int,
    instructions: str | None = None,
    options: TurnOptions = NO_OPTIONS,
) -> TurnResult:
    """One turn: system prompt + ``history`` + ``prompt``; ``stream_turn`` with its events dropped.

    ``history`` is the model-visible window, oldest first: ``history.to_model_messages(window)``.
    ``instructions`` are appended to the agent's system prompt for this run only.
    """
    turn = _turn(
        built, prompt, history, deps, timeout_seconds, max_requests, instructions, options, streamed=False
    )
    async with aclosing(turn) as events:
        async for event in events:
            if isinstance(event, DoneEvent):
                return event.result
    raise ModelError("the model run ended without an answer")


async def stream_turn(
    built: BuiltAgent,
    prompt: str | None,
    *,
    history: Sequence[ModelMessage],
    deps: TurnDeps,
    timeout_seconds: float,
    max_requests: int,
    instructions: str | None = None,
    options: TurnOptions = NO_OPTIONS,
    continued: Continuation | None = None,
) -> AsyncGenerator[StreamEvent, None]:
    """A turn as events: tokens as produced, tool calls and results, then ``DoneEvent``.

    Close the generator (``aclose()``, e.g. through ``contextlib.aclosing``) to stop early: the
    model run is cancelled and awaited before ``aclose()`` returns. The timeout is one deadline from
    the turn's start, the caller's time between events included; it interrupts the loop's waits only.
    """
    turn = _turn(
        built,
        prompt,
        history,
        deps,
        timeout_seconds,
        max_requests,
        instructions,
        options,
        streamed=True,
        continued=continued,
    )
    async with aclosing(turn) as events:
        async for event in events:
            yield event


async def _turn(
    built: BuiltAgent,
    prompt: str | None,
    history: Sequence[ModelMessage],
    deps: TurnDeps,
    timeout_seconds: float,
    max_requests: int,
    instructions: str | None,
    options: TurnOptions,
    *,
    streamed: bool,
    continued: Continuation | None = None,
) -> AsyncGenerator[StreamEvent, None]:
    done: list[LoopResult] = []
    with map_model_errors(timeout_seconds), turn_deadline(timeout_seconds):
        deadline = asyncio.get_running_loop().time() + timeout_seconds
        window = within_budget(built, prompt, history, instructions)
        loop = run_loop(
            built,
            prompt,
            history=window,
            deps=deps,
            max_requests=max_requests,
            instructions=instructions,
            result=done,
            streamed=streamed,
            options=options,
            continued=continued,
        )
        async with aclosing(loop) as events:
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        event = await anext(events, None)
                except Refused as refused:
                    yield StoppedEvent(turn_result(refused.done))
                    raise refused.cause from refused
                if event is None:
                    break
                yield event
    yield DoneEvent(turn_result(done[0]))


def within_budget(
    built: BuiltAgent, prompt: str | None, history: Sequence[ModelMessage], instructions: str | None = None
) -> list[ModelMessage]:
    """The window without its oldest turns when it would overflow the agent's context budget."""
    fixed = (built.system_prompt, instructions or "", prompt or "")
    return fit_history(history, budget=built.context_tokens, fixed=fixed)


def turn_result(result: LoopResult) -> TurnResult:
    handed = [
        ToolCall(call.tool_call_id, call.tool_name, call.args_as_dict()) for call in result.client_calls
    ]
    stored, records, output = from_new_messages(result.new_messages, result.output, handed)
    pending = [ToolCall(call.tool_call_id, call.tool_name, call.args_as_dict()) for call in result.pending]
    return TurnResult(
        output=output,
        new_messages=stored,
        tool_calls=records,
        usage=turn_usage(result.usage),
        client_calls=tuple(handed),
        pending_approvals=tuple(pending),
    )


def turn_usage(usage: RunUsage) -> TurnUsage:
    return TurnUsage(
        input_tokens=usage.input_tokens, output_tokens=usage.output_tokens, requests=usage.requests
    )


@contextmanager
def map_model_errors(timeout_seconds: float) -> Iterator[None]:
    """Translate a failed run into ``ModelError`` / ``ModelTimeout``; cancellation passes through."""
    try:
        yield
    except TimeoutError as exc:  # RunTimedOut is a TimeoutError too
        raise ModelTimeout(f"model timed out after {timeout_seconds:g}s") from exc
    except UsageLimitExceeded as exc:
        raise ModelError("tool step limit reached") from exc
    except FallbackExceptionGroup as group:
        # Every model of the chain failed: the last one's failure says the most.
        raise ModelError(describe_failure(group.exceptions[-1])) from group
    except UserError as exc:
        variable = _KEY_VARIABLE.search(exc.message)
        if variable is None:
            raise
        raise ModelError(f"model is not configured: {variable.group(1)} is not set") from exc
    except _model_failures() as exc:
        raise ModelError(describe_failure(exc)) from exc


def describe_failure(exc: BaseException) -> str:
    """A short, secret-free description of a model failure: never a response body, header or key."""
    if isinstance(exc, ModelAPIError):
        details = [f"HTTP {exc.status_code}"] if isinstance(exc, ModelHTTPError) else []
        details += [label for category, label in _CATEGORIES if isinstance(exc, category)][:1]
        suffix = f" ({', '.join(details)})" if details else ""
        return f"model provider error{suffix} from {exc.model_name}"
    if isinstance(exc, UnexpectedModelBehavior):
        return "model returned an unexpected response"
    if isinstance(exc, AgentRunError):
        return "model run failed"
    return f"model provider unreachable ({type(exc).__name__})"


_CATEGORIES: tuple[tuple[type[ModelAPIError], str], ...] = (
    (ModelRateLimitError, "rate limited"),
    (ModelQuotaExceededError, "quota exceeded"),
    (ModelAuthenticationError, "credentials rejected"),
    (ModelNotFoundError, "model not found"),
    (ModelContextWindowExceededError, "context window exceeded"),
    (ModelRequestRejectedError, "request rejected"),
    (ModelUnavailableError, "unavailable"),
    (ModelServerError, "server error"),
    (ModelConnectionError, "connection failed"),
    (ModelRequestTimeout, "request timed out"),
)
"""Most specific first: the first match labels the error."""
