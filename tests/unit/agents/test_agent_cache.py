"""The executor cache: LRU, TTL, invalidation, stale puts and coalesced builds."""

from __future__ import annotations

import asyncio

import pytest

from chatserver.agents.cache import AgentCache
from chatserver.agents.factory import AgentFactory
from chatserver.agents.types import BuiltAgent
from tests.unit.agents.helpers import FakeClock, agent_config


@pytest.fixture
def agents(factory: AgentFactory) -> dict[str, BuiltAgent]:
    return {name: factory.build(agent_config(name), []) for name in ("a", "b", "c", "d")}


def cache_of(clock: FakeClock, *, size: int = 10, ttl: float = 60) -> AgentCache:
    return AgentCache(size, ttl, clock)


class TestLookups:
    def test_a_stored_agent_is_a_hit_and_an_absent_one_a_miss(
        self, clock: FakeClock, agents: dict[str, BuiltAgent]
    ) -> None:
        cache = cache_of(clock)
        cache.put(("alice", "a"), agents["a"])
        assert cache.get(("alice", "a")) is agents["a"]
        assert cache.get(("bob", "a")) is None
        assert (cache.hits, cache.misses, cache.evictions) == (1, 1, 0)
        assert len(cache) == 1 and cache.keys() == [("alice", "a")]


class TestLeastRecentlyUsed:
    def test_the_least_recently_used_entry_is_evicted_when_full(
        self, clock: FakeClock, agents: dict[str, BuiltAgent]
    ) -> None:
        cache = cache_of(clock, size=2)
        cache.put(("u", "a"), agents["a"])
        cache.put(("u", "b"), agents["b"])
        cache.get(("u", "a"))  # a is now the most recently used
        cache.put(("u", "c"), agents["c"])
        assert cache.keys() == [("u", "a"), ("u", "c")]
        assert cache.evictions == 1

    def test_putting_an_existing_key_refreshes_it(
        self, clock: FakeClock, agents: dict[str, BuiltAgent]
    ) -> None:
        cache = cache_of(clock, size=2)
        cache.put(("u", "a"), agents["a"])
        cache.put(("u", "b"), agents["b"])
        cache.put(("u", "a"), agents["c"])
        cache.put(("u", "d"), agents["d"])
        assert cache.keys() == [("u", "a"), ("u", "d")]
        assert cache.get(("u", "a")) is agents["c"]


class TestTimeToLive:
    def test_an_entry_expires_after_the_ttl(self, clock: FakeClock, agents: dict[str, BuiltAgent]) -> None:
        cache = cache_of(clock, ttl=60)
        cache.put(("u", "a"), agents["a"])
        clock.advance(59)
        assert cache.get(("u", "a")) is agents["a"]
        clock.advance(1)
        assert cache.get(("u", "a")) is None
        assert len(cache) == 0 and cache.evictions == 1

    def test_purge_removes_only_expired_entries(
        self, clock: FakeClock, agents: dict[str, BuiltAgent]
    ) -> None:
        cache = cache_of(clock, ttl=60)
        cache.put(("u", "a"), agents["a"])
        clock.advance(30)
        cache.put(("u", "b"), agents["b"])
        clock.advance(30)
        assert cache.purge_expired() == 1
        assert cache.keys() == [("u", "b")]

    def test_invalid_bounds_are_refused(self, clock: FakeClock) -> None:
        with pytest.raises(ValueError):
            AgentCache(0, 60, clock)
        with pytest.raises(ValueError):
            AgentCache(1, 0, clock)


class TestInvalidation:
    def test_invalidating_one_pair_leaves_the_others(
        self, clock: FakeClock, agents: dict[str, BuiltAgent]
    ) -> None:
        cache = cache_of(clock)
        for key in [("alice", "a"), ("alice", "b"), ("bob", "a")]:
            cache.put(key, agents[key[1]])
        assert cache.invalidate("alice", "a") is True
        assert cache.keys() == [("alice", "b"), ("bob", "a")]
        assert cache.invalidate("alice", "a") is False

    def test_invalidating_an_agent_drops_it_for_every_user(
        self, clock: FakeClock, agents: dict[str, BuiltAgent]
    ) -> None:
        cache = cache_of(clock)
        for key in [("alice", "a"), ("alice", "b"), ("bob", "a")]:
            cache.put(key, agents[key[1]])
        assert cache.invalidate_agent("a") == 2
        assert cache.keys() == [("alice", "b")]
        assert cache.invalidations == 2

    def test_a_put_built_before_an_invalidation_is_ignored(
        self, clock: FakeClock, agents: dict[str, BuiltAgent]
    ) -> None:
        cache = cache_of(clock)
        generation = cache.generation(("alice", "a"))
        cache.invalidate("alice", "a")  # the customization changed while we were building
        assert cache.put(("alice", "a"), agents["a"], generation=generation) is False
        assert cache.get(("alice", "a")) is None
        assert cache.put(("alice", "a"), agents["a"], generation=cache.generation(("alice", "a"))) is True

    def test_an_agent_wide_invalidation_also_makes_earlier_builds_stale(
        self, clock: FakeClock, agents: dict[str, BuiltAgent]
    ) -> None:
        cache = cache_of(clock)
        generation = cache.generation(("alice", "a"))
        other = cache.generation(("alice", "b"))
        cache.invalidate_agent("a")
        assert cache.put(("alice", "a"), agents["a"], generation=generation) is False
        assert cache.put(("alice", "b"), agents["b"], generation=other) is True

    def test_an_invalidation_of_another_pair_does_not_make_a_build_stale(
        self, clock: FakeClock, agents: dict[str, BuiltAgent]
    ) -> None:
        cache = cache_of(clock)
        generation = cache.generation(("alice", "a"))
        cache.invalidate("bob", "a")
        assert cache.put(("alice", "a"), agents["a"], generation=generation) is True


class TestInactiveEviction:
    def test_pairs_without_an_active_session_are_evicted(
        self, clock: FakeClock, agents: dict[str, BuiltAgent]
    ) -> None:
        cache = cache_of(clock)
        for key in [("alice", "a"), ("alice", "b"), ("bob", "a")]:
            cache.put(key, agents[key[1]])
        assert cache.evict_inactive({("alice", "b"), ("carol", "c")}) == 2
        assert cache.keys() == [("alice", "b")]
        assert cache.evictions == 2


class TestGetOrBuild:
    async def test_concurrent_misses_for_one_key_build_once(
        self, clock: FakeClock, agents: dict[str, BuiltAgent]
    ) -> None:
        cache = cache_of(clock)
        builds = 0

        async def build() -> BuiltAgent:
            nonlocal builds
            builds += 1
            await asyncio.sleep(0.02)
            return agents["a"]

        results = await asyncio.gather(*(cache.get_or_build(("u", "a"), build) for _ in range(5)))
        assert builds == 1
        assert all(agent is agents["a"] and not hit for agent, hit in results)
        assert await cache.get_or_build(("u", "a"), build) == (agents["a"], True)

    async def test_a_failed_build_fails_every_waiter_and_is_retried_next_time(
        self, clock: FakeClock, agents: dict[str, BuiltAgent]
    ) -> None:
        cache = cache_of(clock)
        attempts = 0

        async def build() -> BuiltAgent:
            nonlocal attempts
            attempts += 1
            await asyncio.sleep(0.01)
            if attempts == 1:
                raise LookupError("agent not found")
            return agents["a"]

        results = await asyncio.gather(
            *(cache.get_or_build(("u", "a"), build) for _ in range(3)), return_exceptions=True
        )
        assert all(isinstance(result, LookupError) for result in results)
        assert await cache.get_or_build(("u", "a"), build) == (agents["a"], False)
        assert attempts == 2

    async def test_a_build_running_during_an_invalidation_is_not_cached_nor_joined(
        self, clock: FakeClock, agents: dict[str, BuiltAgent]
    ) -> None:
        cache = cache_of(clock)
        release = asyncio.Event()

        async def stale_build() -> BuiltAgent:
            await release.wait()
            return agents["a"]

        async def fresh_build() -> BuiltAgent:
            return agents["b"]

        stale = asyncio.create_task(cache.get_or_build(("u", "a"), stale_build))
        await asyncio.sleep(0)
        cache.invalidate("u", "a")
        assert await cache.get_or_build(("u", "a"), fresh_build) == (agents["b"], False)
        release.set()
        assert await stale == (agents["a"], False)
        assert cache.get(("u", "a")) is agents["b"]

    async def test_a_cancelled_waiter_does_not_cancel_the_build_for_the_others(
        self, clock: FakeClock, agents: dict[str, BuiltAgent]
    ) -> None:
        cache = cache_of(clock)

        async def build() -> BuiltAgent:
            await asyncio.sleep(0.02)
            return agents["a"]

        first = asyncio.create_task(cache.get_or_build(("u", "a"), build))
        second = asyncio.create_task(cache.get_or_build(("u", "a"), build))
        await asyncio.sleep(0)
        first.cancel()
        assert await second == (agents["a"], False)
        with pytest.raises(asyncio.CancelledError):
            await first
