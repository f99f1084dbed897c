"""Fixtures over ``database_url`` (from tests/conftest.py): settings, an engine, a unit-of-work factory."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from chatserver.config import Settings
from chatserver.storage.sql import SqlUnitOfWorkFactory, create_engine
from tests.support.builders import NOW, chat
from tests.support.databases import settings_for


@pytest.fixture
def settings(database_url: str) -> Settings:
    return settings_for(database_url)


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings)
    yield engine
    await engine.dispose()


@pytest.fixture
def uow_factory(engine: AsyncEngine) -> SqlUnitOfWorkFactory:
    return SqlUnitOfWorkFactory(engine)


@pytest.fixture
async def users(uow_factory: SqlUnitOfWorkFactory) -> tuple[str, str]:
    """Two users, alice and bob, for the many tests about who sees what."""
    async with uow_factory() as uow:
        for user_id in ("alice", "bob"):
            await uow.users.ensure(user_id, is_admin=False, now=NOW)
        await uow.commit()
    return "alice", "bob"


@pytest.fixture
async def alices_chat(uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]) -> None:
    """Alice's chat ``c1`` with the ``helper`` agent, no turn yet."""
    async with uow_factory(user_id="alice") as uow:
        await uow.chats.create_if_absent(chat("c1", "alice"))
        await uow.commit()
