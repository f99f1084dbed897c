"""The per-user run limit on fakes: past ``max_runs_per_user`` queued or running runs, a new run of
that user is refused (nothing stored), while other users' runs start as usual."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from chatserver.agents.cache import AgentCache
from chatserver.agents.factory import AgentFactory
from chatserver.agents.registry import ModelRegistry
from chatserver.agents.tools import ToolRegistry
from chatserver.config import Settings
from chatserver.domain import AgentConfig, StartRun
from chatserver.errors import NotFound, RateLimited, TooManyRuns
from chatserver.services.agent_loader import AgentLoader
from chatserver.services.runs import RunHandle
from chatserver.services.turn_policy import TurnPolicy
from chatserver.services.user_starts import UserStarts
from tests.unit.fakes import FakeClock, FakeUnitOfWorkFactory
from tests.unit.services.runs import Runs, build_runs

LIMIT = 3


@pytest.fixture
def runs() -> Runs:
    settings = Settings(database_url="sqlite+aiosqlite:///:memory:")
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    uow = FakeUnitOfWorkFactory()
    loader = AgentLoader(
        uow, AgentFactory(ModelRegistry(settings), ToolRegistry(clock)), AgentCache(10, 900, clock)
    )
    policy = TurnPolicy(
        history_window=50,
        max_message_chars=1000,
        model_timeout_seconds=30.0,
        max_model_requests=5,
        max_runs_per_user=LIMIT,
    )
    uow.store.agents["assistant"] = AgentConfig("assistant", "echo", "Base prompt.")
    return build_runs(uow, loader, clock, policy)


async def start(runs: Runs, user: str, message: str, chat_id: str | None) -> RunHandle:
    return await runs.service.start(StartRun(user, "assistant", message, chat_id=chat_id))


async def at_the_limit(runs: Runs, user: str = "ann") -> list[RunHandle]:
    """``LIMIT`` runs of ``user``: one running, the rest queued behind it on the same chat."""
    return [await start(runs, user, f"/sleep 20000 run {i}", "busy-chat") for i in range(LIMIT)]


async def release(runs: Runs, user: str, held: list[RunHandle]) -> None:
    """Cancel the runs, queued ones first (so that none starts when the one before it ends)."""
    for handle in reversed(held):
        if not (await runs.service.get(user, handle.run.id)).ended:
            await runs.service.cancel(user, handle.run.id)
    await runs.executor.aclose(0)


class TestTheLimit:
    async def test_a_user_with_the_most_runs_queued_or_running_is_refused_with_a_retry_hint(
        self, runs: Runs
    ) -> None:
        held = await at_the_limit(runs)
        assert [handle.run.status for handle in held] == ["running"] + ["queued"] * (LIMIT - 1)
        for chat_id in ("busy-chat", "another-chat", None):
            with pytest.raises(TooManyRuns) as refused:
                await start(runs, "ann", "one more", chat_id)
            assert isinstance(refused.value, RateLimited)
            assert refused.value.retry_after_seconds >= 1
        listed = await runs.service.list("ann", "busy-chat", status=None, limit=50, before=None)
        assert len(listed) == LIMIT, "nothing of the refused runs was stored"
        with pytest.raises(NotFound):
            await runs.service.list("ann", "another-chat", status=None, limit=50, before=None)
        await release(runs, "ann", held)

    async def test_another_users_turn_starts_and_ends_while_one_user_is_at_the_limit(
        self, runs: Runs
    ) -> None:
        held = await at_the_limit(runs, "ann")
        answered = await asyncio.wait_for((await start(runs, "bob", "hello", "bobs-chat")).outcome(), 5)
        assert answered.kind == "done" and answered.data["response"] == "echo: hello"
        await release(runs, "ann", held)

    async def test_a_run_that_ends_makes_room_for_the_next(self, runs: Runs) -> None:
        held = await at_the_limit(runs)
        await runs.service.cancel("ann", held[-1].run.id)
        again = await start(runs, "ann", "now there is room", "other-chat")
        assert (await asyncio.wait_for(again.outcome(), 5)).data["response"] == "echo: now there is room"
        await release(runs, "ann", held)

    async def test_concurrent_starts_past_the_limit_admit_exactly_the_limit(self, runs: Runs) -> None:
        attempts = [start(runs, "cy", "/sleep 20000 race", f"chat-{i}") for i in range(LIMIT + 4)]
        results = await asyncio.gather(*attempts, return_exceptions=True)
        assert sum(isinstance(result, RunHandle) for result in results) == LIMIT
        assert sum(isinstance(result, TooManyRuns) for result in results) == 4
        await runs.executor.aclose(0)


class TestStartsInProcess:
    async def test_a_users_starts_run_one_at_a_time_and_one_past_the_limit_waiting_is_refused_at_once(
        self,
    ) -> None:
        starts = UserStarts(2)
        inside: list[str] = []
        release = asyncio.Event()

        async def start_of(user: str) -> None:
            async with starts.turn(user):
                inside.append(user)
                await release.wait()
                inside.remove(user)

        first = asyncio.create_task(start_of("ann"))
        second = asyncio.create_task(start_of("ann"))
        others = asyncio.create_task(start_of("bob"))
        await asyncio.sleep(0.01)
        assert sorted(inside) == ["ann", "bob"], "ann's second start waits; bob's does not"
        with pytest.raises(TooManyRuns):
            async with starts.turn("ann"):
                pass  # pragma: no cover - refused before the block
        release.set()
        await asyncio.wait_for(asyncio.gather(first, second, others), 5)
        async with starts.turn("ann"):
            pass  # free again
