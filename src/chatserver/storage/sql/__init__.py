"""The SQLAlchemy (Core, async) implementation of the storage protocols, for SQLite and PostgreSQL."""

from chatserver.storage.sql.engine import SqlDatabase, create_engine
from chatserver.storage.sql.locks import LocalChatLocks, PostgresChatLocks, make_chat_locks
from chatserver.storage.sql.migrate import current_matches_head, upgrade_to_head
from chatserver.storage.sql.uow import SqlUnitOfWork, SqlUnitOfWorkFactory

__all__ = [
    "LocalChatLocks",
    "PostgresChatLocks",
    "SqlDatabase",
    "SqlUnitOfWork",
    "SqlUnitOfWorkFactory",
    "create_engine",
    "current_matches_head",
    "make_chat_locks",
    "upgrade_to_head",
]
