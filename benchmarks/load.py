"""A concurrent load driver: W workers, each sending its own requests (a chat each) for N turns in all.

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
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import uvloop

from benchmarks.common import token
from benchmarks.peers.contender import Turn

T = TypeVar("T")
Check = Callable[[httpx.Response], str | None]
"""A turn's response -> ``None`` if it is right, else what went wrong (an error kind)."""


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


def status_check(response: httpx.Response) -> str | None:
    """A turn failed unless its status is 200 (the error kind otherwise)."""
    return None if response.status_code == 200 else _error_kind(response)


def answer_check(answer_of: Callable[[httpx.Response], str], expected: str) -> Check:
    """A turn failed unless its status is 200 and its answer is exactly ``expected``."""

    def check(response: httpx.Response) -> str | None:
        if response.status_code != 200:
            return _error_kind(response)
        try:
            answer = answer_of(response)
        except (ValueError, KeyError, TypeError):
            return "unreadable answer"
        return None if answer == expected else "wrong answer"

    return check


async def drive_turns(
    client: httpx.AsyncClient,
    requests: list[Callable[[int], tuple[Turn, Check]]],
    *,
    turns: int,
    ramp_seconds: float = 0.0,
    deadline_seconds: float | None = None,
) -> LoadResult:
    """Send ``turns`` turns in total, spread over one worker per entry of ``requests`` (whose
    ``requests[w](i)`` is worker w's i-th request and how to check its response), the workers
    started over ``ramp_seconds``. Past ``deadline_seconds`` no worker starts another turn: a slow
    server is measured on the turns it answered by then."""
    workers = len(requests)
    latencies: list[float] = []
    kinds: Counter[str] = Counter()
    per_worker = [turns // workers + (1 if w < turns % workers else 0) for w in range(workers)]
    began = time.perf_counter()

    async def worker(w: int) -> None:
        await asyncio.sleep(ramp_seconds * w / workers)
        for i in range(per_worker[w]):
            if deadline_seconds is not None and time.perf_counter() - began > deadline_seconds:
                return
            turn, check = requests[w](i)
            started = time.perf_counter()
            try:
                response = await client.post(turn.path, json=turn.json, data=turn.form, headers=turn.headers)
            except httpx.HTTPError as exc:
                kinds[type(exc).__name__] += 1
                continue
            latency_ms = (time.perf_counter() - started) * 1000
            failure = check(response)
            if failure is None:
                latencies.append(latency_ms)
            else:
                kinds[failure] += 1

    await asyncio.gather(*(worker(w) for w in range(workers)))
    elapsed = time.perf_counter() - began
    return LoadResult(
        turns=len(latencies),
        errors=sum(kinds.values()),
        seconds=elapsed,
        latencies_ms=latencies,
        error_kinds=kinds,
        ramp_seconds=ramp_seconds,
    )


def load_client(url: str, workers: int) -> httpx.AsyncClient:
    # Idle connections expire before uvicorn's 5 s keep-alive does: with equal timeouts the server may
    # close a connection just as the client reuses it (httpx.ReadError, floor and chatserver alike).
    limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers, keepalive_expiry=2.0)
    return httpx.AsyncClient(base_url=url, limits=limits, timeout=120)


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
    """chatserver's ``POST {path}`` (seed-compatible body): one worker per chat."""

    def requests_of(w: int) -> Callable[[int], tuple[Turn, Check]]:
        headers = {"Authorization": f"Bearer {token(user_of(w, users))}"}
        body = {"agent_name": agent, "message": message, "session_id": chats[w]}
        request = (Turn(path, headers, json=body), status_check)
        return lambda _i: request

    async with load_client(url, len(chats)) as client:
        return await drive_turns(
            client, [requests_of(w) for w in range(len(chats))], turns=turns, ramp_seconds=ramp_seconds
        )
