"""Retention in the background sweep, on fakes with an injected clock: by age, once per interval."""

from __future__ import annotations

from datetime import timedelta

from chatserver.services.background_tasks import BackgroundTaskService, MaintenancePolicy
from tests.support.builders import chat
from tests.unit.fakes import FakeMaintenanceGate, FakeSleeper
from tests.unit.services.conftest import World

INTERVAL = 60.0
DAY = 86400.0


def service(world: World, *, chat_days: int, sleeper: FakeSleeper | None = None) -> BackgroundTaskService:
    policy = MaintenancePolicy(INTERVAL, 300.0, chat_days=chat_days)
    gate = FakeMaintenanceGate(world.uow)
    return BackgroundTaskService(world.uow, gate, world.cache, world.clock, policy, sleeper=sleeper)


def purged_events(world: World) -> list[dict[str, int]]:
    return [event.data for event in world.uow.store.events if event.type == "retention.purged"]


async def test_a_chat_goes_once_it_is_older_than_the_retention_and_not_a_moment_before(world: World) -> None:
    world.uow.store.chats[("u1", "c1")] = chat("c1", "u1", updated_at=world.clock.now())
    purge = service(world, chat_days=7)
    world.clock.advance(7 * DAY)
    assert not any((await purge.purge_once()).values())
    world.clock.advance(INTERVAL)
    assert (await purge.purge_once())["chats"] == 1
    assert world.uow.store.chats == {}
    assert [data["chats"] for data in purged_events(world)] == [1]


async def test_zero_days_keeps_chats_forever(world: World) -> None:
    world.uow.store.chats[("u1", "c1")] = chat("c1", "u1", updated_at=world.clock.now())
    world.clock.advance(3650 * DAY)
    await service(world, chat_days=0).purge_once()
    assert list(world.uow.store.chats) == [("u1", "c1")]
    assert purged_events(world) == []


async def test_the_sweep_cycle_purges_after_sweeping(world: World) -> None:
    world.uow.store.chats[("u1", "c1")] = chat("c1", "u1", updated_at=world.clock.now() - timedelta(days=30))
    sleeper = FakeSleeper(world.clock)
    background = service(world, chat_days=7, sleeper=sleeper)
    await background.start()
    try:
        await sleeper.settle(2)
        await sleeper.advance(INTERVAL)
    finally:
        await background.stop()
    assert world.uow.store.chats == {}
