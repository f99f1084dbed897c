"""A concurrent load driver: W workers, each on its own chat, driving POST {path} for N turns.

It runs on uvloop (the server's loop too), so the driver takes as little of the shared CPU as it can.

Workers start spread over ``ramp_seconds`` (one model latency in the latency scenario): started all
at once with an identical model latency, every worker would finish its turn in the same instant,
turn after turn, and the server would meet one burst of W turns per model latency instead of the
steady stream real users make. Throughput is turns over the time the workers ran, ramp excluded.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import uvloop

from benchmarks.common import token

T = TypeVar("T")


@dataclass
class LoadResult:
    turns: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    error_kinds: Counter[str] = field(default_factory=Counter)
    """HTTP status and error code (or transport error class) -> count."""
    ramp_seconds: float = 0.0

    @property
    def turns_per_second(self) -> float:
        running = self.seconds - self.ramp_seconds
        return self.turns / running if running > 0 else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else float("nan")


def run_on_uvloop(coro: Coroutine[Any, Any, T]) -> T:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def chat_ids(prefix: str, workers: int) -> list[str]:
    return [f"{prefix}-{w}" for w in range(workers)]


def user_of(worker: int, users: int) -> str:
    return f"bench-user-{worker % users}"


def _error_kind(response: httpx.Response) -> str:
    try:
        code = response.json().get("code", "")
    except ValueError:
        code = ""
    return f"{response.status_code} {code}".strip()


async def drive(
    url: str,
    *,
    path: str,
    agent: str,
    chats: list[str],
    users: int,
    turns: int,
    message: str,
    ramp_seconds: float = 0.0,
) -> LoadResult:
    """Send ``turns`` turns in total, spread over one worker per chat, started over ``ramp_seconds``."""
    workers = len(chats)
    headers = [{"Authorization": f"Bearer {token(user_of(w, users))}"} for w in range(workers)]
    # Idle connections expire before uvicorn's 5 s keep-alive does: with equal timeouts the server may
    # close a connection just as the client reuses it (httpx.ReadError, floor and chatserver alike).
    limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers, keepalive_expiry=2.0)
    latencies: list[float] = []
    kinds: Counter[str] = Counter()
    per_worker = [turns // workers + (1 if w < turns % workers else 0) for w in range(workers)]

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:

        async def worker(w: int) -> None:
            await asyncio.sleep(ramp_seconds * w / workers)
            for _ in range(per_worker[w]):
                body = {"agent_name": agent, "message": message, "session_id": chats[w]}
                started = time.perf_counter()
                try:
                    response = await client.post(path, json=body, headers=headers[w])
                except httpx.HTTPError as exc:
                    kinds[type(exc).__name__] += 1
                    continue
                if response.status_code == 200:
                    latencies.append((time.perf_counter() - started) * 1000)
                else:
                    kinds[_error_kind(response)] += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(workers)))
        elapsed = time.perf_counter() - started
    return LoadResult(
        turns=len(latencies),
        errors=sum(kinds.values()),
        seconds=elapsed,
        latencies_ms=latencies,
        error_kinds=kinds,
        ramp_seconds=ramp_seconds,
    )
