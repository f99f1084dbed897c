"""RunService: the one pipeline of a turn. Every route hands it a ``StartRun`` and renders the
``RunHandle`` it returns, in its own format.

``start`` checks everything that can refuse a turn (message, agent, chat, busy policy, idempotency
key, the user's number of runs) before it returns, so those errors are plain HTTP errors; from then
on the run goes on in the executor whatever happens to the request, and its events are read from
the run's log.

A user may have ``TurnPolicy.max_runs_per_user`` runs queued or running at once, counted in the
database (so across replicas) in the transaction that stores the new run: one user's many runs
can hold only that many tasks, model requests and event writers, never everyone's.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncGenerator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from chatserver.clock import Clock
from chatserver.domain import ConfigVersions, Run, RunEvent, RunOutcome, StartRun, TurnUsage
from chatserver.domain.usage import Budget
from chatserver.errors import (
    ChatBusy,
    Conflict,
    DatabaseUnavailable,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
)
from chatserver.services.agent_loader import AgentLoader
from chatserver.services.branching import follow_run, place_turn
from chatserver.services.ids import sortable_id
from chatserver.services.metering import BudgetGate
from chatserver.services.run_events import RunEventLog
from chatserver.services.run_executor import RunExecutor, Stateless
from chatserver.services.turn_policy import AgentNotFound, TurnPolicy
from chatserver.services.user_starts import UserStarts, too_many_runs
from chatserver.storage.protocols import StartedRun, UnitOfWork, UnitOfWorkFactory

READ_SECONDS = 5.0
"""How long a reader waits on the log before it looks at the run's record."""
CANCEL_WAIT_SECONDS = 1.0


class RunSignals(Protocol):
    async def cancel(self, run_id: str) -> None:
        """Tell whichever replica runs ``run_id`` to stop it."""

    async def steer(self, run_id: str) -> None:
        """Tell whichever replica runs ``run_id`` that a steering message waits for it."""


class LocalRunSignals:
    """One process: the executor is the only one there is."""

    def __init__(self, executor: RunExecutor) -> None:
        self._executor = executor

    async def cancel(self, run_id: str) -> None:
        self._executor.cancel_local(run_id)

    async def steer(self, run_id: str) -> None:
        self._executor.steer_local(run_id)


@dataclass(frozen=True, slots=True)
class RunHandle:
    run: Run
    service: RunService

    def events(self, after: str | None = None) -> AsyncGenerator[RunEvent, None]:
        return self.service.follow(self.run, after)

    async def outcome(self) -> RunEvent:
        """The run's last event (``done``, ``error`` or ``cancelled``), once it has ended, or
        ``approval_required`` once it waits for the user."""
        async for event in self.events():
            if event.terminal or event.pauses:
                return event
        raise RuntimeError("a run's events end with its outcome")  # pragma: no cover


class RunService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        agents: AgentLoader,
        executor: RunExecutor,
        events: RunEventLog,
        signals: RunSignals,
        clock: Clock,
        policy: TurnPolicy,
        budgets: BudgetGate | None = None,
    ) -> None:
        self._budgets = budgets
        self._uow = uow
        self._agents = agents
        self._executor = executor
        self._events = events
        self._signals = signals
        self._clock = clock
        self._policy = policy
        self._starts = UserStarts(policy.max_runs_per_user)

    async def start(self, command: StartRun) -> RunHandle:
        command, placement = await place_turn(self._uow, command)
        if not command.options.continues:
            self._check_message(command.message)
        try:
            built = await self._agents.get(command.user_id, command.agent_name)
        except NotFound as error:
            raise AgentNotFound(error.detail) from error
        _check_client_tools(command, built.config.tools)
        if command.idempotency_key is not None:
            replayed = await self._replay(command)
            if replayed is not None:
                return RunHandle(replayed, self)
        now = self._clock.now()
        run = Run(
            sortable_id(now),
            command.user_id,
            command.chat_id,
            command.agent_name,
            "queued",
            command.message,
            now,
            idempotency_key=command.idempotency_key,
            request_hash=command.request_hash,
            edit_of=placement.edit_of,
            regenerate=placement.regenerate,
        )
        if command.chat_id is None:
            run = replace(run, status="running", started_at=now)
            versions = await self._insert_running(run)
            await self._events.append(run.id, "run", _run_event(run))
            stateless = Stateless(command.history, command.instructions, versions)
            self._executor.launch(run, stateless=stateless, built=built, options=command.options)
            return RunHandle(run, self)
        return await self._enqueue(run, command)

    async def get(self, user_id: str, run_id: str) -> Run:
        async with self._uow(user_id=user_id) as uow:
            run = await uow.runs.get(user_id, run_id)
        if run is None:
            raise NotFound(f"run '{run_id}' not found")
        return run

    async def list(
        self,
        user_id: str,
        chat_id: str,
        *,
        status: str | None,
        limit: int,
        before: tuple[datetime, str] | None,
    ) -> list[Run]:
        async with self._uow(user_id=user_id) as uow:
            if await uow.chats.get(user_id, chat_id) is None:
                raise NotFound(f"chat '{chat_id}' not found")
            return await uow.runs.list(user_id, chat_id, status=status, limit=limit, before=before)

    async def attach(self, user_id: str, run_id: str, after: str | None) -> RunHandle:
        """The caller's run, to follow from after event ``after`` (checked here: a 422, not a stream)."""
        if after is not None:
            self._events.check_id(after)
        return RunHandle(await self.get(user_id, run_id), self)

    async def active(self, user_id: str, chat_id: str) -> RunHandle | None:
        """The caller's chat's run that runs (or runs next), to follow; None when the chat is idle."""
        async with self._uow(user_id=user_id) as uow:
            if await uow.chats.get(user_id, chat_id) is None:
                raise NotFound(f"chat '{chat_id}' not found")
            active = await uow.runs.active(user_id, chat_id)
        return RunHandle(active[0], self) if active else None

    async def cancel(self, user_id: str, run_id: str) -> Run:
        run = await self.get(user_id, run_id)
        if run.ended:
            raise Conflict(f"run '{run_id}' has already ended ({run.status})")
        if run.status in ("queued", "requires_action") and await self._cancel_queued(run):
            return await self.get(user_id, run_id)
        async with self._uow(user_id=user_id) as uow:
            await uow.runs.request_cancel(user_id, run_id)
            await uow.commit()
        if not self._executor.cancel_local(run_id):
            await self._signals.cancel(run_id)
        await self._wait_for_end(run)
        return await self.get(user_id, run_id)

    async def delete(self, user_id: str, run_id: str) -> None:
        """Forget an ended run of the caller's (its chat's messages stay)."""
        run = await self.get(user_id, run_id)
        if not run.ended:
            raise Conflict(f"run '{run_id}' has not ended ({run.status})")
        async with self._uow(user_id=user_id) as uow:
            deleted = await uow.runs.delete_ended(user_id, run_id)
            await uow.commit()
        if not deleted:
            raise NotFound(f"run '{run_id}' not found")

    async def cancel_if_running(self, run: Run) -> None:
        """Stop ``run`` unless it has ended (a stream whose client left, with ``on_disconnect: cancel``)."""
        stored = await self.get(run.user_id, run.id)
        if not stored.ended:
            await self.cancel(run.user_id, run.id)

    async def follow(self, run: Run, after: str | None) -> AsyncGenerator[RunEvent, None]:
        """The run's events after ``after``, live until its end; from its record once its log is gone.

        A reader past the run's last event gets nothing more; a reader of a run whose log is gone
        (expired, or kept by a replica this one cannot read) gets the end from the stored run.
        """
        wait = 0.0
        while True:
            batch = await self._events.read(run.id, after, wait_seconds=wait)
            if batch:
                for event in batch:
                    yield event
                    if event.terminal or event.pauses:
                        return
                    after = event.id
                # Wait for more before looking at the record: a run being followed costs no query.
                wait = READ_SECONDS
                continue
            stored = await self.get(run.user_id, run.id)
            if stored.status == "requires_action" and batch is not None:
                yield final_event(stored)
                return
            if stored.ended:
                # The end may have reached the log while the record was read: read once more.
                late = await self._events.read(run.id, after, wait_seconds=0)
                if late:
                    continue
                if late is None or not await self._log_ended(run.id):
                    yield final_event(stored)
                return
            wait = READ_SECONDS
            if batch is None:
                await asyncio.sleep(0.2)

    async def _log_ended(self, run_id: str) -> bool:
        """Whether the run's log holds its end: a reader with nothing after its event has read it."""
        everything = await self._events.read(run_id, None, wait_seconds=0)
        return bool(everything) and any(event.terminal for event in everything or ())

    async def _enqueue(self, run: Run, command: StartRun) -> RunHandle:
        policy = command.busy_policy or self._policy.busy_policy
        if not command.options.empty or command.follows_run is not None:
            # Its options live in this process only, or the leaf it follows holds only until another
            # turn writes: such a turn starts now or not at all.
            policy = "reject"
        lease_until = self._executor.lease_until()
        budgets = await self._binding(run)
        try:
            async with self._starts.turn(run.user_id), self._uow(user_id=run.user_id) as uow:
                await self._admit(uow, run, budgets)
                if command.follows_run is not None and run.chat_id is not None:
                    await follow_run(uow, run.user_id, run.chat_id, command.follows_run)
                started = await uow.turns.start(
                    run,
                    policy=policy,
                    owner=self._executor.replica,
                    lease_until=lease_until,
                    max_active=self._policy.max_runs_per_user,
                )
                # Refused: roll back, so a budget counts no request for it.
                _refuse(started, run, self._policy.max_runs_per_user)
                if run.edit_of is not None or run.regenerate is not None:
                    await uow.runs.set_branch(
                        run.user_id, run.id, edit_of=run.edit_of, regenerate=run.regenerate
                    )
                older = None
                if started.claimed is not None and started.claimed != run.id:
                    older = await uow.runs.get(run.user_id, started.claimed)  # queued earlier, left over
                await uow.commit()
        except DatabaseUnavailable:
            self._executor.abandon(run)
            raise
        mine = replace(run, status="running", started_at=run.created_at) if started.claimed == run.id else run
        # Appended once the run is stored: should another replica start it in between (its chat
        # freed that instant), its first events may come before this one.
        await self._events.append(run.id, "run", _run_event(mine))
        running = started.running
        if running is not None and policy == "interrupt" and not self._executor.cancel_local(running):
            await self._signals.cancel(running)
        if running is not None and policy == "steer" and not self._executor.steer_local(running):
            await self._signals.steer(running)
        if started.claimed == run.id:
            self._executor.launch(mine, options=command.options)
        elif older is not None:
            self._executor.launch(older)
        return RunHandle(mine, self)

    async def _insert_running(self, run: Run) -> ConfigVersions | None:
        """A run without a chat: nothing to queue behind, it starts under this replica's lease. The
        versions its agent is to be built at come back from the same statement."""
        budgets = await self._binding(run)
        try:
            async with self._starts.turn(run.user_id), self._uow(user_id=run.user_id) as uow:
                await self._check_room(uow, run.user_id)
                await self._admit(uow, run, budgets)
                lease_until = self._executor.lease_until()
                added, versions = await uow.runs.add_stateless(
                    run, owner=self._executor.replica, lease_until=lease_until
                )
                if not added:
                    raise Conflict("a run with this idempotency key is being created")
                await uow.commit()
        except DatabaseUnavailable:
            self._executor.abandon(run)
            raise
        return versions

    async def _binding(self, run: Run) -> builtins.list[Budget]:
        if self._budgets is None:
            return []
        return await self._budgets.binding(run.user_id, run.agent_name)

    async def _admit(self, uow: UnitOfWork, run: Run, budgets: builtins.list[Budget]) -> None:
        """Count the run's first model request on the budgets that bind it (``BudgetExceeded``)."""
        if self._budgets is not None and budgets:
            await self._budgets.admit(uow, budgets, run.user_id)

    async def _check_room(self, uow: UnitOfWork, user_id: str) -> None:
        """Refuse a new run of a user who has as many queued or running as they may."""
        limit = self._policy.max_runs_per_user
        if await uow.runs.count_active(user_id) >= limit:
            raise too_many_runs(limit)

    async def _replay(self, command: StartRun) -> Run | None:
        """The run this idempotency key already started (same request), or None for a fresh key."""
        assert command.idempotency_key is not None
        async with self._uow(user_id=command.user_id) as uow:
            run = await uow.runs.by_idempotency_key(command.user_id, command.idempotency_key)
            if run is None:
                return None
            if run.created_at < self._clock.now() - timedelta(hours=self._policy.idempotency_hours):
                await uow.runs.forget_idempotency_key(command.user_id, command.idempotency_key)
                await uow.commit()
                return None
        if run.request_hash != command.request_hash:
            raise Conflict("this Idempotency-Key was used with another request")
        return run

    async def _cancel_queued(self, run: Run) -> bool:
        outcome = RunOutcome(run.id, self._executor.replica, "cancelled", None, TurnUsage())
        async with self._uow(user_id=run.user_id) as uow:
            ended = await uow.runs.finish(run.user_id, outcome, now=self._clock.now(), fenced=False)
            await uow.commit()
        if ended:
            await self._events.append(run.id, "cancelled", {"run_id": run.id})
            await self._events.close(run.id)
            if run.status == "requires_action":
                await self._executor.start_next(run)
        return ended

    async def _wait_for_end(self, run: Run) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CANCEL_WAIT_SECONDS
        after: str | None = None
        while (remaining := deadline - loop.time()) > 0:
            batch = await self._events.read(run.id, after, wait_seconds=remaining)
            if not batch:
                return
            if batch[-1].terminal:
                return
            after = batch[-1].id

    def _check_message(self, message: str) -> None:
        if not message.strip():
            raise InvalidInput("message must not be empty", field="message")
        if len(message) > self._policy.max_message_chars:
            raise PayloadTooLarge(f"message is longer than {self._policy.max_message_chars} characters")


def _check_client_tools(command: StartRun, own: tuple[str, ...]) -> None:
    """A caller's tool named like one of the agent's would be ambiguous to the model (and to us)."""
    for index, tool in enumerate(command.options.client_tools):
        if tool.name in own:
            raise InvalidInput(
                f"tool '{tool.name}' is one of the agent's own tools: name yours otherwise",
                field=f"tools.{index}.function.name",
            )


def _refuse(started: StartedRun, run: Run, limit: int) -> None:
    if started.outcome == "too_many":
        raise too_many_runs(limit)
    if started.outcome == "not_found":
        raise NotFound(f"chat '{run.chat_id}' not found")
    if started.outcome == "other_agent":
        raise Conflict(f"chat '{run.chat_id}' belongs to agent '{started.chat_agent}'")
    if started.outcome == "busy":
        raise ChatBusy("chat is busy with another turn")
    if started.outcome == "key_taken":
        raise Conflict("a run with this idempotency key is being created")


def _run_event(run: Run) -> dict[str, str | None]:
    return {"run_id": run.id, "chat_id": run.chat_id, "status": run.status}


def final_event(run: Run) -> RunEvent:
    """A run's end, from its record: what a reader gets once the run's log has expired."""
    if run.status == "completed":
        return RunEvent("end", "done", run.result or {})
    if run.status == "cancelled":
        return RunEvent("end", "cancelled", {"run_id": run.id})
    if run.status == "requires_action":
        paused = run.result or {}
        return RunEvent(
            "end", "approval_required", {"run_id": run.id, "approvals": paused.get("pending_approvals", [])}
        )
    error = run.error
    code, detail = (error.code, error.detail) if error else ("internal_error", "the run failed")
    return RunEvent("end", "error", {"run_id": run.id, "detail": detail, "code": code})
