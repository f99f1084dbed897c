"""How a run ends: its outcome, messages, audit event and usage written (``RunEnds``), then its
spending counted on its budgets and a fallback to another model noted.

* completed: the answer and every message of the run.
* failed: the user's message stays; what the run did before it was stopped between steps (a budget
  used up) is kept.
* stopped (``cancelled``, ``shutdown``): the partial answer as ``incomplete``; ``lease_lost``:
  nothing more is written.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from chatserver.agents.types import TurnResult
from chatserver.clock import Clock
from chatserver.domain import (
    NO_OPTIONS,
    NewEvent,
    NewMessage,
    Run,
    RunError,
    RunOutcome,
    RunStatus,
    TurnOptions,
    TurnUsage,
)
from chatserver.domain.steps import RunStep
from chatserver.domain.usage import ModelUsage
from chatserver.errors import ChatServerError
from chatserver.services.chat_titles import ChatTitler
from chatserver.services.metering import RunMeter
from chatserver.services.run_ends import NOT_WRITTEN, OpenedTurn, RunEnd, RunEnds, done_data, lost, turn_event
from chatserver.services.run_errors import code_of
from chatserver.services.run_events import RunWriter
from chatserver.services.turn_policy import TurnListener
from chatserver.storage.protocols import UnitOfWork, UnitOfWorkFactory

_STOPPED_CODES = {"cancelled": "cancelled", "shutdown": "interrupted", "lease_lost": "lease_lost"}
"""Why a run was stopped -> the outcome its turn is counted under (metrics)."""

log = logging.getLogger("chatserver.runs")


@dataclass(slots=True)
class RunProgress:
    opened: OpenedTurn | None = None
    meter: RunMeter | None = None
    partial: TurnResult | None = None
    """What the run did before it was stopped between steps (``StoppedEvent``)."""
    options: TurnOptions = NO_OPTIONS
    steps: list[RunStep] | None = None
    """A run going on from its stored steps: those steps."""


PAUSED = RunEnd(tell=False, written=True)
"""A run that waits for the user: its log stays open, nothing hands its chat on."""


class RunClosing:
    def __init__(
        self,
        ends: RunEnds,
        uow: UnitOfWorkFactory,
        clock: Clock,
        listener: TurnListener,
        *,
        replica: str,
        titles: ChatTitler | None = None,
    ) -> None:
        self._titles = titles
        self._ends = ends
        self._uow = uow
        self._clock = clock
        self._listener = listener
        self.replica = replica

    async def completed(
        self, run: Run, progress: RunProgress, writer: RunWriter, result: TurnResult, started: float
    ) -> RunEnd:
        opened, meter = progress.opened, progress.meter
        assert opened is not None and meter is not None
        model = meter.answered or opened.built.config.model
        done = done_data(run, result, model, progress.options.input_items)
        outcome = RunOutcome(
            run.id, self.replica, "completed", model, result.usage, result=done, usage_by_model=meter.rows()
        )
        usage = result.usage
        event = turn_event(
            "turn.completed",
            run,
            opened,
            tool_calls=len(result.tool_calls),
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            requests=usage.requests,
        )
        self._listener.turn_completed(run.agent_name, result, time.perf_counter() - started)
        end = await self._end(run, progress, writer, result.new_messages, event, outcome)
        if end.tell:
            await writer.emit("done", done)
        if self._titles is not None and end.tell:
            self._titles.after_answer(run, opened.built, opened.turn, result.output)
        return end

    async def paused(self, run: Run, progress: RunProgress, writer: RunWriter, result: TurnResult) -> RunEnd:
        """The run waits for the user's decisions on ``result.pending_approvals``; its steps are
        stored, so it holds no lease and no task while it waits."""
        approvals = [{"id": c.id, "tool_name": c.name, "args": c.args} for c in result.pending_approvals]
        data = {
            "run_id": run.id,
            "chat_id": run.chat_id,
            "status": "requires_action",
            "pending_approvals": approvals,
        }
        async with self._uow(user_id=run.user_id) as uow:
            paused = await uow.pauses.pause(run.user_id, run.id, owner=self.replica, result=data)
            if paused:
                await self._usage_so_far(uow, run, progress)
                for call in result.pending_approvals:
                    requested = {"run_id": run.id, "tool_call_id": call.id, "tool_name": call.name}
                    event = NewEvent(
                        "approval.requested",
                        user_id=run.user_id,
                        agent_name=run.agent_name,
                        chat_id=run.chat_id,
                        data=requested,
                    )
                    await uow.events.add(event, now=self._clock.now())
            await uow.commit()
        if not paused:
            await lost(run, writer)
            return NOT_WRITTEN
        if progress.meter is not None:
            await progress.meter.settle()
        self._listener.approvals_pending(len(approvals))
        await writer.emit("approval_required", {"run_id": run.id, "approvals": approvals})
        return PAUSED

    async def _usage_so_far(self, uow: UnitOfWork, run: Run, progress: RunProgress) -> None:
        """The ledger rows of the run's requests until it paused: its end writes only those after."""
        meter = progress.meter
        if meter is not None and meter.rows():
            await uow.usage.add(run.user_id, run.agent_name, run.id, meter.rows(), now=self._clock.now())
            self._listener.usage_recorded(run.agent_name, meter.rows())

    async def failed(
        self, run: Run, progress: RunProgress, writer: RunWriter, error: Exception, started: float
    ) -> RunEnd:
        opened = progress.opened
        code = code_of(error)
        detail = error.detail if isinstance(error, ChatServerError) else "internal server error"
        self._listener.turn_failed(run.agent_name, code, time.perf_counter() - started)
        model, usage, rows = _metered(progress)
        outcome = RunOutcome(
            run.id, self.replica, "failed", model, usage, RunError(code, detail), usage_by_model=rows
        )
        event = turn_event("turn.failed", run, opened, code=code)
        kept = progress.partial.new_messages if progress.partial is not None and opened else []
        end = await self._end(run, progress, writer, kept, event, outcome)
        if end.tell:
            await writer.emit("error", {"run_id": run.id, "detail": detail, "code": code})
        return end

    async def stopped(
        self, run: Run, progress: RunProgress, writer: RunWriter, reason: str, started: float
    ) -> RunEnd:
        """``reason``: as ``RunExecutor.cancel_local`` was given it."""
        opened = progress.opened
        self._listener.turn_failed(run.agent_name, _STOPPED_CODES[reason], time.perf_counter() - started)
        if reason == "lease_lost":
            await lost(run, writer)
            return NOT_WRITTEN
        partial = [NewMessage("assistant", writer.text, incomplete=True)] if writer.text and opened else []
        status: RunStatus = "cancelled" if reason == "cancelled" else "interrupted"
        error = None if status == "cancelled" else RunError("server_restarted", "the server stopped mid-run")
        model, usage, rows = _metered(progress)
        outcome = RunOutcome(run.id, self.replica, status, model, usage, error, usage_by_model=rows)
        event = turn_event(f"turn.{status}", run, opened)
        end = await self._end(run, progress, writer, partial, event, outcome)
        if not end.tell:
            return end
        if error is None:
            await writer.emit("cancelled", {"run_id": run.id})
        else:
            await writer.emit("error", {"run_id": run.id, "detail": error.detail, "code": error.code})
        return end

    async def _end(
        self,
        run: Run,
        progress: RunProgress,
        writer: RunWriter,
        messages: list[NewMessage],
        event: NewEvent,
        outcome: RunOutcome,
    ) -> RunEnd:
        """Write the run's end with its usage; then count its spending and note a fallback."""
        end = await self._ends.write(run, progress.opened, writer, messages, event, outcome)
        meter = progress.meter
        if meter is None or not end.written:
            return end
        self._listener.usage_recorded(run.agent_name, outcome.usage_by_model)
        await meter.settle()
        primary = progress.opened.built.config.model if progress.opened else None
        if meter.answered is not None and meter.answered != primary:
            await self._note_fallback(run, primary, meter.answered)
        return end

    async def _note_fallback(self, run: Run, primary: str | None, answered: str) -> None:
        fell_back = NewEvent(
            "model.fallback",
            user_id=run.user_id,
            agent_name=run.agent_name,
            chat_id=run.chat_id,
            data={"run_id": run.id, "model": primary, "answered_by": answered},
        )
        try:
            async with self._uow(user_id=run.user_id) as uow:
                await uow.events.add(fell_back, now=self._clock.now())
                await uow.commit()
        except ChatServerError:
            log.warning("could not record a model fallback", extra={"run_id": run.id}, exc_info=True)


def _metered(progress: RunProgress) -> tuple[str | None, TurnUsage, tuple[ModelUsage, ...]]:
    """The model that answered last, and what the run used, for a run that did not complete."""
    meter, opened = progress.meter, progress.opened
    default = opened.built.config.model if opened else None
    if meter is None:
        return default, TurnUsage(), ()
    return meter.answered or default, meter.total(), meter.rows()
