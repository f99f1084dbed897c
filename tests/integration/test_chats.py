"""Chats: created once under races, owned by one user, turns counted, listed newest first by keyset."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from chatserver.domain import Chat, NewMessage
from chatserver.domain.chats import ChatChange, ChatFilters
from chatserver.storage.sql import SqlUnitOfWorkFactory
from tests.support.builders import NOW, at, chat, session


async def _create(uow_factory: SqlUnitOfWorkFactory, *chats: Chat) -> list[bool]:
    async with uow_factory() as uow:
        created = [await uow.chats.create_if_absent(c) for c in chats]
        await uow.commit()
    return created


async def test_a_chat_is_created_once_and_read_back_by_its_owner(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    created = await _create(uow_factory, chat("c1", "alice"), chat("c1", "alice", title="again"))
    async with uow_factory(user_id="alice") as uow:
        assert await uow.chats.get("alice", "c1") == chat("c1", "alice")
    assert created == [True, False]


async def test_a_chat_id_another_user_has_names_a_chat_of_the_callers_own(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    created = await _create(uow_factory, chat("c1", "alice"), chat("c1", "bob", title="bob's"))
    async with uow_factory(user_id="bob") as uow:
        bobs = await uow.chats.get("bob", "c1")
        listed = await uow.chats.list("bob", limit=10, before=None)
    async with uow_factory(user_id="alice") as uow:
        alices = await uow.chats.get("alice", "c1")
    assert created == [True, True]
    assert (bobs, alices) == (chat("c1", "bob", title="bob's"), chat("c1", "alice"))
    assert listed == [bobs]


async def test_deleting_a_chat_leaves_another_users_chat_of_the_same_id_and_its_messages(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    await _create(uow_factory, chat("c1", "alice"), chat("c1", "bob"))
    for user in ("alice", "bob"):
        async with uow_factory(user_id=user) as uow:
            await uow.messages.add(user, "c1", 1, [NewMessage("user", f"{user} says hi")], now=NOW)
            await uow.commit()
    async with uow_factory(user_id="bob") as uow:
        deleted = await uow.chats.delete("bob", "c1")
        await uow.commit()
    async with uow_factory(user_id="alice") as uow:
        kept = await uow.chats.get("alice", "c1")
        page = await uow.messages.page("alice", "c1", limit=10, before=None)
    assert deleted is True and kept == replace(chat("c1", "alice"), active_message_id=page[0].id)
    assert [m.content for m in page] == ["alice says hi"]


async def test_racing_first_requests_create_the_chat_exactly_once(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    async def create() -> bool:
        async with uow_factory(user_id="alice") as uow:
            created = await uow.chats.create_if_absent(chat("raced", "alice"))
            await uow.commit()
            return created

    results = await asyncio.wait_for(asyncio.gather(*(create() for _ in range(8))), timeout=30)
    assert sorted(results) == [False] * 7 + [True]


async def test_claiming_turns_counts_them_and_keeps_the_first_title(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    await _create(uow_factory, chat("c1", "alice"))
    async with uow_factory(user_id="alice") as uow:
        first = await uow.chats.claim_turn("alice", "c1", title="Hello there", now=at(1))
        second = await uow.chats.claim_turn("alice", "c1", title="Something else", now=at(2))
        await uow.commit()
    assert first == chat("c1", "alice", title="Hello there", turn_count=1, updated_at=at(1))
    assert second == chat("c1", "alice", title="Hello there", turn_count=2, updated_at=at(2))


async def test_a_long_first_message_is_cut_to_a_200_character_title(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    await _create(uow_factory, chat("c1", "alice"))
    async with uow_factory(user_id="alice") as uow:
        claimed = await uow.chats.claim_turn("alice", "c1", title="x" * 500, now=at(1))
        await uow.commit()
    assert claimed is not None and claimed.title == "x" * 200


async def test_nobody_claims_a_turn_on_another_users_chat(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    await _create(uow_factory, chat("c1", "alice"))
    async with uow_factory(user_id="bob") as uow:
        claimed = await uow.chats.claim_turn("bob", "c1", title="mine now", now=at(1))
        missing = await uow.chats.claim_turn("bob", "no-such-chat", title="t", now=at(1))
        await uow.commit()
    async with uow_factory(user_id="alice") as uow:
        untouched = await uow.chats.get("alice", "c1")
    assert (claimed, missing) == (None, None)
    assert untouched == chat("c1", "alice")


async def test_chats_are_listed_newest_first_in_keyset_pages_of_the_owners_chats_only(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    # Two chats share an updated_at: the id breaks the tie, so no page skips or repeats one.
    mine = [chat(f"a{i}", "alice", updated_at=at(i // 2)) for i in range(5)]
    await _create(uow_factory, *mine, chat("b0", "bob", updated_at=at(10)))
    pages: list[list[str]] = []
    before = None
    async with uow_factory(user_id="alice") as uow:
        while page := await uow.chats.list("alice", limit=2, before=before):
            pages.append([c.id for c in page])
            before = (page[-1].updated_at, page[-1].id)
    assert pages == [["a4", "a3"], ["a2", "a1"], ["a0"]]


async def test_deleting_a_chat_takes_its_messages_and_sessions_with_it(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    await _create(uow_factory, chat("c1", "alice"))
    async with uow_factory(user_id="alice") as uow:
        await uow.messages.add("alice", "c1", 1, [NewMessage("user", "hi")], now=NOW)
        await uow.sessions.add(session("alice", "c1", id="s1"))
        deleted = [await uow.chats.delete("alice", "c1"), await uow.chats.delete("alice", "c1")]
        left = (
            await uow.messages.page("alice", "c1", limit=10, before=None),
            await uow.sessions.get("alice", "s1"),
        )
    assert deleted == [True, False]
    assert left == ([], None)


async def test_nobody_deletes_another_users_chat(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    await _create(uow_factory, chat("c1", "alice"))
    async with uow_factory(user_id="bob") as uow:
        deleted = await uow.chats.delete("bob", "c1")
        await uow.commit()
    async with uow_factory(user_id="alice") as uow:
        assert await uow.chats.get("alice", "c1") is not None
    assert deleted is False


async def test_a_generated_title_replaces_only_the_title_the_first_message_gave(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    await _create(
        uow_factory, replace(chat("c1", "alice"), title="hello"), replace(chat("c2", "alice"), title="Mine")
    )
    async with uow_factory(user_id="alice") as uow:
        fresh = await uow.chats.retitle("alice", "c1", was="hello", title="Greeting")
        renamed = await uow.chats.retitle("alice", "c2", was="hello", title="Greeting")
        theirs = await uow.chats.retitle("bob", "c1", was="hello", title="Greeting")
        await uow.commit()
    async with uow_factory(user_id="alice") as uow:
        titles = [(await uow.chats.get("alice", c)) for c in ("c1", "c2")]
    assert (fresh, renamed, theirs) == (True, False, False)
    assert [c.title for c in titles if c] == ["Greeting", "Mine"]


async def test_chats_are_changed_and_filtered_by_their_flags(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    await _create(uow_factory, chat("c1", "alice"), chat("c2", "alice"), chat("c1", "bob"))
    async with uow_factory(user_id="alice") as uow:
        pinned = await uow.chats.change("alice", "c1", ChatChange(title="Top", pinned=True))
        await uow.chats.change("alice", "c2", ChatChange(archived=True))
        not_mine = await uow.chats.change("bob", "c2", ChatChange(pinned=True))
        await uow.commit()
    async with uow_factory(user_id="alice") as uow:
        only_pinned = await uow.chats.list("alice", limit=10, before=None, filters=ChatFilters(pinned=True))
        kept = await uow.chats.list("alice", limit=10, before=None, filters=ChatFilters(archived=False))
    assert pinned is not None and (pinned.title, pinned.pinned, pinned.archived) == ("Top", True, False)
    assert not_mine is None
    assert [c.id for c in only_pinned] == ["c1"] and [c.id for c in kept] == ["c1"]
