"""build_container(settings): the one composition root, used by the API, the CLI and tests.

Building does no I/O; ``start()`` and ``aclose()`` bracket the container's life.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import socket
import time
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
from chatserver.doctor import Doctor
from chatserver.doctor.models import ModelChecks
from chatserver.errors import DatabaseUnavailable
from chatserver.observability.bounded import BoundedCheck
from chatserver.observability.http import BeforeResponse, NothingToSettle
from chatserver.observability.metrics import Metrics
from chatserver.observability.tasks import ObservedBackgroundTasks
from chatserver.observability.tracing import Tracing
from chatserver.redis_bus import RateLimiter, RedisRuntime, build_replication
from chatserver.services.agent_loader import AgentLoader
from chatserver.services.agents import AgentService
from chatserver.services.approvals import ApprovalService
from chatserver.services.background_tasks import BackgroundTaskService, MaintenancePolicy
from chatserver.services.budgets import BudgetService
from chatserver.services.chat_titles import ChatTitler
from chatserver.services.chats import ChatHistoryService
from chatserver.services.erasure import ErasureService
from chatserver.services.events import AuditEventService
from chatserver.services.identity import IdentityService
from chatserver.services.memories import MemoryService, ToolBackends
from chatserver.services.metering import BudgetGate, Metering
from chatserver.services.operations import OperationsService
from chatserver.services.prompt_customization import PromptCustomizationService
from chatserver.services.run_events import MemoryRunEvents, RunEventLog
from chatserver.services.run_executor import RunExecutor
from chatserver.services.run_supervisor import RunSupervisor
from chatserver.services.runs import LocalRunSignals, RunService, RunSignals
from chatserver.services.sessions import SessionService
from chatserver.services.turn_policy import TurnPolicy
from chatserver.services.user_data import UserDataService
from chatserver.storage.protocols import Database, UnitOfWorkFactory
from chatserver.storage.sql.engine import SqlDatabase, create_engine
from chatserver.storage.sql.maintenance import SqlMaintenanceGate
from chatserver.storage.sql.uow import SqlUnitOfWorkFactory

log = logging.getLogger("chatserver")


@dataclass
class Container:
    settings: Settings
    clock: Clock
    database: Database
    uow: UnitOfWorkFactory
    http: httpx.AsyncClient
    models: ModelRegistry
    agent_cache: AgentCache
    loader: AgentLoader
    identity: IdentityService
    agents: AgentService
    runs: RunService
    approvals: ApprovalService
    budgets: BudgetService
    executor: RunExecutor
    supervisor: RunSupervisor
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
    user_data: UserDataService
    erasure: ErasureService
    doctor: Doctor
    titles: ChatTitler | None = None
    tracing: Tracing | None = None

    draining_since: float | None = None
    """``time.monotonic()`` when the HTTP server began to drain (SIGTERM); the grace counts from then."""

    def draining(self) -> None:
        """The HTTP server stops taking requests: the shutdown grace starts now, not at ``aclose``."""
        if self.draining_since is None:
            self.draining_since = time.monotonic()

    def grace_left(self) -> float:
        grace = self.settings.shutdown_grace_seconds
        if self.draining_since is None:
            return grace
        return max(0.0, grace - (time.monotonic() - self.draining_since))

    @property
    def before_response(self) -> BeforeResponse:
        """Awaited before each response starts: cache invalidations reach the other replicas first."""
        return self.redis.invalidations if self.redis is not None else NothingToSettle()

    async def start(self) -> None:
        """Hook for what runs beside requests: the background tasks, unless settings turn them off.
        First of all, requests are made to run under row-level security."""
        await self.database.enforce_row_level_security(self.settings.database_app_role)
        if self.redis is not None:
            await self.redis.start()
        if self.settings.background_tasks:
            await self.background.start()
            await self.supervisor.start()

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
        await self.executor.aclose(self.grace_left())
        if self.titles is not None:
            await self.titles.stop()
        await self.supervisor.stop()
        if self.redis is not None:
            await self.redis.aclose()
        await self.models.aclose()
        await self.mcp.aclose()
        await self.http.aclose()
        await self.database.dispose()
        if self.tracing is not None:
            self.tracing.shutdown()


def build_container(
    settings: Settings,
    *,
    clock: Clock | None = None,
    run_events: RunEventLog | None = None,
    replica: str | None = None,
    tracing: Tracing | None = None,
) -> Container:
    """``run_events`` and ``replica`` default to Redis streams (or memory) and host:pid; without
    ``tracing`` (``observability.tracing.start_tracing``) nothing is traced."""
    clock = clock or SystemClock()
    replica = replica or f"{socket.gethostname()}:{os.getpid()}"
    engine = create_engine(settings)
    if tracing is not None:
        tracing.instrument_database(engine)
    uow = SqlUnitOfWorkFactory(engine, timeout_seconds=settings.db_timeout_seconds)
    http = httpx.AsyncClient(timeout=10.0)
    models = ModelRegistry(settings)
    cache = AgentCache(settings.agent_cache_size, settings.agent_cache_ttl_seconds, clock)
    mcp = McpConnections(timeout_seconds=settings.mcp_timeout_seconds, allow_stdio=settings.mcp_allow_stdio)
    instrumentation = tracing.model_instrumentation if tracing is not None else None
    factory = AgentFactory(
        models,
        ToolRegistry(clock),
        mcp,
        instrumentation=instrumentation,
        attempt_timeout_seconds=settings.model_attempt_timeout_seconds,
    )
    loader = AgentLoader(uow, factory, cache, clock=clock)
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
        busy_policy=settings.busy_chat_policy,
        lease_seconds=settings.run_lease_seconds,
        token_flush_seconds=_token_flush_seconds(settings),
        max_runs_per_user=settings.max_runs_per_user,
    )
    events_log = run_events or (
        redis.run_events if redis is not None else MemoryRunEvents(settings.run_events_ttl_seconds)
    )
    gate = BudgetGate(uow, clock, refresh_seconds=settings.budget_refresh_seconds)
    titles = ChatTitler(uow) if settings.model_titles else None
    executor = RunExecutor(
        uow,
        loader,
        events_log,
        clock,
        policy,
        replica=replica,
        tool_backend=tool_backends,
        listener=metrics,
        tracer=tracing.tracer if tracing is not None else None,
        metering=Metering(uow, gate),
        titles=titles,
    )
    signals: RunSignals = (
        redis.run_signals(executor.cancel_local, executor.steer_local)
        if redis is not None
        else LocalRunSignals(executor)
    )
    runs = RunService(uow, loader, executor, events_log, signals, clock, policy, budgets=gate)
    approvals = ApprovalService(
        uow, loader, executor, clock, metrics, timeout_seconds=settings.approval_timeout_seconds
    )
    identity = IdentityService(uow, JwtVerifier(settings, jwks=jwks), clock)
    database = SqlDatabase(engine)
    agents = AgentService(uow, models, loader, clock, allow_stdio_mcp=settings.mcp_allow_stdio)
    return Container(
        settings=settings,
        clock=clock,
        database=database,
        uow=uow,
        http=http,
        models=models,
        agent_cache=cache,
        loader=loader,
        identity=identity,
        agents=agents,
        runs=runs,
        approvals=approvals,
        budgets=BudgetService(uow, gate, clock),
        executor=executor,
        titles=titles,
        supervisor=RunSupervisor(
            uow,
            executor,
            events_log,
            clock,
            lease_seconds=settings.run_lease_seconds,
            expire_approvals=approvals.expire_once,
        ),
        chats=ChatHistoryService(uow),
        customizations=customizations,
        sessions=SessionService(uow, clock),
        background=ObservedBackgroundTasks(
            uow,
            SqlMaintenanceGate(uow),
            cache,
            clock,
            MaintenancePolicy(
                settings.cleanup_interval_seconds,
                settings.session_ttl_seconds,
                chat_days=settings.retention_chat_days,
                session_days=settings.retention_session_days,
                event_days=settings.retention_event_days,
                run_days=settings.retention_run_days,
            ),
            replica=replica,
            metrics=metrics,
        ),
        metrics=metrics,
        events=events,
        operations=OperationsService(uow),
        rate_limiter=rate_limiter,
        redis=redis,
        memories=memories,
        mcp=mcp,
        user_data=UserDataService(uow, clock),
        erasure=ErasureService(uow, runs, loader, identity, clock, salt=_erasure_salt(settings)),
        doctor=Doctor(settings, database, agents, ModelChecks(settings, models, http)),
        tracing=tracing,
    )


def _token_flush_seconds(settings: Settings) -> float:
    """Tokens are batched where each write costs a round trip (Redis); in memory they are free."""
    if settings.run_token_flush_seconds is not None:
        return settings.run_token_flush_seconds
    return 0.05 if settings.redis_url else 0.0


def _erasure_salt(settings: Settings) -> bytes:
    """The configured salt, else one derived from the JWT secret (stable across restarts and
    replicas); with neither, a random one: receipts then link to no id at all."""
    if settings.erasure_salt is not None:
        return settings.erasure_salt.get_secret_value().encode()
    if settings.jwt_secret is not None:
        secret = settings.jwt_secret.get_secret_value().encode()
        return hmac.new(secret, b"chatserver user.erased salt", hashlib.sha256).digest()
    return secrets.token_bytes(32)
