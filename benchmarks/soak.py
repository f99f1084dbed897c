"""Soak: `chatserver serve` under steady load for minutes; errors (target 0) and RSS (target: flat).

    python -m benchmarks.soak                          # 5 minutes at concurrency 50, SQLite
    python -m benchmarks.soak --db postgres --seconds 60 --concurrency 20

Each worker is a user of its own (cycling over ``--users``) chatting on one chat, then moving to a
new chat every ``CHAT_TURNS`` turns (so chats, messages, users and cached agents keep growing);
every fourth turn is streamed, and every tenth worker step reads the chat's messages back. The
server's resident memory is sampled every few seconds; the first sample after the warm-up (the
first fifth of the run, at most 30 s: pools, caches and allocator arenas fill up) is the baseline.
It exits 1 when there was any error or the final RSS is more than 10% above the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from benchmarks.common import Server, chatserver, token
from benchmarks.load import run_on_uvloop
from benchmarks.run import database

CHAT_TURNS = 20
STREAM_EVERY = 4
READ_EVERY = 10
SAMPLE_SECONDS = 5.0
MAX_WARMUP_SECONDS = 30.0
RSS_TOLERANCE = 0.10
REQUEST_TIMEOUT = 60.0
MAX_STEPS_PER_WORKER = 1_000_000
"""A bound on count as well as time, whatever the machine's speed."""


@dataclass
class Soak:
    url: str
    users: int
    deadline: float
    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    turns: int = 0
    reads: int = 0

    async def worker(self, client: httpx.AsyncClient, w: int) -> None:
        headers = {"Authorization": f"Bearer {token(f'soak-user-{w % self.users}')}"}
        for step in range(MAX_STEPS_PER_WORKER):
            if time.monotonic() >= self.deadline:
                return
            chat_id = f"soak-{w}-{step // CHAT_TURNS}"
            if step % READ_EVERY == READ_EVERY - 1:
                await self._call(client, "GET", f"/api/chats/{chat_id}/messages", headers, None)
                self.reads += 1
                continue
            path = "/api/chat/stream" if step % STREAM_EVERY == 0 else "/api/chat"
            body = {
                "agent_name": "assistant",
                "message": f"soak turn {step} of worker {w}",
                "session_id": chat_id,
            }
            if await self._call(client, "POST", path, headers, body):
                self.turns += 1

    async def _call(
        self, client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str], body: object
    ) -> bool:
        started = time.perf_counter()
        try:
            response = await client.request(method, path, headers=headers, json=body)
        except httpx.HTTPError as exc:
            self.errors[type(exc).__name__] += 1
            return False
        if response.status_code != 200 or (path.endswith("/stream") and "event: done" not in response.text):
            self.errors[f"{response.status_code} {path}"] += 1
            return False
        self.latencies_ms.append((time.perf_counter() - started) * 1000)
        return True


async def sample_rss(server: Server, until: float, samples: list[tuple[float, float]]) -> None:
    started = time.monotonic()
    while time.monotonic() < until:
        samples.append((time.monotonic() - started, server.usage().rss_mb))
        await asyncio.sleep(SAMPLE_SECONDS)
    samples.append((time.monotonic() - started, server.usage().rss_mb))


async def soak(
    server: Server, seconds: float, concurrency: int, users: int
) -> tuple[Soak, list[tuple[float, float]]]:
    deadline = time.monotonic() + seconds
    run = Soak(server.url, users, deadline)
    samples: list[tuple[float, float]] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=REQUEST_TIMEOUT) as client:
        await asyncio.gather(
            sample_rss(server, deadline, samples), *(run.worker(client, w) for w in range(concurrency))
        )
    return run, samples


@dataclass(frozen=True)
class Report:
    seconds: float
    turns: int
    reads: int
    errors: Counter[str]
    p50_ms: float
    p99_ms: float
    rss_start_mb: float
    rss_end_mb: float
    rss_peak_mb: float

    @property
    def rss_change(self) -> float:
        return (self.rss_end_mb - self.rss_start_mb) / self.rss_start_mb

    @property
    def passed(self) -> bool:
        return not self.errors and self.rss_change <= RSS_TOLERANCE

    def print(self, label: str) -> None:
        columns = {
            "seconds": f"{self.seconds:.0f}",
            "turns": str(self.turns),
            "turns/s": f"{self.turns / self.seconds:.1f}",
            "reads": str(self.reads),
            "errors": str(sum(self.errors.values())),
            "p50 ms": f"{self.p50_ms:.1f}",
            "p99 ms": f"{self.p99_ms:.1f}",
            "RSS start MB": f"{self.rss_start_mb:.1f}",
            "RSS end MB": f"{self.rss_end_mb:.1f}",
            "RSS peak MB": f"{self.rss_peak_mb:.1f}",
            "RSS change": f"{self.rss_change:+.1%}",
        }
        kinds = ", ".join(f"{kind}: {n}" for kind, n in self.errors.most_common()) or "none"
        print(f"\nsoak: {label}")
        print("| " + " | ".join(columns) + " |")
        print("|" + "---|" * len(columns))
        print("| " + " | ".join(columns.values()) + " |")
        print(f"errors: {kinds}")
        verdict = "met" if self.passed else "MISSED"
        print(f"targets (0 errors, RSS within {RSS_TOLERANCE:.0%} of its start): {verdict}")


def report(run: Soak, samples: list[tuple[float, float]], seconds: float) -> Report:
    warmup = min(MAX_WARMUP_SECONDS, seconds / 5)
    baseline = next((rss for at, rss in samples if at >= warmup), samples[-1][1])
    ordered = sorted(run.latencies_ms) or [float("nan")]
    return Report(
        seconds=seconds,
        turns=run.turns,
        reads=run.reads,
        errors=run.errors,
        p50_ms=statistics.median(ordered),
        p99_ms=ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        rss_start_mb=baseline,
        rss_end_mb=samples[-1][1],
        rss_peak_mb=max(rss for _, rss in samples),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0, help="how long to load the server")
    parser.add_argument("--concurrency", type=int, default=50, help="workers sending turns at once")
    parser.add_argument("--users", type=int, default=25, help="distinct users the workers cycle over")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--echo-latency-ms", type=int, default=20, help="simulated model latency")
    args = parser.parse_args()
    if not 1 <= args.concurrency <= 1000 or not 1 <= args.seconds <= 3600:
        parser.error("--concurrency is 1..1000 and --seconds 1..3600")
    extra = {"CHATSERVER_ECHO_LATENCY_MS": str(args.echo_latency_ms), "CHATSERVER_LOG_LEVEL": "WARNING"}
    with (
        tempfile.TemporaryDirectory() as tmp,
        database(args.db, Path(tmp)) as url,
        chatserver(url, Path(tmp), **extra) as server,
    ):
        run, samples = run_on_uvloop(soak(server, args.seconds, args.concurrency, args.users))
    result = report(run, samples, args.seconds)
    result.print(f"{args.db}, concurrency {args.concurrency}, echo latency {args.echo_latency_ms} ms")
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
