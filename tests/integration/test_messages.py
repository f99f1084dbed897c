"""Messages: stored per turn, each after its parent; the model's window is the last k turns of the
branch it ends, read by one bounded query walking parents through the primary key."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import insert, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from chatserver.domain import Message, NewMessage, ToolCall
from chatserver.errors import NotFound
from chatserver.storage.sql import SqlUnitOfWorkFactory, create_engine
from chatserver.storage.sql.messages import MAX_MESSAGES_PER_TURN, window_statement
from chatserver.storage.sql.tables import chat_messages
from tests.support.builders import NOW, chat
from tests.support.databases import settings_for, throwaway_database

WINDOW_INDEX = "ix_chat_messages_user_id_chat_id_turn_id"


async def _chat_with_turns(uow_factory: SqlUnitOfWorkFactory, turns: int, *, owner: str = "alice") -> None:
    """Turn n holds "u<n>" and, for even n only, "a<n>": a failed model stores no reply."""
    async with uow_factory(user_id=owner) as uow:
        await uow.chats.create_if_absent(chat("c1", owner))
        for n in range(1, turns + 1):
            replies = [NewMessage("assistant", f"a{n}")] if n % 2 == 0 else []
            await uow.messages.add(owner, "c1", n, [NewMessage("user", f"u{n}"), *replies], now=NOW)
        await uow.commit()


def _contents(messages: list[Message]) -> list[str]:
    return [m.content for m in messages]


async def _last_of_turn(uow_factory: SqlUnitOfWorkFactory, turn: int) -> int:
    async with uow_factory(user_id="alice") as uow:
        stored = await uow.messages.page("alice", "c1", limit=100, before=None)
    return max(m.id for m in stored if m.turn == turn)


async def test_added_messages_come_back_with_ids_in_order_and_their_tool_calls(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    call = ToolCall(id="call-1", name="current_time", args={"tz": "UTC", "nested": {"n": [1, 2]}})
    new = [
        NewMessage("user", "what time is it?"),
        NewMessage("assistant", "", tool_calls=(call,)),
        NewMessage("tool", "12:00", tool_call_id="call-1", tool_name="current_time"),
        NewMessage("assistant", "It is noon."),
    ]
    async with uow_factory(user_id="alice") as uow:
        await uow.chats.create_if_absent(chat("c1", "alice"))
        added = await uow.messages.add("alice", "c1", 1, new, now=NOW)
        await uow.commit()
    async with uow_factory(user_id="alice") as uow:
        stored = await uow.messages.page("alice", "c1", limit=10, before=None)
    assert stored == added
    assert [m.id for m in added] == sorted(m.id for m in added)
    assert [(m.role, m.content, m.tool_calls, m.tool_call_id, m.tool_name) for m in added] == [
        (n.role, n.content, n.tool_calls, n.tool_call_id, n.tool_name) for n in new
    ]
    assert {(m.chat_id, m.turn, m.created_at) for m in added} == {("c1", 1, NOW)}


async def test_nobody_adds_messages_to_another_users_chat(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    await _chat_with_turns(uow_factory, 1)
    async with uow_factory(user_id="bob") as uow:
        with pytest.raises(NotFound):
            await uow.messages.add("bob", "c1", 2, [NewMessage("user", "intrusion")], now=NOW)


async def test_the_window_holds_only_the_last_k_turns_before_the_current_one_oldest_first(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    await _chat_with_turns(uow_factory, 6)
    fifth, sixth = await _last_of_turn(uow_factory, 5), await _last_of_turn(uow_factory, 6)
    async with uow_factory(user_id="alice") as uow:
        window = await uow.messages.window("alice", "c1", from_id=fifth, turns=3)
        whole = await uow.messages.window("alice", "c1", from_id=sixth, turns=50)
        none = await uow.messages.window("alice", "c1", from_id=sixth, turns=0)
        first_turn = await uow.messages.window("alice", "c1", from_id=None, turns=5)
    assert _contents(window) == ["u3", "u4", "a4", "u5"]
    assert _contents(whole) == ["u1", "u2", "a2", "u3", "u4", "a4", "u5", "u6", "a6"]
    assert (none, first_turn) == ([], [])


async def test_the_window_is_capped_at_a_fixed_number_of_messages_per_turn_keeping_the_newest(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    flood = [NewMessage("tool", f"t{i}") for i in range(MAX_MESSAGES_PER_TURN + 6)]
    async with uow_factory(user_id="alice") as uow:
        await uow.chats.create_if_absent(chat("c1", "alice"))
        added = await uow.messages.add("alice", "c1", 1, flood, now=NOW)
        window = await uow.messages.window("alice", "c1", from_id=added[-1].id, turns=1)
    assert _contents(window) == [f"t{i}" for i in range(6, MAX_MESSAGES_PER_TURN + 6)]


async def test_nobody_reads_another_users_messages(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    await _chat_with_turns(uow_factory, 3)
    alices = await _last_of_turn(uow_factory, 3)
    async with uow_factory(user_id="bob") as uow:
        window = await uow.messages.window("bob", "c1", from_id=alices, turns=10)
        page = await uow.messages.page("bob", "c1", limit=10, before=None)
    assert (window, page) == ([], [])


async def test_pages_walk_back_from_the_newest_message_each_page_oldest_first(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    await _chat_with_turns(uow_factory, 4)
    pages: list[list[str]] = []
    before = None
    async with uow_factory(user_id="alice") as uow:
        while page := await uow.messages.page("alice", "c1", limit=4, before=before):
            pages.append(_contents(page))
            before = page[0].id
    assert pages == [["a2", "u3", "u4", "a4"], ["u1", "u2"]]


async def _explain(engine: AsyncEngine, prefix: str, from_id: int) -> str:
    statement = window_statement("alice", "c1", from_id=from_id, turns=50)
    dialect = postgresql.dialect() if engine.dialect.name == "postgresql" else sqlite.dialect()
    compiled = statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True})
    async with engine.connect() as conn:
        if engine.dialect.name == "postgresql":  # row-level security: read as the chat's owner
            await conn.execute(text("SELECT set_config('app.user_id', 'alice', false)"))
        rows = (await conn.execute(text(f"{prefix} {compiled}"))).all()
    return "\n".join(str(value) for row in rows for value in row)


async def _ensure_alice(uow_factory: SqlUnitOfWorkFactory) -> None:
    async with uow_factory() as uow:
        await uow.users.ensure("alice", is_admin=False, now=NOW)
        await uow.commit()


async def _fill(uow_factory: SqlUnitOfWorkFactory, *, turns: int, other_chats: int) -> None:
    """Chat "c1" and a few others, a user message and a reply per turn, in one bulk insert."""
    chat_ids = ["c1", *(f"other-{i}" for i in range(other_chats))]
    rows = [
        {"chat_id": c, "user_id": "alice", "turn": n, "role": role, "content": role, "created_at": NOW}
        for c in chat_ids
        for n in range(1, turns + 1)
        for role in ("user", "assistant")
    ]
    async with uow_factory(user_id="alice") as uow:
        for chat_id in chat_ids:
            await uow.chats.create_if_absent(chat(chat_id, "alice"))
        await uow.commit()
    # Each insert moves its chat's active message: a few hundred per transaction keep that cheap.
    for start in range(0, len(rows), 400):
        async with uow_factory(user_id="alice") as uow:
            await uow.connection.execute(insert(chat_messages), rows[start : start + 400])
            await uow.commit()


async def _c1_end_of_turn(uow_factory: SqlUnitOfWorkFactory, turn: int) -> int:
    async with uow_factory(user_id="alice") as uow:
        found = await uow.connection.execute(
            text(
                "SELECT max(id) FROM chat_messages WHERE user_id = 'alice' AND chat_id = 'c1' AND turn = :t"
            ),
            {"t": turn},
        )
    end: int = found.scalar_one()
    return end


@pytest.mark.postgres
async def test_on_postgres_the_window_walks_parents_through_the_primary_key_never_a_scan(
    postgres_url: str,
) -> None:
    engine = create_engine(settings_for(postgres_url))
    try:
        uow_factory = SqlUnitOfWorkFactory(engine)
        await _ensure_alice(uow_factory)
        await _fill(uow_factory, turns=2000, other_chats=3)
        async with engine.connect() as conn:
            await conn.execute(text("ANALYZE chat_messages"))
            await conn.commit()
        plan = await _explain(
            engine, "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF)", await _c1_end_of_turn(uow_factory, 1499)
        )
    finally:
        await engine.dispose()
    assert "Recursive Union" in plan, plan
    assert "Index Scan using pk_chat_messages on chat_messages p" in plan, plan
    assert "Seq Scan" not in plan, plan
    # 50 turns of two messages each: the walk reads those and no more.
    assert "Recursive Union (actual rows=100 " in plan, plan


async def test_on_sqlite_the_window_walks_parents_through_the_primary_key(tmp_path: Path) -> None:
    async with throwaway_database("sqlite", tmp_path) as url:
        engine = create_engine(settings_for(url))
        try:
            uow_factory = SqlUnitOfWorkFactory(engine)
            await _ensure_alice(uow_factory)
            await _fill(uow_factory, turns=300, other_chats=1)
            plan = await _explain(engine, "EXPLAIN QUERY PLAN", await _c1_end_of_turn(uow_factory, 299))
        finally:
            await engine.dispose()
    assert "SEARCH p USING INTEGER PRIMARY KEY (rowid=?)" in plan, plan
    assert "SCAN chat_messages" not in plan and "SCAN p" not in plan, plan
