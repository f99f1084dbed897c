"""The fallback chain on pydantic-ai test models: who answered, and which failures move a request on."""

from __future__ import annotations

import pytest
from pydantic_ai.exceptions import ModelAPIError, ModelHTTPError, ModelRequestTimeout
from pydantic_ai.messages import ModelMessage, ModelRequest, ModelResponse, TextPart, UserPromptPart
from pydantic_ai.models import ModelRequestParameters
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.usage import RequestUsage

from chatserver.agents.fallback import answering, provider_failed, with_fallbacks
from chatserver.services.metering import price

PARAMS = ModelRequestParameters(output_mode="text", allow_text_output=True)
PROMPT: list[ModelMessage] = [ModelRequest(parts=[UserPromptPart("hi")])]


def failing(error: Exception) -> FunctionModel:
    def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        raise error

    return FunctionModel(respond)


def answering_with(text: str) -> FunctionModel:
    return FunctionModel(lambda messages, info: ModelResponse(parts=[TextPart(text)]))


@pytest.mark.parametrize(
    "error",
    [
        ModelHTTPError(500, "primary"),
        ModelHTTPError(429, "primary"),
        ModelHTTPError(503, "primary"),
        ModelRequestTimeout("primary", 1.0),
    ],
)
async def test_a_provider_failure_moves_the_request_to_the_next_model_which_is_named(
    error: Exception,
) -> None:
    chain = with_fallbacks([("openai:primary", failing(error)), ("echo", answering_with("from echo"))])
    with answering() as answered:
        response = await chain.request(PROMPT, None, PARAMS)
    assert response.parts == [TextPart("from echo")]
    assert answered[-1] == "echo"


@pytest.mark.parametrize("status", [400, 401, 404])
async def test_a_rejected_request_does_not_fall_back(status: int) -> None:
    primary = failing(ModelHTTPError(status, "p"))
    chain = with_fallbacks([("openai:primary", primary), ("echo", answering_with("x"))])
    with pytest.raises(ModelHTTPError):
        await chain.request(PROMPT, None, PARAMS)


def test_only_rate_limits_server_errors_timeouts_and_connections_are_provider_failures() -> None:
    assert provider_failed(ModelHTTPError(502, "m"))
    assert not provider_failed(ModelHTTPError(403, "m"))
    assert not provider_failed(ValueError("not a provider error"))
    assert not provider_failed(ModelAPIError("m", "generic"))


def test_prices_come_from_the_frameworks_data_and_our_own_models_are_free() -> None:
    usage = RequestUsage(input_tokens=1_000_000, output_tokens=0)
    known = ModelResponse(parts=[TextPart("x")], usage=usage, model_name="gpt-4o", provider_name="openai")
    unknown = ModelResponse(
        parts=[TextPart("x")], usage=usage, model_name="no-such-model", provider_name="openai"
    )
    assert (price("openai:gpt-4o", known) or 0) > 0
    assert price("openai:no-such-model", unknown) is None
    assert price("echo", unknown) == 0.0 and price("local:smollm2-135m", unknown) == 0.0
