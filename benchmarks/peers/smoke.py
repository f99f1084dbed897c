"""A self-check of one peer: install it, serve it, run a few chats concurrently and check them.

    python -m benchmarks.peers.smoke agno|langgraph [--chats 4] [--turns 20] [--latency-ms 0]

Every answer must be ``echo: <message>``; afterwards each chat's ``/recall`` (the earlier user
messages the model saw, as chatserver's ``echo`` answers it) must list that chat's messages, the
last 50 of them when there were more, and a ``/tool`` call of the one tool must describe its
result. Prints turns/s and the server's CPU ms per turn (its whole
process tree, from /proc) over the turns alone. One worker per chat, each a bounded loop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url

from benchmarks.common import CLOCK_TICKS, fresh_database
from benchmarks.peers.agno import AgnoContender
from benchmarks.peers.contender import HISTORY_EXCHANGES, Chat, Contender, ServeOptions
from benchmarks.peers.isolated import DEFAULT_CACHE
from benchmarks.peers.langgraph import LangGraphContender

CONTENDERS: dict[str, type[Contender]] = {"agno": AgnoContender, "langgraph": LangGraphContender}
USERS = 50
TOOL_CALL = '/tool word_count {"text": "one two three"}'
TOOL_ANSWER = "tool word_count returned: 3"


@dataclass
class Outcome:
    turns: int
    seconds: float
    cpu_seconds: float
    wrong: list[str]


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and all its descendants (Linux /proc)."""
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            tasks = list(Path(f"/proc/{current}/task").iterdir())
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        for task in tasks:
            with contextlib.suppress(FileNotFoundError):
                pending.extend(int(child) for child in (task / "children").read_text().split())
    return total


@contextlib.asynccontextmanager
async def database_for(contender: Contender, directory: Path) -> AsyncIterator[str | None]:
    if not contender.uses_postgres:
        yield None
        return
    async with fresh_database("postgres", directory) as url:
        yield make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def send(client: httpx.AsyncClient, contender: Contender, chat: Chat, message: str) -> str:
    turn = contender.turn(chat, message)
    response = await client.post(turn.path, headers=turn.headers, json=turn.json, data=turn.form)
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    return contender.answer_of(response)


async def exercise(contender: Contender, url: str, pid: int, chats: int, turns: int) -> Outcome:
    wanted = [Chat(f"user-{i % USERS}", f"smoke-{i}-{time.time_ns()}") for i in range(chats)]
    limits = httpx.Limits(max_connections=chats, max_keepalive_connections=chats)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        opened = await contender.open_chats(client, wanted)
        sent: dict[str, list[str]] = {chat.chat_id: [] for chat in opened}
        wrong: list[str] = []

        async def worker(chat: Chat) -> None:
            for number in range(turns):
                message = f"message {number} of {chat.chat_id}"
                answer = await send(client, contender, chat, message)
                sent[chat.chat_id].append(message)
                if answer != f"echo: {message}":
                    wrong.append(f"{chat.chat_id} turn {number}: {answer!r}")

        cpu_before, started = tree_cpu_seconds(pid), time.perf_counter()
        await asyncio.gather(*(worker(chat) for chat in opened))
        seconds, cpu = time.perf_counter() - started, tree_cpu_seconds(pid) - cpu_before
        for chat in opened:
            expected = "recall: " + " | ".join(sent[chat.chat_id][-HISTORY_EXCHANGES:])
            recalled = await send(client, contender, chat, "/recall")
            if recalled != expected:
                wrong.append(f"{chat.chat_id} history: {recalled[:300]!r}, expected {expected[:300]!r}")
        tool_answer = await send(client, contender, opened[0], TOOL_CALL)
        if tool_answer != TOOL_ANSWER:
            wrong.append(f"tool: {tool_answer[:300]!r}, expected {TOOL_ANSWER!r}")
    return Outcome(chats * turns, seconds, cpu, wrong)


async def smoke(name: str, chats: int, turns: int, latency_ms: int, cache: Path) -> Outcome:
    contender = CONTENDERS[name]()
    contender.install(cache)
    with tempfile.TemporaryDirectory(prefix=f"peers-{name}-") as folder:
        directory = Path(folder)
        async with database_for(contender, directory) as database_url:
            options = ServeOptions(directory, cache, database_url, latency_ms)
            with contender.serve(options) as server:
                return await exercise(contender, server.url, server.process.pid, chats, turns)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("name", choices=sorted(CONTENDERS))
    parser.add_argument("--chats", type=int, default=4, help="chats at once (the concurrency)")
    parser.add_argument("--turns", type=int, default=20, help="turns per chat")
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args()
    outcome = asyncio.run(smoke(args.name, args.chats, args.turns, args.latency_ms, args.cache))
    print(
        f"{args.name}: {outcome.turns} turns in {outcome.seconds:.2f} s at concurrency {args.chats}: "
        f"{outcome.turns / outcome.seconds:.1f} turns/s, "
        f"{1000 * outcome.cpu_seconds / outcome.turns:.2f} server CPU ms/turn"
    )
    for line in outcome.wrong[:20]:
        print("WRONG", line)
    if outcome.wrong:
        raise SystemExit(f"{len(outcome.wrong)} wrong answers or histories")
    print("every answer was echo: <message>, every chat's history was kept, the tool ran")


if __name__ == "__main__":
    main()
