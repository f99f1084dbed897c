"""Run records: creation (idempotent), the chat's queue, leases, cancellation, and pages."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Integer,
    RowMapping,
    and_,
    bindparam,
    delete,
    exists,
    func,
    literal,
    null,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from chatserver.domain import ENDED, ConfigVersions, Run, RunError, RunOutcome, TurnUsage
from chatserver.domain.chats import TurnRun
from chatserver.storage.sql.statements import dialect_insert, insert_unless_taken, int4_key
from chatserver.storage.sql.tables import agents, runs, users

_r = runs.c
_ACTIVE = ("queued", "running", "requires_action")
_HOLDING = ("running", "requires_action")
"""A run that holds its chat: one waiting for the user's approval does too."""
USER_STARTS_SPACE = int4_key("chatserver.user_starts")
_LOCK_USER_STARTS = select(
    func.pg_advisory_xact_lock(literal(USER_STARTS_SPACE, Integer()), bindparam("user", type_=Integer()))
)


_SUMMARY = (*(c for c in runs.c if c.name != "result"), null().label("result"))
"""A run without its answer (``result``): what a chat's messages show of it, they hold the answer."""


def user_key(user_id: str) -> int:
    """The advisory lock key of a user's run starts (two-int keys: the chat locks are one bigint)."""
    return int4_key(user_id)


def run_of(row: RowMapping) -> Run:
    error = RunError(row["error_code"], row["error_detail"] or "") if row["error_code"] else None
    return Run(
        id=row["id"],
        user_id=row["user_id"],
        chat_id=row["chat_id"],
        agent_name=row["agent_name"],
        status=row["status"],
        message=row["message"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        model=row["model"],
        usage=TurnUsage(row["input_tokens"], row["output_tokens"], row["requests"]),
        error=error,
        result=row["result"],
        idempotency_key=row["idempotency_key"],
        request_hash=row["request_hash"],
        steers=row["steers"],
        edit_of=row["edit_of"],
        regenerate=row["regenerate"],
    )


def outcome_values(outcome: RunOutcome, now: datetime) -> dict[str, Any]:
    """The columns a run's end sets; the lease goes with it."""
    error = outcome.error
    return {
        "status": outcome.status,
        "finished_at": now,
        "model": outcome.model,
        "input_tokens": outcome.usage.input_tokens,
        "output_tokens": outcome.usage.output_tokens,
        "requests": outcome.usage.requests,
        "error_code": error.code if error else None,
        "error_detail": error.detail if error else None,
        "result": outcome.result,
        "lease_owner": None,
        "lease_expires_at": None,
    }


def _values(run: Run, owner: str | None, lease_until: datetime | None) -> dict[str, Any]:
    return {
        "id": run.id,
        "user_id": run.user_id,
        "chat_id": run.chat_id,
        "agent_name": run.agent_name,
        "status": run.status,
        "message": run.message,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "idempotency_key": run.idempotency_key,
        "request_hash": run.request_hash,
        "lease_owner": owner,
        "lease_expires_at": lease_until,
        "steers": run.steers,
        "edit_of": run.edit_of,
        "regenerate": run.regenerate,
    }


class SqlRunRepository:
    """Implements ``storage.protocols.RunRepository``."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, run: Run, *, owner: str | None = None, lease_until: datetime | None = None) -> bool:
        return await insert_unless_taken(self._conn, runs, _values(run, owner, lease_until))

    async def add_stateless(
        self, run: Run, *, owner: str, lease_until: datetime
    ) -> tuple[bool, ConfigVersions | None]:
        agent = select(agents.c.config_version).where(agents.c.name == run.agent_name).scalar_subquery()
        mine = select(users.c.customizations_version).where(users.c.id == run.user_id).scalar_subquery()
        statement = (
            dialect_insert(self._conn, runs)
            .values(_values(run, owner, lease_until))
            .on_conflict_do_nothing()
            .returning(runs.c.id, agent, mine)
        )
        row = (await self._conn.execute(statement)).first()
        if row is None:
            return False, None
        return True, None if row[1] is None else ConfigVersions(row[1], row[2] or "")

    async def set_branch(
        self, user_id: str, run_id: str, *, edit_of: int | None, regenerate: int | None
    ) -> None:
        """Where a new run's turn goes in its chat's tree (read when the turn opens)."""
        statement = (
            update(runs)
            .where(_r.id == run_id, _r.user_id == user_id)
            .values(edit_of=edit_of, regenerate=regenerate)
        )
        await self._conn.execute(statement)

    async def get(self, user_id: str, run_id: str) -> Run | None:
        return await self._one(_r.id == run_id, _r.user_id == user_id)

    async def by_idempotency_key(self, user_id: str, key: str) -> Run | None:
        return await self._one(_r.user_id == user_id, _r.idempotency_key == key)

    async def delete_ended(self, user_id: str, run_id: str) -> bool:
        ended = _r.status.in_(sorted(ENDED))
        statement = delete(runs).where(_r.user_id == user_id, _r.id == run_id, ended)
        return (await self._conn.execute(statement)).rowcount > 0

    async def forget_idempotency_key(self, user_id: str, key: str) -> None:
        statement = (
            update(runs).where(_r.user_id == user_id, _r.idempotency_key == key).values(idempotency_key=None)
        )
        await self._conn.execute(statement)

    async def list(
        self,
        user_id: str,
        chat_id: str,
        *,
        status: str | None,
        limit: int,
        before: tuple[datetime, str] | None,
    ) -> builtins.list[Run]:
        statement = (
            select(runs)
            .where(_r.user_id == user_id, _r.chat_id == chat_id)
            .order_by(_r.created_at.desc(), _r.id.desc())
            .limit(limit)
        )
        if status is not None:
            statement = statement.where(_r.status == status)
        if before is not None:
            statement = statement.where(tuple_(_r.created_at, _r.id) < before)
        return [run_of(row) for row in (await self._conn.execute(statement)).mappings()]

    async def of_turns(
        self, user_id: str, chat_id: str, *, turns: Sequence[int], answering: Sequence[int]
    ) -> builtins.list[TurnRun]:
        """The runs that opened any of ``turns``, and those that answered any of ``answering`` (user
        message ids) again: one statement, by index."""
        if not turns and not answering:
            return []
        chosen = or_(_r.turn.in_(sorted(set(turns))), _r.regenerate.in_(sorted(set(answering))))
        statement = select(*_SUMMARY).where(_r.user_id == user_id, _r.chat_id == chat_id, chosen)
        rows = (await self._conn.execute(statement)).mappings()
        return [TurnRun(row["turn"], run_of(row)) for row in rows]

    async def active(self, user_id: str, chat_id: str) -> builtins.list[Run]:
        statement = (
            select(runs)
            .where(_r.user_id == user_id, _r.chat_id == chat_id, _r.status.in_(_ACTIVE))
            .order_by(_r.created_at, _r.id)
        )
        return [run_of(row) for row in (await self._conn.execute(statement)).mappings()]

    async def count_active(self, user_id: str) -> int:
        if self._conn.dialect.name == "postgresql":
            # Its own statement: a statement's snapshot is taken before it waits for the lock.
            await self._conn.execute(_LOCK_USER_STARTS, {"user": user_key(user_id)})
        statement = select(func.count()).where(_r.user_id == user_id, _r.status.in_(_ACTIVE))
        return int((await self._conn.execute(statement)).scalar_one())

    async def claim_next(
        self, user_id: str, chat_id: str, *, owner: str, now: datetime, lease_until: datetime
    ) -> Run | None:
        """The chat's oldest queued run becomes running, unless one runs already.

        Only the oldest may start, so two replicas racing here update the same row, and the loser
        finds it no longer queued; the partial unique index backs that up.
        """
        running = select(runs.c.id).where(
            _r.user_id == user_id, _r.chat_id == chat_id, _r.status.in_(_HOLDING)
        )
        oldest = (
            select(_r.id)
            .where(_r.chat_id == chat_id, _r.user_id == user_id, _r.status == "queued")
            .order_by(_r.created_at, _r.id)
            .limit(1)
            .scalar_subquery()
        )
        statement = (
            update(runs)
            .where(_r.id == oldest, _r.status == "queued", ~exists(running))
            .values(status="running", started_at=now, lease_owner=owner, lease_expires_at=lease_until)
            .returning(*runs.c)
        )
        row = (await self._conn.execute(statement)).mappings().first()
        return run_of(row) if row else None

    async def steering(self, user_id: str, run_id: str) -> builtins.list[Run]:
        statement = (
            select(runs)
            .where(_r.user_id == user_id, _r.steers == run_id, _r.status == "queued")
            .order_by(_r.created_at, _r.id)
        )
        return [run_of(row) for row in (await self._conn.execute(statement)).mappings()]

    async def request_cancel(self, user_id: str, run_id: str) -> None:
        statement = (
            update(runs)
            .where(_r.id == run_id, _r.user_id == user_id, _r.status == "running")
            .values(cancel_requested=True)
        )
        await self._conn.execute(statement)

    async def finish(self, user_id: str, outcome: RunOutcome, *, now: datetime, fenced: bool = True) -> bool:
        """End a run; ``fenced``: only while it is running under ``outcome.owner``'s lease, else only
        while it is queued (nobody holds it)."""
        where: list[ColumnElement[bool]] = [_r.id == outcome.run_id, _r.user_id == user_id]
        if fenced:
            where += [_r.status == "running", _r.lease_owner == outcome.owner]
        else:
            where.append(_r.status.in_(("queued", "requires_action")))
        statement = update(runs).where(*where).values(outcome_values(outcome, now))
        return (await self._conn.execute(statement)).rowcount > 0

    async def renew(
        self, owner: str, run_ids: Sequence[str], *, lease_until: datetime
    ) -> builtins.list[tuple[str, bool]]:
        if not run_ids:
            return []
        statement = (
            update(runs)
            .where(_r.id.in_(list(run_ids)), _r.status == "running", _r.lease_owner == owner)
            .values(lease_expires_at=lease_until)
            .returning(_r.id, _r.cancel_requested)
        )
        return [(row[0], bool(row[1])) for row in await self._conn.execute(statement)]

    async def expire(self, *, now: datetime, limit: int = 100) -> builtins.list[Run]:
        expired = (
            select(_r.id)
            .where(_r.status == "running", _r.lease_expires_at < now)
            .limit(limit)
            .scalar_subquery()
        )
        outcome = {
            "status": "interrupted",
            "finished_at": now,
            "error_code": "server_restarted",
            "error_detail": "the server running this run stopped before it ended",
            "lease_owner": None,
            "lease_expires_at": None,
        }
        statement = (
            update(runs)
            .where(_r.id.in_(expired), _r.status == "running", _r.lease_expires_at < now)
            .values(outcome)
            .returning(*runs.c)
        )
        return [run_of(row) for row in (await self._conn.execute(statement)).mappings()]

    async def startable(self, *, limit: int = 100) -> builtins.list[tuple[str, str]]:
        other = runs.alias("other")
        running = select(other.c.id).where(
            other.c.user_id == _r.user_id,
            other.c.chat_id == _r.chat_id,
            other.c.status.in_(_HOLDING),
        )
        statement = (
            select(_r.user_id, _r.chat_id)
            .where(and_(_r.status == "queued", _r.chat_id.is_not(None), ~exists(running)))
            .distinct()
            .limit(limit)
        )
        return [(row[0], row[1]) for row in await self._conn.execute(statement)]

    async def _one(self, *where: ColumnElement[bool]) -> Run | None:
        row = (await self._conn.execute(select(runs).where(true(), *where))).mappings().first()
        return run_of(row) if row else None
