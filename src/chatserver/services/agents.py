"""Agent definitions: the admin use cases and the default agent seeded on first start."""

from __future__ import annotations

import re
from dataclasses import replace

from chatserver.agents.mcp import validate_mcp_servers
from chatserver.agents.registry import ModelRegistry
from chatserver.agents.tools import BUILTIN_TOOL_FACTORIES, validate_tools
from chatserver.clock import Clock
from chatserver.domain import DEFAULT_AGENT, AgentConfig, NewEvent
from chatserver.errors import InvalidInput, NotFound
from chatserver.services.agent_loader import AgentLoader
from chatserver.storage.protocols import UnitOfWorkFactory

AGENT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
DEFAULT_PROMPT = "You are a helpful assistant."
DEFAULT_TOOLS = ("current_time", "update_instructions", "remember", "recall_memories")
"""Every built-in tool, so the README's ``/tool`` examples work on a fresh install."""


class AgentService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        models: ModelRegistry,
        loader: AgentLoader,
        clock: Clock,
        *,
        allow_stdio_mcp: bool = False,
    ) -> None:
        self._uow = uow
        self._models = models
        self._loader = loader
        self._clock = clock
        self._allow_stdio_mcp = allow_stdio_mcp

    async def list(self) -> list[AgentConfig]:
        async with self._uow() as uow:
            return await uow.agents.list()

    async def get(self, name: str) -> AgentConfig:
        async with self._uow() as uow:
            agent = await uow.agents.get(name)
        if agent is None:
            raise NotFound(f"agent '{name}' not found")
        return agent

    async def create(self, agent: AgentConfig, *, actor: str | None = None) -> AgentConfig:
        self._validate(agent)
        now = self._clock.now()
        created = replace(agent, created_at=now, updated_at=now)
        async with self._uow() as uow:
            await uow.agents.add(created)
            await uow.events.add(NewEvent("agent.created", user_id=actor, agent_name=agent.name), now=now)
            await uow.commit()
        return created

    async def update(self, agent: AgentConfig, *, actor: str | None = None) -> AgentConfig:
        self._validate(agent)
        now = self._clock.now()
        async with self._uow() as uow:
            current = await uow.agents.get(agent.name)
            if current is None:
                raise NotFound(f"agent '{agent.name}' not found")
            updated = replace(agent, created_at=current.created_at, updated_at=now)
            await uow.agents.update(updated)
            await uow.events.add(NewEvent("agent.updated", user_id=actor, agent_name=agent.name), now=now)
            await uow.commit()
        self._loader.invalidate_agent(agent.name)
        return updated

    async def delete(self, name: str, *, actor: str | None = None) -> None:
        now = self._clock.now()
        async with self._uow() as uow:
            if not await uow.agents.delete(name):
                raise NotFound(f"agent '{name}' not found")
            await uow.events.add(NewEvent("agent.deleted", user_id=actor, agent_name=name), now=now)
            await uow.commit()
        self._loader.invalidate_agent(name)

    async def seed_default(self, model: str) -> bool:
        """Create the ``assistant`` agent unless it exists; True when created."""
        async with self._uow() as uow:
            if await uow.agents.get(DEFAULT_AGENT) is not None:
                return False
        agent = AgentConfig(
            DEFAULT_AGENT,
            model,
            DEFAULT_PROMPT,
            description="General-purpose assistant",
            tools=DEFAULT_TOOLS,
        )
        await self.create(agent)
        return True

    def _validate_fallbacks(self, agent: AgentConfig) -> None:
        seen = {agent.model}
        for model in agent.fallback_models:
            try:
                self._models.validate(model)
            except InvalidInput as error:
                raise InvalidInput(error.detail, field="fallback_models") from error
            if model in seen:
                raise InvalidInput(f"model {model!r} is named twice", field="fallback_models")
            seen.add(model)

    def _validate(self, agent: AgentConfig) -> None:
        if not AGENT_NAME.match(agent.name):
            raise InvalidInput("name must match ^[a-z0-9][a-z0-9_-]{0,63}$", field="name")
        self._models.validate(agent.model)
        self._validate_fallbacks(agent)
        validate_tools(agent.tools)
        if agent.history_window is not None and agent.history_window < 0:
            raise InvalidInput("history_window must be >= 0", field="history_window")
        if agent.context_tokens is not None and agent.context_tokens < 1:
            raise InvalidInput("context_tokens must be >= 1", field="context_tokens")
        validate_mcp_servers(
            agent.mcp_servers, allow_stdio=self._allow_stdio_mcp, reserved_tools=BUILTIN_TOOL_FACTORIES
        )
        _validate_approvals(agent)


def _validate_approvals(agent: AgentConfig) -> None:
    """Each tool to approve is one of the agent's: built-in, or an MCP server's by its prefixed name
    (an MCP server's tools are known only once it is reached, so its prefix is what is checked)."""
    prefixes = tuple(f"{server.name}_" for server in agent.mcp_servers)
    for name in agent.tools_requiring_approval:
        mcp = any(name.startswith(prefix) and len(name) > len(prefix) for prefix in prefixes)
        if name not in agent.tools and not mcp:
            raise InvalidInput(
                f"tool {name!r} is not one of the agent's tools", field="tools_requiring_approval"
            )
