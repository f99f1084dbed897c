"""The doctor's checks of each agent's model: provider package, API key, and the provider reachable.

No model request is made: reachability is one GET of the provider's base URL, and any HTTP answer
(401 and 404 included) counts as reachable.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Sequence

import httpx

from chatserver.agents.echo import ECHO_MODEL_NAME
from chatserver.agents.local import INSTALL_HINT, LOCAL_PROVIDER, local_available
from chatserver.agents.registry import GOOGLE_INSTALL_HINT, ModelRegistry, parse_model
from chatserver.config import Settings
from chatserver.doctor.report import Check, fail, ok
from chatserver.domain import AgentConfig
from chatserver.errors import InvalidInput

PROBE_TIMEOUT_SECONDS = 3.0

_PACKAGES = {
    "openai": ("openai", "pip install chatserver (the openai SDK is a dependency)"),
    "anthropic": ("anthropic", "pip install chatserver (the anthropic SDK is a dependency)"),
    "google": ("google.genai", GOOGLE_INSTALL_HINT),
}
_BASE_URLS = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
    "google": "https://generativelanguage.googleapis.com",
}


class ModelChecks:
    def __init__(self, settings: Settings, registry: ModelRegistry, http: httpx.AsyncClient) -> None:
        self._settings = settings
        self._registry = registry
        self._http = http
        self._probed: dict[str, str | None] = {}

    async def check(self, agents: Sequence[AgentConfig]) -> list[Check]:
        """One check per model in use, naming the agents on it."""
        users: dict[str, list[str]] = {}
        for agent in agents:
            users.setdefault(agent.model, []).append(agent.name)
        if not users:
            return [ok("models", "no agents yet (serve seeds 'assistant')")]
        return [await self._model(model, names) for model, names in sorted(users.items())]

    async def _model(self, model: str, agents: list[str]) -> Check:
        name = f"model {model}"
        used_by = f"(agents: {', '.join(agents)})"
        try:
            spec = parse_model(model)
        except InvalidInput as error:
            return fail(
                name,
                f"{error.detail} {used_by}",
                "give the agents a valid model (PUT /api/admin/agents/NAME)",
            )
        if spec.provider == ECHO_MODEL_NAME:
            return ok(name, f"built in, no network {used_by}")
        if spec.provider == LOCAL_PROVIDER:
            if local_available(spec.name):
                return ok(name, f"installed, runs in this process {used_by}")
            return fail(name, f"not installed {used_by}", INSTALL_HINT)
        module, hint = _PACKAGES[spec.provider]
        if not _importable(module):
            return fail(name, f"the {module} package is not installed {used_by}", hint)
        try:
            self._registry.validate(model)
        except InvalidInput as error:
            return fail(name, f"{error.detail} {used_by}", "set that variable in the server's environment")
        url = self._base_url(spec.provider)
        problem = await self._probe(url)
        if problem is not None:
            return fail(name, f"{url} unreachable: {problem} {used_by}", self._reach_fix(spec.provider))
        return ok(name, f"configured, {url} reachable {used_by}")

    def _base_url(self, provider: str) -> str:
        if provider == "openai" and self._settings.openai_base_url:
            return self._settings.openai_base_url
        return _BASE_URLS[provider]

    def _reach_fix(self, provider: str) -> str:
        if provider == "openai" and self._settings.openai_base_url:
            return "check CHATSERVER_OPENAI_BASE_URL and that the server there is running"
        return "check this machine's network, DNS and proxy settings (HTTPS_PROXY) for the provider"

    async def _probe(self, url: str) -> str | None:
        """``None`` when ``url`` answers anything over HTTP, else why not (probed once per URL)."""
        if url not in self._probed:
            started = time.perf_counter()
            try:
                await self._http.get(url, timeout=PROBE_TIMEOUT_SECONDS)
                self._probed[url] = None
            except httpx.TimeoutException:
                self._probed[url] = f"no answer in {time.perf_counter() - started:.1f} s"
            except httpx.HTTPError as error:
                self._probed[url] = type(error).__name__
        return self._probed[url]


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False
