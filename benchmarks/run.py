"""chatserver benchmarks: start the server as a user would, load it, print one table per run.

    python -m benchmarks.run                      # every scenario, SQLite and PostgreSQL, 3 runs
    python -m benchmarks.run --db postgres --runs 1 --scenario zero

Scenarios: zero (no model latency; concurrency 1, 16, 64), long (the same with 10,000 earlier
messages in every chat), floor (a bare FastAPI route doing one turn's database work), latency
(echo latency 1 s at concurrency 128 and 1,000), cache (agent build vs cache hit; 1,000 agents).
With --trace the server exports its spans over OTLP/HTTP (to a sink in this process) and the
scenarios are named "traced".
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from collections import defaultdict
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from benchmarks.agent_cache import measure_agent_cache
from benchmarks.common import REPO, Server, chatserver, free_port, fresh_database, otlp_sink, server_process
from benchmarks.load import LoadResult, chat_ids, drive, run_on_uvloop, user_of
from benchmarks.seed import seed_long_chats

ZERO_CONCURRENCY = (1, 16, 64)
TURNS = {1: 400, 16: 1600, 64: 3200}
USERS = 50
ECHO_LATENCY_S = 1.0
LATENCY_TURNS_PER_CHAT = {128: 8, 1000: 3}
WARMUP_TURNS_PER_CHAT = 2
MIN_WARMUP_TURNS = 50
LONG_MESSAGES = 10_000


@dataclass
class Row:
    scenario: str
    db: str
    concurrency: int
    turns_per_s: float
    p50: float
    p95: float
    p99: float
    errors: int
    cpu_ms_per_turn: float
    peak_rss_mb: float


def measure(
    server: Server,
    scenario: str,
    db: str,
    concurrency: int,
    chats: list[str],
    turns: int,
    *,
    path: str = "/api/chat",
    ramp_seconds: float = 0.0,
) -> Row:
    def load(n: int) -> LoadResult:
        return run_on_uvloop(
            drive(
                server.url,
                path=path,
                agent="assistant",
                chats=chats,
                users=USERS,
                turns=n,
                message="hello",
                ramp_seconds=ramp_seconds,
            )
        )

    # Excluded from the numbers: each chat's first turn (user provisioning, chat creation, agent
    # build) and enough turns to fill the database pool and warm every code path.
    load(max(WARMUP_TURNS_PER_CHAT * len(chats), MIN_WARMUP_TURNS))
    before = server.usage()
    result = load(turns)
    after = server.usage()
    if result.errors:
        kinds = ", ".join(f"{kind}: {n}" for kind, n in result.error_kinds.most_common())
        print(f"  {scenario} {db} c={concurrency}: {result.errors} errors ({kinds})", file=sys.stderr)
    cpu_ms = (after.cpu_seconds - before.cpu_seconds) * 1000 / max(result.turns, 1)
    return Row(
        scenario,
        db,
        concurrency,
        result.turns_per_second,
        result.p50,
        result.percentile(0.95),
        result.percentile(0.99),
        result.errors,
        cpu_ms,
        after.peak_rss_mb,
    )


def floor_server(database_url: str, directory: Path) -> AbstractContextManager[Server]:
    port = free_port()
    env = {"CHATSERVER_DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"}
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "benchmarks.floor_app:app",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    return server_process(argv, env, port, REPO, directory)


def zero_long_floor(
    db: str, directory: Path, scenarios: set[str], levels: Levels, env: dict[str, str]
) -> list[Row]:
    rows: list[Row] = []
    suffix = " traced" if env else ""
    long_chats = {c: chat_ids(f"long{c}", c) for c in levels.concurrency}
    short_chats = {c: chat_ids(f"short{c}", c) for c in levels.concurrency}
    with tempfile.TemporaryDirectory() as tmp, database(db, Path(tmp)) as url:
        if "long" in scenarios:
            owned = [
                (chat, user_of(w, USERS)) for c in levels.concurrency for w, chat in enumerate(long_chats[c])
            ]
            asyncio.run(seed_long_chats(url, owned, messages=LONG_MESSAGES))
        with chatserver(url, directory, **env) as server:
            for c in levels.concurrency:
                if "zero" in scenarios or "floor" in scenarios:
                    rows.append(measure(server, f"zero{suffix}", db, c, short_chats[c], levels.turns(c)))
                if "long" in scenarios:
                    rows.append(measure(server, f"long{suffix}", db, c, long_chats[c], levels.turns(c)))
        if "floor" in scenarios:
            with floor_server(url, directory) as floor:
                for c in levels.concurrency:
                    rows.append(
                        measure(floor, "floor", db, c, short_chats[c], levels.turns(c), path="/floor")
                    )
    return rows


def latency(db: str, directory: Path, levels: tuple[int, ...], env: dict[str, str]) -> list[Row]:
    """Echo latency 1 s, default settings (database pool included), one server for every level."""
    rows = []
    env = {**env, "CHATSERVER_ECHO_LATENCY_MS": str(int(ECHO_LATENCY_S * 1000))}
    with (
        tempfile.TemporaryDirectory() as tmp,
        database(db, Path(tmp)) as url,
        chatserver(url, directory, **env) as server,
    ):
        for c in levels:
            turns = c * LATENCY_TURNS_PER_CHAT[c]
            chats = chat_ids(f"lat{c}", c)
            rows.append(measure(server, "latency 1s", db, c, chats, turns, ramp_seconds=ECHO_LATENCY_S))
    return rows


@dataclass(frozen=True)
class Levels:
    concurrency: tuple[int, ...]
    scale: float

    def turns(self, concurrency: int) -> int:
        return max(concurrency, round(TURNS[concurrency] * self.scale))


class database:
    """A fresh database for one block, on a private event loop."""

    def __init__(self, kind: str, directory: Path) -> None:
        self._cm = fresh_database(kind, directory)
        self._runner = asyncio.Runner()

    def __enter__(self) -> str:
        return self._runner.run(self._cm.__aenter__())

    def __exit__(self, *exc: object) -> None:
        self._runner.run(self._cm.__aexit__(None, None, None))
        self._runner.close()


def median_rows(runs: list[list[Row]]) -> list[Row]:
    grouped: dict[tuple[str, str, int], list[Row]] = defaultdict(list)
    for run in runs:
        for row in run:
            grouped[(row.scenario, row.db, row.concurrency)].append(row)
    med: Callable[[list[float]], float] = statistics.median
    return [
        Row(
            s,
            d,
            c,
            med([r.turns_per_s for r in rs]),
            med([r.p50 for r in rs]),
            med([r.p95 for r in rs]),
            med([r.p99 for r in rs]),
            max(r.errors for r in rs),
            med([r.cpu_ms_per_turn for r in rs]),
            max(r.peak_rss_mb for r in rs),
        )
        for (s, d, c), rs in grouped.items()
    ]


def print_table(rows: list[Row], title: str) -> None:
    floors = {(r.db, r.concurrency): r.cpu_ms_per_turn for r in rows if r.scenario == "floor"}
    print(f"\n### {title}\n")
    columns = "scenario db concurrency turns/s p50_ms p95_ms p99_ms errors CPU_ms/turn x_floor peak_RSS_MB"
    print("| " + " | ".join(c.replace("_", " ") for c in columns.split()) + " |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        floor = floors.get((r.db, r.concurrency))
        ratio = f"{r.cpu_ms_per_turn / floor:.2f}" if floor and r.scenario in ("zero", "long") else ""
        print(
            f"| {r.scenario} | {r.db} | {r.concurrency} | {r.turns_per_s:.1f} | {r.p50:.2f} | {r.p95:.2f} | "
            f"{r.p99:.2f} | {r.errors} | {r.cpu_ms_per_turn:.2f} | {ratio} | {r.peak_rss_mb:.0f} |"
        )
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scenario", action="append", choices=["zero", "long", "floor", "latency", "cache"])
    parser.add_argument(
        "--concurrency", type=int, action="append", choices=ZERO_CONCURRENCY, help="zero/long/floor levels"
    )
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the turns measured per level")
    parser.add_argument(
        "--latency-concurrency", type=int, action="append", choices=list(LATENCY_TURNS_PER_CHAT)
    )
    parser.add_argument("--trace", action="store_true", help="the server exports spans over OTLP/HTTP")
    args = parser.parse_args()
    levels = Levels(tuple(args.concurrency or ZERO_CONCURRENCY), args.scale)
    scenarios = set(args.scenario or ["zero", "long", "floor", "latency", "cache"])
    dbs = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    runs: list[list[Row]] = []
    with tempfile.TemporaryDirectory() as work, otlp_sink() if args.trace else nullcontext() as sink:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": sink} if sink else {}
        for n in range(args.runs):
            rows: list[Row] = []
            for db in dbs:
                if scenarios & {"zero", "long", "floor"}:
                    rows += zero_long_floor(db, Path(work), scenarios, levels, env)
                if "latency" in scenarios:
                    rows += latency(
                        db, Path(work), tuple(args.latency_concurrency or LATENCY_TURNS_PER_CHAT), env
                    )
            print_table(rows, f"run {n + 1} of {args.runs}")
            runs.append(rows)
    if args.runs > 1:
        print_table(median_rows(runs), f"median of {args.runs} runs")
    if "cache" in scenarios:
        measure_agent_cache()


if __name__ == "__main__":
    main()
