"""Run steps: a run's ledger of model responses and tool calls, and its pending approvals."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from chatserver.domain import Run
from chatserver.domain.steps import RunStep
from chatserver.storage.sql.runs import run_of
from chatserver.storage.sql.tables import run_steps, runs

_s = run_steps.c
_r = runs.c


def step_of(row: RowMapping) -> RunStep:
    return RunStep(
        run_id=row["run_id"],
        seq=row["seq"],
        kind=row["kind"],
        name=row["name"],
        status=row["status"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        tool_call_id=row["tool_call_id"],
        args=row["args"],
        payload=row["payload"],
        decided_at=row["decided_at"],
        reason=row["reason"],
    )


def _values(user_id: str, step: RunStep) -> dict[str, Any]:
    return {
        "run_id": step.run_id,
        "seq": step.seq,
        "user_id": user_id,
        "kind": step.kind,
        "name": step.name,
        "status": step.status,
        "tool_call_id": step.tool_call_id,
        "args": step.args,
        "payload": step.payload,
        "started_at": step.started_at,
        "finished_at": step.finished_at,
        "decided_at": step.decided_at,
        "reason": step.reason,
    }


class SqlStepRepository:
    """Implements ``storage.protocols.StepRepository``."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, user_id: str, steps: Sequence[RunStep]) -> None:
        if steps:
            await self._conn.execute(insert(run_steps), [_values(user_id, step) for step in steps])

    async def finish(
        self, user_id: str, run_id: str, seq: int, *, status: str, payload: Any, now: datetime | None
    ) -> None:
        statement = (
            update(run_steps)
            .where(_s.user_id == user_id, _s.run_id == run_id, _s.seq == seq)
            .values(status=status, payload=payload, finished_at=now)
        )
        await self._conn.execute(statement)

    async def list(self, user_id: str, run_id: str) -> builtins.list[RunStep]:
        statement = select(run_steps).where(_s.user_id == user_id, _s.run_id == run_id).order_by(_s.seq)
        return [step_of(row) for row in (await self._conn.execute(statement)).mappings()]

    async def decide(
        self,
        user_id: str,
        run_id: str,
        tool_call_id: str,
        *,
        status: str,
        args: dict[str, Any] | None,
        reason: str | None,
        now: datetime,
    ) -> bool:
        """Decide a pending call (``started`` to run it, ``denied``); False when it is not pending."""
        values: dict[str, Any] = {"status": status, "decided_at": now, "reason": reason}
        if args is not None:
            values["args"] = args
        statement = (
            update(run_steps)
            .where(
                _s.user_id == user_id,
                _s.run_id == run_id,
                _s.tool_call_id == tool_call_id,
                _s.status == "pending",
            )
            .values(values)
        )
        return (await self._conn.execute(statement)).rowcount > 0

    async def overdue(self, *, before: datetime, limit: int = 100) -> builtins.list[tuple[str, str]]:
        """Paused runs (user, run) with a call pending since before ``before`` (the system's view);
        a run cancelled while it waited has calls pending that nobody will decide."""
        statement = (
            select(_s.user_id, _s.run_id)
            .join(runs, _r.id == _s.run_id)
            .where(_s.status == "pending", _s.started_at < before, _r.status == "requires_action")
            .distinct()
            .limit(limit)
        )
        return [(row[0], row[1]) for row in await self._conn.execute(statement)]


class SqlPauseRepository:
    """Implements ``storage.protocols.PauseRepository``: a run that waits for the user, and its
    taking up again. A paused run holds no lease: no process waits for it."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def pause(self, user_id: str, run_id: str, *, owner: str, result: dict[str, Any]) -> bool:
        statement = (
            update(runs)
            .where(_r.id == run_id, _r.user_id == user_id, _r.status == "running", _r.lease_owner == owner)
            .values(status="requires_action", result=result, lease_owner=None, lease_expires_at=None)
        )
        return (await self._conn.execute(statement)).rowcount > 0

    async def take_up(
        self, user_id: str, run_id: str, *, status: str, owner: str, lease_until: datetime
    ) -> Run | None:
        """The run (``requires_action`` or ``interrupted``) running again under ``owner``'s lease."""
        statement = (
            update(runs)
            .where(_r.id == run_id, _r.user_id == user_id, _r.status == status)
            .values(
                status="running",
                result=None,
                error_code=None,
                error_detail=None,
                finished_at=None,
                lease_owner=owner,
                lease_expires_at=lease_until,
                cancel_requested=False,
            )
            .returning(*runs.c)
        )
        row = (await self._conn.execute(statement)).mappings().first()
        return run_of(row) if row else None
