"""The maintenance gate on SQLite and PostgreSQL: one replica at a time, at most once per interval.

Two gates on two engines stand for two replicas sharing one database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from chatserver.agents.cache import AgentCache
from chatserver.config import Settings
from chatserver.services.background_tasks import BackgroundTaskService, MaintenancePolicy
from chatserver.storage.protocols import UnitOfWork
from chatserver.storage.sql import SqlUnitOfWorkFactory, create_engine
from chatserver.storage.sql.maintenance import SqlMaintenanceGate, job_key
from tests.support.builders import at, chat, session
from tests.support.databases import settings_for

GAP = timedelta(seconds=54)


@pytest.fixture
async def other_uow(settings: Settings) -> AsyncIterator[SqlUnitOfWorkFactory]:
    """A second replica's view of the same database: its own engine and pool."""
    engine = create_engine(settings)
    yield SqlUnitOfWorkFactory(engine)
    await engine.dispose()


async def completions(uow_factory: SqlUnitOfWorkFactory) -> list[dict[str, Any]]:
    async with uow_factory() as uow:
        events = await uow.events.list(type="sweep.completed", user_id=None, limit=100, before=None)
    return [event.data for event in reversed(events)]


class Job:
    """A job body that counts its runs; ``hold`` keeps its transaction open until released."""

    def __init__(self, name: str, *, hold: bool = False) -> None:
        self.name = name
        self.runs = 0
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        if not hold:
            self.release.set()

    async def __call__(self, uow: UnitOfWork) -> dict[str, Any]:
        self.runs += 1
        self.entered.set()
        await asyncio.wait_for(self.release.wait(), timeout=10)
        return {"replica": self.name}


async def test_a_job_records_its_completion_with_what_it_returned(uow_factory: SqlUnitOfWorkFactory) -> None:
    gate = SqlMaintenanceGate(uow_factory)
    done = await gate.run_exclusive("sweep", Job("a"), now=at(0), min_gap=GAP)
    async with uow_factory() as uow:
        [event] = await uow.events.list(type="sweep.completed", user_id=None, limit=10, before=None)
    assert done == event.data == {"replica": "a"}
    assert event.created_at == at(0)


async def test_a_failing_job_rolls_back_its_work_and_records_no_completion(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    async with uow_factory() as uow:
        await uow.chats.create_if_absent(chat("chat-a", "alice"))
        await uow.sessions.add(session("alice", "chat-a", id="s1", last_heartbeat_at=at(0)))
        await uow.commit()

    async def failing(uow: UnitOfWork) -> dict[str, Any]:
        await uow.sessions.deactivate_stale(cutoff=at(100), now=at(100))
        raise RuntimeError("boom")

    gate = SqlMaintenanceGate(uow_factory)
    with pytest.raises(RuntimeError):
        await gate.run_exclusive("sweep", failing, now=at(100), min_gap=GAP)
    async with uow_factory() as uow:
        stored = await uow.sessions.get("alice", "s1")
    assert stored is not None and stored.is_active
    assert await completions(uow_factory) == []
    assert await gate.run_exclusive("sweep", Job("a"), now=at(100), min_gap=GAP) == {"replica": "a"}


async def test_a_job_is_skipped_within_the_gap_and_runs_again_after_it(
    uow_factory: SqlUnitOfWorkFactory, other_uow: SqlUnitOfWorkFactory
) -> None:
    first, second = SqlMaintenanceGate(uow_factory), SqlMaintenanceGate(other_uow)
    job = Job("b")
    assert await first.run_exclusive("sweep", Job("a"), now=at(0), min_gap=GAP) is not None
    assert await second.run_exclusive("sweep", job, now=at(53), min_gap=GAP) is None
    assert job.runs == 0
    assert await second.run_exclusive("sweep", job, now=at(54), min_gap=GAP) == {"replica": "b"}
    assert await completions(uow_factory) == [{"replica": "a"}, {"replica": "b"}]


async def test_a_replica_arriving_while_another_sweeps_skips_the_interval(
    uow_factory: SqlUnitOfWorkFactory, other_uow: SqlUnitOfWorkFactory
) -> None:
    holder, latecomer = Job("a", hold=True), Job("b")
    first = asyncio.create_task(
        SqlMaintenanceGate(uow_factory).run_exclusive("sweep", holder, now=at(0), min_gap=GAP)
    )
    await asyncio.wait_for(holder.entered.wait(), timeout=10)
    # SQLite: waits for the write lock, then sees the completion; PostgreSQL: the lock is taken.
    second = asyncio.create_task(
        SqlMaintenanceGate(other_uow).run_exclusive("sweep", latecomer, now=at(1), min_gap=GAP)
    )
    await asyncio.sleep(0.2)
    holder.release.set()
    results = await asyncio.gather(first, second)
    assert results == [{"replica": "a"}, None]
    assert (holder.runs, latecomer.runs) == (1, 0)
    assert await completions(uow_factory) == [{"replica": "a"}]


async def test_two_replicas_racing_every_interval_sweep_exactly_once_per_interval(
    uow_factory: SqlUnitOfWorkFactory, other_uow: SqlUnitOfWorkFactory
) -> None:
    gates = {"a": SqlMaintenanceGate(uow_factory), "b": SqlMaintenanceGate(other_uow)}
    rounds = 4
    for interval in range(rounds):
        now = at(60 * interval)
        results = await asyncio.gather(
            *(gate.run_exclusive("sweep", Job(name), now=now, min_gap=GAP) for name, gate in gates.items())
        )
        assert sum(result is not None for result in results) == 1, results
    assert len(await completions(uow_factory)) == rounds


async def test_a_job_never_overlaps_itself_within_one_process(uow_factory: SqlUnitOfWorkFactory) -> None:
    gate = SqlMaintenanceGate(uow_factory)
    holder = Job("a", hold=True)
    running = asyncio.create_task(gate.run_exclusive("sweep", holder, now=at(0), min_gap=GAP))
    await asyncio.wait_for(holder.entered.wait(), timeout=10)
    overlapping = Job("a-again")
    skipped = await gate.run_exclusive("sweep", overlapping, now=at(0), min_gap=timedelta(0))
    holder.release.set()
    assert (skipped, overlapping.runs, await running) == (None, 0, {"replica": "a"})


async def test_the_background_sweep_on_two_replicas_deactivates_once_and_audits_it(
    uow_factory: SqlUnitOfWorkFactory, other_uow: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    async with uow_factory() as uow:
        await uow.chats.create_if_absent(chat("chat-a", "alice"))
        await uow.sessions.add(session("alice", "chat-a", id="stale", last_heartbeat_at=at(0)))
        await uow.sessions.add(session("alice", "chat-a", id="fresh", last_heartbeat_at=at(250)))
        await uow.commit()

    class Clock:
        def now(self) -> Any:
            return at(301)

    def replica(name: str, uow: SqlUnitOfWorkFactory) -> BackgroundTaskService:
        policy = MaintenancePolicy(interval_seconds=60, session_ttl_seconds=300)
        cache = AgentCache(10, 900, Clock())
        return BackgroundTaskService(uow, SqlMaintenanceGate(uow), cache, Clock(), policy, replica=name)

    reports = await asyncio.gather(
        replica("a", uow_factory).sweep_once(), replica("b", other_uow).sweep_once()
    )
    async with uow_factory(user_id="alice") as uow:
        active = [s.id for s in await uow.sessions.list("alice", agent_name=None, active=True)]
    async with uow_factory() as uow:
        deactivated = await uow.events.list(
            type="session.deactivated", user_id="alice", limit=10, before=None
        )
    assert reports.count(None) == 1
    assert [r["deactivated"] for r in reports if r is not None] == [1]
    assert active == ["fresh"]
    assert [(e.chat_id, e.data["session_id"]) for e in deactivated] == [("chat-a", "stale")]
    assert [c["deactivated"] for c in await completions(uow_factory)] == [1]


async def test_the_gate_lock_is_apart_from_a_chat_lock_with_the_same_bits(postgres_url: str) -> None:
    """Two-int advisory keys and bigint keys are separate spaces in PostgreSQL: no false contention."""
    engine = create_engine(settings_for(postgres_url))
    space, key = job_key("sweep")
    same_bits = (space << 32) | (key & 0xFFFFFFFF)
    try:
        async with engine.connect() as holder:
            assert (await holder.execute(select(func.pg_try_advisory_lock(same_bits)))).scalar_one()
            gate = SqlMaintenanceGate(SqlUnitOfWorkFactory(engine))
            done = await gate.run_exclusive("sweep", Job("a"), now=at(0), min_gap=GAP)
            await holder.execute(select(func.pg_advisory_unlock(same_bits)))
    finally:
        await engine.dispose()
    assert done == {"replica": "a"}
