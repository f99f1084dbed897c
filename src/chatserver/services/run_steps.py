"""A run's steps written as each finishes, in small transactions of their own (``StepLog``).

Only runs that call tools write steps: a plain one-request turn's single step is its record.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic_ai.messages import ModelRequestPart, ModelResponse, ToolCallPart, ToolReturnPart

from chatserver.agents.continuation import response_json, result_json
from chatserver.clock import Clock
from chatserver.domain import Run
from chatserver.domain.steps import UNKNOWN_OUTCOME, RunStep, StepStatus
from chatserver.storage.protocols import UnitOfWorkFactory


class RunStepLog:
    """Implements ``agents.types.StepLog`` for one run."""

    def __init__(
        self, uow: UnitOfWorkFactory, clock: Clock, run: Run, stored: Sequence[RunStep] = ()
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._run = run
        self._seq = (stored[-1].seq + 1) if stored else 0
        self._of_call = {step.tool_call_id: step.seq for step in stored if step.tool_call_id}

    async def responded(
        self, response: ModelResponse, running: list[ToolCallPart], pending: list[ToolCallPart]
    ) -> None:
        now = self._clock.now()
        name = response.model_name or self._run.agent_name
        steps = [
            RunStep(
                self._run.id, self._seq, "model", name, "completed", now, now, payload=response_json(response)
            )
        ]
        for call in running:
            steps.append(self._tool_step(call, "started", len(steps)))
        for call in pending:
            steps.append(self._tool_step(call, "pending", len(steps)))
        self._seq += len(steps)
        async with self._uow(user_id=self._run.user_id) as uow:
            await uow.steps.add(self._run.user_id, steps)
            await uow.commit()

    def _tool_step(self, call: ToolCallPart, status: StepStatus, offset: int) -> RunStep:
        seq = self._seq + offset
        self._of_call[call.tool_call_id] = seq
        return RunStep(
            self._run.id,
            seq,
            "tool",
            call.tool_name,
            status,
            self._clock.now(),
            tool_call_id=call.tool_call_id,
            args=call.args_as_dict(),
        )

    async def calling(self, call: ToolCallPart) -> None:
        await self._finish(call, "started", None, finished=False)

    async def called(self, call: ToolCallPart, result: ModelRequestPart) -> None:
        status: StepStatus = "completed" if isinstance(result, ToolReturnPart) else "failed"
        if isinstance(result, ToolReturnPart) and result.content == UNKNOWN_OUTCOME:
            status = "unknown"
        await self._finish(call, status, result_json(result), finished=True)

    async def _finish(
        self, call: ToolCallPart, status: StepStatus, payload: object, *, finished: bool
    ) -> None:
        seq = self._of_call.get(call.tool_call_id)
        if seq is None:
            return
        async with self._uow(user_id=self._run.user_id) as uow:
            now = self._clock.now() if finished else None
            await uow.steps.finish(
                self._run.user_id, self._run.id, seq, status=status, payload=payload, now=now
            )
            await uow.commit()
