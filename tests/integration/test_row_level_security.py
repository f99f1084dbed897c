"""Row-level security on PostgreSQL: a query that forgets the owner filter still sees only the caller's rows.

Every test here connects the way the application does in the test suite: as the non-superuser
role ``chatserver_app`` (tests/support/databases.py), so the policies are really enforced.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from alembic import command
from sqlalchemy import JSON, Column, Table, delete, func, insert, select, text, update
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from chatserver.container import build_container
from chatserver.storage.sql import SqlUnitOfWorkFactory, create_engine, upgrade_to_head
from chatserver.storage.sql.migrate import alembic_config
from chatserver.storage.sql.tables import metadata
from tests.e2e.harness import free_port
from tests.support.builders import NOW
from tests.support.databases import APP_ROLE, postgres_admin_url, settings_for

USER_OWNED_TABLES = (
    "prompt_customizations",
    "chats",
    "chat_messages",
    "chat_session_instances",
    "memories",
    "runs",
    "usage_records",
    "run_steps",
)
# Tables with a user_id column that are read without a caller: API keys are looked up by hash to
# find the user, and audit events are written and listed system-wide. Budgets are administrators'
# data: a user's turn is bound by the default and agents' budgets too, which name no user.
SYSTEM_TABLES_WITH_A_USER = {"api_keys", "audit_events", "budgets"}
EXISTING = [name for name in USER_OWNED_TABLES if name in metadata.tables]
OWNERS = ("alice", "bob")


@pytest.fixture
async def engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings_for(postgres_url))
    yield engine
    await engine.dispose()


@pytest.fixture
def uow_factory(engine: AsyncEngine) -> SqlUnitOfWorkFactory:
    return SqlUnitOfWorkFactory(engine)


def chat_id_of(owner: str) -> str:
    return f"{owner}-chat"


def _value(column: Column[Any], owner: str) -> Any:
    """A valid value for a required column of ``owner``'s row (foreign keys point at their rows)."""
    if column.name == "user_id":
        return owner
    for key in column.foreign_keys:
        return owner if key.column.table.name == "users" else _value(key.column, owner)
    python_type = column.type.python_type
    if python_type is str:
        text = chat_id_of(owner) if column.table.name == "chats" else f"{owner}-{column.name}"
        return text[: getattr(column.type, "length", None)]
    if isinstance(column.type, JSON):
        return {}
    return {int: 1, bool: True}.get(python_type, NOW)


def row_of(table: Table, owner: str) -> dict[str, Any]:
    """Every required column of ``table`` filled for ``owner``; integer keys left to the database."""
    required = [
        c
        for c in table.columns
        if not c.nullable
        and c.server_default is None
        and not (c.primary_key and c.type.python_type is int and c.autoincrement is not False)
    ]
    return {column.name: _value(column, owner) for column in required}


@pytest.fixture
async def rows_of_both(uow_factory: SqlUnitOfWorkFactory) -> None:
    """alice's and bob's chat plus one row of each user-owned table, written as system work."""
    async with uow_factory() as uow:
        for owner in OWNERS:
            await uow.users.ensure(owner, is_admin=False, now=NOW)
        for table in metadata.sorted_tables:
            if table.name in EXISTING:
                for owner in OWNERS:
                    await uow.connection.execute(insert(table).values(row_of(table, owner)))
        await uow.commit()


async def test_the_suite_connects_as_a_role_that_cannot_bypass_row_level_security(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    async with uow_factory() as uow:
        role = (await uow.connection.execute(text("SELECT current_user"))).scalar_one()
    assert role == APP_ROLE
    assert await uow_factory.row_level_security_bypassed() is False


async def test_the_migration_forces_an_owner_policy_on_every_table_with_a_user(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    tables_with_a_user = text(
        "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, "
        "EXISTS (SELECT FROM pg_policies p "
        "        WHERE p.tablename = c.relname AND p.policyname = c.relname || '_owner') "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN information_schema.columns i ON i.table_schema = n.nspname AND i.table_name = c.relname "
        "WHERE n.nspname = current_schema() AND c.relkind = 'r' AND i.column_name = 'user_id'"
    )
    async with uow_factory() as uow:
        found = {
            name: (enabled, forced, policy)
            for name, enabled, forced, policy in await uow.connection.execute(tables_with_a_user)
        }
    owned = {name: flags for name, flags in found.items() if name not in SYSTEM_TABLES_WITH_A_USER}
    assert set(owned) == set(EXISTING)
    assert owned == dict.fromkeys(EXISTING, (True, True, True))


@pytest.mark.parametrize("table_name", EXISTING)
async def test_a_query_without_an_owner_filter_returns_only_the_callers_rows(
    uow_factory: SqlUnitOfWorkFactory, rows_of_both: None, table_name: str
) -> None:
    table = metadata.tables[table_name]
    everything = select(table.c.user_id)
    seen = {}
    for owner in OWNERS:
        async with uow_factory(user_id=owner) as uow:
            seen[owner] = list((await uow.connection.execute(everything)).scalars())
            await uow.commit()
            # A unit of work keeps its user across commits: the next transaction is still scoped.
            seen[f"{owner} after commit"] = list((await uow.connection.execute(everything)).scalars())
    async with uow_factory() as uow:
        seen["system"] = sorted((await uow.connection.execute(everything)).scalars())
    assert seen == {
        "alice": ["alice"],
        "alice after commit": ["alice"],
        "bob": ["bob"],
        "bob after commit": ["bob"],
        "system": ["alice", "bob"],
    }


@pytest.mark.parametrize("table_name", EXISTING)
async def test_inserting_a_row_for_another_user_is_refused(
    uow_factory: SqlUnitOfWorkFactory, rows_of_both: None, table_name: str
) -> None:
    table = metadata.tables[table_name]
    intruding = {**row_of(table, "bob"), "user_id": "bob"}
    for column in table.primary_key.columns:
        if column.type.python_type is str:
            intruding[column.name] = f"{intruding[column.name]}-2"
    with pytest.raises(DBAPIError, match="row-level security"):
        async with uow_factory(user_id="alice") as uow:
            await uow.connection.execute(insert(table).values(intruding))
            await uow.commit()
    async with uow_factory() as uow:
        count = (await uow.connection.execute(select(func.count()).select_from(table))).scalar_one()
    assert count == len(OWNERS)


@pytest.mark.parametrize("table_name", EXISTING)
async def test_unfiltered_updates_and_deletes_touch_only_the_callers_rows(
    uow_factory: SqlUnitOfWorkFactory, rows_of_both: None, table_name: str
) -> None:
    table = metadata.tables[table_name]
    async with uow_factory(user_id="alice") as uow:
        updated = (await uow.connection.execute(update(table).values(user_id=table.c.user_id))).rowcount
        deleted = (await uow.connection.execute(delete(table))).rowcount
        await uow.commit()
    async with uow_factory() as uow:
        left = list((await uow.connection.execute(select(table.c.user_id))).scalars())
    assert (updated, deleted, left) == (1, 1, ["bob"])


@pytest.mark.parametrize("table_name", EXISTING)
async def test_giving_a_row_away_to_another_user_is_refused(
    uow_factory: SqlUnitOfWorkFactory, rows_of_both: None, table_name: str
) -> None:
    table = metadata.tables[table_name]
    with pytest.raises(DBAPIError, match="row-level security"):
        async with uow_factory(user_id="alice") as uow:
            await uow.connection.execute(update(table).values(user_id="bob"))
    async with uow_factory() as uow:
        owners = sorted((await uow.connection.execute(select(table.c.user_id))).scalars())
    assert owners == ["alice", "bob"]


async def test_a_unit_of_work_tells_postgres_whether_it_is_system_work(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    context = text("SELECT current_setting('app.user_id', true), current_setting('app.system', true)")
    async with uow_factory(user_id="alice") as uow:
        acting = tuple((await uow.connection.execute(context)).one())
    async with uow_factory() as uow:
        system = tuple((await uow.connection.execute(context)).one())
    assert (acting, system) == (("alice", "off"), ("", "on"))


async def test_outside_a_unit_of_work_a_connection_sees_no_users_rows(
    engine: AsyncEngine, uow_factory: SqlUnitOfWorkFactory, rows_of_both: None
) -> None:
    # A connection that set nothing (a forgotten code path) must fail closed, not open.
    table = metadata.tables["chats"]
    async with engine.connect() as conn:
        seen = list((await conn.execute(select(table.c.id))).scalars())
    assert seen == []


async def test_readiness_fails_when_the_database_role_bypasses_row_level_security(postgres_url: str) -> None:
    as_superuser = make_url(postgres_admin_url()).set(database=make_url(postgres_url).database)
    checks = {}
    for who, url in [
        ("app", postgres_url),
        ("superuser", as_superuser.render_as_string(hide_password=False)),
    ]:
        container = build_container(settings_for(url))
        try:
            checks[who] = await container.readiness()
        finally:
            await container.aclose()
    assert checks["app"] == {"database": True, "migrations": True}
    assert checks["superuser"] == {"database": True, "migrations": True, "row_level_security": False}


async def test_readiness_reports_an_unreachable_database_as_such_not_as_row_level_security(
    postgres_url: str,
) -> None:
    """The role check runs on its own connection; when that one cannot connect, it is the database."""
    unreachable = make_url(postgres_url).set(host="127.0.0.1", port=free_port())
    container = build_container(settings_for(postgres_url))
    dead_engine = create_engine(settings_for(unreachable.render_as_string(hide_password=False)))
    try:
        cut_off = dataclasses.replace(container, uow=SqlUnitOfWorkFactory(dead_engine))
        checks = await cut_off.readiness()
    finally:
        await dead_engine.dispose()
        await container.aclose()
    assert checks == {"database": False, "migrations": False}


async def test_downgrading_removes_the_policies_and_upgrading_restores_them(
    postgres_url: str, uow_factory: SqlUnitOfWorkFactory
) -> None:
    enabled = text(
        "SELECT bool_or(relrowsecurity), count(p.policyname) FROM pg_class c "
        "LEFT JOIN pg_policies p ON p.tablename = c.relname WHERE c.relname = 'prompt_customizations'"
    )

    def downgrade(conn: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, "0001")

    async with uow_factory() as uow:
        await uow.connection.run_sync(downgrade)
        await uow.commit()
    async with uow_factory() as uow:
        after_downgrade = tuple((await uow.connection.execute(enabled)).one())
    await upgrade_to_head(postgres_url)
    async with uow_factory() as uow:
        after_upgrade = tuple((await uow.connection.execute(enabled)).one())
    assert (after_downgrade, after_upgrade) == ((False, 0), (True, 1))
