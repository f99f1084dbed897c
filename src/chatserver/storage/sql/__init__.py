"""The SQLAlchemy (Core, async) implementation of the storage protocols, for SQLite and PostgreSQL."""

from chatserver.storage.sql.engine import SqlDatabase, create_engine
from chatserver.storage.sql.migrate import current_matches_head, upgrade_to_head
from chatserver.storage.sql.uow import SqlUnitOfWork, SqlUnitOfWorkFactory

__all__ = [
    "SqlDatabase",
    "SqlUnitOfWork",
    "SqlUnitOfWorkFactory",
    "create_engine",
    "current_matches_head",
    "upgrade_to_head",
]
