"""A user's data as a whole on both databases: export pages hold the owner's rows only, by id."""

from __future__ import annotations

from chatserver.storage.protocols import EXPORT_SECTIONS
from chatserver.storage.sql import SqlUnitOfWorkFactory
from tests.support.user_rows import populate


async def test_every_export_section_holds_the_owners_rows_and_nobody_elses(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    alices_chat = await populate(uow_factory, "alice")
    await populate(uow_factory, "bob")
    async with uow_factory(user_id="alice") as uow:
        pages = {
            section: await uow.user_data.export_page(
                "alice",
                section,
                after=None,
                limit=100,
                chat_id=alices_chat if section == "messages" else None,
            )
            for section in EXPORT_SECTIONS
        }
    assert {section: len(rows) for section, rows in pages.items()} == {
        "chats": 1,
        "messages": 3,
        "customizations": 1,
        "memories": 1,
        "sessions": 1,
        "runs": 1,
        "events": 1,
        "usage": 1,
    }
    assert all(row["user_id"] == "alice" for rows in pages.values() for row in rows)
    assert pages["chats"][0]["created_at"].startswith("2025-01-01T12:00:00")
    assert "lease_owner" not in pages["runs"][0]


async def test_export_pages_follow_one_another_by_id_without_gaps(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    chat_id = await populate(uow_factory, "alice", messages=5)
    contents: list[str] = []
    after = None
    async with uow_factory(user_id="alice") as uow:
        while page := await uow.user_data.export_page(
            "alice", "messages", after=after, limit=2, chat_id=chat_id
        ):
            contents += [row["content"] for row in page]
            after = page[-1]["id"]
    assert contents == [f"message {n}" for n in range(5)]
