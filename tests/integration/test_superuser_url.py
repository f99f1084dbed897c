"""PostgreSQL given a role that bypasses row-level security: requests still run under the policies.

The server is started through the superuser URL of a migrated database; it creates an unprivileged
role and serves as it, so a query that forgets the owner filter still sees only the caller's rows,
and readiness passes.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from chatserver.container import Container, build_container
from chatserver.storage.sql.tables import chats
from tests.support.builders import NOW, chat
from tests.support.databases import postgres_admin_url, settings_for

pytestmark = pytest.mark.postgres


CREATE_BYPASS_ROLE = """
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cs_bypass') THEN
        CREATE ROLE cs_bypass LOGIN BYPASSRLS NOSUPERUSER NOCREATEROLE PASSWORD 'x';
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$
"""


def superuser_url(postgres_url: str) -> str:
    url = make_url(postgres_admin_url()).set(database=make_url(postgres_url).database)
    return url.render_as_string(hide_password=False)


@pytest.fixture
async def started(postgres_url: str) -> AsyncIterator[Container]:
    container = build_container(settings_for(superuser_url(postgres_url), background_tasks=False))
    await container.start()
    yield container
    await container.aclose()


async def test_a_superuser_url_serves_as_a_role_under_the_policies_and_is_ready(started: Container) -> None:
    async with started.uow() as uow:
        for owner in ("alice", "bob"):
            await uow.users.ensure(owner, is_admin=False, now=NOW)
            await uow.chats.create_if_absent(chat(f"{owner}-chat", owner))
        await uow.commit()
    async with started.uow(user_id="alice") as uow:
        # No owner filter on purpose: only the policies keep bob's chat out.
        seen = list((await uow.connection.execute(select(chats.c.id))).scalars())
        role = (await uow.connection.execute(text("SELECT current_user"))).scalar_one()
    assert seen == ["alice-chat"]
    assert role == "chatserver_rls"
    assert await started.readiness() == {"database": True, "migrations": True}


async def test_a_second_start_reuses_the_role(postgres_url: str, started: Container) -> None:
    again = build_container(settings_for(superuser_url(postgres_url), background_tasks=False))
    await again.start()
    try:
        assert await again.readiness() == {"database": True, "migrations": True}
    finally:
        await again.aclose()


async def test_where_no_role_can_be_made_readiness_keeps_failing_and_says_why(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A BYPASSRLS role that may not create roles (nor owns the tables) cannot hand requests on."""
    admin = create_async_engine(superuser_url(postgres_url), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    async with admin.connect() as conn:
        await conn.execute(text(CREATE_BYPASS_ROLE))
        await conn.execute(
            text("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO cs_bypass")
        )
    await admin.dispose()
    url = make_url(postgres_url).set(username="cs_bypass", password="x").render_as_string(hide_password=False)
    container = build_container(settings_for(url, background_tasks=False, database_app_role="cs_never_made"))
    with caplog.at_level(logging.ERROR, logger="chatserver"):
        await container.start()
    try:
        checks = await container.readiness()
    finally:
        await container.aclose()
    assert checks == {"database": True, "migrations": True, "row_level_security": False}
    assert "cannot hand requests to the role 'cs_never_made'" in caplog.text
