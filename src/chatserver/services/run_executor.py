"""RunExecutor: runs a claimed run to its end in a task of its own, whatever happens to the request.

The run holds its chat through its record (status ``running`` under this replica's lease), not a
connection: the user's message is stored first, the model runs with no connection held, and the
answer is written by one fenced statement that writes nothing if the run is no longer this
replica's. Every event goes to the run's log, which the requests that follow the run read.

How a run stops early, by the reason given to ``cancel_local``:

* ``cancelled`` (a user's cancel): the partial answer is stored as ``incomplete``; ``cancelled``.
* ``shutdown`` (this replica stops): the same, ended ``interrupted`` (``server_restarted``).
* ``lease_lost`` (the run was taken from this replica): nothing more is written.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from chatserver.agents.continuation import continuation
from chatserver.agents.history import to_model_messages
from chatserver.agents.runner import stream_turn
from chatserver.agents.types import (
    BuiltAgent,
    DoneEvent,
    StoppedEvent,
    TokenEvent,
    ToolBackend,
    ToolCallEvent,
    ToolResultEvent,
    TurnDeps,
    TurnResult,
)
from chatserver.clock import Clock
from chatserver.domain import (
    NO_OPTIONS,
    ConfigVersions,
    Message,
    NewMessage,
    Run,
    RunError,
    RunOutcome,
    TurnOptions,
    TurnUsage,
)
from chatserver.domain.steps import RunStep
from chatserver.domain.titles import title_from
from chatserver.errors import ChatServerError, Conflict, ModelError, NotFound
from chatserver.observability.spans import run_span
from chatserver.services.agent_loader import AgentLoader
from chatserver.services.chat_titles import ChatTitler
from chatserver.services.metering import BudgetGate, Metering
from chatserver.services.run_closing import PAUSED, RunClosing, RunProgress
from chatserver.services.run_ends import NOT_WRITTEN, OpenedTurn, RunEnd, RunEnds
from chatserver.services.run_events import RunEventLog, RunWriter
from chatserver.services.run_steering import RunSteering
from chatserver.services.run_steps import RunStepLog
from chatserver.services.turn_policy import NoTurnListener, TurnListener, TurnPolicy
from chatserver.storage.protocols import UnitOfWork, UnitOfWorkFactory

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

ABANDON_RETRY_SECONDS = 0.1
T = TypeVar("T")


log = logging.getLogger("chatserver.runs")


@dataclass(frozen=True, slots=True)
class Stateless:
    """The caller's own context for a run without a chat."""

    history: tuple[NewMessage, ...] = ()
    instructions: str | None = None
    versions: ConfigVersions | None = None
    """Read when the run was stored: what its agent must be built at (``AgentLoader.current``)."""


class RunExecutor:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        agents: AgentLoader,
        events: RunEventLog,
        clock: Clock,
        policy: TurnPolicy,
        *,
        replica: str,
        tool_backend: ToolBackend | None = None,
        listener: TurnListener | None = None,
        tracer: Tracer | None = None,
        metering: Metering | None = None,
        titles: ChatTitler | None = None,
    ) -> None:
        self._metering = metering or Metering(uow, BudgetGate(uow, clock))
        self._uow = uow
        self._agents = agents
        self._events = events
        self._clock = clock
        self._policy = policy
        self.replica = replica
        self._tool_backend = tool_backend
        self._listener = listener or NoTurnListener()
        self._tracer = tracer
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._reasons: dict[str, str] = {}
        self._cancellable: set[str] = set()
        """Runs at their model: cancelled by cancelling their task (before it, by ``_reasons``)."""
        self._steering: dict[str, RunSteering] = {}
        self._options: dict[str, TurnOptions] = {}
        """Runs started with options (client tools, an output format): held here, not stored, so
        such a run starts at once, in this process (``RunService`` never queues one)."""
        self._abandoning: set[asyncio.Task[None]] = set()
        self._continued: set[str] = set()
        self._held_until: dict[str, float] = {}
        """When each run's lease runs out (event loop time) unless renewed: its claim, its renewals."""
        self._closing = RunClosing(
            RunEnds(uow, clock, lease_seconds=policy.lease_seconds),
            uow,
            clock,
            self._listener,
            replica=replica,
            titles=titles,
        )

    def lease_until(self) -> datetime:
        return self._clock.now() + timedelta(seconds=self._policy.lease_seconds)

    async def claim(self, uow: UnitOfWork, user_id: str, chat_id: str) -> Run | None:
        """Start the chat's next queued run under this replica's lease (in ``uow``), if it is free."""
        return await uow.runs.claim_next(
            user_id, chat_id, owner=self.replica, now=self._clock.now(), lease_until=self.lease_until()
        )

    def running(self) -> list[str]:
        return list(self._tasks)

    def launch(
        self,
        run: Run,
        *,
        stateless: Stateless | None = None,
        built: BuiltAgent | None = None,
        options: TurnOptions = NO_OPTIONS,
        continued: bool = False,
    ) -> None:
        """``continued``: the run goes on from its stored steps (a decision, a resume)."""
        pausing = self._tasks.get(run.id)
        if pausing is not None:
            if continued:
                # Decided before the task that paused it has quite finished: go on right after it.
                pausing.add_done_callback(lambda _: self.launch(run, continued=True))
            return
        if continued:
            self._continued.add(run.id)
        if not options.empty:
            self._options[run.id] = options
        loop = asyncio.get_running_loop()
        task = loop.create_task(self._execute(run, stateless, built), name=f"run-{run.id}")
        self._tasks[run.id] = task
        # Claimed just now, so held for a lease from here at most.
        self._held_until[run.id] = loop.time() + self._policy.lease_seconds
        task.add_done_callback(lambda _: self._forget(run.id))

    def _forget(self, run_id: str) -> None:
        self._continued.discard(run_id)
        self._tasks.pop(run_id, None)
        self._options.pop(run_id, None)
        self._held_until.pop(run_id, None)

    def renewed(self, run_ids: list[str], asked_at: float) -> None:
        """These runs' leases were renewed by a statement sent at ``asked_at`` (event loop time)."""
        until = asked_at + self._policy.lease_seconds
        for run_id in run_ids:
            if run_id in self._held_until:
                self._held_until[run_id] = until

    def lapsed(self) -> list[str]:
        """Runs whose lease may have run out: another replica may have ended them and moved on."""
        now = asyncio.get_running_loop().time()
        return [run_id for run_id, until in self._held_until.items() if until <= now]

    def steer_local(self, run_id: str) -> bool:
        """Tell a run of this replica's that a steering message waits for it."""
        steering = self._steering.get(run_id)
        if steering is None:
            return False
        steering.pending = True
        return True

    def cancel_local(self, run_id: str, reason: str = "cancelled") -> bool:
        """Stop a run of this replica's; one not yet at its model stops as soon as it gets there."""
        task = self._tasks.get(run_id)
        if task is None:
            return False
        self._reasons.setdefault(run_id, reason)
        if run_id in self._cancellable:
            task.cancel()
        return True

    def abandon(self, run: Run) -> None:
        """End ``run`` as failed once the database answers again, if it was stored at all.

        For a start whose database call failed without an answer: the run may be stored, queued
        or even started under this replica's lease, with nothing executing it, and its chat would
        stay busy until that lease expired.
        """
        task = asyncio.get_running_loop().create_task(self._abandon(run), name=f"abandon-{run.id}")
        self._abandoning.add(task)
        task.add_done_callback(self._abandoning.discard)

    async def _abandon(self, run: Run) -> None:
        error = RunError("database_unavailable", "the database failed while the run was being started")
        outcome = RunOutcome(run.id, self.replica, "failed", None, TurnUsage(), error)
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + 2 * self._policy.lease_seconds
        delay = ABANDON_RETRY_SECONDS
        while loop.time() < give_up_at:
            try:
                async with self._uow(user_id=run.user_id) as uow:
                    now = self._clock.now()
                    if not await uow.runs.finish(run.user_id, outcome, now=now):
                        await uow.runs.finish(run.user_id, outcome, now=now, fenced=False)
                    await uow.commit()
            except ChatServerError:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            await self.start_next(run)
            return

    async def aclose(self, grace_seconds: float) -> None:
        """Let runs in flight finish for ``grace_seconds``, then stop the rest as interrupted."""
        for abandoning in list(self._abandoning):
            abandoning.cancel()
        tasks = list(self._tasks.values())
        if tasks:
            await asyncio.wait(tasks, timeout=grace_seconds)
        for run_id in list(self._tasks):
            self.cancel_local(run_id, "shutdown")
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _execute(self, run: Run, stateless: Stateless | None, built: BuiltAgent | None) -> None:
        with run_span(self._tracer, run):
            end = await self._run(run, stateless, built)
        await self._hand_on(run, end)

    async def _run(self, run: Run, stateless: Stateless | None, built: BuiltAgent | None) -> RunEnd:
        writer = RunWriter(self._events, run.id, flush_seconds=self._policy.token_flush_seconds)
        started = time.perf_counter()
        progress = RunProgress(options=self._options.get(run.id, NO_OPTIONS))
        steering = self._steering[run.id] = RunSteering(self._uow, self._clock, self.replica, run)
        end = NOT_WRITTEN
        try:
            # Shielded: once begun, the user's message is stored whatever happens; a cancel that
            # came meanwhile takes effect right after.
            await _shielded(self._open(progress, run, built, stateless))
            if run.id in self._reasons:
                raise asyncio.CancelledError
            self._cancellable.add(run.id)
            assert progress.opened is not None
            result = await self._model(run, progress, writer)
            if result.pending_approvals:
                end = await _shielded(self._closing.paused(run, progress, writer, result))
                return end
        except asyncio.CancelledError:
            reason = self._reasons.get(run.id, "cancelled")
            end = await _shielded(self._closing.stopped(run, progress, writer, reason, started))
        except Exception as error:
            if not isinstance(error, ChatServerError):
                log.exception("run failed", extra={"run_id": run.id})
            end = await _shielded(self._closing.failed(run, progress, writer, error, started))
        else:
            end = await _shielded(self._closing.completed(run, progress, writer, result, started))
        finally:
            self._reasons.pop(run.id, None)
            self._cancellable.discard(run.id)
            del self._steering[run.id]
            if end is not PAUSED:
                await _shielded(self._end_logs(run, writer, steering))
        return end

    async def _hand_on(self, run: Run, end: RunEnd) -> None:
        """Start the chat's next run: the end's statement did when it was written."""
        if end.started is not None:
            self.launch(end.started)
        elif not end.written:
            await self.start_next(run)

    async def _end_logs(self, run: Run, writer: RunWriter, steering: RunSteering) -> None:
        """Close the run's log; the messages that steered it end with its end, in their own logs."""
        await self._events.close(run.id)
        for absorbed in steering.absorbed:
            if writer.last is not None:
                await self._events.append(absorbed, *writer.last)
            await self._events.close(absorbed)

    async def start_next(self, run: Run) -> None:
        """Start the chat's next queued run, here: whoever ends a run hands the chat on."""
        if run.chat_id is None:
            return
        try:
            async with self._uow(user_id=run.user_id) as uow:
                claimed = await self.claim(uow, run.user_id, run.chat_id)
                await uow.commit()
        except ChatServerError:
            log.warning("could not start the next run of a chat; the supervisor will", exc_info=True)
            return
        if claimed is not None:
            self.launch(claimed)

    async def _open(
        self, progress: RunProgress, run: Run, built: BuiltAgent | None, stateless: Stateless | None
    ) -> None:
        built = built or await self._agents.get(run.user_id, run.agent_name)
        if run.id in self._continued:
            progress.opened, progress.steps = await self._reopen(run, built)
            return
        progress.opened = await self._open_turn(run, built, stateless)

    async def _reopen(self, run: Run, built: BuiltAgent) -> tuple[OpenedTurn, list[RunStep]]:
        """A run going on: its user message is stored already; its window, and its steps."""
        assert run.chat_id is not None
        window = (
            self._policy.history_window
            if built.config.history_window is None
            else built.config.history_window
        )
        async with self._uow(user_id=run.user_id) as uow:
            chat = await uow.chats.get(run.user_id, run.chat_id)
            if chat is None:
                raise NotFound(f"chat '{run.chat_id}' not found")
            turn = chat.turn_count
            # The active branch ends with this run's own turn (its message, a partial answer): the
            # window is the turns before it.
            leaf = chat.active_message_id
            branch = await uow.messages.window(run.user_id, run.chat_id, from_id=leaf, turns=window + 1)
            messages = [message for message in branch if message.turn < turn]
            steps = await uow.steps.list(run.user_id, run.id)
        return OpenedTurn(built, turn, to_model_messages(messages), None), steps

    async def _open_turn(self, run: Run, built: BuiltAgent, stateless: Stateless | None) -> OpenedTurn:
        """Store the user's message (committed before the model runs) and read the window."""
        if run.chat_id is None:
            extra = stateless or Stateless()
            built = await self._agents.current(built, run.user_id, extra.versions)
            return OpenedTurn(built, 0, to_model_messages(extra.history), extra.instructions or None)
        window = (
            self._policy.history_window
            if built.config.history_window is None
            else built.config.history_window
        )
        options = self._options.get(run.id, NO_OPTIONS)
        opening = options.opening
        async with self._uow(user_id=run.user_id) as uow:
            if opening:
                claimed = await uow.turns.resume(
                    run.user_id,
                    run.chat_id,
                    built.config.name,
                    opening,
                    now=self._clock.now(),
                    window_turns=window,
                )
            else:
                claimed = await uow.turns.open(
                    run.user_id,
                    run.chat_id,
                    built.config.name,
                    run.message,
                    title=title_from(run.message),
                    now=self._clock.now(),
                    window_turns=window,
                    run_id=run.id,
                )
            if claimed is None:
                raise NotFound(f"chat '{run.chat_id}' not found")
            if claimed.chat.agent_name != built.config.name:
                raise Conflict(f"chat '{run.chat_id}' belongs to agent '{claimed.chat.agent_name}'")
            await uow.commit()
        turn, messages = claimed.chat.turn_count, claimed.window
        current = await self._agents.current(built, run.user_id, claimed.versions)
        if current is not built and current.config.history_window != built.config.history_window:
            messages = await self._window(run, claimed.window_from, current)
        return OpenedTurn(current, turn, to_model_messages([*messages, *opening]), options.instructions)

    async def _window(self, run: Run, window_from: int | None, built: BuiltAgent) -> list[Message]:
        """The window again, for an agent rebuilt with another size of it (rare: after a change)."""
        assert run.chat_id is not None
        window = built.config.history_window
        turns = self._policy.history_window if window is None else window
        async with self._uow(user_id=run.user_id) as uow:
            return await uow.messages.window(run.user_id, run.chat_id, from_id=window_from, turns=turns)

    async def _model(self, run: Run, progress: RunProgress, writer: RunWriter) -> TurnResult:
        opened = progress.opened
        assert opened is not None
        meter = progress.meter = await self._metering.meter(run)
        # A run whose context is the caller's (no chat, or options held in this process only)
        # could not go on from stored steps: it keeps none, and cannot wait for an approval.
        stored = run.chat_id is not None and progress.options.empty
        steps = RunStepLog(self._uow, self._clock, run, progress.steps or ()) if stored else None
        deps = TurnDeps(
            run.user_id,
            opened.built.config.name,
            run.chat_id,
            self._tool_backend,
            steering=self._steering[run.id],
            meter=meter,
            steps=steps,
        )
        options = progress.options
        turn = stream_turn(
            opened.built,
            None if options.continues else run.message,
            continued=None if progress.steps is None else continuation(progress.steps),
            history=opened.history,
            deps=deps,
            timeout_seconds=self._policy.model_timeout_seconds,
            max_requests=self._policy.max_model_requests,
            instructions=opened.instructions,
            options=options,
        )
        async with aclosing(turn) as events:
            async for event in events:
                if isinstance(event, TokenEvent):
                    await writer.token(event.delta)
                elif isinstance(event, ToolCallEvent):
                    await writer.emit("tool_call", {"name": event.name, "args": event.args})
                elif isinstance(event, ToolResultEvent):
                    await writer.emit("tool_result", {"name": event.name, "result": event.result})
                elif isinstance(event, StoppedEvent):
                    progress.partial = event.result
                elif isinstance(event, DoneEvent):
                    return event.result
        raise ModelError("the model run ended without an answer")


async def _shielded(work: Coroutine[Any, Any, T]) -> T:
    """Finish ``work`` even if the task is cancelled again meanwhile: a run's end must be written."""
    task = asyncio.ensure_future(work)
    while True:
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                return task.result()
