"""The scenarios and how one contender is measured in one of them, with the shared load driver.

Each worker keeps to its own chats (worker w of W has chats w, w+W, ...: one each, or two in the
latency scenario) and sends ``hello <w>.<i>``; a turn counts only if the contender answers exactly
``echo: hello <w>.<i>``. The server's CPU is read from /proc around the measured turns only: each
chat's first turns (creating it, building the agent, filling pools) and a long chat's earlier
turns (sent through the contender's own API) come before and are not counted.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from benchmarks.common import Server, Usage, postgres_pid, tree_usage
from benchmarks.load import Check, LoadResult, answer_check, drive_turns, load_client, run_on_uvloop, user_of
from benchmarks.peers.contender import Chat, Contender, Turn
from benchmarks.peers.table import Row

USERS = 50
"""Chats belong to 50 users, as in ``benchmarks.run``."""
LATENCY_MS = 200
MIN_WARMUP_TURNS = 50
LOAD_TIMEOUT_S = 300
"""A bound on any one load (warm-up, history or measured turns), whatever the contender does."""
MEASURED_SECONDS = 60
"""Measured turns start for this long at most: a contender slower than that is measured on the
turns it answered (LangGraph's queue answers about one turn a second at concurrency 1)."""


@dataclass(frozen=True)
class Scenario:
    name: str
    """``zero``, ``long`` or ``latency`` (what ``--scenario`` selects)."""
    workers: int
    chats: int
    turns: int
    """Measured turns, over all workers."""
    latency_ms: int = 0
    history_turns: int = 0
    """Turns every chat holds before the measured ones (each turn stores two messages)."""

    @property
    def label(self) -> str:
        return f"{self.name} c{self.workers}" + (f" {self.chats} chats" if self.chats != self.workers else "")


SCENARIOS = (
    Scenario("zero", workers=1, chats=1, turns=300),
    Scenario("zero", workers=16, chats=16, turns=960),
    Scenario("zero", workers=64, chats=64, turns=1280),
    Scenario("long", workers=16, chats=16, turns=640, history_turns=100),
    Scenario("latency", workers=64, chats=128, turns=640, latency_ms=LATENCY_MS),
)


def scaled(scenario: Scenario, scale: float) -> Scenario:
    turns = max(scenario.workers, round(scenario.turns * scale))
    return Scenario(
        scenario.name, scenario.workers, scenario.chats, turns, scenario.latency_ms, scenario.history_turns
    )


def new_chats(count: int) -> list[Chat]:
    return [Chat(user_of(i, USERS), str(uuid.uuid4())) for i in range(count)]


def _requests(
    contender: Contender, chats: list[Chat], workers: int, phase: str
) -> list[Callable[[int], tuple[Turn, Check]]]:
    def of_worker(w: int) -> Callable[[int], tuple[Turn, Check]]:
        mine = chats[w::workers]

        def request(i: int) -> tuple[Turn, Check]:
            message = f"hello {phase}{w}.{i}"
            turn = contender.turn(mine[i % len(mine)], message)
            return turn, answer_check(contender.answer_of, f"echo: {message}")

        return request

    return [of_worker(w) for w in range(workers)]


def _report_errors(contender: str, label: str, phase: str, result: LoadResult) -> None:
    if result.errors:
        kinds = ", ".join(f"{kind}: {n}" for kind, n in result.error_kinds.most_common())
        print(f"  {contender} {label} {phase}: {result.errors} errors ({kinds})", file=sys.stderr)


async def _load(
    client: httpx.AsyncClient,
    requests: list[Callable[[int], tuple[Turn, Check]]],
    turns: int,
    ramp: float,
    deadline: float | None = None,
) -> LoadResult:
    async with asyncio.timeout(LOAD_TIMEOUT_S):
        return await drive_turns(client, requests, turns=turns, ramp_seconds=ramp, deadline_seconds=deadline)


async def _measure(contender: Contender, server: Server, scenario: Scenario) -> Row:
    workers, label, ramp = scenario.workers, scenario.label, scenario.latency_ms / 1000
    async with load_client(server.url, workers) as client:
        chats = await contender.open_chats(client, new_chats(scenario.chats))
        if scenario.history_turns:
            earlier = _requests(contender, chats, workers, "earlier ")
            result = await _load(client, earlier, scenario.history_turns * scenario.chats, 0.0)
            _report_errors(contender.name, label, "history", result)
        else:  # the earlier turns warm a long chat's server up
            warmup = _requests(contender, chats, workers, "warm ")
            result = await _load(client, warmup, max(2 * scenario.chats, MIN_WARMUP_TURNS), ramp)
            _report_errors(contender.name, label, "warm-up", result)
        database = postgres_pid()
        before, db_before = tree_usage(server.process.pid), _database_usage(database)
        measured = _requests(contender, chats, workers, "")
        result = await _load(client, measured, scenario.turns, ramp, MEASURED_SECONDS)
        after, db_after = tree_usage(server.process.pid), _database_usage(database)
    _report_errors(contender.name, label, "measured", result)
    per_turn = 1000 / max(result.turns, 1)
    return Row(
        label,
        contender.name,
        result.turns_per_second,
        result.p50,
        result.percentile(0.99),
        (after.cpu_seconds - before.cpu_seconds) * per_turn,
        (db_after.cpu_seconds - db_before.cpu_seconds) * per_turn,
        after.peak_rss_mb,
        result.errors,
    )


def _database_usage(pid: int | None) -> Usage:
    return tree_usage(pid) if pid is not None else Usage(0.0, 0.0, 0.0)


def measure(contender: Contender, server: Server, scenario: Scenario) -> Row:
    return run_on_uvloop(_measure(contender, server, scenario))
