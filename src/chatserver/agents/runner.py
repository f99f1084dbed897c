"""Run one chat turn on a built agent, plain or streamed, mapping failures to domain errors.

* ``RunTimedOut`` / ``TimeoutError``        -> ``ModelTimeout("model timed out after Ns")``
* ``UsageLimitExceeded``                    -> ``ModelError("tool step limit reached")``
* provider failures (``ModelAPIError``, unexpected model output, provider SDK and HTTP client
  errors, a missing API key)               -> ``ModelError`` with a short message that never
                                              carries a response body, header or key
* ``asyncio.CancelledError``                -> propagates unchanged (the client went away)

History and deps are per run; the built agent is shared and never modified. Provider requests are
retried within the turn's timeout where it is safe (``agents/retries.py``).
"""

from __future__ import annotations

import re
import sys
from collections.abc import AsyncGenerator, Iterator, Sequence
from contextlib import contextmanager

import httpx
from pydantic_ai.exceptions import (
    AgentRunError,
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
from pydantic_ai.messages import (
    FunctionToolCallEvent,
    FunctionToolResultEvent,
    ModelMessage,
    PartDeltaEvent,
    PartStartEvent,
    TextPart,
    TextPartDelta,
)
from pydantic_ai.run import AgentRunResult, AgentRunResultEvent
from pydantic_ai.usage import RunUsage, UsageLimits

from chatserver.agents.context import fit_history
from chatserver.agents.history import from_new_messages, result_value
from chatserver.agents.retries import turn_deadline
from chatserver.agents.types import (
    BuiltAgent,
    DoneEvent,
    StreamEvent,
    TokenEvent,
    ToolCallEvent,
    ToolResultEvent,
    TurnDeps,
    TurnResult,
)
from chatserver.domain import TurnUsage
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
    prompt: str,
    *,
    history: Sequence[ModelMessage],
    deps: TurnDeps,
    timeout_seconds: float,
    max_requests: int,
    instructions: str | None = None,
) -> TurnResult:
    """One turn: system prompt + ``history`` + ``prompt``.

    ``history`` is the model-visible window, oldest first: ``history.to_model_messages(window)``.
    ``instructions`` are appended to the agent's system prompt for this run only.
    """
    with map_model_errors(timeout_seconds), turn_deadline(timeout_seconds):
        result = await built.agent.run(
            prompt,
            message_history=within_budget(built, prompt, history, instructions),
            deps=deps,
            usage_limits=UsageLimits(request_limit=max_requests),
            timeout=timeout_seconds,
            instructions=instructions,
        )
    return turn_result(result)


async def stream_turn(
    built: BuiltAgent,
    prompt: str,
    *,
    history: Sequence[ModelMessage],
    deps: TurnDeps,
    timeout_seconds: float,
    max_requests: int,
    instructions: str | None = None,
) -> AsyncGenerator[StreamEvent, None]:
    """Like ``run_turn``, as events: tokens as produced, tool calls and results, then ``DoneEvent``.

    Close the generator (``aclose()``, e.g. through ``contextlib.aclosing``) to stop early: the
    model run is cancelled and awaited before ``aclose()`` returns.
    """
    with map_model_errors(timeout_seconds), turn_deadline(timeout_seconds):
        async with built.agent.run_stream_events(
            prompt,
            message_history=within_budget(built, prompt, history, instructions),
            deps=deps,
            usage_limits=UsageLimits(request_limit=max_requests),
            timeout=timeout_seconds,
            instructions=instructions,
        ) as events:
            async for event in events:
                if isinstance(event, AgentRunResultEvent):
                    yield DoneEvent(turn_result(event.result))
                    return
                mapped = stream_event(event)
                if mapped is not None:
                    yield mapped


def within_budget(
    built: BuiltAgent, prompt: str, history: Sequence[ModelMessage], instructions: str | None = None
) -> list[ModelMessage]:
    """The window without its oldest turns when it would overflow the agent's context budget."""
    fixed = (built.system_prompt, instructions or "", prompt)
    return fit_history(history, budget=built.context_tokens, fixed=fixed)


def stream_event(event: object) -> StreamEvent | None:
    """A pydantic-ai run event -> our stream event, or ``None`` for events clients do not see."""
    if isinstance(event, PartStartEvent) and isinstance(event.part, TextPart) and event.part.content:
        return TokenEvent(event.part.content)
    if isinstance(event, PartDeltaEvent) and isinstance(event.delta, TextPartDelta):
        return TokenEvent(event.delta.content_delta) if event.delta.content_delta else None
    if isinstance(event, FunctionToolCallEvent):
        return ToolCallEvent(event.part.tool_name, event.part.args_as_dict())
    if isinstance(event, FunctionToolResultEvent):
        return ToolResultEvent(event.part.tool_name, result_value(event.part))
    return None


def turn_result(result: AgentRunResult[str]) -> TurnResult:
    messages: list[ModelMessage] = result.new_messages()
    stored, records, output = from_new_messages(messages, result.output)
    return TurnResult(output=output, new_messages=stored, tool_calls=records, usage=turn_usage(result.usage))


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
