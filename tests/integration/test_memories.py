"""Long-term memories in SQL (SQLite and PostgreSQL), their row-level security, and agents' new settings."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from chatserver.domain import AgentConfig, McpServer
from chatserver.storage.sql import SqlUnitOfWorkFactory, create_engine
from chatserver.storage.sql.migrate import alembic_config, upgrade_to_head
from tests.support.builders import NOW, at
from tests.support.databases import settings_for


async def _remember(uow_factory: SqlUnitOfWorkFactory, user: str, agent: str, *notes: str) -> list[int]:
    ids = []
    async with uow_factory(user_id=user) as uow:
        for n, note in enumerate(notes):
            ids.append((await uow.memories.add(user, agent, note, now=at(n))).id)
        await uow.commit()
    return ids


class TestNotes:
    async def test_notes_read_back_newest_first_per_user_and_agent(
        self, uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
    ) -> None:
        await _remember(uow_factory, "alice", "helper", "one", "two")
        await _remember(uow_factory, "alice", "other", "elsewhere")
        await _remember(uow_factory, "bob", "helper", "bob's")
        async with uow_factory(user_id="alice") as uow:
            helper = await uow.memories.list("alice", agent_name="helper", limit=10)
            everything = await uow.memories.list("alice", agent_name=None, limit=10)
            count = await uow.memories.count("alice", "helper")
        assert [(m.content, m.created_at) for m in helper] == [("two", at(1)), ("one", at(0))]
        assert [m.content for m in everything] == ["elsewhere", "two", "one"]
        assert {m.user_id for m in everything} == {"alice"} and count == 2

    async def test_notes_page_back_from_a_cursor_id(
        self, uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
    ) -> None:
        one, two, three = await _remember(uow_factory, "alice", "helper", "one", "two", "three")
        await _remember(uow_factory, "bob", "helper", "bob's")
        async with uow_factory(user_id="alice") as uow:
            first = await uow.memories.list("alice", agent_name="helper", limit=2)
            second = await uow.memories.list("alice", agent_name="helper", limit=2, before=first[-1].id)
            everything = await uow.memories.list("alice", agent_name=None, limit=10, before=three)
        assert [m.id for m in first] == [three, two] and [m.id for m in second] == [one]
        assert [m.id for m in everything] == [two, one]

    async def test_search_matches_any_keyword_case_insensitively_newest_first_bounded(
        self, uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
    ) -> None:
        await _remember(uow_factory, "alice", "helper", "Has a Cat", "likes tea", "cat named Tom", "dog")
        await _remember(uow_factory, "bob", "helper", "bob's cat")
        async with uow_factory(user_id="alice") as uow:
            found = await uow.memories.search("alice", "helper", keywords=["cat", "tea"], limit=10)
            bounded = await uow.memories.search("alice", "helper", keywords=[], limit=2)
        assert [m.content for m in found] == ["cat named Tom", "likes tea", "Has a Cat"]
        assert [m.content for m in bounded] == ["dog", "cat named Tom"]

    async def test_like_wildcards_in_a_keyword_are_taken_literally(
        self, uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
    ) -> None:
        await _remember(uow_factory, "alice", "helper", "100% sure", "a_b", "plain", "back\\slash")
        async with uow_factory(user_id="alice") as uow:
            percent = await uow.memories.search("alice", "helper", keywords=["%"], limit=10)
            underscore = await uow.memories.search("alice", "helper", keywords=["_"], limit=10)
            backslash = await uow.memories.search("alice", "helper", keywords=["\\"], limit=10)
        assert [m.content for m in percent] == ["100% sure"]
        assert [m.content for m in underscore] == ["a_b"]
        assert [m.content for m in backslash] == ["back\\slash"]

    async def test_listing_with_words_keeps_the_callers_notes_containing_every_word_literally(
        self, uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
    ) -> None:
        await _remember(uow_factory, "alice", "helper", "Black Cat at home", "cat food", "100% cat")
        await _remember(uow_factory, "alice", "other", "a black cat too")
        await _remember(uow_factory, "bob", "helper", "bob's black cat")
        async with uow_factory(user_id="alice") as uow:
            both = await uow.memories.list("alice", agent_name=None, limit=10, words=["cat", "black"])
            of_helper = await uow.memories.list("alice", agent_name="helper", limit=10, words=["black"])
            percent = await uow.memories.list("alice", agent_name=None, limit=10, words=["%"])
            paged = await uow.memories.list("alice", agent_name=None, limit=1, words=["cat"])
            older = await uow.memories.list(
                "alice", agent_name=None, limit=10, words=["cat"], before=paged[0].id
            )
        assert [m.content for m in both] == ["a black cat too", "Black Cat at home"]
        assert [m.content for m in of_helper] == ["Black Cat at home"]
        assert [m.content for m in percent] == ["100% cat"]
        assert [m.content for m in paged + older] == [
            "a black cat too",
            "100% cat",
            "cat food",
            "Black Cat at home",
        ]

    async def test_deleting_one_note_needs_its_owner(
        self, uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
    ) -> None:
        [alices] = await _remember(uow_factory, "alice", "helper", "mine")
        async with uow_factory(user_id="bob") as uow:
            by_bob = await uow.memories.delete("bob", alices)
            await uow.commit()
        async with uow_factory(user_id="alice") as uow:
            by_alice = await uow.memories.delete("alice", alices)
            await uow.commit()
        assert by_bob is None
        assert by_alice is not None and by_alice.content == "mine"

    async def test_erasing_an_agents_notes_keeps_the_rest(
        self, uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
    ) -> None:
        await _remember(uow_factory, "alice", "helper", "a", "b")
        await _remember(uow_factory, "alice", "other", "c")
        await _remember(uow_factory, "bob", "helper", "d")
        async with uow_factory(user_id="alice") as uow:
            deleted = await uow.memories.delete_all("alice", "helper")
            await uow.commit()
        async with uow_factory() as uow:
            left = await uow.memories.list("alice", agent_name=None, limit=10)
            bobs = await uow.memories.list("bob", agent_name=None, limit=10)
        assert deleted == 2
        assert [m.content for m in left] == ["c"] and [m.content for m in bobs] == ["d"]

    async def test_deleting_a_user_deletes_their_notes(
        self, uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
    ) -> None:
        await _remember(uow_factory, "alice", "helper", "a")
        async with uow_factory() as uow:
            await uow.connection.execute(text("DELETE FROM users WHERE id = 'alice'"))
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.memories.list("alice", agent_name=None, limit=10) == []


class TestRowLevelSecurity:
    """PostgreSQL refuses another user's notes even to a query that asks for them by owner.

    These tests connect as the non-superuser application role (tests/support/databases.py).
    """

    @pytest.fixture
    async def engine(self, postgres_url: str) -> AsyncIterator[AsyncEngine]:
        engine = create_engine(settings_for(postgres_url))
        yield engine
        await engine.dispose()

    @pytest.fixture
    def uow_factory(self, engine: AsyncEngine) -> SqlUnitOfWorkFactory:
        return SqlUnitOfWorkFactory(engine)

    @pytest.fixture
    async def alices_note(self, uow_factory: SqlUnitOfWorkFactory) -> int:
        async with uow_factory() as uow:
            for user_id in ("alice", "bob"):
                await uow.users.ensure(user_id, is_admin=False, now=NOW)
            await uow.commit()
        [note] = await _remember(uow_factory, "alice", "helper", "alice's secret")
        return note

    async def test_another_user_reads_and_deletes_nothing(
        self, uow_factory: SqlUnitOfWorkFactory, alices_note: int
    ) -> None:
        async with uow_factory(user_id="bob") as uow:
            read = await uow.memories.list("alice", agent_name=None, limit=10)
            found = await uow.memories.search("alice", "helper", keywords=[], limit=10)
            deleted = await uow.memories.delete("alice", alices_note)
            erased = await uow.memories.delete_all("alice", "helper")
            await uow.commit()
        async with uow_factory(user_id="alice") as uow:
            kept = await uow.memories.list("alice", agent_name=None, limit=10)
        assert (read, found, deleted, erased) == ([], [], None, 0)
        assert [m.content for m in kept] == ["alice's secret"]

    async def test_another_user_cannot_write_a_note_for_someone_else(
        self, uow_factory: SqlUnitOfWorkFactory, alices_note: int
    ) -> None:
        with pytest.raises(DBAPIError, match="row-level security"):
            async with uow_factory(user_id="bob") as uow:
                await uow.memories.add("alice", "helper", "planted", now=NOW)

    async def test_system_work_sees_every_users_notes(
        self, uow_factory: SqlUnitOfWorkFactory, alices_note: int
    ) -> None:
        async with uow_factory() as uow:
            assert [m.id for m in await uow.memories.list("alice", agent_name=None, limit=10)] == [
                alices_note
            ]

    async def test_downgrading_drops_the_table_and_its_policy_and_upgrading_restores_them(
        self, postgres_url: str, uow_factory: SqlUnitOfWorkFactory
    ) -> None:
        policies = text("SELECT count(*) FROM pg_policies WHERE tablename = 'memories'")

        def downgrade(conn: Connection) -> None:
            config = alembic_config()
            config.attributes["connection"] = conn
            command.downgrade(config, "0002")

        async with uow_factory() as uow:
            await uow.connection.run_sync(downgrade)
            await uow.commit()
        async with uow_factory() as uow:
            after_downgrade = (await uow.connection.execute(policies)).scalar_one()
            columns = await uow.connection.execute(
                text("SELECT count(*) FROM information_schema.columns WHERE column_name = 'context_tokens'")
            )
            gone = columns.scalar_one()
        await upgrade_to_head(postgres_url)
        async with uow_factory() as uow:
            after_upgrade = (await uow.connection.execute(policies)).scalar_one()
        assert (after_downgrade, gone, after_upgrade) == (0, 0, 1)


class TestAgentSettings:
    async def test_mcp_servers_and_the_context_budget_round_trip(
        self, uow_factory: SqlUnitOfWorkFactory
    ) -> None:
        servers = (
            McpServer("docs", url="http://127.0.0.1:9000/mcp"),
            McpServer("files", command=("python", "-m", "files_server", "--root", "/tmp")),
        )
        agent = AgentConfig(
            "helper",
            "echo",
            "Be brief.",
            mcp_servers=servers,
            context_tokens=4000,
            created_at=NOW,
            updated_at=NOW,
        )
        plain = AgentConfig("plain", "echo", "", created_at=NOW, updated_at=NOW)
        async with uow_factory() as uow:
            await uow.agents.add(agent)
            await uow.agents.add(plain)
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.agents.get("helper") == agent
            assert await uow.agents.get("plain") == plain
            await uow.agents.update(AgentConfig("helper", "echo", "", created_at=NOW, updated_at=at(1)))
            await uow.commit()
        async with uow_factory() as uow:
            updated = await uow.agents.get("helper")
        assert updated is not None and (updated.mcp_servers, updated.context_tokens) == ((), None)


async def test_the_migration_downgrades_and_upgrades_on_both_databases(database_url: str) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    def down_then_tables(conn: Connection) -> set[str]:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, "0002")
        return set(conn.dialect.get_table_names(conn))

    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            tables = await conn.run_sync(down_then_tables)
    finally:
        await engine.dispose()
    await upgrade_to_head(database_url)
    assert "memories" not in tables and "agents" in tables
