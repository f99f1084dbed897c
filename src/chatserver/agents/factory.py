"""Build the immutable, shareable pydantic-ai agent for one (user, agent) pair."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from pydantic_ai import Tool
from pydantic_ai.capabilities.instrumentation import Instrumentation
from pydantic_ai.models import Model
from pydantic_ai.models.instrumented import InstrumentationSettings, InstrumentedModel
from pydantic_ai.toolsets import AbstractToolset, CombinedToolset, FunctionToolset

from chatserver.agents.fallback import with_fallbacks
from chatserver.agents.mcp import McpConnections
from chatserver.agents.prompt import render_system_prompt
from chatserver.agents.registry import ModelRegistry
from chatserver.agents.tools import ToolRegistry
from chatserver.agents.types import BuiltAgent, TurnDeps
from chatserver.domain import AgentConfig, PromptCustomization
from chatserver.errors import InvalidInput, ModelError

TOOL_RETRIES = 1
"""How often a tool may ask the model to try again (``ModelRetry``, invalid arguments) in one run."""


class AgentFactory:
    """Agent config + a user's active customizations -> ``BuiltAgent``.

    The built agent holds only what is the same for every run of this (user, agent) pair: model,
    rendered instructions, tools. History and deps are passed per run, so concurrent turns can
    share one instance. With ``instrumentation`` (tracing on) the model is wrapped in pydantic-ai's
    ``InstrumentedModel`` (GenAI spans for each model request) and its tool calls are wrapped by
    ``Instrumentation`` (a span each).
    """

    def __init__(
        self,
        registry: ModelRegistry,
        tools: ToolRegistry,
        mcp: McpConnections | None = None,
        *,
        instrumentation: InstrumentationSettings | None = None,
        attempt_timeout_seconds: float | None = None,
    ) -> None:
        self._attempt_timeout = attempt_timeout_seconds
        self._registry = registry
        self._tools = tools
        self._mcp = mcp
        self._instrumentation = instrumentation

    def build(self, config: AgentConfig, customizations: Sequence[PromptCustomization] = ()) -> BuiltAgent:
        """Raise ``ModelError`` when the stored config cannot be served (missing key, unknown tool)."""
        try:
            model = self._model(config)
            tools = self._tools.select(config.tools)
            toolsets = self._mcp_toolsets(config)
        except InvalidInput as exc:
            raise ModelError(f"agent {config.name!r} cannot run: {exc.detail}") from exc
        hooks = None
        if self._instrumentation is not None:
            model = InstrumentedModel(model, self._instrumentation)
            hooks = Instrumentation(settings=self._instrumentation)
        system_prompt = render_system_prompt(config.system_prompt, customizations)
        budget = config.context_tokens
        if budget is None:
            budget = self._registry.default_context_tokens(config.model)
        built = assemble(config, system_prompt, model, tools, toolsets, context_tokens=budget)
        attempt_timeout = self._attempt_timeout if config.fallback_models else None
        return replace(built, tool_hooks=hooks, attempt_timeout=attempt_timeout)

    def _model(self, config: AgentConfig) -> Model:
        model = self._registry.resolve(config.model)
        if not config.fallback_models:
            return model
        chain = [(name, self._registry.resolve(name)) for name in config.fallback_models]
        return with_fallbacks([(config.model, model), *chain])

    def _mcp_toolsets(self, config: AgentConfig) -> list[AbstractToolset[TurnDeps]]:
        if not config.mcp_servers:
            return []
        if self._mcp is None:
            raise InvalidInput("MCP servers are not available in this process", field="mcp_servers")
        return [self._mcp.toolset(server) for server in config.mcp_servers]


def assemble(
    config: AgentConfig,
    system_prompt: str,
    model: Model,
    tools: Sequence[Tool[TurnDeps]] = (),
    toolsets: Sequence[AbstractToolset[TurnDeps]] = (),
    *,
    context_tokens: int | None = None,
) -> BuiltAgent:
    """The built agent of these parts: its tools and toolsets become the one toolset the loop calls."""
    function_tools = FunctionToolset[TurnDeps](list(tools), max_retries=TOOL_RETRIES)
    toolset = CombinedToolset([function_tools, *toolsets]) if toolsets else function_tools
    return BuiltAgent(config, system_prompt, model, toolset, context_tokens=context_tokens)
