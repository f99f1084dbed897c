"""RedisGuard: a failing or silent Redis costs one bounded wait per interval, then one trial at a time."""

from __future__ import annotations

import asyncio

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from chatserver.redis_bus.guard import RedisGuard, RedisUnavailable


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Redis:
    """Stands in for the server at the process edge: answers, refuses, or never answers."""

    def __init__(self) -> None:
        self.mode = "answer"
        self.calls = 0

    async def ping(self) -> bool:
        self.calls += 1
        if self.mode == "refuse":
            raise RedisConnectionError("refused")
        if self.mode == "stall":
            await asyncio.sleep(60)
        if self.mode == "slow":
            await asyncio.sleep(0.05)
        return True


async def test_a_silent_redis_costs_one_timeout_then_calls_are_skipped_until_the_interval_ends() -> None:
    clock, redis = Clock(), Redis()
    guard = RedisGuard(0.05, 5.0, clock=clock)
    redis.mode = "stall"
    with pytest.raises(RedisUnavailable) as first:
        await asyncio.wait_for(guard.call(redis.ping, "ping"), timeout=2)
    skipped = []
    for _ in range(10):
        with pytest.raises(RedisUnavailable) as caught:
            await guard.call(redis.ping, "ping")
        skipped.append(caught.value.skipped)
    assert not first.value.skipped and skipped == [True] * 10 and redis.calls == 1
    assert guard.is_open


async def test_after_the_interval_one_call_tries_while_the_others_are_still_skipped() -> None:
    clock, redis = Clock(), Redis()
    guard = RedisGuard(0.5, 5.0, clock=clock)
    redis.mode = "refuse"
    with pytest.raises(RedisUnavailable):
        await guard.call(redis.ping, "ping")
    clock.now += 5.0
    redis.mode = "slow"
    trial = asyncio.create_task(guard.call(redis.ping, "ping"))
    await asyncio.sleep(0)  # the trial is under way
    with pytest.raises(RedisUnavailable) as during_trial:
        await guard.call(redis.ping, "ping")
    assert await trial is True and during_trial.value.skipped
    assert not guard.is_open and await guard.call(redis.ping, "ping") is True
    assert redis.calls == 3


async def test_a_failed_trial_keeps_the_circuit_open_for_another_interval() -> None:
    clock, redis = Clock(), Redis()
    guard = RedisGuard(0.5, 5.0, clock=clock)
    redis.mode = "refuse"
    for _ in range(2):
        with pytest.raises(RedisUnavailable) as caught:
            await guard.call(redis.ping, "ping")
        assert not caught.value.skipped
        clock.now += 4.9
        with pytest.raises(RedisUnavailable) as caught:
            await guard.call(redis.ping, "ping")
        assert caught.value.skipped
        clock.now += 0.1
    assert redis.calls == 2
