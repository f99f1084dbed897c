"""Cache invalidation between replicas over the real Redis pub/sub."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from chatserver.agents.cache import AgentCache
from chatserver.agents.factory import AgentFactory
from chatserver.agents.registry import ModelRegistry
from chatserver.agents.tools import ToolRegistry
from chatserver.config import Settings
from chatserver.domain import AgentConfig
from chatserver.observability.metrics import Metrics
from chatserver.redis_bus import RedisInvalidationBus, RedisKeys
from tests.support.redis import redis_client, redis_prefix, redis_url
from tests.unit.fakes import FakeClock
from tests.unit.observability.test_metrics import value

pytestmark = pytest.mark.redis

WAIT_SECONDS = 10.0


@dataclass
class Replica:
    name: str
    client: Redis
    cache: AgentCache
    bus: RedisInvalidationBus
    metrics: Metrics


def fill(cache: AgentCache, *keys: tuple[str, str]) -> None:
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    factory = AgentFactory(
        ModelRegistry(Settings(database_url="sqlite+aiosqlite:///:memory:")), ToolRegistry(clock)
    )
    for user_id, agent_name in keys:
        cache.put((user_id, agent_name), factory.build(AgentConfig(agent_name, "echo", "Prompt."), []))


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.02)


@pytest.fixture
async def replicas() -> AsyncIterator[tuple[Replica, Replica]]:
    with redis_prefix() as prefix:
        keys = RedisKeys(prefix)
        made: list[Replica] = []
        for name in ("a", "b"):
            client = Redis.from_url(
                redis_url(), decode_responses=True, client_name=f"{prefix}{name}-{secrets.token_hex(3)}"
            )
            cache = AgentCache(10, 900)
            metrics = Metrics()
            bus = RedisInvalidationBus(
                client,
                keys.invalidations,
                cache,
                sent=metrics.invalidations_sent,
                received=metrics.invalidations_received,
            )
            made.append(Replica(name, client, cache, bus, metrics))
        try:
            for replica in made:
                await replica.bus.start()
                await asyncio.wait_for(replica.bus.subscribed.wait(), WAIT_SECONDS)
            yield made[0], made[1]
        finally:
            for replica in made:
                await replica.bus.aclose()
                await replica.client.aclose()


async def test_one_users_invalidation_drops_that_pair_on_the_other_replica_only(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    fill(a.cache, ("u1", "assistant"))
    fill(b.cache, ("u1", "assistant"), ("u2", "assistant"), ("u1", "helper"))
    a.bus.publish("u1", "assistant")
    await a.bus.settle()
    await until(lambda: ("u1", "assistant") not in b.cache, "b dropped (u1, assistant)")
    assert set(b.cache.keys()) == {("u2", "assistant"), ("u1", "helper")}
    assert a.cache.keys() == [("u1", "assistant")], "a replica ignores its own messages"
    assert value(a.metrics, "chatserver_cache_invalidations_published_total") == 1
    assert value(b.metrics, "chatserver_cache_invalidations_received_total") == 1


async def test_an_agent_wide_invalidation_drops_every_users_copy_elsewhere(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    fill(b.cache, ("u1", "assistant"), ("u2", "assistant"), ("u1", "helper"))
    a.bus.publish(None, "assistant")
    await until(lambda: b.cache.keys() == [("u1", "helper")], "b dropped every assistant")


async def test_a_build_that_started_before_a_remote_invalidation_is_not_cached(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    generation = b.cache.generation(("u1", "assistant"))
    a.bus.publish("u1", "assistant")
    await until(lambda: b.cache.generation(("u1", "assistant")) != generation, "b stamped the pair")
    elsewhere = AgentCache(1, 900)
    fill(elsewhere, ("u1", "assistant"))
    built = elsewhere.get(("u1", "assistant"))
    assert built is not None
    assert b.cache.put(("u1", "assistant"), built, generation=generation) is False
    assert ("u1", "assistant") not in b.cache


async def test_malformed_messages_are_ignored_and_the_listener_goes_on(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    fill(b.cache, ("u1", "assistant"))
    async with redis_client() as raw:
        for garbage in (
            "not json",
            '{"origin": "x"}',
            "[1, 2]",
            '{"origin": "x", "user_id": 1, "agent_name": 2}',
        ):
            await raw.publish(b.bus._channel, garbage)
    a.bus.publish("u1", "assistant")
    await until(lambda: b.cache.keys() == [], "b applied the valid message after the bad ones")


async def test_a_dropped_subscription_resubscribes_and_forgets_the_whole_cache(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    fill(b.cache, ("u1", "assistant"), ("u2", "helper"))
    async with redis_client() as raw:
        name = await b.client.client_getname()
        listeners = [c for c in await raw.client_list() if c["name"] == name and c["cmd"] == "subscribe"]
        assert listeners, "b's subscription connection was not found"
        for client in listeners:
            await raw.client_kill_filter(_id=client["id"])
    await until(lambda: b.cache.keys() == [], "b forgot its cache on resubscribing")
    await asyncio.wait_for(b.bus.subscribed.wait(), WAIT_SECONDS)
    fill(b.cache, ("u1", "assistant"))
    a.bus.publish("u1", "assistant")
    await until(lambda: b.cache.keys() == [], "b receives invalidations again")
