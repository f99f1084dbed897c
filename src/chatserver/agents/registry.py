"""Model strings -> pydantic-ai models, through pydantic-ai's own providers (never hand-rolled HTTP).

Model strings are ``provider:name`` (``openai:gpt-4.1-mini``, ``anthropic:claude-sonnet-4-5``,
``google:gemini-2.5-flash``; the name may itself contain ``:``, as Ollama tags do), ``echo``, or
``local:smollm2-135m`` (in-process, with the ``local`` extra: ``agents/local.py``).
One model instance is cached per string and one provider (so one HTTP client) per provider
name, shared by every agent and run of this process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx2
from pydantic import SecretStr
from pydantic_ai.models import Model
from pydantic_ai.providers import Provider

from chatserver.agents.echo import ECHO_MODEL_NAME, EchoModel
from chatserver.agents.local import (
    INSTALL_HINT,
    LOCAL_MODELS,
    LOCAL_PROVIDER,
    LlamaEngine,
    LocalModel,
    local_available,
    model_file,
)
from chatserver.agents.local import default_context_tokens as local_context_tokens
from chatserver.agents.provider_answers import CheckedAnswers
from chatserver.agents.retries import RetryPolicy, retrying_client
from chatserver.config import Settings
from chatserver.errors import InvalidInput

OPENAI_PLACEHOLDER_KEY = "not-needed"
"""Sent to an OpenAI-compatible server at ``openai_base_url`` when no key is set (most need none)."""

GOOGLE_INSTALL_HINT = "Google models need the google extra: pip install 'chatserver[google]'"


@dataclass(frozen=True, slots=True)
class ModelSpec:
    provider: str
    name: str


@dataclass(frozen=True, slots=True)
class _ProviderInfo:
    key_env: str
    build_provider: Callable[[Settings, str | None, httpx2.AsyncClient], Provider[Any]]
    """Settings, API key, and the HTTP client that retries (``agents/retries.py``): SDK retries off."""
    build_model: Callable[[str, Provider[Any]], Model]


def parse_model(model: str) -> ModelSpec:
    """Split ``provider:name``; raise ``InvalidInput(field="model")`` when malformed."""
    if model == ECHO_MODEL_NAME:
        return ModelSpec(ECHO_MODEL_NAME, ECHO_MODEL_NAME)
    provider, sep, name = model.partition(":")
    if not sep or not provider or not name or model != model.strip() or any(c.isspace() for c in model):
        raise InvalidInput(
            f"malformed model {model!r}: expected 'provider:name' "
            "(for example 'openai:gpt-4.1-mini') or 'echo'",
            field="model",
        )
    if provider not in _PROVIDERS and provider != LOCAL_PROVIDER:
        known = ", ".join(f"{p}:" for p in sorted([*_PROVIDERS, LOCAL_PROVIDER]))
        raise InvalidInput(
            f"unknown model provider {provider!r} in {model!r} (known: {known} and echo)", field="model"
        )
    return ModelSpec(provider, name)


def _validate_local(model: str, name: str) -> None:
    if name not in LOCAL_MODELS:
        known = ", ".join(f"{LOCAL_PROVIDER}:{n}" for n in sorted(LOCAL_MODELS))
        raise InvalidInput(f"unknown local model {model!r} (known: {known})", field="model")
    if not local_available(name):
        raise InvalidInput(f"model {model!r} is not available: {INSTALL_HINT}", field="model")


def _secret(value: SecretStr | None) -> str | None:
    if value is None:
        return None
    return value.get_secret_value() or None


def _openai_provider(settings: Settings, key: str | None, http: httpx2.AsyncClient) -> Provider[Any]:
    from openai import AsyncOpenAI
    from pydantic_ai.providers.openai import OpenAIProvider

    client = AsyncOpenAI(
        base_url=settings.openai_base_url or None,
        api_key=key or OPENAI_PLACEHOLDER_KEY,
        http_client=http,
        max_retries=0,
    )
    return OpenAIProvider(openai_client=client)


def _openai_model(name: str, provider: Provider[Any]) -> Model:
    from pydantic_ai.models.openai import OpenAIChatModel

    return OpenAIChatModel(name, provider=provider)


def _anthropic_provider(settings: Settings, key: str | None, http: httpx2.AsyncClient) -> Provider[Any]:
    from anthropic import AsyncAnthropic
    from pydantic_ai.providers.anthropic import AnthropicProvider

    return AnthropicProvider(anthropic_client=AsyncAnthropic(api_key=key, http_client=http, max_retries=0))


def _anthropic_model(name: str, provider: Provider[Any]) -> Model:
    from pydantic_ai.models.anthropic import AnthropicModel

    return AnthropicModel(name, provider=provider)


def _google_provider(settings: Settings, key: str | None, http: httpx2.AsyncClient) -> Provider[Any]:
    from pydantic_ai.providers.google import GoogleProvider

    # Without retry_options google-genai makes one attempt: the retries are the client's.
    return GoogleProvider(api_key=key, http_client=http)


def _google_model(name: str, provider: Provider[Any]) -> Model:
    from pydantic_ai.models.google import GoogleModel

    return GoogleModel(name, provider=provider)


_PROVIDERS: dict[str, _ProviderInfo] = {
    "openai": _ProviderInfo("OPENAI_API_KEY", _openai_provider, _openai_model),
    "anthropic": _ProviderInfo("ANTHROPIC_API_KEY", _anthropic_provider, _anthropic_model),
    "google": _ProviderInfo("GOOGLE_API_KEY", _google_provider, _google_model),
}


def google_available() -> bool:
    try:
        import pydantic_ai.models.google  # noqa: F401
    except ImportError:
        return False
    return True


class ModelRegistry:
    """Validates model strings and resolves them to shared pydantic-ai model instances."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._models: dict[str, Model] = {}
        self._providers: dict[str, Provider[Any]] = {}
        self._clients: list[httpx2.AsyncClient] = []
        self._retry_policy = RetryPolicy(settings.model_retries, settings.model_retry_backoff_seconds)

    def _key(self, provider: str) -> str | None:
        settings = self._settings
        secrets = {
            "openai": settings.openai_api_key,
            "anthropic": settings.anthropic_api_key,
            "google": settings.google_api_key,
        }
        return _secret(secrets.get(provider))

    def validate(self, model: str) -> None:
        """Raise ``InvalidInput(field="model")`` unless ``model`` can be resolved with these settings."""
        spec = parse_model(model)
        if spec.provider == ECHO_MODEL_NAME:
            return
        if spec.provider == LOCAL_PROVIDER:
            _validate_local(model, spec.name)
            return
        if spec.provider == "google" and not google_available():
            raise InvalidInput(f"model {model!r} is not available: {GOOGLE_INSTALL_HINT}", field="model")
        if self._key(spec.provider) is not None:
            return
        if spec.provider == "openai" and self._settings.openai_base_url:
            return  # a local OpenAI-compatible server: the placeholder key is enough
        env = _PROVIDERS[spec.provider].key_env
        raise InvalidInput(f"model {model!r} needs an API key: {env} is not set", field="model")

    def resolve(self, model: str) -> Model:
        """The shared model for ``model``; ``InvalidInput`` as in ``validate``."""
        cached = self._models.get(model)
        if cached is not None:
            return cached
        self.validate(model)
        spec = parse_model(model)
        if spec.provider == ECHO_MODEL_NAME:
            built: Model = EchoModel(latency_ms=self._settings.echo_latency_ms)
        elif spec.provider == LOCAL_PROVIDER:
            built = self._local_model(spec.name)
        else:
            info = _PROVIDERS[spec.provider]
            built = CheckedAnswers(info.build_model(spec.name, self._provider(spec.provider, info)))
        self._models[model] = built
        return built

    def _provider(self, name: str, info: _ProviderInfo) -> Provider[Any]:
        provider = self._providers.get(name)
        if provider is None:
            client = retrying_client(self._retry_policy)
            self._clients.append(client)
            provider = info.build_provider(self._settings, self._key(name), client)
            self._providers[name] = provider
        return provider

    def _local_model(self, name: str) -> Model:
        settings = self._settings
        path = model_file(name)
        if path is None:  # pragma: no cover - validate() checked it just before
            raise InvalidInput(INSTALL_HINT, field="model")
        engine = LlamaEngine(
            path,
            context_window=LOCAL_MODELS[name].context_window,
            threads=settings.local_threads,
            max_tokens=settings.local_max_tokens,
        )
        return LocalModel(name, engine)

    def default_context_tokens(self, model: str) -> int | None:
        """The history budget an agent on ``model`` gets when it sets none (local models: their window)."""
        provider, _, name = model.partition(":")
        if provider == LOCAL_PROVIDER and name in LOCAL_MODELS:
            return local_context_tokens(name, self._settings.local_max_tokens)
        return None

    def cached_models(self) -> list[str]:
        return sorted(self._models)

    async def aclose(self) -> None:
        """Close the HTTP clients the providers opened (app shutdown); later resolves start afresh."""
        providers, self._providers = list(self._providers.values()), {}
        for model in self._models.values():
            if isinstance(model, LocalModel):
                model.close()
        self._models.clear()
        for provider in providers:
            async with provider:  # entering then leaving the last time closes the provider's own client
                pass
        clients, self._clients = self._clients, []
        for client in clients:  # ours, not the providers': they never close a client they were given
            await client.aclose()
