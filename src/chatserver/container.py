"""build_container(settings): the one composition root, used by the API, the CLI and tests.

Building does no I/O; ``start()`` and ``aclose()`` bracket the container's life.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from functools import cached_property

import httpx

from chatserver.agents.cache import AgentCache
from chatserver.agents.factory import AgentFactory
from chatserver.agents.mcp import McpConnections
from chatserver.agents.registry import ModelRegistry
from chatserver.agents.tools import ToolRegistry
from chatserver.auth.jwt import HttpJwksSource, JwtVerifier
from chatserver.clock import Clock, SystemClock
from chatserver.config import Settings
from chatserver.errors import DatabaseUnavailable
from chatserver.observability.bounded import BoundedCheck
from chatserver.observability.http import BeforeResponse, NothingToSettle
from chatserver.observability.metrics import Metrics
from chatserver.observability.tasks import ObservedBackgroundTasks
from chatserver.redis_bus import RateLimiter, RedisRuntime, build_replication
from chatserver.services.agent_loader import AgentLoader
from chatserver.services.agents import AgentService
from chatserver.services.background_tasks import BackgroundTaskService, MaintenancePolicy
from chatserver.services.chat import ChatService, TurnPolicy
from chatserver.services.chats import ChatHistoryService
from chatserver.services.events import AuditEventService
from chatserver.services.identity import IdentityService
from chatserver.services.memories import MemoryService, ToolBackends
from chatserver.services.operations import OperationsService
from chatserver.services.prompt_customization import PromptCustomizationService
from chatserver.services.sessions import SessionService
from chatserver.storage.protocols import ChatLocks, Database, UnitOfWorkFactory
from chatserver.storage.sql.engine import SqlDatabase, create_engine
from chatserver.storage.sql.locks import make_chat_locks
from chatserver.storage.sql.maintenance import SqlMaintenanceGate
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
    sessions: SessionService
    background: BackgroundTaskService
    metrics: Metrics
    events: AuditEventService
    operations: OperationsService
    rate_limiter: RateLimiter
    redis: RedisRuntime | None
    memories: MemoryService
    mcp: McpConnections

    @property
    def before_response(self) -> BeforeResponse:
        """Awaited before each response starts: cache invalidations reach the other replicas first."""
        return self.redis.invalidations if self.redis is not None else NothingToSettle()

    async def start(self) -> None:
        """Hook for what runs beside requests: the background tasks, unless settings turn them off."""
        if self.redis is not None:
            await self.redis.start()
        if self.settings.background_tasks:
            await self.background.start()

    async def readiness(self) -> dict[str, bool]:
        """The database checks, bounded together by ``readiness_timeout_seconds`` (a stalled database
        fails readiness in that bound); ``redis`` when configured, which the caller may treat as optional."""
        checks = await self._bounded_database_readiness()
        if checks is None:
            log.warning(
                "readiness: the database did not answer in %ss", self.settings.readiness_timeout_seconds
            )
            checks = {"database": False, "migrations": False}
        if self.redis is not None:
            checks["redis"] = await self.redis.ready()
        return checks

    @cached_property
    def _bounded_database_readiness(self) -> BoundedCheck[dict[str, bool]]:
        return BoundedCheck(self._database_readiness, self.settings.readiness_timeout_seconds)

    async def _row_level_security_bypassed(self) -> bool:
        """A superuser or BYPASSRLS role on PostgreSQL silently voids the row-level security policies."""
        if not isinstance(self.uow, SqlUnitOfWorkFactory):
            return False
        try:
            return await self.uow.row_level_security_bypassed()
        except DatabaseUnavailable:
            raise  # the database is unreachable; that says nothing about the role
        except Exception:
            log.warning("readiness: row-level security check failed", exc_info=True)
            return True

    async def _database_readiness(self) -> dict[str, bool]:
        try:
            await self.database.ping()
            current = await self.database.migrations_current()
            bypassed = await self._row_level_security_bypassed()
        except Exception:
            log.warning("readiness: database check failed", exc_info=True)
            return {"database": False, "migrations": False}
        checks = {"database": True, "migrations": current}
        if bypassed:
            checks["row_level_security"] = False
        return checks

    async def aclose(self) -> None:
        await self.background.stop()
        if self.redis is not None:
            await self.redis.aclose()
        await self.locks.close()
        await self.models.aclose()
        await self.mcp.aclose()
        await self.http.aclose()
        await self.database.dispose()


def build_container(settings: Settings, *, clock: Clock | None = None) -> Container:
    clock = clock or SystemClock()
    engine = create_engine(settings)
    uow = SqlUnitOfWorkFactory(engine, timeout_seconds=settings.db_timeout_seconds)
    http = httpx.AsyncClient(timeout=10.0)
    models = ModelRegistry(settings)
    cache = AgentCache(settings.agent_cache_size, settings.agent_cache_ttl_seconds, clock)
    mcp = McpConnections(timeout_seconds=settings.mcp_timeout_seconds, allow_stdio=settings.mcp_allow_stdio)
    loader = AgentLoader(uow, AgentFactory(models, ToolRegistry(clock), mcp), cache, clock=clock)
    metrics = Metrics()
    metrics.watch_agent_cache(cache, loader)
    events = AuditEventService(uow)
    redis, rate_limiter = build_replication(
        settings, cache=cache, loader=loader, feed=events, metrics=metrics
    )
    customizations = PromptCustomizationService(uow, loader, clock)
    memories = MemoryService(uow, clock)
    tool_backends = ToolBackends(customizations, memories)
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
        agents=AgentService(uow, models, loader, clock, allow_stdio_mcp=settings.mcp_allow_stdio),
        chat=ChatService(uow, loader, locks, clock, policy, tool_backend=tool_backends, listener=metrics),
        chats=ChatHistoryService(uow),
        customizations=customizations,
        sessions=SessionService(uow, clock),
        background=ObservedBackgroundTasks(
            uow,
            SqlMaintenanceGate(uow),
            cache,
            clock,
            MaintenancePolicy(settings.cleanup_interval_seconds, settings.session_ttl_seconds),
            replica=f"{socket.gethostname()}:{os.getpid()}",
            metrics=metrics,
        ),
        metrics=metrics,
        events=events,
        operations=OperationsService(uow),
        rate_limiter=rate_limiter,
        redis=redis,
        memories=memories,
        mcp=mcp,
    )
