"""System jobs across replicas: one replica at a time, at most once per interval.

The audit log doubles as the jobs' memory: a run records ``<job>.completed`` in the transaction that
did the work, and a replica that finds a recent enough one skips its turn. Mutual exclusion:

* PostgreSQL: ``pg_try_advisory_xact_lock(int4, int4)``, held until the transaction ends. Its two-int
  key space is disjoint from the single-bigint keys of the chat locks, so they never collide.
* SQLite: a no-op UPDATE as the transaction's first statement takes the database's write lock,
  so a second process waits for the first to commit and then sees its completion.

Within one process a job never overlaps itself: a second call while one runs is skipped at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, bindparam, false, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from chatserver.domain import NewEvent
from chatserver.storage.protocols import MaintenanceWork
from chatserver.storage.sql.statements import int4_key
from chatserver.storage.sql.tables import audit_events
from chatserver.storage.sql.uow import SqlUnitOfWork, SqlUnitOfWorkFactory

_TRY_LOCK = select(
    func.pg_try_advisory_xact_lock(bindparam("space", type_=Integer()), bindparam("job", type_=Integer()))
)
_TAKE_WRITE_LOCK = update(audit_events).where(false()).values(id=audit_events.c.id)


KEY_SPACE = int4_key("chatserver.maintenance")


def job_key(job: str) -> tuple[int, int]:
    """The job's advisory lock key, identical on every replica."""
    return KEY_SPACE, int4_key(job)


def completed_event(job: str) -> str:
    return f"{job}.completed"


class SqlMaintenanceGate:
    """Implements ``storage.protocols.MaintenanceGate`` on SQLite and PostgreSQL."""

    def __init__(self, uow: SqlUnitOfWorkFactory) -> None:
        self._uow = uow
        self._running: set[str] = set()

    async def run_exclusive(
        self, job: str, work: MaintenanceWork, *, now: datetime, min_gap: timedelta
    ) -> dict[str, Any] | None:
        if job in self._running:
            return None
        self._running.add(job)
        try:
            async with self._uow() as uow:
                if not await _claim(uow.connection, job) or await _ran_recently(uow, job, now, min_gap):
                    return None
                data = await work(uow)
                await uow.events.add(NewEvent(completed_event(job), data=data), now=now)
                await uow.commit()
            return data
        finally:
            self._running.discard(job)


async def _claim(conn: AsyncConnection, job: str) -> bool:
    if conn.dialect.name == "postgresql":
        space, key = job_key(job)
        return bool((await conn.execute(_TRY_LOCK, {"space": space, "job": key})).scalar_one())
    await conn.execute(_TAKE_WRITE_LOCK)
    return True


async def _ran_recently(uow: SqlUnitOfWork, job: str, now: datetime, min_gap: timedelta) -> bool:
    # Read after the claim: under READ COMMITTED this statement sees a run committed just before.
    last = await uow.events.list(type=completed_event(job), user_id=None, limit=1, before=None)
    return bool(last) and now - last[0].created_at < min_gap
