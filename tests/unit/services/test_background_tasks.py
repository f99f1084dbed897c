"""BackgroundTaskService on fakes, driven by a fake clock and sleeper: no real waiting anywhere."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest

from chatserver.services.background_tasks import BackgroundTaskService, MaintenancePolicy
from chatserver.services.sessions import SessionService
from chatserver.storage.protocols import MaintenanceGate, MaintenanceWork
from tests.unit.fakes import FakeMaintenanceGate, FakeSleeper
from tests.unit.services.conftest import World

INTERVAL = 60.0
TTL = 300.0
AGENT = "assistant"
LOGGER = "chatserver.background"


def make_service(
    world: World, sleeper: FakeSleeper, replica: str, gate: MaintenanceGate | None = None
) -> BackgroundTaskService:
    return BackgroundTaskService(
        world.uow,
        gate or FakeMaintenanceGate(world.uow),
        world.cache,
        world.clock,
        MaintenancePolicy(INTERVAL, TTL),
        sleeper=sleeper,
        replica=replica,
    )


@dataclass
class Background:
    world: World
    sessions: SessionService
    sleeper: FakeSleeper
    service: BackgroundTaskService

    def events(self, type: str) -> list[Any]:
        return [event for event in self.world.uow.store.events if event.type == type]

    def replica(self, name: str, gate: MaintenanceGate | None = None) -> BackgroundTaskService:
        """Another service on the same store: a second replica with its own gate."""
        return make_service(self.world, self.sleeper, name, gate)

    async def start(self) -> None:
        """Start the loops and wait until both are asleep, so the clock can move under them."""
        await self.service.start()
        await self.sleeper.settle(2)

    async def cache_agent(self, user_id: str) -> None:
        await self.world.chat.say(user_id, AGENT, f"chat-of-{user_id}", "hello")
        assert (user_id, AGENT) in self.world.cache


@pytest.fixture
async def bg(world: World) -> AsyncIterator[Background]:
    sleeper = FakeSleeper(world.clock)
    service = make_service(world, sleeper, "replica-1")
    harness = Background(world, SessionService(world.uow, world.clock), sleeper, service)
    yield harness
    await harness.service.stop()


class FlakyGate(FakeMaintenanceGate):
    """Fails its first run, as a database that is briefly down would."""

    failures = 1

    async def run_exclusive(
        self, job: str, work: MaintenanceWork, *, now: datetime, min_gap: timedelta
    ) -> dict[str, Any] | None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("database briefly down")
        return await super().run_exclusive(job, work, now=now, min_gap=min_gap)


class StuckGate:
    """A sweep that hangs until cancelled, and notes that its cleanup ran."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.cleaned_up = False

    async def run_exclusive(
        self, job: str, work: MaintenanceWork, *, now: datetime, min_gap: timedelta
    ) -> dict[str, Any] | None:
        self.entered.set()
        try:
            await asyncio.Event().wait()
        finally:
            self.cleaned_up = True
        return None


# Deactivation


async def test_a_heartbeat_exactly_one_ttl_old_survives_the_sweep_and_an_older_one_does_not(
    bg: Background,
) -> None:
    older = await bg.sessions.open("u2", AGENT)
    bg.world.clock.advance(0.001)
    boundary = await bg.sessions.open("u1", AGENT)
    bg.world.clock.advance(TTL)
    await bg.service.sweep_once()
    store = bg.world.uow.store.sessions
    assert (store[boundary.id].is_active, store[older.id].is_active) == (True, False)
    assert store[older.id].updated_at == bg.world.clock.now()


async def test_each_deactivation_is_audited_in_the_transaction_of_its_sweep(bg: Background) -> None:
    first = await bg.sessions.open("u1", AGENT)
    second = await bg.sessions.open("u2", AGENT)
    bg.world.clock.advance(TTL + 1)
    commits = bg.world.uow.store.commits
    report = await bg.service.sweep_once()
    assert bg.world.uow.store.commits == commits + 1
    assert report == {"deactivated": 2, "replica": "replica-1"}
    deactivated = bg.events("session.deactivated")
    assert sorted((e.user_id, e.chat_id, e.data["session_id"]) for e in deactivated) == sorted(
        [("u1", first.chat_id, first.id), ("u2", second.chat_id, second.id)]
    )
    [completed] = bg.events("sweep.completed")
    assert completed.data == report and completed.created_at == bg.world.clock.now()


async def test_a_replica_skips_its_sweep_while_another_swept_within_the_interval(bg: Background) -> None:
    other = bg.replica("replica-2")
    assert await bg.service.sweep_once() is not None
    bg.world.clock.advance(INTERVAL * 0.5)
    assert await other.sweep_once() is None
    bg.world.clock.advance(INTERVAL * 0.45)
    assert await other.sweep_once() == {"deactivated": 0, "replica": "replica-2"}
    assert [e.data["replica"] for e in bg.events("sweep.completed")] == ["replica-1", "replica-2"]


async def test_the_loop_deactivates_a_silent_session_and_keeps_a_heartbeating_one(bg: Background) -> None:
    beating = await bg.sessions.open("u1", AGENT)
    silent = await bg.sessions.open("u2", AGENT)
    await bg.start()
    intervals = int(TTL / INTERVAL) + 2
    for _ in range(intervals):
        await bg.sessions.heartbeat("u1", beating.id)
        await bg.sleeper.advance(INTERVAL)
    store = bg.world.uow.store.sessions
    assert (store[beating.id].is_active, store[silent.id].is_active) == (True, False)
    assert len(bg.events("sweep.completed")) == intervals
    assert [e.data["session_id"] for e in bg.events("session.deactivated")] == [silent.id]


# Eviction


async def test_eviction_drops_only_pairs_without_an_active_session_and_audits_each(bg: Background) -> None:
    await bg.sessions.open("live", AGENT)
    ended = await bg.sessions.open("ended", AGENT)
    await bg.sessions.end("ended", ended.id)
    for user_id in ("live", "ended", "no-session"):
        await bg.cache_agent(user_id)
    commits = bg.world.uow.store.commits
    evicted = await bg.service.evict_once()
    assert sorted(evicted) == [("ended", AGENT), ("no-session", AGENT)]
    assert bg.world.cache.keys() == [("live", AGENT)]
    assert bg.world.uow.store.commits == commits + 1
    audited = bg.events("agent.evicted")
    assert sorted((e.user_id, e.agent_name) for e in audited) == sorted(evicted)
    assert {e.data["reason"] for e in audited} == {"no_active_session"}


async def test_an_eviction_with_nothing_to_evict_writes_nothing(bg: Background) -> None:
    await bg.sessions.open("live", AGENT)
    await bg.cache_agent("live")
    commits = bg.world.uow.store.commits
    assert await bg.service.evict_once() == []
    assert bg.world.cache.keys() == [("live", AGENT)]
    assert (bg.world.uow.store.commits, bg.events("agent.evicted")) == (commits, [])


async def test_an_expired_agent_is_evicted_even_while_its_session_is_active(bg: Background) -> None:
    await bg.sessions.open("live", AGENT)
    await bg.cache_agent("live")
    bg.world.clock.advance(bg.world.cache.ttl.total_seconds())
    assert await bg.service.evict_once() == []
    assert len(bg.world.cache) == 0


async def test_eviction_runs_half_an_interval_after_each_sweep(bg: Background) -> None:
    await bg.cache_agent("u1")
    await bg.start()
    await bg.sleeper.advance(INTERVAL / 2 - 1)
    assert ("u1", AGENT) in bg.world.cache
    await bg.sleeper.advance(1)
    assert ("u1", AGENT) not in bg.world.cache
    assert bg.events("sweep.completed") == []
    await bg.cache_agent("u1")
    await bg.sleeper.advance(INTERVAL / 2)
    assert len(bg.events("sweep.completed")) == 1
    assert ("u1", AGENT) in bg.world.cache
    await bg.sleeper.advance(INTERVAL / 2)
    assert ("u1", AGENT) not in bg.world.cache
    assert len(bg.events("agent.evicted")) == 2


async def test_an_evicted_agent_is_rebuilt_by_the_next_turn(bg: Background) -> None:
    await bg.cache_agent("u1")
    misses = bg.world.cache.misses
    await bg.service.evict_once()
    reply = await bg.world.chat.say("u1", AGENT, "chat-of-u1", "again")
    assert reply.response == "echo: again"
    assert bg.world.cache.misses == misses + 1
    assert ("u1", AGENT) in bg.world.cache


# Life of the tasks


async def test_a_failing_cycle_is_logged_with_its_error_and_the_next_one_runs(
    bg: Background, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    bg.service = bg.replica("replica-1", FlakyGate(bg.world.uow))
    await bg.start()
    await bg.sleeper.advance(INTERVAL)
    [failure] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "session-sweep" in failure.getMessage()
    assert failure.exc_info is not None and isinstance(failure.exc_info[1], RuntimeError)
    assert bg.events("sweep.completed") == []
    await bg.sleeper.advance(INTERVAL)
    assert len(bg.events("sweep.completed")) == 1
    assert bg.service.running


async def test_stop_cancels_a_cycle_in_progress_and_waits_for_it(
    bg: Background, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    gate = StuckGate()
    bg.service = bg.replica("replica-1", gate)
    await bg.start()
    await bg.sleeper.advance(INTERVAL / 2)
    await bg.sleeper.advance(INTERVAL / 2, settle=False)
    await asyncio.wait_for(gate.entered.wait(), timeout=5)
    await bg.service.stop()
    assert gate.cleaned_up
    assert not bg.service.running
    assert bg.sleeper.sleeping == []
    messages = [r.getMessage() for r in caplog.records]
    assert "background tasks stopped" in messages
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_starting_twice_runs_one_pair_of_loops_and_stopping_twice_is_harmless(bg: Background) -> None:
    await bg.start()
    await bg.start()
    await bg.sleeper.settle(2)
    assert len(bg.sleeper.sleeping) == 2
    await bg.service.stop()
    await bg.service.stop()
    assert not bg.service.running


class BreakingSleeper(FakeSleeper):
    """Breaks on its third sleep: the eviction loop's first sleep after its first cycle."""

    calls = 0

    async def sleep(self, seconds: float) -> None:
        self.calls += 1
        if self.calls == 3:
            raise RuntimeError("sleeper broke")
        await super().sleep(seconds)


async def test_a_task_that_ends_unexpectedly_is_logged_not_lost(
    bg: Background, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    bg.sleeper = BreakingSleeper(bg.world.clock)
    bg.service = bg.replica("replica-1")
    await bg.start()
    await bg.sleeper.advance(INTERVAL / 2, settle=False)
    for _ in range(200):
        if any(r.levelno == logging.CRITICAL for r in caplog.records):
            break
        await asyncio.sleep(0.01)
    [record] = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert "agent-eviction" in record.getMessage() and "unexpectedly" in record.getMessage()
    assert record.exc_info is not None and str(record.exc_info[1]) == "sleeper broke"
    assert bg.service.running  # the sweep loop is unaffected
