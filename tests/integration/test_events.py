"""The audit log: appended, then read newest first with filters and an id cursor."""

from __future__ import annotations

from chatserver.domain import AuditEvent, NewEvent
from chatserver.storage.sql import SqlUnitOfWorkFactory
from tests.support.builders import at


async def _log(uow_factory: SqlUnitOfWorkFactory, *events: NewEvent) -> None:
    async with uow_factory() as uow:
        for i, event in enumerate(events):
            await uow.events.add(event, now=at(i))
        await uow.commit()


EVENTS = [
    NewEvent("chat.turn", user_id="alice", agent_name="helper", chat_id="c1", data={"tokens": 12}),
    NewEvent("agent.updated", data={"name": "helper", "fields": ["model"]}),
    NewEvent("chat.turn", user_id="bob", agent_name="helper", chat_id="c2"),
    NewEvent("chat.turn", user_id="alice", chat_id="c1", data={"tokens": 3}),
]


async def test_events_read_back_newest_first_with_every_field(uow_factory: SqlUnitOfWorkFactory) -> None:
    await _log(uow_factory, *EVENTS)
    async with uow_factory() as uow:
        listed = await uow.events.list(type=None, user_id=None, limit=10, before=None)
    oldest_first = listed[::-1]
    assert [e.id for e in oldest_first] == sorted({e.id for e in oldest_first})
    assert oldest_first == [
        AuditEvent(stored.id, new.type, new.user_id, new.agent_name, new.chat_id, new.data, at(i))
        for i, (new, stored) in enumerate(zip(EVENTS, oldest_first, strict=True))
    ]


async def test_events_filter_by_type_and_user(uow_factory: SqlUnitOfWorkFactory) -> None:
    await _log(uow_factory, *EVENTS)
    async with uow_factory() as uow:
        turns = await uow.events.list(type="chat.turn", user_id=None, limit=10, before=None)
        alices = await uow.events.list(type=None, user_id="alice", limit=10, before=None)
        both = await uow.events.list(type="agent.updated", user_id="alice", limit=10, before=None)
    assert [e.user_id for e in turns] == ["alice", "bob", "alice"]
    assert [e.data for e in alices] == [{"tokens": 3}, {"tokens": 12}]
    assert both == []


async def test_events_page_backwards_by_id(uow_factory: SqlUnitOfWorkFactory) -> None:
    await _log(uow_factory, *EVENTS)
    pages: list[list[str]] = []
    before = None
    async with uow_factory() as uow:
        while page := await uow.events.list(type=None, user_id=None, limit=3, before=before):
            pages.append([e.type for e in page])
            before = page[-1].id
    assert pages == [["chat.turn", "chat.turn", "agent.updated"], ["chat.turn"]]
