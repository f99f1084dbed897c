"""build_container(settings): the one composition root, used by the API, the CLI and tests.

Building does no I/O; ``start()`` and ``aclose()`` bracket the container's life.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx

from chatserver.agents.cache import AgentCache
from chatserver.agents.factory import AgentFactory
from chatserver.agents.registry import ModelRegistry
from chatserver.agents.tools import ToolRegistry
from chatserver.auth.jwt import HttpJwksSource, JwtVerifier
from chatserver.clock import Clock, SystemClock
from chatserver.config import Settings
from chatserver.services.agent_loader import AgentLoader
from chatserver.services.agents import AgentService
from chatserver.services.chat import ChatService, TurnPolicy
from chatserver.services.chats import ChatHistoryService
from chatserver.services.identity import IdentityService
from chatserver.services.prompt_customization import PromptCustomizationService
from chatserver.storage.protocols import ChatLocks, Database, UnitOfWorkFactory
from chatserver.storage.sql.engine import SqlDatabase, create_engine
from chatserver.storage.sql.locks import make_chat_locks
from chatserver.storage.sql.uow import SqlUnitOfWorkFactory

log = logging.getLogger("chatserver")


@dataclass
class Container:
    settings: Settings
    clock: Clock
    database: Database
    uow: UnitOfWorkFactory
    locks: ChatLocks
    http: httpx.AsyncClient
    models: ModelRegistry
    agent_cache: AgentCache
    loader: AgentLoader
    identity: IdentityService
    agents: AgentService
    chat: ChatService
    chats: ChatHistoryService
    customizations: PromptCustomizationService

    async def start(self) -> None:
        """Hook for what runs beside requests (background tasks arrive here)."""

    async def readiness(self) -> dict[str, bool]:
        try:
            await self.database.ping()
            current = await self.database.migrations_current()
        except Exception:
            log.warning("readiness: database check failed", exc_info=True)
            return {"database": False, "migrations": False}
        return {"database": True, "migrations": current}

    async def aclose(self) -> None:
        await self.locks.close()
        await self.models.aclose()
        await self.http.aclose()
        await self.database.dispose()


def build_container(settings: Settings, *, clock: Clock | None = None) -> Container:
    clock = clock or SystemClock()
    engine = create_engine(settings)
    uow = SqlUnitOfWorkFactory(engine)
    http = httpx.AsyncClient(timeout=10.0)
    models = ModelRegistry(settings)
    cache = AgentCache(settings.agent_cache_size, settings.agent_cache_ttl_seconds, clock)
    loader = AgentLoader(uow, AgentFactory(models, ToolRegistry(clock)), cache)
    customizations = PromptCustomizationService(uow, loader, clock)
    jwks = HttpJwksSource(settings.jwks_url, http, clock) if settings.jwks_url else None
    policy = TurnPolicy(
        history_window=settings.history_window,
        max_message_chars=settings.max_message_chars,
        model_timeout_seconds=settings.model_timeout_seconds,
        max_model_requests=settings.max_model_requests,
        wait_when_busy=settings.busy_chat_policy == "wait",
    )
    locks = make_chat_locks(engine, settings)
    return Container(
        settings=settings,
        clock=clock,
        database=SqlDatabase(engine),
        uow=uow,
        locks=locks,
        http=http,
        models=models,
        agent_cache=cache,
        loader=loader,
        identity=IdentityService(uow, JwtVerifier(settings, jwks=jwks), clock),
        agents=AgentService(uow, models, loader, clock),
        chat=ChatService(uow, loader, locks, clock, policy, tool_backend=customizations),
        chats=ChatHistoryService(uow),
        customizations=customizations,
    )
