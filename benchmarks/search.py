"""Chat search: latency of ``GET /api/chats?q=`` queries over 100,000 messages, on both databases.

Fills 20 users x 50 chats x 100 messages of random words, then times searches of one and of two
words for one user through the repository (the query the route runs), and prints p50 and p99.
Run: ``python -m benchmarks.search`` (PostgreSQL from ``CHATSERVER_BENCH_POSTGRES_URL``).
"""

from __future__ import annotations

import asyncio
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, text

from benchmarks.common import fresh_database
from chatserver.config import Settings
from chatserver.domain.chats import ANY_CHAT
from chatserver.storage.sql import SqlUnitOfWorkFactory, create_engine, upgrade_to_head
from chatserver.storage.sql.tables import chat_messages, chats, users

USERS, CHATS, MESSAGES = 20, 50, 100
SEARCHES = 200
VOCABULARY = [f"w{i:04d}" for i in range(5000)]


def _sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(VOCABULARY) for _ in range(rng.randint(8, 30)))


async def _fill(factory: SqlUnitOfWorkFactory, rng: random.Random) -> None:
    now = datetime.now(UTC)
    async with factory() as uow:
        await uow.connection.execute(
            insert(users),
            [{"id": f"u{u}", "name": None, "is_admin": False, "created_at": now} for u in range(USERS)],
        )
        await uow.commit()
    for u in range(USERS):
        user = f"u{u}"
        async with factory(user_id=user) as uow:
            rows = [
                {
                    "id": f"c{c}",
                    "user_id": user,
                    "agent_name": "assistant",
                    "title": f"chat {c}",
                    "turn_count": MESSAGES // 2,
                    "created_at": now,
                    "updated_at": now,
                }
                for c in range(CHATS)
            ]
            await uow.connection.execute(insert(chats), rows)
            await uow.commit()
        for c in range(CHATS):
            async with factory(user_id=user) as uow:
                messages = [
                    {
                        "chat_id": f"c{c}",
                        "user_id": user,
                        "turn": n // 2 + 1,
                        "role": "user" if n % 2 == 0 else "assistant",
                        "content": _sentence(rng),
                        "created_at": now,
                    }
                    for n in range(MESSAGES)
                ]
                await uow.connection.execute(insert(chat_messages), messages)
                await uow.commit()


async def _time(factory: SqlUnitOfWorkFactory, rng: random.Random, words: int) -> tuple[float, float]:
    took = []
    for _ in range(SEARCHES):
        user = f"u{rng.randrange(USERS)}"
        query = " ".join(rng.choice(VOCABULARY) for _ in range(words))
        started = time.perf_counter()
        async with factory(user_id=user) as uow:
            await uow.search.search(user, query, ANY_CHAT, limit=50)
        took.append((time.perf_counter() - started) * 1000)
    quantiles = statistics.quantiles(took, n=100)
    return quantiles[49], quantiles[98]


async def _measure(kind: str, directory: Path) -> list[tuple[str, int, float, float]]:
    async with fresh_database(kind, directory) as url:
        await upgrade_to_head(url)
        engine = create_engine(Settings(database_url=url))
        try:
            factory = SqlUnitOfWorkFactory(engine)
            rng = random.Random(20)
            await _fill(factory, rng)
            if kind == "postgres":
                async with engine.connect() as conn:
                    await conn.execute(text("ANALYZE"))
                    await conn.commit()
            return [(kind, words, *await _time(factory, rng, words)) for words in (1, 2)]
        finally:
            await engine.dispose()


async def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        results = [row for kind in ("sqlite", "postgres") for row in await _measure(kind, Path(directory))]
    total = USERS * CHATS * MESSAGES
    print(f"search over {total:,} messages ({USERS} users x {CHATS} chats), {SEARCHES} searches each")
    print("| database | words | p50 ms | p99 ms |")
    print("|---|---|---|---|")
    for kind, words, p50, p99 in results:
        print(f"| {kind} | {words} | {p50:.2f} | {p99:.2f} |")


if __name__ == "__main__":
    asyncio.run(main())
