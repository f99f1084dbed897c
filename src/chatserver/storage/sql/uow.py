"""The unit of work: one connection, one transaction, every repository on it."""

from __future__ import annotations

import contextlib
from types import TracebackType
from typing import Self

from sqlalchemy import bindparam, event, func, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chatserver.errors import ChatServerError, DatabaseUnavailable, InvalidInput
from chatserver.storage.metering import BudgetRepository, UsageRepository
from chatserver.storage.protocols import (
    AgentRepository,
    ApiKeyRepository,
    ChatRepository,
    ChatSearch,
    CustomizationRepository,
    EventRepository,
    MemoryRepository,
    MessageRepository,
    PauseRepository,
    RetentionRepository,
    RunRepository,
    SessionRepository,
    StepRepository,
    TurnRepository,
    UserDataRepository,
    UserRepository,
)
from chatserver.storage.sql.agents import SqlAgentRepository
from chatserver.storage.sql.budgets import SqlBudgetRepository
from chatserver.storage.sql.chats import SqlChatRepository
from chatserver.storage.sql.customizations import SqlCustomizationRepository
from chatserver.storage.sql.driver_errors import (
    INVALID_VALUE,
    is_connection_error,
    is_data_error,
    unavailable_on_connection_errors,
)
from chatserver.storage.sql.events import SqlEventRepository
from chatserver.storage.sql.memories import SqlMemoryRepository
from chatserver.storage.sql.messages import SqlMessageRepository
from chatserver.storage.sql.retention import SqlRetentionRepository
from chatserver.storage.sql.runs import SqlRunRepository
from chatserver.storage.sql.search import SqlChatSearch
from chatserver.storage.sql.sessions import SqlSessionRepository
from chatserver.storage.sql.steps import SqlPauseRepository, SqlStepRepository
from chatserver.storage.sql.turns import PostgresTurnRepository
from chatserver.storage.sql.usage import SqlUsageRepository
from chatserver.storage.sql.user_data import SqlUserDataRepository
from chatserver.storage.sql.users import SqlApiKeyRepository, SqlUserRepository
from chatserver.storage.sql.write_gate import FairGate, Ticket
from chatserver.storage.turns import ComposedTurnRepository

_ACTING_FOR = "chatserver_acting_for"
"""Execution option naming whom a connection works for: only a unit of work's connection has it."""

_SET_CONTEXT = select(
    func.set_config("app.user_id", bindparam("user_id"), True),
    func.set_config("app.system", bindparam("system"), True),
)
"""The row-level security context (migration 0002), both settings in one round trip."""


def _renew_context(connection: Connection) -> None:
    """On each transaction's begin: set_config(..., true) lasts one transaction, so this renews it,
    and row-level security keeps seeing the caller after a commit in the same unit of work."""
    context = connection.get_execution_options().get(_ACTING_FOR)
    if context is not None:
        connection.execute(_SET_CONTEXT, context)


def _context_params(user_id: str | None) -> dict[str, str]:
    """The caller, or system work when there is no user."""
    return {"user_id": user_id or "", "system": "off" if user_id is not None else "on"}


class SqlUnitOfWork:
    """Implements ``storage.protocols.UnitOfWork``; repositories exist between enter and exit."""

    users: UserRepository
    api_keys: ApiKeyRepository
    agents: AgentRepository
    chats: ChatRepository
    messages: MessageRepository
    customizations: CustomizationRepository
    sessions: SessionRepository
    events: EventRepository
    memories: MemoryRepository
    turns: TurnRepository
    runs: RunRepository
    user_data: UserDataRepository
    retention: RetentionRepository
    usage: UsageRepository
    budgets: BudgetRepository
    steps: StepRepository
    pauses: PauseRepository

    def __init__(
        self, engine: AsyncEngine, *, user_id: str | None = None, gate: FairGate | None = None
    ) -> None:
        self._engine = engine
        self._user_id = user_id
        self._gate = gate
        self._ticket: Ticket | None = None
        self._conn: AsyncConnection | None = None

    @property
    def connection(self) -> AsyncConnection:
        if self._conn is None:
            raise RuntimeError("the unit of work is not open: use `async with`")
        return self._conn

    async def __aenter__(self) -> Self:
        if self._gate is not None:
            self._ticket = await self._gate.acquire(self._user_id)
        try:
            self._conn = await self._open()
        except BaseException:
            self._release_gate()
            raise
        self._build_repositories(self._conn)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        conn, self._conn = self._conn, None
        lost = exc is not None and is_connection_error(exc)
        try:
            if conn is not None and lost:
                await self._discard(conn)
            elif conn is not None:
                await self._close(conn, failing=exc is not None)
        finally:
            self._release_gate()
        if lost and not isinstance(exc, DatabaseUnavailable):
            raise DatabaseUnavailable("database unavailable") from exc
        if exc is not None and not isinstance(exc, ChatServerError) and is_data_error(exc):
            raise InvalidInput(INVALID_VALUE) from exc

    async def _open(self) -> AsyncConnection:
        """A connection whose transaction begins with its first statement (SQLAlchemy's autobegin).

        The begin hook then sets the caller's id for row-level security; a value PostgreSQL refuses
        there (a NUL in it) fails that statement, and ``__aexit__`` makes it bad input like any other.
        Beginning late lets a unit of work whose first step is one of the turn functions
        (``storage.sql.turns``), atomic on their own, run it without BEGIN and COMMIT round trips.
        """
        with unavailable_on_connection_errors(connecting=True):
            conn = await self._engine.connect()
        if conn.dialect.name == "postgresql":
            self._act_for_caller(conn)
        return conn

    def _release_gate(self) -> None:
        ticket, self._ticket = self._ticket, None
        if self._gate is not None and ticket is not None:
            self._gate.release(ticket)

    async def commit(self) -> None:
        with unavailable_on_connection_errors():
            await self.connection.commit()

    def _act_for_caller(self, conn: AsyncConnection) -> None:
        # The engine's begin hook (installed by the factory) reads this: no listener per unit of work.
        sync_connection = conn.sync_connection
        if sync_connection is None:  # pragma: no cover - set once connect() returned
            raise RuntimeError("the unit of work's connection is not open")
        sync_connection.execution_options(**{_ACTING_FOR: _context_params(self._user_id)})

    def _build_repositories(self, conn: AsyncConnection) -> None:
        self.users = SqlUserRepository(conn)
        self.api_keys = SqlApiKeyRepository(conn)
        self.agents = SqlAgentRepository(conn)
        self.chats = SqlChatRepository(conn)
        self.messages = SqlMessageRepository(conn)
        self.search: ChatSearch = SqlChatSearch(conn)
        self.customizations = SqlCustomizationRepository(conn)
        self.sessions = SqlSessionRepository(conn)
        self.events = SqlEventRepository(conn)
        self.memories = SqlMemoryRepository(conn)
        self.runs = SqlRunRepository(conn)
        self.user_data = SqlUserDataRepository(conn)
        self.retention = SqlRetentionRepository(conn)
        self.usage = SqlUsageRepository(conn)
        self.budgets = SqlBudgetRepository(conn)
        self.steps = SqlStepRepository(conn)
        self.pauses = SqlPauseRepository(conn)
        if conn.dialect.name == "postgresql":
            self.turns = PostgresTurnRepository(conn)
        else:
            self.turns = ComposedTurnRepository(
                self.chats, self.messages, self.events, self.runs, self.agents, self.usage
            )

    async def _discard(self, conn: AsyncConnection) -> None:
        """Drop a connection that failed, and every other one pooled with it.

        The turn statements go to the driver directly, so SQLAlchemy never sees their connection
        errors: returned to the pool, a dead connection would fail turn after turn. Connections
        die together (a database restart, a proxy cut, terminated backends), so the pool is replaced
        too; connections still checked out go back to the old one and are closed with it.
        """
        with contextlib.suppress(Exception):
            await conn.invalidate()
        with contextlib.suppress(Exception):
            await self._engine.dispose(close=False)

    @staticmethod
    async def _close(conn: AsyncConnection, *, failing: bool) -> None:
        """Roll back what was not committed and return the connection to the pool."""
        try:
            with unavailable_on_connection_errors():
                await conn.close()
        except DatabaseUnavailable:
            # When the body failed, its error says more than the rollback on a dead connection.
            if not failing:
                raise


class SqlUnitOfWorkFactory:
    """Implements ``storage.protocols.UnitOfWorkFactory``.

    On SQLite, units of work of this process take turns, user by user (``FairGate``): SQLite has one
    writer at a time, and queueing here is fair and immediate where its busy timeout polls and can
    starve.
    """

    def __init__(self, engine: AsyncEngine, *, timeout_seconds: float = 5.0) -> None:
        self._engine = engine
        dialect = engine.dialect.name
        self._gate = FairGate(1, timeout_seconds) if dialect == "sqlite" else None
        if dialect == "postgresql" and not event.contains(engine.sync_engine, "begin", _renew_context):
            event.listen(engine.sync_engine, "begin", _renew_context)

    def __call__(self, *, user_id: str | None = None) -> SqlUnitOfWork:
        return SqlUnitOfWork(self._engine, user_id=user_id, gate=self._gate)

    async def row_level_security_bypassed(self) -> bool:
        """True when PostgreSQL would skip the row-level security policies for this role.

        A superuser or a role with BYPASSRLS sees every user's rows whatever the policies say, so
        the isolation they add silently disappears; SQLite has no row-level security to bypass.
        """
        if self._engine.dialect.name != "postgresql":
            return False
        with unavailable_on_connection_errors(connecting=True):
            async with self._engine.connect() as conn:
                result = await conn.execute(_ROLE_BYPASSES_RLS)
                return bool(result.scalar_one())


_ROLE_BYPASSES_RLS = text("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
