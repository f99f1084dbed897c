"""Tool approvals and resumable runs: decisions on a paused run's calls, its ledger, and the resume
of an interrupted run. Whichever replica takes the request takes the run up under its own lease;
no process waits while a run waits for the user.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from pydantic_ai import RunContext
from pydantic_ai.usage import RunUsage

from chatserver.agents.types import TurnDeps
from chatserver.clock import Clock
from chatserver.domain import NewEvent, Run
from chatserver.domain.steps import Decision, RunStep, StepStatus
from chatserver.errors import Conflict, InvalidInput, NotFound
from chatserver.json_schemas import violation
from chatserver.services.agent_loader import AgentLoader
from chatserver.services.run_executor import RunExecutor
from chatserver.services.turn_policy import TurnListener
from chatserver.storage.protocols import UnitOfWork, UnitOfWorkFactory

EXPIRED_REASON = "the approval timed out"
_PLAIN_STEP: dict[str, StepStatus] = {
    "completed": "completed",
    "failed": "failed",
    "cancelled": "failed",
    "interrupted": "unknown",
}
"""A run that called no tool: its one model request's status, by the run's."""


class ApprovalService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        agents: AgentLoader,
        executor: RunExecutor,
        clock: Clock,
        listener: TurnListener,
        *,
        timeout_seconds: float,
    ) -> None:
        self._uow = uow
        self._agents = agents
        self._executor = executor
        self._clock = clock
        self._listener = listener
        self._timeout = timedelta(seconds=timeout_seconds)

    async def steps(self, user_id: str, run_id: str) -> list[RunStep]:
        """The run's ledger; a run that called no tool has one model step, read from its record."""
        async with self._uow(user_id=user_id) as uow:
            run = await _run(uow, user_id, run_id)
            steps = await uow.steps.list(user_id, run_id)
        if steps or run.started_at is None:
            return steps
        status = _PLAIN_STEP.get(run.status, "started")
        name = run.model or run.agent_name
        return [RunStep(run.id, 0, "model", name, status, run.started_at, run.finished_at)]

    async def decide(self, user_id: str, run_id: str, decisions: Sequence[Decision]) -> Run:
        async with self._uow(user_id=user_id) as uow:
            run = await _run(uow, user_id, run_id)
            steps = {step.tool_call_id: step for step in await uow.steps.list(user_id, run_id)}
        checked = [await self._checked(run, steps, index, d) for index, d in enumerate(decisions)]
        now = self._clock.now()
        async with self._uow(user_id=user_id) as uow:
            for step, decision in checked:
                status = "approved" if decision.approve else "denied"
                decided = await uow.steps.decide(
                    user_id,
                    run_id,
                    decision.id,
                    status=status,
                    args=decision.args,
                    reason=decision.reason,
                    now=now,
                )
                if not decided:
                    raise Conflict(f"tool call '{decision.id}' has already been decided")
                await uow.events.add(
                    _decided(run, step, "granted" if decision.approve else "denied"), now=now
                )
            await uow.commit()
        for step, decision in checked:
            self._listener.approval_decided(
                "granted" if decision.approve else "denied", (now - step.started_at).total_seconds()
            )
        await self._go_on_if_decided(run)
        return await self._get(user_id, run_id)

    async def resume(self, user_id: str, run_id: str) -> Run:
        """Go on with an interrupted run from its last stored step; a call that started and never
        finished is not run again."""
        async with self._uow(user_id=user_id) as uow:
            run = await _run(uow, user_id, run_id)
            if run.status != "interrupted" or run.chat_id is None:
                raise Conflict(f"run '{run_id}' is {run.status}: only an interrupted chat run resumes")
            newest = await uow.runs.list(user_id, run.chat_id, status=None, limit=1, before=None)
            if newest and newest[0].id != run.id:
                raise Conflict(f"run '{run_id}' is not its chat's latest run: it cannot resume")
            taken = await uow.pauses.take_up(
                user_id,
                run_id,
                status="interrupted",
                owner=self._executor.replica,
                lease_until=self._executor.lease_until(),
            )
            if taken is None:
                raise Conflict(f"run '{run_id}' is no longer interrupted")
            resumed = NewEvent(
                "run.resumed",
                user_id=user_id,
                agent_name=run.agent_name,
                chat_id=run.chat_id,
                data={"run_id": run_id},
            )
            await uow.events.add(resumed, now=self._clock.now())
            await uow.commit()
        self._executor.launch(taken, continued=True)
        return taken

    async def expire_once(self) -> int:
        """Deny every call left undecided past the timeout, and let its run go on; how many runs."""
        now = self._clock.now()
        async with self._uow() as uow:
            overdue = await uow.steps.overdue(before=now - self._timeout)
        for user_id, run_id in overdue:
            await self._expire(user_id, run_id)
        return len(overdue)

    async def _expire(self, user_id: str, run_id: str) -> None:
        now = self._clock.now()
        async with self._uow(user_id=user_id) as uow:
            run = await _run(uow, user_id, run_id)
            pending = [s for s in await uow.steps.list(user_id, run_id) if s.status == "pending"]
            expired = []
            for step in pending:
                assert step.tool_call_id is not None
                if await uow.steps.decide(
                    user_id,
                    run_id,
                    step.tool_call_id,
                    status="denied",
                    args=None,
                    reason=EXPIRED_REASON,
                    now=now,
                ):
                    expired.append(step)
                    await uow.events.add(_decided(run, step, "expired"), now=now)
            await uow.commit()
        for step in expired:
            self._listener.approval_decided("expired", (now - step.started_at).total_seconds())
        await self._go_on_if_decided(run)

    async def _go_on_if_decided(self, run: Run) -> None:
        """Once no call waits, the run goes on here. In a transaction after the decisions': two
        decisions committed at once each see the other's, and one of them takes the run up."""
        async with self._uow(user_id=run.user_id) as uow:
            taken = await self._take_up_if_decided(uow, run)
            await uow.commit()
        if taken is not None:
            self._executor.launch(taken, continued=True)

    async def _take_up_if_decided(self, uow: UnitOfWork, run: Run) -> Run | None:
        steps = await uow.steps.list(run.user_id, run.id)
        if any(step.status == "pending" for step in steps):
            return None
        return await uow.pauses.take_up(
            run.user_id,
            run.id,
            status="requires_action",
            owner=self._executor.replica,
            lease_until=self._executor.lease_until(),
        )

    async def _checked(
        self, run: Run, steps: dict[str | None, RunStep], index: int, decision: Decision
    ) -> tuple[RunStep, Decision]:
        step = steps.get(decision.id)
        if step is None or step.kind != "tool":
            raise InvalidInput(
                f"run '{run.id}' has no tool call '{decision.id}'", field=f"decisions.{index}.id"
            )
        if step.status != "pending" or run.status != "requires_action":
            raise Conflict(f"tool call '{decision.id}' has already been decided")
        if decision.approve and decision.args is not None:
            schema = await self._schema(run, step.name)
            problem = violation(decision.args, schema)
            if problem is not None:
                raise InvalidInput(
                    f"args do not fit tool '{step.name}' {problem}", field=f"decisions.{index}.args"
                )
        return step, decision

    async def _schema(self, run: Run, tool_name: str) -> dict[str, Any]:
        built = await self._agents.get(run.user_id, run.agent_name)
        deps = TurnDeps(run.user_id, run.agent_name, run.chat_id)
        ctx = RunContext(deps=deps, model=built.model, usage=RunUsage())
        async with built.toolset:
            tools = await built.toolset.get_tools(ctx)
        tool = tools.get(tool_name)
        return tool.tool_def.parameters_json_schema if tool is not None else {"type": "object"}

    async def _get(self, user_id: str, run_id: str) -> Run:
        async with self._uow(user_id=user_id) as uow:
            return await _run(uow, user_id, run_id)


async def _run(uow: UnitOfWork, user_id: str, run_id: str) -> Run:
    run = await uow.runs.get(user_id, run_id)
    if run is None:
        raise NotFound(f"run '{run_id}' not found")
    return run


def _decided(run: Run, step: RunStep, how: str) -> NewEvent:
    data = {"run_id": run.id, "tool_call_id": step.tool_call_id, "tool_name": step.name}
    return NewEvent(
        f"approval.{how}", user_id=run.user_id, agent_name=run.agent_name, chat_id=run.chat_id, data=data
    )
