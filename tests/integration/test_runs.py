"""Run records on both databases: a chat's queue, one running run per chat, leases, idempotency keys."""

from __future__ import annotations

import asyncio

import pytest

from chatserver.domain import Run, RunOutcome, TurnUsage
from chatserver.services.ids import sortable_id
from chatserver.storage.sql import SqlUnitOfWorkFactory
from tests.support.builders import at, chat

LEASE = at(30)


def run(
    chat_id: str | None = "c1", user_id: str = "alice", *, key: str | None = None, seconds: float = 0
) -> Run:
    created = at(seconds)
    return Run(sortable_id(created), user_id, chat_id, "helper", "queued", "hi", created, idempotency_key=key)


@pytest.fixture
async def alices_chat(uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]) -> str:
    async with uow_factory(user_id="alice") as uow:
        await uow.chats.create_if_absent(chat("c1", "alice"))
        await uow.commit()
    return "c1"


async def add(uow_factory: SqlUnitOfWorkFactory, *runs: Run) -> None:
    async with uow_factory(user_id=runs[0].user_id) as uow:
        for r in runs:
            assert await uow.runs.add(r)
        await uow.commit()


async def claim(uow_factory: SqlUnitOfWorkFactory, owner: str = "r1", now: float = 1) -> Run | None:
    async with uow_factory(user_id="alice") as uow:
        claimed = await uow.runs.claim_next("alice", "c1", owner=owner, now=at(now), lease_until=at(now + 30))
        await uow.commit()
    return claimed


async def end(uow_factory: SqlUnitOfWorkFactory, claimed: Run, owner: str = "r1") -> bool:
    outcome = RunOutcome(claimed.id, owner, "completed", "echo", TurnUsage(1, 2, 1))
    async with uow_factory(user_id="alice") as uow:
        ended = await uow.runs.finish("alice", outcome, now=at(5))
        await uow.commit()
    return ended


@pytest.mark.usefixtures("alices_chat")
async def test_queued_runs_start_one_at_a_time_oldest_first(uow_factory: SqlUnitOfWorkFactory) -> None:
    queued = [run(seconds=0) for _ in range(5)]
    await add(uow_factory, *queued)
    started = []
    for _ in queued:
        claimed = await claim(uow_factory)
        assert claimed is not None and claimed.status == "running"
        assert await claim(uow_factory) is None  # one runs: the chat is busy
        started.append(claimed.id)
        assert await end(uow_factory, claimed)
    assert started == [r.id for r in queued]
    assert await claim(uow_factory) is None


@pytest.mark.usefixtures("alices_chat")
async def test_replicas_racing_for_a_chat_start_exactly_one_run(uow_factory: SqlUnitOfWorkFactory) -> None:
    await add(uow_factory, *[run() for _ in range(3)])
    claimed = await asyncio.gather(
        *[claim(uow_factory, owner=f"r{i}") for i in range(6)], return_exceptions=True
    )
    started = [c for c in claimed if isinstance(c, Run)]
    assert len(started) == 1


@pytest.mark.usefixtures("alices_chat")
async def test_only_the_lease_holder_ends_a_running_run(uow_factory: SqlUnitOfWorkFactory) -> None:
    await add(uow_factory, run())
    claimed = await claim(uow_factory, owner="r1")
    assert claimed is not None
    assert not await end(uow_factory, claimed, owner="r2")
    assert await end(uow_factory, claimed, owner="r1")
    assert not await end(uow_factory, claimed, owner="r1")  # ended already
    async with uow_factory(user_id="alice") as uow:
        stored = await uow.runs.get("alice", claimed.id)
    assert stored is not None
    assert (stored.status, stored.model, stored.usage, stored.finished_at) == (
        "completed",
        "echo",
        TurnUsage(1, 2, 1),
        at(5),
    )


@pytest.mark.usefixtures("alices_chat")
async def test_renewing_keeps_the_holders_runs_and_reports_cancel_requests(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    await add(uow_factory, run())
    claimed = await claim(uow_factory, owner="r1")
    assert claimed is not None
    async with uow_factory(user_id="alice") as uow:
        await uow.runs.request_cancel("alice", claimed.id)
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.runs.renew("r2", [claimed.id], lease_until=at(60)) == []
        assert await uow.runs.renew("r1", [claimed.id], lease_until=at(60)) == [(claimed.id, True)]
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.runs.expire(now=at(59)) == []
        await uow.commit()


@pytest.mark.usefixtures("alices_chat")
async def test_a_run_whose_lease_expired_is_interrupted_and_its_chat_can_start_the_next(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    first, second = run(seconds=0), run(seconds=1)
    await add(uow_factory, first, second)
    assert (await claim(uow_factory, owner="dead")) is not None
    async with uow_factory() as uow:
        assert await uow.runs.startable() == []
        expired = await uow.runs.expire(now=at(31 + 1))
        assert await uow.runs.startable() == [("alice", "c1")]
        await uow.commit()
    assert [(r.id, r.status, r.error and r.error.code) for r in expired] == [
        (first.id, "interrupted", "server_restarted")
    ]
    claimed = await claim(uow_factory, owner="alive", now=40)
    assert claimed is not None and claimed.id == second.id


@pytest.mark.usefixtures("alices_chat")
async def test_a_queued_run_ends_unfenced_but_a_running_one_does_not(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    first, second = run(seconds=0), run(seconds=1)
    await add(uow_factory, first, second)
    claimed = await claim(uow_factory)
    assert claimed is not None
    async with uow_factory(user_id="alice") as uow:
        cancel = RunOutcome(second.id, "anyone", "cancelled", None, TurnUsage())
        assert await uow.runs.finish("alice", cancel, now=at(2), fenced=False)
        running = RunOutcome(first.id, "anyone", "cancelled", None, TurnUsage())
        assert not await uow.runs.finish("alice", running, now=at(2), fenced=False)
        await uow.commit()


@pytest.mark.usefixtures("alices_chat")
async def test_an_idempotency_key_is_taken_once_per_user(uow_factory: SqlUnitOfWorkFactory) -> None:
    original = run(key="k1")
    await add(uow_factory, original)
    async with uow_factory(user_id="alice") as uow:
        assert not await uow.runs.add(run(key="k1"))
        found = await uow.runs.by_idempotency_key("alice", "k1")
        assert found is not None and found.id == original.id
        await uow.runs.forget_idempotency_key("alice", "k1")
        assert await uow.runs.add(run(key="k1"))
        await uow.commit()
    async with uow_factory(user_id="bob") as uow:
        await uow.chats.create_if_absent(chat("c2", "bob"))
        assert await uow.runs.add(run("c2", "bob", key="k1"))
        assert await uow.runs.get("bob", original.id) is None
        await uow.commit()


@pytest.mark.usefixtures("alices_chat")
async def test_a_chats_runs_are_paged_newest_first_for_their_owner_only(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    runs = [run(seconds=n) for n in range(5)]
    await add(uow_factory, *runs)
    async with uow_factory(user_id="alice") as uow:
        first = await uow.runs.list("alice", "c1", status=None, limit=3, before=None)
        last = first[-1]
        rest = await uow.runs.list("alice", "c1", status=None, limit=3, before=(last.created_at, last.id))
        queued = await uow.runs.list("alice", "c1", status="running", limit=3, before=None)
    async with uow_factory(user_id="bob") as uow:
        foreign = await uow.runs.list("bob", "c1", status=None, limit=10, before=None)
    assert [r.id for r in first + rest] == [r.id for r in reversed(runs)]
    assert queued == [] and foreign == []


async def test_deleting_a_chat_deletes_its_runs(uow_factory: SqlUnitOfWorkFactory, alices_chat: str) -> None:
    queued = run()
    await add(uow_factory, queued)
    async with uow_factory(user_id="alice") as uow:
        assert await uow.chats.delete("alice", "c1")
        await uow.commit()
    async with uow_factory(user_id="alice") as uow:
        assert await uow.runs.get("alice", queued.id) is None


class TestRunsOfAUser:
    @pytest.mark.usefixtures("alices_chat")
    async def test_the_active_count_is_the_users_queued_and_running_runs_in_every_chat_and_none(
        self, uow_factory: SqlUnitOfWorkFactory
    ) -> None:
        queued, running, ended, stateless = run(), run(), run(), run(None)
        await add(uow_factory, queued, running, ended, stateless)
        await add(uow_factory, run(None, "bob"))
        assert await claim(uow_factory) is not None
        cancelled = RunOutcome(ended.id, "r1", "cancelled", None, TurnUsage())
        async with uow_factory(user_id="alice") as uow:
            assert await uow.runs.finish("alice", cancelled, now=at(2), fenced=False)
            await uow.commit()
        async with uow_factory(user_id="alice") as uow:
            assert await uow.runs.count_active("alice") == 3
        async with uow_factory(user_id="bob") as uow:
            assert await uow.runs.count_active("bob") == 1

    async def test_starts_racing_past_a_limit_admit_exactly_the_limit(
        self, uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
    ) -> None:
        limit = 3

        async def start_if_room() -> bool:
            async with uow_factory(user_id="alice") as uow:
                if await uow.runs.count_active("alice") >= limit:
                    return False
                await asyncio.sleep(0.01)  # as a start's other statements take time
                assert await uow.runs.add(run(None))
                await uow.commit()
                return True

        admitted = await asyncio.gather(*[start_if_room() for _ in range(limit + 5)])
        assert admitted.count(True) == limit
        async with uow_factory(user_id="alice") as uow:
            assert await uow.runs.count_active("alice") == limit


class TestDeletingARun:
    @pytest.mark.usefixtures("alices_chat")
    async def test_an_ended_run_is_deleted_for_its_owner_only(
        self, uow_factory: SqlUnitOfWorkFactory
    ) -> None:
        await add(uow_factory, run())
        claimed = await claim(uow_factory)
        assert claimed is not None and await end(uow_factory, claimed)
        async with uow_factory(user_id="bob") as uow:
            assert not await uow.runs.delete_ended("bob", claimed.id)
            await uow.commit()
        async with uow_factory(user_id="alice") as uow:
            assert await uow.runs.delete_ended("alice", claimed.id)
            await uow.commit()
        async with uow_factory(user_id="alice") as uow:
            assert await uow.runs.get("alice", claimed.id) is None
            assert not await uow.runs.delete_ended("alice", claimed.id)

    @pytest.mark.usefixtures("alices_chat")
    async def test_a_run_that_has_not_ended_is_kept(self, uow_factory: SqlUnitOfWorkFactory) -> None:
        queued = run()
        await add(uow_factory, queued)
        async with uow_factory(user_id="alice") as uow:
            assert not await uow.runs.delete_ended("alice", queued.id)
            assert await uow.runs.get("alice", queued.id) is not None
