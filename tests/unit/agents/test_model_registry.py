"""Model strings: validation, keys, and resolution through pydantic-ai's providers (no network)."""

from __future__ import annotations

from typing import TypeVar

import pytest
from pydantic_ai.models import Model
from pydantic_ai.models.anthropic import AnthropicModel
from pydantic_ai.models.openai import OpenAIChatModel

from chatserver.agents.echo import EchoModel
from chatserver.agents.provider_answers import CheckedAnswers
from chatserver.agents.registry import OPENAI_PLACEHOLDER_KEY, ModelRegistry, parse_model
from chatserver.config import Settings
from chatserver.errors import InvalidInput

M = TypeVar("M", bound=Model)


def registry(**overrides: object) -> ModelRegistry:
    return ModelRegistry(Settings(database_url="sqlite+aiosqlite:///:memory:", **overrides))  # type: ignore[arg-type]


def provider_model(model: Model, kind: type[M]) -> M:
    """A provider's model, as resolved: inside the wrapper that checks its answers."""
    assert isinstance(model, CheckedAnswers)
    assert isinstance(model.wrapped, kind)
    return model.wrapped


class TestModelStrings:
    @pytest.mark.parametrize(
        "model", ["", "gpt-4", "openai:", ":gpt-4", " openai:gpt-4", "openai:gpt 4", "echo:x"]
    )
    def test_malformed_strings_are_invalid_model_input(self, model: str) -> None:
        with pytest.raises(InvalidInput) as caught:
            registry(openai_api_key="sk-test").validate(model)
        assert caught.value.field == "model"

    def test_an_unknown_provider_is_named_in_the_error(self) -> None:
        with pytest.raises(InvalidInput) as caught:
            registry().validate("mistral:large")
        assert caught.value.field == "model"
        assert "'mistral'" in caught.value.detail

    def test_a_model_name_may_contain_colons_like_ollama_tags(self) -> None:
        spec = parse_model("openai:llama3.2:3b")
        assert (spec.provider, spec.name) == ("openai", "llama3.2:3b")

    def test_echo_needs_no_key(self) -> None:
        registry().validate("echo")


class TestKeys:
    @pytest.mark.parametrize(
        ("model", "variable"),
        [
            ("openai:gpt-4.1-mini", "OPENAI_API_KEY"),
            ("anthropic:claude-sonnet-4-5", "ANTHROPIC_API_KEY"),
        ],
    )
    def test_a_missing_key_names_the_environment_variable(self, model: str, variable: str) -> None:
        with pytest.raises(InvalidInput) as caught:
            registry().validate(model)
        assert caught.value.field == "model"
        assert f"{variable} is not set" in caught.value.detail

    def test_resolving_without_a_key_fails_the_same_way(self) -> None:
        with pytest.raises(InvalidInput, match="ANTHROPIC_API_KEY is not set"):
            registry().resolve("anthropic:claude-sonnet-4-5")

    def test_with_a_key_the_model_is_valid(self) -> None:
        registry(anthropic_api_key="sk-ant-test").validate("anthropic:claude-sonnet-4-5")

    def test_an_openai_base_url_without_a_key_uses_a_placeholder_key(self) -> None:
        models = registry(openai_base_url="http://localhost:11434/v1")
        models.validate("openai:llama3.2")
        model = provider_model(models.resolve("openai:llama3.2"), OpenAIChatModel)
        assert model.client.api_key == OPENAI_PLACEHOLDER_KEY
        assert str(model.client.base_url).startswith("http://localhost:11434/v1")

    def test_a_configured_openai_key_is_passed_to_the_provider(self) -> None:
        model = provider_model(
            registry(openai_api_key="sk-real").resolve("openai:gpt-4.1-mini"), OpenAIChatModel
        )
        assert model.client.api_key == "sk-real"
        assert model.model_name == "gpt-4.1-mini"

    def test_secrets_never_appear_in_errors(self) -> None:
        with pytest.raises(InvalidInput) as caught:
            registry(openai_api_key="sk-secret-value").validate("nope:model")
        assert "sk-secret-value" not in caught.value.detail


class TestGoogle:
    def test_without_the_google_extra_the_error_says_what_to_install(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr("chatserver.agents.registry.google_available", lambda: False)
        with pytest.raises(InvalidInput) as caught:
            registry(google_api_key="g-key").validate("google:gemini-2.5-flash")
        assert caught.value.field == "model"
        assert "chatserver[google]" in caught.value.detail

    def test_with_the_google_extra_a_missing_key_names_the_variable(self) -> None:
        with pytest.raises(InvalidInput, match="GOOGLE_API_KEY is not set"):
            registry().validate("google:gemini-2.5-flash")


class TestResolution:
    def test_echo_resolves_to_the_echo_model_with_the_configured_latency(self) -> None:
        model = registry(echo_latency_ms=25).resolve("echo")
        assert isinstance(model, EchoModel)
        assert model.latency_ms == 25

    def test_one_model_instance_is_cached_per_string(self) -> None:
        models = registry(openai_api_key="sk-test", anthropic_api_key="sk-ant")
        assert models.resolve("openai:gpt-4.1-mini") is models.resolve("openai:gpt-4.1-mini")
        assert models.resolve("echo") is models.resolve("echo")
        assert models.cached_models() == ["echo", "openai:gpt-4.1-mini"]

    def test_models_of_one_provider_share_one_client(self) -> None:
        models = registry(openai_api_key="sk-test")
        first = provider_model(models.resolve("openai:gpt-4.1-mini"), OpenAIChatModel)
        second = provider_model(models.resolve("openai:gpt-4.1"), OpenAIChatModel)
        assert first is not second
        assert first.client is second.client

    def test_anthropic_resolves_through_the_anthropic_provider(self) -> None:
        model = provider_model(
            registry(anthropic_api_key="sk-ant").resolve("anthropic:claude-sonnet-4-5"), AnthropicModel
        )
        assert model.model_name == "claude-sonnet-4-5"

    async def test_closing_the_registry_forgets_the_models(self) -> None:
        models = registry(openai_api_key="sk-test")
        first = models.resolve("openai:gpt-4.1-mini")
        await models.aclose()
        assert models.cached_models() == []
        assert models.resolve("openai:gpt-4.1-mini") is not first
