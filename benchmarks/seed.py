"""Seed long chats directly in the database: users, chats, and many earlier messages per chat."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from chatserver.storage.sql.migrate import upgrade_to_head
from chatserver.storage.sql.tables import chat_messages, chats, users

BATCH = 5000


async def _as_system(conn: AsyncConnection) -> None:
    """Row-level security (PostgreSQL, non-superuser role): seeding is system work."""
    if conn.dialect.name == "postgresql":
        await conn.execute(select(func.set_config("app.system", "on", True)))


async def seed_long_chats(database_url: str, owned_chats: list[tuple[str, str]], *, messages: int) -> None:
    """Create each (chat id, owner) chat with ``messages`` earlier messages (half user, half assistant)."""
    await upgrade_to_head(database_url)
    engine = create_async_engine(database_url)
    now = datetime.now(UTC)
    try:
        async with engine.begin() as conn:
            await _as_system(conn)
            existing = set((await conn.execute(select(users.c.id))).scalars())
            owners = sorted({owner for _, owner in owned_chats} - existing)
            if owners:
                new_users = [{"id": u, "name": None, "is_admin": False, "created_at": now} for u in owners]
                await conn.execute(insert(users), new_users)
            new_chats = [
                {
                    "id": chat_id,
                    "user_id": owner,
                    "agent_name": "assistant",
                    "title": "long",
                    "turn_count": messages // 2,
                    "created_at": now,
                    "updated_at": now,
                }
                for chat_id, owner in owned_chats
            ]
            await conn.execute(insert(chats), new_chats)
        for chat_id, owner in owned_chats:
            rows = [
                {
                    "chat_id": chat_id,
                    "user_id": owner,
                    "turn": 1 + i // 2,
                    "role": "user" if i % 2 == 0 else "assistant",
                    "content": f"earlier message {i}",
                    "created_at": now,
                }
                for i in range(messages)
            ]
            async with engine.begin() as conn:
                await _as_system(conn)
                for start in range(0, len(rows), BATCH):
                    await conn.execute(insert(chat_messages), rows[start : start + BATCH])
        if engine.dialect.name == "postgresql":
            # Fresh statistics, as a long-lived table has: the planner then picks the window's index.
            async with engine.begin() as conn:
                await conn.execute(text("ANALYZE"))
    finally:
        await engine.dispose()
