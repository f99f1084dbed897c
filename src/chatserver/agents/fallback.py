"""An agent's model with its fallback models, on pydantic-ai's ``FallbackModel``.

Each model of the chain is wrapped in ``Labelled``, which notes its model string (as the agent
names it) when it answers, so the run, its ``done`` event and its usage name the model that
answered: ``answering()`` collects the notes of one request. A request moves to the next model on
a provider error only (429, 5xx, a timeout, a failed connection): a rejected request or bad
credentials would fail the same way on a retry elsewhere only by chance, and are the operator's to
fix. A streamed request moves on only before its first event, so no token of a failed attempt
ever reaches anyone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from contextvars import ContextVar
from typing import Any

from pydantic_ai import RunContext
from pydantic_ai.exceptions import (
    ModelConnectionError,
    ModelHTTPError,
    ModelRateLimitError,
    ModelRequestTimeout,
    ModelServerError,
    ModelUnavailableError,
)
from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.models import Model, ModelRequestParameters, StreamedResponse
from pydantic_ai.models.fallback import FallbackModel
from pydantic_ai.models.wrapper import WrapperModel
from pydantic_ai.settings import ModelSettings

_answered: ContextVar[list[str] | None] = ContextVar("chatserver_answered_by", default=None)

_PROVIDER_FAILURES = (
    ModelRateLimitError,
    ModelServerError,
    ModelUnavailableError,
    ModelConnectionError,
    ModelRequestTimeout,
)


def provider_failed(error: Exception) -> bool:
    """Whether another model may well answer what this one could not."""
    if isinstance(error, ModelHTTPError) and (error.status_code in (408, 429) or error.status_code >= 500):
        return True
    return isinstance(error, _PROVIDER_FAILURES)


@contextmanager
def answering() -> Iterator[list[str]]:
    """The model strings noted while the block sends one request: the last one answered."""
    noted: list[str] = []
    token = _answered.set(noted)
    try:
        yield noted
    finally:
        # A streamed turn may be closed from another task (a client gone): its context is not ours.
        with suppress(ValueError):
            _answered.reset(token)


def _note(label: str) -> None:
    noted = _answered.get()
    if noted is not None:
        noted.append(label)


class Labelled(WrapperModel):
    """``wrapped``, noting its model string for ``answering()`` each time it answers."""

    def __init__(self, wrapped: Model, label: str) -> None:
        super().__init__(wrapped)
        self.model_string = label

    async def request(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
    ) -> ModelResponse:
        response = await super().request(messages, model_settings, model_request_parameters)
        _note(self.model_string)
        return response

    @asynccontextmanager
    async def request_stream(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
        run_context: RunContext[Any] | None = None,
    ) -> AsyncIterator[StreamedResponse]:
        async with super().request_stream(
            messages, model_settings, model_request_parameters, run_context
        ) as streamed:
            _note(self.model_string)
            yield streamed


def with_fallbacks(chain: Sequence[tuple[str, Model]]) -> Model:
    """The first model of ``(model string, model)`` pairs, falling back on the others in order."""
    labelled = [Labelled(model, label) for label, model in chain]
    return FallbackModel(labelled[0], *labelled[1:], fallback_on=provider_failed)
