"""Retention on both databases: rows past their cutoff go, a bounded batch a transaction, the rest stay."""

from __future__ import annotations

from datetime import timedelta

from chatserver.agents.cache import AgentCache
from chatserver.domain import NewEvent, NewMessage, Run, RunOutcome, TurnUsage
from chatserver.services.background_tasks import BackgroundTaskService, MaintenancePolicy
from chatserver.services.ids import sortable_id
from chatserver.storage.protocols import RetentionCutoffs
from chatserver.storage.sql import SqlUnitOfWorkFactory
from chatserver.storage.sql.maintenance import SqlMaintenanceGate
from tests.support.builders import NOW, chat, session
from tests.unit.fakes import FakeClock

OLD = NOW - timedelta(days=100)
CUTOFFS = RetentionCutoffs(chats=NOW - timedelta(days=7), sessions=NOW, runs=NOW, events=NOW)


async def store_chat(
    uow_factory: SqlUnitOfWorkFactory, chat_id: str, *, updated: bool, user_id: str = "alice"
) -> str:
    """A chat of ``user_id``'s with two messages, an ended run and an inactive session."""
    when = NOW if updated else OLD
    async with uow_factory(user_id=user_id) as uow:
        await uow.chats.create_if_absent(chat(chat_id, user_id, updated_at=when))
        await uow.messages.add(
            user_id, chat_id, 1, [NewMessage("user", "a"), NewMessage("assistant", "b")], now=when
        )
        run = Run(sortable_id(when), user_id, chat_id, "helper", "queued", "a", when)
        await uow.runs.add(run)
        ended = RunOutcome(run.id, "r1", "completed", None, TurnUsage())
        await uow.runs.finish(user_id, ended, now=when, fenced=False)
        await uow.sessions.add(session(user_id, chat_id, is_active=False, updated_at=when))
        await uow.commit()
    return chat_id


async def purge_until_done(
    uow_factory: SqlUnitOfWorkFactory, cutoffs: RetentionCutoffs, limit: int
) -> list[int]:
    batches: list[int] = []
    while True:
        async with uow_factory() as uow:
            counts = await uow.retention.purge(cutoffs, limit=limit)
            await uow.commit()
        if not any(counts.values()):
            return batches
        batches.append(sum(counts.values()))


async def test_an_inactive_chat_goes_piecewise_with_everything_under_it_and_a_recent_one_stays(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    old = await store_chat(uow_factory, "old-chat", updated=False)
    recent = await store_chat(uow_factory, "recent-chat", updated=True)
    cutoffs = RetentionCutoffs(chats=NOW - timedelta(days=7), sessions=None, runs=None, events=None)
    batches = await purge_until_done(uow_factory, cutoffs, limit=2)
    async with uow_factory(user_id="alice") as uow:
        kept_old, kept_recent = await uow.chats.get("alice", old), await uow.chats.get("alice", recent)
        recent_messages = await uow.messages.page("alice", recent, limit=10, before=None)
    assert batches == [2, 2, 1]  # 2 messages, the run and the session, then the chat itself
    assert kept_old is None and kept_recent is not None
    assert len(recent_messages) == 2


async def test_an_inactive_chat_goes_and_another_users_recent_chat_of_the_same_id_keeps_everything(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    await store_chat(uow_factory, "shared", updated=False)
    await store_chat(uow_factory, "shared", updated=True, user_id="bob")
    cutoffs = RetentionCutoffs(chats=NOW - timedelta(days=7), sessions=None, runs=None, events=None)
    batches = await purge_until_done(uow_factory, cutoffs, limit=100)
    async with uow_factory(user_id="bob") as uow:
        bobs = await uow.chats.get("bob", "shared")
        messages = await uow.messages.page("bob", "shared", limit=10, before=None)
        runs = await uow.runs.list("bob", "shared", status=None, limit=10, before=None)
        sessions = await uow.sessions.list("bob", agent_name=None, active=None)
    async with uow_factory(user_id="alice") as uow:
        alices = await uow.chats.get("alice", "shared")
    assert batches == [5]  # alice's 2 messages, run, session and chat
    assert alices is None and bobs is not None
    assert (len(messages), len(runs), len(sessions)) == (2, 1, 1)


async def test_ended_runs_inactive_sessions_and_events_go_past_their_cutoff_active_ones_stay(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    await store_chat(uow_factory, "chat-1", updated=False)
    async with uow_factory(user_id="alice") as uow:
        await uow.runs.add(Run(sortable_id(OLD), "alice", "chat-1", "helper", "queued", "q", OLD))
        await uow.sessions.add(session("alice", "chat-1", is_active=True, updated_at=OLD))
        await uow.events.add(NewEvent("chat.turn", user_id="alice"), now=OLD)
        await uow.commit()
    no_chat_retention = RetentionCutoffs(chats=None, sessions=NOW, runs=NOW, events=NOW)
    async with uow_factory() as uow:
        counts = await uow.retention.purge(no_chat_retention, limit=1000)
        await uow.commit()
    async with uow_factory(user_id="alice") as uow:
        active_runs = await uow.runs.active("alice", "chat-1")
        sessions = await uow.sessions.list("alice", agent_name=None, active=None)
    assert counts == {"messages": 0, "runs": 1, "sessions": 1, "chats": 0, "events": 1}
    assert [run.status for run in active_runs] == ["queued"]
    assert [s.is_active for s in sessions] == [True]


async def test_the_sweep_purges_in_batches_of_a_thousand_and_records_what_it_purged(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    async with uow_factory() as uow:
        for n in range(1500):
            await uow.events.add(NewEvent("old.event", data={"n": n}), now=OLD)
        await uow.commit()
    clock = FakeClock(NOW)
    policy = MaintenancePolicy(60.0, 300.0, event_days=30)
    service = BackgroundTaskService(
        uow_factory, SqlMaintenanceGate(uow_factory), AgentCache(1, 1, clock), clock, policy
    )
    purged = await service.purge_once()
    async with uow_factory() as uow:
        receipts = await uow.events.list(type="retention.purged", user_id=None, limit=10, before=None)
        left = await uow.events.list(type="old.event", user_id=None, limit=10, before=None)
    assert purged == {"messages": 0, "runs": 0, "sessions": 0, "chats": 0, "events": 1500}
    assert sorted(event.data["events"] for event in receipts) == [500, 1000]
    assert left == []
