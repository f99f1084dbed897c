"""Rate limits counted in the real Redis: shared by every replica, one window per user, expiring keys."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import pytest

from chatserver.errors import RateLimited
from chatserver.redis_bus import RedisKeys, RedisRateLimiter, connect
from tests.e2e.harness import free_port
from tests.support.redis import redis_client, redis_prefix, redis_url

pytestmark = pytest.mark.redis


@pytest.fixture
async def keys() -> AsyncIterator[RedisKeys]:
    with redis_prefix() as prefix:
        yield RedisKeys(prefix)


async def test_two_replicas_share_one_count_per_user(keys: RedisKeys) -> None:
    a_client, b_client = connect(redis_url(), timeout_seconds=2), connect(redis_url(), timeout_seconds=2)
    refused: list[str] = []
    a = RedisRateLimiter(a_client, keys, 5, on_refused=lambda: refused.append("a"))
    b = RedisRateLimiter(b_client, keys, 5, on_refused=lambda: refused.append("b"))
    try:
        for replica in (a, b, a, b, a):
            await replica.hit("alice")
        with pytest.raises(RateLimited) as on_b:
            await b.hit("alice")
        with pytest.raises(RateLimited):
            await a.hit("alice")
        await b.hit("bob")
    finally:
        await a_client.aclose()
        await b_client.aclose()
    assert 1 <= on_b.value.retry_after_seconds <= 60
    assert refused == ["b", "a"]


async def test_the_window_ends_and_its_key_expires(keys: RedisKeys) -> None:
    client = connect(redis_url(), timeout_seconds=2)
    limiter = RedisRateLimiter(client, keys, 1, window_seconds=2.0)
    try:
        await limiter.hit("alice")
        with pytest.raises(RateLimited) as caught:
            await limiter.hit("alice")
        async with redis_client() as raw:
            assert 0 < await raw.pttl(keys.rate("alice")) <= 2000
        deadline = time.monotonic() + 10
        while True:
            await asyncio.sleep(0.2)
            try:
                await limiter.hit("alice")
                break
            except RateLimited:
                assert time.monotonic() < deadline, "the window never ended"
    finally:
        await client.aclose()
    assert caught.value.retry_after_seconds in (1, 2)


async def test_keys_live_under_the_configured_prefix_and_name_no_user(keys: RedisKeys) -> None:
    client = connect(redis_url(), timeout_seconds=2)
    try:
        await RedisRateLimiter(client, keys, 10).hit("alice@example.com")
    finally:
        await client.aclose()
    async with redis_client() as raw:
        found = [key async for key in raw.scan_iter(match=f"{keys.prefix}*")]
    assert found == [keys.rate("alice@example.com")]
    assert "alice" not in found[0]


async def test_an_unreachable_redis_lets_requests_through_with_a_warning(
    keys: RedisKeys, caplog: pytest.LogCaptureFixture
) -> None:
    client = connect(f"redis://127.0.0.1:{free_port()}/0", timeout_seconds=1)
    try:
        with caplog.at_level(logging.WARNING, logger="chatserver.rate_limit"):
            for _ in range(3):
                await RedisRateLimiter(client, keys, 1).hit("alice")
    finally:
        await client.aclose()
    assert "Redis unavailable" in caplog.text
