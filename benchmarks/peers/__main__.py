"""The side-by-side benchmark: chatserver, the original it replaces, and peers, on one load driver.

    python -m benchmarks.peers                                  # every contender, 3 runs
    python -m benchmarks.peers --only chatserver --only original --runs 1 --scenario zero

Every contender answers like ``echo``, is started from its own environment (the original and peers
from virtualenvs under --cache, installed on first use), on a fresh PostgreSQL database each where
it keeps history there. Scenarios: zero (no model latency; c1, c16, c64, fresh chats), long (c16,
chats holding 200 messages), latency (200 ms model latency, 64 workers over 128 chats). Within a
run every scenario is measured for each contender in turn, the order rotated from run to run; the
servers of a run stay up side by side (idle while another is measured). One table per run, then the
medians; ratios are against the original in the same run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import TypeVar

from benchmarks.peers.agno import AgnoContender
from benchmarks.peers.chatserver import ChatserverContender
from benchmarks.peers.contender import Contender, ServeOptions
from benchmarks.peers.isolated import DEFAULT_CACHE
from benchmarks.peers.langgraph import LangGraphContender
from benchmarks.peers.original import OriginalContender
from benchmarks.peers.scenarios import SCENARIOS, Scenario, measure, scaled
from benchmarks.peers.table import Row, format_table, median_rows, with_ratios
from benchmarks.run import database

T = TypeVar("T")

CONTENDERS: dict[str, Callable[[], Contender]] = {
    "chatserver": ChatserverContender,
    "original": OriginalContender,
    "agno": AgnoContender,
    "langgraph": LangGraphContender,
}


def psycopg_url(url: str) -> str:
    """The benchmark's SQLAlchemy URL as libpq takes it (no ``+driver``)."""
    scheme, rest = url.split("://", 1)
    return f"{scheme.split('+', 1)[0]}://{rest}"


def rotated(contenders: list[T], run: int) -> list[T]:
    shift = run % len(contenders)
    return contenders[shift:] + contenders[:shift]


def measure_group(
    contenders: list[Contender],
    scenarios: list[Scenario],
    urls: dict[str, str | None],
    work: Path,
    cache: Path,
) -> list[Row]:
    """Every scenario of one model latency, for each contender in turn, its servers up side by side."""
    rows: list[Row] = []
    with ExitStack() as stack:
        servers = {
            c.name: stack.enter_context(
                c.serve(ServeOptions(work, cache, urls[c.name], scenarios[0].latency_ms))
            )
            for c in contenders
        }
        for scenario in scenarios:
            for contender in contenders:
                print(f"  {scenario.label}: {contender.name}", file=sys.stderr)
                rows.append(measure(contender, servers[contender.name], scenario))
    return rows


def one_run(contenders: list[Contender], scenarios: list[Scenario], work: Path, cache: Path) -> list[Row]:
    with ExitStack() as stack:
        urls = {
            c.name: psycopg_url(stack.enter_context(database("postgres", work))) if c.uses_postgres else None
            for c in contenders
        }
        rows: list[Row] = []
        for latency in sorted({s.latency_ms for s in scenarios}):
            group = [s for s in scenarios if s.latency_ms == latency]
            rows += measure_group(contenders, group, urls, work, cache)
    order = {s.label: i for i, s in enumerate(scenarios)}
    return with_ratios(sorted(rows, key=lambda r: order[r.scenario]))


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.peers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--only", action="append", choices=list(CONTENDERS), help="a contender (repeatable)")
    parser.add_argument("--scenario", action="append", choices=sorted({s.name for s in SCENARIOS}))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="virtualenvs live here")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the turns measured")
    args = parser.parse_args()
    contenders = [CONTENDERS[name]() for name in args.only or CONTENDERS]
    wanted = set(args.scenario or [s.name for s in SCENARIOS])
    scenarios = [scaled(s, args.scale) for s in SCENARIOS if s.name in wanted]
    for contender in contenders:
        contender.install(args.cache)
    runs: list[list[Row]] = []
    with tempfile.TemporaryDirectory() as work:
        for n in range(args.runs):
            order = rotated(contenders, n)
            print(f"run {n + 1} of {args.runs}: {', '.join(c.name for c in order)}", file=sys.stderr)
            runs.append(one_run(order, scenarios, Path(work), args.cache))
            print("\n" + format_table(runs[-1], f"run {n + 1} of {args.runs}") + "\n", flush=True)
    if args.runs > 1:
        print(format_table(median_rows(runs), f"median of {args.runs} runs"), flush=True)


if __name__ == "__main__":
    main()
