"""Cached agents per (user, agent): built from the agent's config and the user's customizations."""

from __future__ import annotations

from chatserver.agents.cache import AgentCache
from chatserver.agents.factory import AgentFactory
from chatserver.agents.types import BuiltAgent
from chatserver.errors import NotFound
from chatserver.storage.protocols import UnitOfWorkFactory


class AgentLoader:
    def __init__(self, uow: UnitOfWorkFactory, factory: AgentFactory, cache: AgentCache) -> None:
        self._uow = uow
        self._factory = factory
        self._cache = cache

    async def get(self, user_id: str, agent_name: str) -> BuiltAgent:
        """The caller's agent, from the cache or freshly built; ``NotFound`` for an unknown agent."""
        built, _hit = await self._cache.get_or_build(
            (user_id, agent_name), lambda: self._build(user_id, agent_name)
        )
        return built

    async def _build(self, user_id: str, agent_name: str) -> BuiltAgent:
        async with self._uow(user_id=user_id) as uow:
            config = await uow.agents.get(agent_name)
            if config is None:
                raise NotFound(f"agent '{agent_name}' not found")
            customizations = await uow.customizations.list_active(user_id, agent_name)
        return self._factory.build(config, customizations)

    def invalidate(self, user_id: str, agent_name: str) -> None:
        self._cache.invalidate(user_id, agent_name)

    def invalidate_agent(self, agent_name: str) -> None:
        self._cache.invalidate_agent(agent_name)
