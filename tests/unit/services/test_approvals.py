"""Tool approvals on fakes with an injected clock: a paused run's undecided calls expire as denied,
a cancelled paused run frees its chat, and every decision is audited and measured."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from chatserver.agents.factory import AgentFactory
from chatserver.agents.registry import ModelRegistry
from chatserver.agents.tools import ToolRegistry
from chatserver.config import Settings
from chatserver.domain import AgentConfig, Run, StartRun
from chatserver.domain.steps import Decision
from chatserver.errors import Conflict
from chatserver.services.agent_loader import AgentLoader
from chatserver.services.approvals import ApprovalService
from tests.unit.services.conftest import World

TIMEOUT = 60.0


@dataclass
class Decisions:
    """The decisions as the metrics hear them."""

    decided: list[tuple[str, float]] = field(default_factory=list)

    def approval_decided(self, decision: str, seconds: float) -> None:
        self.decided.append((decision, seconds))


@pytest.fixture
def approvals(world: World) -> tuple[ApprovalService, Decisions]:
    world.uow.store.agents["careful"] = AgentConfig(
        "careful", "echo", "", tools=("current_time",), tools_requiring_approval=("current_time",)
    )
    settings = Settings(database_url="sqlite+aiosqlite:///:memory:")
    loader = AgentLoader(
        world.uow, AgentFactory(ModelRegistry(settings), ToolRegistry(world.clock)), world.cache
    )
    heard = Decisions()
    service = ApprovalService(
        world.uow,
        loader,
        world.chat.executor,
        world.clock,
        heard,
        timeout_seconds=TIMEOUT,  # type: ignore[arg-type]
    )
    return service, heard


async def pause(world: World, chat_id: str) -> Run:
    handle = await world.chat.service.start(StartRun("ann", "careful", "/tool current_time", chat_id=chat_id))
    outcome = await handle.outcome()
    assert outcome.kind == "approval_required"
    return await world.chat.service.get("ann", handle.run.id)


async def ended(world: World, run_id: str) -> Run:
    for _ in range(200):
        run = await world.chat.service.get("ann", run_id)
        if run.ended:
            return run
        await asyncio.sleep(0.01)
    raise AssertionError(f"run {run_id} did not end: {run}")


def last_answer(world: World, chat_id: str) -> str:
    return [m.content for m in world.uow.store.messages if m.chat_id == chat_id][-1] or ""


class TestUndecidedCallsExpire:
    async def test_a_call_undecided_past_the_timeout_is_denied_and_the_run_goes_on(
        self, world: World, approvals: tuple[ApprovalService, Decisions]
    ) -> None:
        service, heard = approvals
        paused = await pause(world, "c1")
        world.clock.advance(TIMEOUT - 1)
        early = await service.expire_once()
        world.clock.advance(2)
        expired = await service.expire_once()
        run = await ended(world, paused.id)
        kinds = [e.type for e in world.uow.store.events if e.type.startswith("approval.")]
        assert paused.status == "requires_action" and early == 0 and expired == 1
        assert run.status == "completed"
        assert (
            last_answer(world, "c1")
            == "tool current_time returned: denied by the user: the approval timed out"
        )
        assert kinds == ["approval.requested", "approval.expired"]
        assert [d for d, _ in heard.decided] == ["expired"]
        assert heard.decided[0][1] == pytest.approx(TIMEOUT + 1)

    async def test_a_call_expired_cannot_be_decided_afterwards(
        self, world: World, approvals: tuple[ApprovalService, Decisions]
    ) -> None:
        service, _ = approvals
        paused = await pause(world, "c2")
        [pending] = [s for s in await service.steps("ann", paused.id) if s.status == "pending"]
        world.clock.advance(TIMEOUT + 1)
        await service.expire_once()
        await ended(world, paused.id)
        assert pending.tool_call_id is not None
        with pytest.raises(Conflict):
            await service.decide("ann", paused.id, [Decision(pending.tool_call_id, approve=True)])


class TestAPausedRunHoldsItsChat:
    async def test_a_turn_sent_meanwhile_waits_and_runs_once_the_paused_run_is_cancelled(
        self, world: World, approvals: tuple[ApprovalService, Decisions]
    ) -> None:
        paused = await pause(world, "c3")
        queued = await world.chat.service.start(StartRun("ann", "careful", "next", chat_id="c3"))
        waiting = await world.chat.service.get("ann", queued.run.id)
        cancelled = await world.chat.service.cancel("ann", paused.id)
        outcome = await queued.outcome()
        assert waiting.status == "queued"
        assert cancelled.status == "cancelled"
        assert outcome.kind == "done" and outcome.data["response"] == "echo: next"

    async def test_a_cancelled_paused_runs_calls_never_expire(
        self, world: World, approvals: tuple[ApprovalService, Decisions]
    ) -> None:
        service, heard = approvals
        paused = await pause(world, "c4")
        await world.chat.service.cancel("ann", paused.id)
        world.clock.advance(TIMEOUT + 1)
        assert await service.expire_once() == 0
        assert heard.decided == []
