"""A provider's answer that is not what its API promises is a model failure, not a server bug.

An OpenAI-compatible server may answer 200 with anything: ``choices`` as a string or empty, fields
missing, a bare number, HTML. The SDKs build their objects without validating them, so reading such
an answer fails deep inside the SDK or pydantic-ai with whatever Python raises there
(``AttributeError``, ``TypeError``, ``KeyError``, a ``ValidationError``, a ``JSONDecodeError``).
``CheckedAnswers`` wraps a provider's model and turns exactly those failures, raised while a
request is sent or its answer read, into pydantic-ai's ``UnexpectedModelBehavior`` (a 502
``model_error``); tool code runs outside the model and keeps its own errors.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from pydantic_ai import RunContext
from pydantic_ai.exceptions import UnexpectedModelBehavior
from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.models import ModelRequestParameters, StreamedResponse
from pydantic_ai.models.wrapper import WrapperModel
from pydantic_ai.settings import ModelSettings

UNEXPECTED_ANSWER = "model returned an unexpected response"

ANSWER_SHAPE_ERRORS: tuple[type[Exception], ...] = (ValueError, TypeError, AttributeError, LookupError)
"""What reading a malformed answer raises (``ValidationError`` and ``JSONDecodeError`` are
``ValueError`` s). pydantic-ai's own errors and cancellations are none of these."""

log = logging.getLogger("chatserver.models")


@contextmanager
def _answers_checked(model_name: str) -> Iterator[None]:
    try:
        yield
    except ANSWER_SHAPE_ERRORS as exc:
        # The type only: the message may quote the answer, which the logs never hold.
        log.warning("%s from %s: %s", UNEXPECTED_ANSWER, model_name, type(exc).__name__)
        raise UnexpectedModelBehavior(UNEXPECTED_ANSWER) from exc


class CheckedAnswers(WrapperModel):
    """The wrapped model, whose malformed answers raise ``UnexpectedModelBehavior``."""

    async def request(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
    ) -> ModelResponse:
        with _answers_checked(self.model_name):
            return await super().request(messages, model_settings, model_request_parameters)

    @asynccontextmanager
    async def request_stream(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
        run_context: RunContext[Any] | None = None,
    ) -> AsyncIterator[StreamedResponse]:
        # The answer is read while the caller holds the stream: its errors come out of the yield.
        with _answers_checked(self.model_name):
            async with super().request_stream(
                messages, model_settings, model_request_parameters, run_context
            ) as streamed:
                yield streamed
