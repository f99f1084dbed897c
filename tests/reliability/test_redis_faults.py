"""A stalled or cut Redis (a TCP proxy between server and Redis) costs one timeout, not one per request.

Rate limiting is on, so every authenticated request asks Redis. A stall answers nothing: each
request-path call is bounded by ``CHATSERVER_REDIS_TIMEOUT_SECONDS``, and the first timeout opens a
circuit for ``CHATSERVER_REDIS_CIRCUIT_SECONDS`` during which requests skip Redis (the limiter lets
them through). Readiness stays 200 and names Redis as degraded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import live_server
from tests.e2e.harness import LiveServer
from tests.e2e.test_operations import metric_samples, sample, until_ready
from tests.support.redis import redis_prefix
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.redis

TIMEOUT = 0.4
CIRCUIT = 3.0
REQUESTS = 20
OVERHEAD = 0.5
"""What a request may take beyond Redis on a loaded two-core machine, generously."""


@pytest.fixture
def stallable_redis(tmp_path: Path) -> Iterator[tuple[LiveServer, TcpProxy]]:
    with redis_prefix() as prefix, TcpProxy("127.0.0.1", 6379) as proxy:
        overrides = {
            "redis_url": f"redis://127.0.0.1:{proxy.port}/0",
            "redis_prefix": prefix,
            "redis_timeout_seconds": TIMEOUT,
            "redis_circuit_seconds": CIRCUIT,
            "rate_limit_per_minute": 10_000,
        }
        with live_server("sqlite", tmp_path, **overrides) as server:
            yield server, proxy


async def timed(client: httpx.AsyncClient, path: str) -> tuple[int, float]:
    started = time.monotonic()
    response = await client.get(path)
    return response.status_code, time.monotonic() - started


async def circuit_open(client: httpx.AsyncClient) -> float:
    return sample(metric_samples((await client.get("/metrics")).text), "chatserver_redis_circuit_open")


@pytest.mark.parametrize("fault", ["stall", "cut"])
async def test_requests_during_a_redis_fault_cost_one_timeout_between_them(
    stallable_redis: tuple[LiveServer, TcpProxy], fault: str
) -> None:
    server, proxy = stallable_redis
    async with server.client("stalled", timeout=10.0) as client:
        assert (await timed(client, "/api/chats"))[0] == 200
        await asyncio.to_thread(proxy.stall if fault == "stall" else proxy.cut)
        window_started = time.monotonic()
        first = await timed(client, "/api/chats")
        rest = [await timed(client, "/api/chats") for _ in range(REQUESTS)]
        window = time.monotonic() - window_started
        opened = await circuit_open(client)
    assert first[0] == 200 and first[1] < TIMEOUT + OVERHEAD, first
    assert [status for status, _ in rest] == [200] * REQUESTS
    assert window < CIRCUIT, "all within one circuit interval"
    assert sum(seconds for _, seconds in rest) < TIMEOUT + OVERHEAD, rest
    assert opened == 1


async def test_the_circuit_closes_once_redis_answers_again(
    stallable_redis: tuple[LiveServer, TcpProxy],
) -> None:
    server, proxy = stallable_redis
    async with server.client("recovering", timeout=10.0) as client:
        await asyncio.to_thread(proxy.stall)
        await timed(client, "/api/chats")
        assert await circuit_open(client) == 1
        await asyncio.to_thread(proxy.restore)
        deadline = time.monotonic() + CIRCUIT + 10
        while await circuit_open(client) == 1:
            assert time.monotonic() < deadline, "the circuit never closed"
            await timed(client, "/api/chats")
            await asyncio.sleep(0.2)
        limited = sample(
            metric_samples((await client.get("/metrics")).text), "chatserver_redis_calls_skipped_total"
        )
    assert limited >= 1


async def test_readiness_stays_200_naming_redis_degraded_while_it_is_stalled(
    stallable_redis: tuple[LiveServer, TcpProxy],
) -> None:
    server, proxy = stallable_redis
    async with server.raw_client() as client:
        await asyncio.to_thread(proxy.stall)
        status, seconds = await timed(client, "/readyz")
        body = (await client.get("/readyz")).json()
        await asyncio.to_thread(proxy.restore)
        recovered = await until_ready(client, 200)
    assert status == 200 and seconds < TIMEOUT + OVERHEAD
    assert body["status"] == "ready" and body["failing"] == [] and body["degraded"] == ["redis"]
    assert body["checks"] == {"database": "ok", "migrations": "ok", "redis": "degraded"}
    assert recovered["checks"]["redis"] in ("ok", "degraded")
