"""Build the immutable, shareable pydantic-ai agent for one (user, agent) pair."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic_ai import Agent

from chatserver.agents.prompt import render_system_prompt
from chatserver.agents.registry import ModelRegistry
from chatserver.agents.tools import ToolRegistry
from chatserver.agents.types import BuiltAgent, TurnDeps
from chatserver.domain import AgentConfig, PromptCustomization
from chatserver.errors import InvalidInput, ModelError


class AgentFactory:
    """Agent config + a user's active customizations -> ``BuiltAgent``.

    The built agent holds only what is the same for every run of this (user, agent) pair: model,
    rendered instructions, tools. History and deps are passed per run, so concurrent turns can
    share one instance.
    """

    def __init__(self, registry: ModelRegistry, tools: ToolRegistry) -> None:
        self._registry = registry
        self._tools = tools

    def build(self, config: AgentConfig, customizations: Sequence[PromptCustomization] = ()) -> BuiltAgent:
        """Raise ``ModelError`` when the stored config cannot be served (missing key, unknown tool)."""
        try:
            model = self._registry.resolve(config.model)
            tools = self._tools.select(config.tools)
        except InvalidInput as exc:
            raise ModelError(f"agent {config.name!r} cannot run: {exc.detail}") from exc
        system_prompt = render_system_prompt(config.system_prompt, customizations)
        agent = Agent(
            model,
            output_type=str,
            instructions=system_prompt or None,
            tools=tools,
            deps_type=TurnDeps,
            name=config.name,
        )
        return BuiltAgent(config=config, system_prompt=system_prompt, agent=agent)
