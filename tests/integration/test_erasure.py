"""Erasure on both databases: afterwards no table holds the erased user's id, only a hashed receipt.

Every table of the schema is scanned (from the metadata, so a table added later fails here until
erasure covers it), and only after each was seen holding the user's id.
"""

from __future__ import annotations

import pytest
from sqlalchemy import JSON, String, Table, Text, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from chatserver.services.erasure import ErasureService, subject_hash
from chatserver.storage.sql import SqlUnitOfWorkFactory
from chatserver.storage.sql.tables import metadata
from tests.support.builders import NOW
from tests.support.user_rows import populate
from tests.unit.fakes import FakeClock

TARGET = "erase-me-5b1f"
SHARED_TABLES = {"agents"}
"""Configuration of the server, not of any user: nothing in it names a user."""


class Forgotten:
    def __init__(self) -> None:
        self.users: list[str] = []

    def forget(self, user_id: str) -> None:
        self.users.append(user_id)


class Cancellations:
    def __init__(self) -> None:
        self.runs: list[tuple[str, str]] = []

    async def cancel(self, user_id: str, run_id: str) -> object:
        self.runs.append((user_id, run_id))
        return None


class Evictions:
    def __init__(self) -> None:
        self.users: list[str] = []

    def invalidate_user(self, user_id: str, agent_names: set[str]) -> None:
        self.users.append(user_id)


async def rows_naming(engine: AsyncEngine, table: Table, user_id: str) -> int:
    text_columns = [c for c in table.columns if isinstance(c.type, (String, Text, JSON))]
    condition = or_(*(cast(c, Text).contains(user_id) for c in text_columns))
    async with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(select(func.set_config("app.system", "on", True)))
        return int(
            (await conn.execute(select(func.count()).select_from(table).where(condition))).scalar_one()
        )


async def counts_by_table(engine: AsyncEngine, user_id: str) -> dict[str, int]:
    tables = [t for t in metadata.sorted_tables if t.name not in SHARED_TABLES]
    return {table.name: await rows_naming(engine, table, user_id) for table in tables}


@pytest.mark.parametrize("shared_chat_id", [False, True], ids=["own-chat-ids", "one-chat-id-for-both"])
async def test_after_erasure_no_table_names_the_user_and_others_keep_theirs(
    uow_factory: SqlUnitOfWorkFactory, engine: AsyncEngine, shared_chat_id: bool
) -> None:
    async with uow_factory() as uow:
        for user_id in (TARGET, "bystander"):
            await uow.users.ensure(user_id, is_admin=False, now=NOW)
        await uow.commit()
    chat_id = "my-first-chat" if shared_chat_id else None
    await populate(uow_factory, TARGET, chat_id=chat_id)
    await populate(uow_factory, "bystander", chat_id=chat_id)
    bystanders = await counts_by_table(engine, "bystander")
    before = await counts_by_table(engine, TARGET)
    assert all(before.values()), f"populate every table first: {before}"
    evictions, cancellations, forgotten = Evictions(), Cancellations(), Forgotten()
    service = ErasureService(uow_factory, cancellations, evictions, forgotten, FakeClock(NOW), salt=b"pepper")
    erased = await service.erase(TARGET)
    assert erased == {
        "runs": 1,
        "messages": 3,
        "sessions": 1,
        "events": 1,
        "chats": 1,
        "memories": 1,
        "customizations": 1,
        "api_keys": 1,
        "usage": 1,
        "budgets": 1,
    }
    assert await counts_by_table(engine, TARGET) == dict.fromkeys(before, 0)
    assert await counts_by_table(engine, "bystander") == bystanders
    assert [user for user, _ in cancellations.runs] == [TARGET]  # its queued run, before the deletion
    assert evictions.users == forgotten.users == [TARGET]
    async with uow_factory() as uow:
        [receipt] = await uow.events.list(type="user.erased", user_id=None, limit=5, before=None)
    assert receipt.data == {"subject": subject_hash(b"pepper", TARGET), "by": "admin", "erased": erased}
