"""Audit events to the real Redis stream, from the stored events (SQLite and PostgreSQL).

At least once, never twice: a cursor in Redis, explicit entry ids ``<event id>-0``, one atomic script.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from redis.asyncio import Redis

from chatserver.domain import AuditEvent, NewEvent
from chatserver.redis_bus import AuditEventPublisher, RedisKeys, connect
from chatserver.redis_bus.events import EventFeed
from chatserver.services.events import AuditEventService
from chatserver.storage.sql import SqlUnitOfWorkFactory
from tests.e2e.harness import free_port
from tests.support.builders import at
from tests.support.redis import redis_client, redis_prefix, redis_url

pytestmark = pytest.mark.redis


@pytest.fixture
async def keys() -> AsyncIterator[RedisKeys]:
    with redis_prefix() as prefix:
        yield RedisKeys(prefix)


@pytest.fixture
async def raw() -> AsyncIterator[Redis]:
    async with redis_client() as client:
        yield client


async def store(uow_factory: SqlUnitOfWorkFactory, *types: str) -> None:
    async with uow_factory() as uow:
        for i, type_ in enumerate(types):
            event = NewEvent(type_, user_id="alice", agent_name="assistant", chat_id="c1", data={"n": i})
            await uow.events.add(event, now=at(i))
        await uow.commit()


async def stream(raw: Redis, keys: RedisKeys) -> list[tuple[str, dict[str, str]]]:
    return list(await raw.xrange(keys.events))


@asynccontextmanager
async def publisher(keys: RedisKeys, feed: EventFeed, **options: Any) -> AsyncIterator[AuditEventPublisher]:
    client = connect(redis_url(), timeout_seconds=2)
    try:
        yield AuditEventPublisher(client, keys, feed, **options)
    finally:
        await client.aclose()


async def test_stored_events_are_added_in_order_with_their_ids_and_the_cursor_follows(
    uow_factory: SqlUnitOfWorkFactory, keys: RedisKeys, raw: Redis
) -> None:
    await store(uow_factory, "turn.completed", "customization.created", "turn.failed")
    async with publisher(keys, AuditEventService(uow_factory)) as p:
        assert await p.publish_once() == 3
        assert await p.publish_once() == 0
        entries = await stream(raw, keys)
        ids = [int(entry_id.split("-")[0]) for entry_id, _ in entries]
        assert [entry_id.endswith("-0") for entry_id, _ in entries] == [True] * 3
        assert ids == sorted(ids) and await p.cursor() == ids[-1]
        assert [fields["type"] for _, fields in entries] == [
            "turn.completed",
            "customization.created",
            "turn.failed",
        ]
        first = json.loads(entries[0][1]["event"])
        assert (first["id"], first["user_id"], first["chat_id"], first["data"]) == (
            ids[0],
            "alice",
            "c1",
            {"n": 0},
        )
        await store(uow_factory, "agent.built")
        assert await p.publish_once() == 1
        assert [fields["type"] for _, fields in await stream(raw, keys)][-1] == "agent.built"


async def test_a_restarted_publisher_resumes_after_the_cursor(
    uow_factory: SqlUnitOfWorkFactory, keys: RedisKeys, raw: Redis
) -> None:
    feed = AuditEventService(uow_factory)
    await store(uow_factory, "one", "two", "three")
    async with publisher(keys, feed) as first:
        await first.publish_once()
    await store(uow_factory, "four", "five")
    async with publisher(keys, feed) as restarted:
        assert await restarted.publish_once() == 2
    assert [fields["type"] for _, fields in await stream(raw, keys)] == [
        "one",
        "two",
        "three",
        "four",
        "five",
    ]


async def test_two_replicas_publishing_at_once_add_each_event_once(
    uow_factory: SqlUnitOfWorkFactory, keys: RedisKeys, raw: Redis
) -> None:
    feed = AuditEventService(uow_factory)
    async with publisher(keys, feed, batch=3) as a, publisher(keys, feed, batch=3) as b:
        for round_ in range(4):
            await store(uow_factory, *(f"r{round_}e{i}" for i in range(4)))
            await asyncio.gather(a.publish_once(), b.publish_once(), a.publish_once(), b.publish_once())
        while await a.publish_once() or await b.publish_once():
            pass
    types = [fields["type"] for _, fields in await stream(raw, keys)]
    assert types == [f"r{r}e{i}" for r in range(4) for i in range(4)]


async def test_a_replay_after_a_crash_is_rejected_as_duplicates(
    uow_factory: SqlUnitOfWorkFactory, keys: RedisKeys, raw: Redis
) -> None:
    await store(uow_factory, "one", "two", "three")
    async with publisher(keys, AuditEventService(uow_factory)) as p:
        await p.publish_once()
        before = await stream(raw, keys)
        top = await p.cursor()
        # The crash this simulates: entries added, cursor not saved (the script is atomic, but an
        # operator may also restore an old cursor or lose it).
        await raw.delete(keys.events_cursor)
        assert await p.publish_once() == 0
        assert await stream(raw, keys) == before
        assert await p.cursor() == top


class ListFeed:
    """Events as a database shows them mid-flight: ids may be missing while a transaction is open."""

    def __init__(self, *ids: int) -> None:
        self.events = [self.event(i) for i in ids]

    @staticmethod
    def event(event_id: int) -> AuditEvent:
        return AuditEvent(event_id, f"e{event_id}", None, None, None, {}, datetime(2026, 1, 1, tzinfo=UTC))

    def commit(self, event_id: int) -> None:
        self.events = sorted([*self.events, self.event(event_id)], key=lambda e: e.id)

    async def after(self, event_id: int, *, limit: int) -> list[AuditEvent]:
        return [e for e in self.events if e.id > event_id][:limit]


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_gap_holds_later_events_back_until_the_missing_one_commits(
    keys: RedisKeys, raw: Redis
) -> None:
    feed, ticks = ListFeed(1, 2, 4, 5), Ticks()
    async with publisher(keys, feed, gap_grace_seconds=10, clock=ticks) as p:
        assert await p.publish_once() == 2
        ticks.now = 9
        assert await p.publish_once() == 0
        feed.commit(3)
        assert await p.publish_once() == 3
    assert [entry_id for entry_id, _ in await stream(raw, keys)] == ["1-0", "2-0", "3-0", "4-0", "5-0"]


async def test_a_gap_that_never_fills_is_skipped_after_the_grace_time(
    keys: RedisKeys, raw: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    feed, ticks = ListFeed(2, 3, 6), Ticks()
    async with publisher(keys, feed, gap_grace_seconds=10, clock=ticks) as p:
        assert await p.publish_once() == 0
        ticks.now = 10
        with caplog.at_level(logging.WARNING, logger="chatserver.events"):
            assert await p.publish_once() == 2
            ticks.now = 19  # the gap at 4 was first seen at 10
            assert await p.publish_once() == 0
            ticks.now = 20
            assert await p.publish_once() == 1
    assert [entry_id for entry_id, _ in await stream(raw, keys)] == ["2-0", "3-0", "6-0"]
    assert "ids 1-1 never committed" in caplog.text and "ids 4-5 never committed" in caplog.text


async def test_the_running_publisher_catches_up_in_batches_and_reports_each_cycle(
    keys: RedisKeys, raw: Redis
) -> None:
    feed = ListFeed(*range(1, 8))
    cycles: list[bool] = []
    async with publisher(keys, feed, batch=3) as p:
        task = asyncio.create_task(p.run(0.05, cycles.append))
        try:
            deadline = time.monotonic() + 10
            while await p.cursor() < 7:
                assert time.monotonic() < deadline, "the publisher did not catch up"
                await asyncio.sleep(0.02)
            feed.commit(8)
            while await p.cursor() < 8:
                assert time.monotonic() < deadline, "the publisher missed a later event"
                await asyncio.sleep(0.02)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert len(await stream(raw, keys)) == 8
    assert cycles and all(cycles)


async def test_an_unreachable_redis_fails_the_cycle_and_the_loop_goes_on(keys: RedisKeys) -> None:
    client = connect(f"redis://127.0.0.1:{free_port()}/0", timeout_seconds=1)
    cycles: list[bool] = []
    task = asyncio.create_task(AuditEventPublisher(client, keys, ListFeed(1)).run(0.05, cycles.append))
    try:
        deadline = time.monotonic() + 10
        while len(cycles) < 3:
            assert time.monotonic() < deadline, "the loop stopped"
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.aclose()
    assert not any(cycles)
