"""Rate limiting in one process (no Redis): a one-minute window per user from its first request."""

from __future__ import annotations

import pytest

from chatserver.errors import RateLimited
from chatserver.redis_bus.rate_limit import MemoryRateLimiter, Unlimited


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_requests_past_the_limit_are_refused_with_the_seconds_left_in_the_window() -> None:
    ticks = Ticks()
    refused: list[int] = []
    limiter = MemoryRateLimiter(3, clock=ticks, on_refused=lambda: refused.append(1))
    for _ in range(3):
        await limiter.hit("alice")
    ticks.now += 20.2
    with pytest.raises(RateLimited) as caught:
        await limiter.hit("alice")
    assert caught.value.retry_after_seconds == 40
    assert refused == [1]


async def test_each_user_has_a_window_of_their_own() -> None:
    limiter = MemoryRateLimiter(1, clock=Ticks())
    await limiter.hit("alice")
    await limiter.hit("bob")
    with pytest.raises(RateLimited):
        await limiter.hit("alice")


async def test_a_new_window_opens_once_the_old_one_has_passed() -> None:
    ticks = Ticks()
    limiter = MemoryRateLimiter(2, clock=ticks)
    for _ in range(2):
        await limiter.hit("alice")
    with pytest.raises(RateLimited):
        await limiter.hit("alice")
    ticks.now += 60
    await limiter.hit("alice")
    await limiter.hit("alice")
    with pytest.raises(RateLimited) as caught:
        await limiter.hit("alice")
    assert caught.value.retry_after_seconds == 60


async def test_retry_after_is_at_least_one_second() -> None:
    ticks = Ticks()
    limiter = MemoryRateLimiter(1, clock=ticks)
    await limiter.hit("alice")
    ticks.now += 59.99
    with pytest.raises(RateLimited) as caught:
        await limiter.hit("alice")
    assert caught.value.retry_after_seconds == 1


async def test_without_a_limit_nothing_is_refused() -> None:
    limiter = Unlimited()
    for _ in range(1000):
        await limiter.hit("alice")
