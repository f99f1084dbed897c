"""Searching the caller's chats by title and message text, through each database's full-text index."""

from __future__ import annotations

from dataclasses import replace

from chatserver.domain import NewMessage
from chatserver.domain.chats import ANY_CHAT, ChatChange, ChatFilters, SearchHit
from chatserver.storage.sql import SqlUnitOfWorkFactory
from tests.support.builders import NOW, chat


async def _chat(uow_factory: SqlUnitOfWorkFactory, user: str, chat_id: str, *texts: str) -> None:
    async with uow_factory(user_id=user) as uow:
        await uow.chats.create_if_absent(replace(chat(chat_id, user), title=f"about {chat_id}"))
        await uow.messages.add(user, chat_id, 1, [NewMessage("user", t) for t in texts], now=NOW)
        await uow.commit()


async def _search(
    uow_factory: SqlUnitOfWorkFactory, user: str, query: str, filters: ChatFilters = ANY_CHAT
) -> list[SearchHit]:
    async with uow_factory(user_id=user) as uow:
        return await uow.search.search(user, query, filters, limit=10)


async def test_every_word_must_match_and_the_snippet_shows_the_newest_matching_message(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    await _chat(uow_factory, "alice", "c1", "the red fox", "a red fox runs far away")
    await _chat(uow_factory, "alice", "c2", "a red car")
    hits = await _search(uow_factory, "alice", "fox red")
    assert [(h.chat.id, h.snippet) for h in hits] == [("c1", "a red fox runs far away")]


async def test_titles_match_too_and_nobody_finds_another_users_words(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    await _chat(uow_factory, "alice", "zebra", "nothing to see")
    await _chat(uow_factory, "bob", "b1", "secret zebra words")
    alices = await _search(uow_factory, "alice", "zebra")
    bobs = await _search(uow_factory, "bob", "nothing")
    assert [(h.chat.id, h.snippet) for h in alices] == [("zebra", "about zebra")]
    assert bobs == []


async def test_search_syntax_in_a_query_is_read_as_words(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    await _chat(uow_factory, "alice", "c1", "fox or hound")
    hits = await _search(uow_factory, "alice", 'fox" (hound* -')
    assert await _search(uow_factory, "alice", '"*') == []
    assert [h.chat.id for h in hits] == ["c1"]


async def test_filters_apply_and_a_deleted_chats_messages_are_found_no_more(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    await _chat(uow_factory, "alice", "c1", "shared word")
    await _chat(uow_factory, "alice", "c2", "shared word")
    async with uow_factory(user_id="alice") as uow:
        await uow.chats.change("alice", "c1", ChatChange(archived=True))
        await uow.chats.delete("alice", "c2")
        await uow.commit()
    archived = await _search(uow_factory, "alice", "shared", ChatFilters(archived=True))
    live = await _search(uow_factory, "alice", "shared", ChatFilters(archived=False))
    assert [h.chat.id for h in archived] == ["c1"] and live == []
