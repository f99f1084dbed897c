"""A concurrent load driver: W workers, each on its own chat, driving POST {path} for N turns."""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass

import httpx

from benchmarks.common import token


@dataclass
class LoadResult:
    turns: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def turns_per_second(self) -> float:
        return self.turns / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else float("nan")


def chat_ids(prefix: str, workers: int) -> list[str]:
    return [f"{prefix}-{w}" for w in range(workers)]


def user_of(worker: int, users: int) -> str:
    return f"bench-user-{worker % users}"


async def drive(
    url: str, *, path: str, agent: str, chats: list[str], users: int, turns: int, message: str
) -> LoadResult:
    """Send ``turns`` turns in total, spread over one worker per chat, all at once."""
    workers = len(chats)
    headers = [{"Authorization": f"Bearer {token(user_of(w, users))}"} for w in range(workers)]
    limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
    latencies: list[float] = []
    errors = 0
    per_worker = [turns // workers + (1 if w < turns % workers else 0) for w in range(workers)]

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:

        async def worker(w: int) -> None:
            nonlocal errors
            for _ in range(per_worker[w]):
                body = {"agent_name": agent, "message": message, "session_id": chats[w]}
                started = time.perf_counter()
                try:
                    response = await client.post(path, json=body, headers=headers[w])
                    ok = response.status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    latencies.append((time.perf_counter() - started) * 1000)
                else:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(workers)))
        elapsed = time.perf_counter() - started
    return LoadResult(turns=len(latencies), errors=errors, seconds=elapsed, latencies_ms=latencies)
