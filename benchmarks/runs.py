"""Runs under load: reattaching to a run's events, and many streams held open by slow clients.

    python -m benchmarks.runs                          # SQLite and PostgreSQL
    python -m benchmarks.runs --db postgres --streams 1000

reattach: each of 300 reattaches (at concurrency 1 and 16) opens `GET /api/runs/{id}/events` with
the `Last-Event-ID` of a mid-answer event of a finished 40-word answer, and times the first replayed
event (HTTP, auth, the run's record and its log).

streams: opens N streams at once (`POST /api/chat/stream`, one chat each, 25 users) on a model that
answers after 5 s, each read by a client that sleeps 50 ms between reads; prints the server's RSS
before and at its peak, the streams that did not end with `done`, and how long the last one took.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx

from benchmarks.common import Server, chatserver, fresh_database, token
from benchmarks.load import run_on_uvloop

WORDS = " ".join(f"w{i}" for i in range(40))
REATTACHES = 300
SLOW_READ_SECONDS = 0.05
STREAM_LATENCY_MS = 5000
USERS = 25


def _client(server: Server, user: str, timeout: float = 120) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=2000, max_keepalive_connections=2000)
    headers = {"Authorization": f"Bearer {token(user)}"}
    return httpx.AsyncClient(base_url=server.url, headers=headers, timeout=timeout, limits=limits)


async def _finished_run(client: httpx.AsyncClient) -> tuple[str, str]:
    """A finished run and the id of its middle event."""
    body = {"agent_name": "assistant", "message": WORDS, "session_id": str(uuid.uuid4())}
    ids: list[str] = []
    run_id = ""
    async with client.stream("POST", "/api/chat/stream", json=body) as response:
        async for line in response.aiter_lines():
            if line.startswith("id:"):
                ids.append(line[3:].strip())
            elif line.startswith("data:") and not run_id:
                run_id = line.split('"run_id": "', 1)[1].split('"', 1)[0]
    return run_id, ids[len(ids) // 2]


async def _reattach(client: httpx.AsyncClient, run_id: str, after: str) -> float:
    started = time.perf_counter()
    headers = {"Last-Event-ID": after}
    async with client.stream("GET", f"/api/runs/{run_id}/events", headers=headers) as response:
        async for line in response.aiter_lines():
            if line.startswith("data:"):
                return (time.perf_counter() - started) * 1000
    raise RuntimeError("the reattached stream sent nothing")


async def reattach(server: Server, concurrency: int) -> list[float]:
    async with _client(server, "reattacher") as client:
        runs = [await _finished_run(client) for _ in range(concurrency)]
        for run_id, after in runs:
            await _reattach(client, run_id, after)  # warm-up
        timings: list[float] = []
        for _ in range(REATTACHES // concurrency):
            timings += await asyncio.gather(*[_reattach(client, run_id, after) for run_id, after in runs])
    return timings


async def _slow_stream(client: httpx.AsyncClient) -> str:
    message = f"/sleep {STREAM_LATENCY_MS} slow"
    body = {"agent_name": "assistant", "message": message, "session_id": str(uuid.uuid4())}
    last = "nothing"
    async with client.stream("POST", "/api/chat/stream", json=body) as response:
        if response.status_code != 200:
            return f"HTTP {response.status_code}"
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                last = line[len("event: ") :]
            await asyncio.sleep(SLOW_READ_SECONDS)
    return last


async def streams(server: Server, count: int) -> tuple[float, float, Counter[str], float]:
    before = server.usage().rss_mb
    clients = [_client(server, f"streamer-{n}") for n in range(USERS)]
    started = time.perf_counter()
    try:
        outcomes = await asyncio.gather(
            *[_slow_stream(clients[n % USERS]) for n in range(count)], return_exceptions=True
        )
    finally:
        for client in clients:
            await client.aclose()
    failed = Counter(
        outcome if isinstance(outcome, str) else type(outcome).__name__
        for outcome in outcomes
        if outcome != "done"
    )
    return before, server.usage().peak_rss_mb, failed, time.perf_counter() - started


def _percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


def measure(db: str, directory: Path, stream_count: int) -> None:
    async def database() -> None:
        async with fresh_database(db, directory) as url:
            extra = {"CHATSERVER_LOG_LEVEL": "WARNING", "CHATSERVER_MODEL_TIMEOUT_SECONDS": "60"}
            with chatserver(url, directory, **extra) as server:
                for concurrency in (1, 16):
                    timings = await reattach(server, concurrency)
                    p50, p99 = _percentile(timings, 50), _percentile(timings, 99)
                    result = f"first replayed event p50 {p50:.2f} ms, p99 {p99:.2f} ms"
                    print(f"| reattach | {db} | c={concurrency} | {result} |")
                before, peak, failed, seconds = await streams(server, stream_count)
                not_done = ", ".join(f"{kind} {n}" for kind, n in failed.items()) or "none"
                print(
                    f"| streams | {db} | {stream_count} held open | RSS {before:.0f} -> peak {peak:.0f} MB, "
                    f"not ended by done: {not_done}; all ended in {seconds:.1f} s |"
                )

    run_on_uvloop(database())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=["sqlite", "postgres"], action="append")
    parser.add_argument("--streams", type=int, default=1000)
    args = parser.parse_args()
    print("| scenario | db | load | result |\n|---|---|---|---|")
    for db in args.db or ["sqlite", "postgres"]:
        with tempfile.TemporaryDirectory() as tmp:
            measure(db, Path(tmp), args.streams)


if __name__ == "__main__":
    main()
