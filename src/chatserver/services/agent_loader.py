"""Cached agents per (user, agent): built from the agent's config and the user's customizations.

Each build is audited (``agent.built``) in the transaction that read its inputs and counted in
``builds`` for metrics. ``invalidate*`` drops this process's cached copies at once and hands the
change to the invalidation bus, which tells the other replicas (Redis pub/sub) when there are any.

Pub/sub is only the fast path: a message lost (a replica's Redis link cut, or a turn that starts
before it arrives) must not leave a stale agent in use. So each build records the version stamps
of its inputs, read before the inputs themselves (a change committed in between makes the build
look older than it is, never newer), and every chat turn reads the current stamps in the statement
that opens it; ``current`` rebuilds when they differ.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from chatserver.agents.cache import AgentCache
from chatserver.agents.factory import AgentFactory
from chatserver.agents.types import BuiltAgent
from chatserver.clock import Clock, SystemClock
from chatserver.domain import ConfigVersions, NewEvent
from chatserver.errors import NotFound
from chatserver.storage.protocols import UnitOfWorkFactory


class InvalidationBus(Protocol):
    """Carries cache invalidations to other replicas; must not block or raise."""

    def publish(self, user_id: str | None, agent_name: str) -> None:
        """``user_id`` None: every user's copy of the agent (an admin changed it)."""


class LocalOnly:
    """One process: nothing to tell anyone."""

    def publish(self, user_id: str | None, agent_name: str) -> None:
        return None


class AgentLoader:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        factory: AgentFactory,
        cache: AgentCache,
        *,
        clock: Clock | None = None,
        bus: InvalidationBus | None = None,
    ) -> None:
        self._uow = uow
        self._factory = factory
        self._cache = cache
        self._clock: Clock = clock or SystemClock()
        self._bus: InvalidationBus = bus or LocalOnly()
        self.builds = 0
        self.stale_builds = 0
        """Cached agents found older than a turn's versions: invalidations that came late or never."""

    def use_bus(self, bus: InvalidationBus) -> None:
        """Set the bus after construction (the Redis bus needs the cache this loader was given)."""
        self._bus = bus

    async def get(self, user_id: str, agent_name: str) -> BuiltAgent:
        """The caller's agent, from the cache or freshly built; ``NotFound`` for an unknown agent."""
        built, _hit = await self._cache.get_or_build(
            (user_id, agent_name), lambda: self._build(user_id, agent_name)
        )
        return built

    async def current(self, built: BuiltAgent, user_id: str, versions: ConfigVersions | None) -> BuiltAgent:
        """``built`` if it was built at ``versions`` (read by the turn), else a fresh build: a change
        whose invalidation never reached this replica is seen by its next turn all the same.
        ``versions`` None: the agent is gone (deleted elsewhere), ``NotFound``."""
        if built.versions == versions:
            return built
        self.stale_builds += 1
        self._cache.invalidate(user_id, built.config.name)
        if versions is None:
            raise NotFound(f"agent '{built.config.name}' not found")
        return await self.get(user_id, built.config.name)

    async def _build(self, user_id: str, agent_name: str) -> BuiltAgent:
        async with self._uow(user_id=user_id) as uow:
            versions = await uow.agents.versions(agent_name, user_id)
            config = await uow.agents.get(agent_name)
            if config is None or versions is None:
                raise NotFound(f"agent '{agent_name}' not found")
            customizations = await uow.customizations.list_active(user_id, agent_name)
            built = replace(self._factory.build(config, customizations), versions=versions)
            event = NewEvent(
                "agent.built",
                user_id=user_id,
                agent_name=agent_name,
                data={"customizations": len(customizations), "model": config.model},
            )
            await uow.events.add(event, now=self._clock.now())
            await uow.commit()
        self.builds += 1
        return built

    def invalidate(self, user_id: str, agent_name: str) -> None:
        self._cache.invalidate(user_id, agent_name)
        self._bus.publish(user_id, agent_name)

    def invalidate_user(self, user_id: str, agent_names: set[str]) -> None:
        """Every (user, agent) of ``agent_names`` goes on every replica: another replica may hold one
        this one does not; those held here go too, whatever their agent."""
        held = {agent for user, agent in self._cache.keys() if user == user_id}  # noqa: SIM118 (no dict)
        for agent_name in sorted(agent_names | held):
            self.invalidate(user_id, agent_name)

    def invalidate_agent(self, agent_name: str) -> None:
        self._cache.invalidate_agent(agent_name)
        self._bus.publish(None, agent_name)
