"""The unit of work: one connection, one transaction, every repository on it."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Self

from sqlalchemy import event, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chatserver.errors import DatabaseUnavailable
from chatserver.storage.protocols import (
    AgentRepository,
    ApiKeyRepository,
    ChatRepository,
    CustomizationRepository,
    EventRepository,
    MessageRepository,
    SessionRepository,
    UserRepository,
)
from chatserver.storage.sql.agents import SqlAgentRepository
from chatserver.storage.sql.chats import SqlChatRepository
from chatserver.storage.sql.customizations import SqlCustomizationRepository
from chatserver.storage.sql.driver_errors import is_connection_error, unavailable_on_connection_errors
from chatserver.storage.sql.events import SqlEventRepository
from chatserver.storage.sql.messages import SqlMessageRepository
from chatserver.storage.sql.sessions import SqlSessionRepository
from chatserver.storage.sql.users import SqlApiKeyRepository, SqlUserRepository


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

    def __init__(self, engine: AsyncEngine, *, user_id: str | None = None) -> None:
        self._engine = engine
        self._user_id = user_id
        self._conn: AsyncConnection | None = None

    @property
    def connection(self) -> AsyncConnection:
        if self._conn is None:
            raise RuntimeError("the unit of work is not open: use `async with`")
        return self._conn

    async def __aenter__(self) -> Self:
        with unavailable_on_connection_errors(connecting=True):
            conn = await self._engine.connect()
        try:
            with unavailable_on_connection_errors():
                await self._begin(conn)
        except BaseException:
            await conn.close()
            raise
        self._conn = conn
        self._build_repositories(conn)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._close(conn, failing=exc is not None)
        if exc is not None and not isinstance(exc, DatabaseUnavailable) and is_connection_error(exc):
            raise DatabaseUnavailable("database unavailable") from exc

    async def commit(self) -> None:
        with unavailable_on_connection_errors():
            await self.connection.commit()

    async def _begin(self, conn: AsyncConnection) -> None:
        if self._user_id is not None and conn.dialect.name == "postgresql":
            # set_config(..., true) lasts one transaction; the begin hook renews it for each one, so
            # row-level security keeps seeing the user after a commit in the same unit of work.
            event.listen(conn.sync_connection, "begin", _acting_for(self._user_id))
        await conn.begin()

    def _build_repositories(self, conn: AsyncConnection) -> None:
        self.users = SqlUserRepository(conn)
        self.api_keys = SqlApiKeyRepository(conn)
        self.agents = SqlAgentRepository(conn)
        self.chats = SqlChatRepository(conn)
        self.messages = SqlMessageRepository(conn)
        self.customizations = SqlCustomizationRepository(conn)
        self.sessions = SqlSessionRepository(conn)
        self.events = SqlEventRepository(conn)

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


def _acting_for(user_id: str) -> Callable[[Connection], None]:
    def set_user(connection: Connection) -> None:
        connection.execute(select(func.set_config("app.user_id", user_id, True)))

    return set_user


class SqlUnitOfWorkFactory:
    """Implements ``storage.protocols.UnitOfWorkFactory``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    def __call__(self, *, user_id: str | None = None) -> SqlUnitOfWork:
        return SqlUnitOfWork(self._engine, user_id=user_id)
