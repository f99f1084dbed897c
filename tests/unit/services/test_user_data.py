"""UserDataService on fakes: the export is one JSON document of the caller's, written page by page."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from chatserver.errors import NotFound
from chatserver.services.user_data import UserDataService
from tests.support.builders import NOW
from tests.support.user_rows import populate
from tests.unit.fakes import FakeClock, FakeUnitOfWorkFactory


async def exported(service: UserDataService, user_id: str) -> dict[str, object]:
    chunks = [chunk async for chunk in await service.export(user_id)]
    return dict(json.loads(b"".join(chunks)))


@pytest.fixture
async def uow() -> FakeUnitOfWorkFactory:
    uow = FakeUnitOfWorkFactory()
    async with uow() as work:
        for user_id in ("alice", "bob"):
            await work.users.ensure(user_id, is_admin=False, now=NOW)
        await work.commit()
    await populate(uow, "alice", messages=5)
    await populate(uow, "bob")
    return uow


async def test_the_export_nests_each_chats_messages_across_pages(uow: FakeUnitOfWorkFactory) -> None:
    service = UserDataService(uow, FakeClock(datetime(2026, 1, 1, tzinfo=UTC)), page_rows=2)
    document = await exported(service, "alice")
    [chat] = document["chats"]  # type: ignore[misc]
    assert [m["content"] for m in chat["messages"]] == [f"message {n}" for n in range(5)]
    assert document["user"] == {"id": "alice", "name": None, "is_admin": False, "created_at": NOW.isoformat()}
    assert document["exported_at"] == "2026-01-01T00:00:00+00:00"


async def test_the_export_holds_every_section_of_the_caller_only(uow: FakeUnitOfWorkFactory) -> None:
    document = await exported(UserDataService(uow, FakeClock(NOW)), "alice")
    sections = ("customizations", "memories", "sessions", "runs", "events")
    assert {name: len(document[name]) for name in sections} == dict.fromkeys(sections, 1)  # type: ignore[arg-type]
    assert "bob" not in json.dumps(document)


async def test_exporting_an_unknown_user_fails_before_anything_is_written(uow: FakeUnitOfWorkFactory) -> None:
    with pytest.raises(NotFound):
        await UserDataService(uow, FakeClock(NOW)).export("nobody")
