"""How a run's end is written: one fenced statement with its last messages and audit event.

While the database is unavailable the run keeps its chat (its lease is renewed as long as its task
lives) and retries, so the answer is stored once the database is back; its readers are told at once.
The same statement hands the chat on: its next queued run starts under this replica's lease.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from pydantic_ai.messages import ModelMessage

from chatserver.agents.types import BuiltAgent, TurnResult
from chatserver.clock import Clock
from chatserver.domain import NewEvent, NewMessage, Run, RunOutcome
from chatserver.errors import ChatServerError, DatabaseUnavailable
from chatserver.services.run_errors import code_of
from chatserver.services.run_events import RunWriter
from chatserver.storage.protocols import ClosedRun, HandOn, UnitOfWorkFactory

CLOSE_RETRY_SECONDS = 0.1
log = logging.getLogger("chatserver.runs")


@dataclass(frozen=True, slots=True)
class OpenedTurn:
    """A turn whose user message is stored: what its model run needs."""

    built: BuiltAgent
    turn: int
    history: list[ModelMessage]
    instructions: str | None


@dataclass(frozen=True, slots=True)
class RunEnd:
    """What writing a run's end did."""

    tell: bool
    """The end was written and its readers may be told (they were not, yet)."""
    written: bool
    started: Run | None = None
    """The chat's next queued run, started under this replica's lease by the same statement."""


NOT_WRITTEN = RunEnd(tell=False, written=False)


class RunEnds:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, *, lease_seconds: float) -> None:
        self._uow = uow
        self._clock = clock
        self._lease_seconds = lease_seconds
        self._retry_seconds = 2 * lease_seconds

    async def write(
        self,
        run: Run,
        opened: OpenedTurn | None,
        writer: RunWriter,
        messages: list[NewMessage],
        event: NewEvent,
        outcome: RunOutcome,
    ) -> RunEnd:
        """Readers not to be told (``tell`` False) were told already."""
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + self._retry_seconds
        delay = CLOSE_RETRY_SECONDS
        while True:
            try:
                closed = await self._write(run, opened, messages, event, outcome)
            except DatabaseUnavailable as error:
                await _tell(writer, run, error)
                if loop.time() + delay > give_up_at:
                    log.warning("gave up storing the end of a run", extra={"run_id": run.id})
                    return NOT_WRITTEN
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            except ChatServerError as error:
                log.warning("could not store the end of a run", extra={"run_id": run.id}, exc_info=True)
                await _tell(writer, run, error)
                return NOT_WRITTEN
            if not closed.written:
                await lost(run, writer)
            return RunEnd(closed.written and not writer.ended, closed.written, closed.started)

    async def _write(
        self,
        run: Run,
        opened: OpenedTurn | None,
        messages: list[NewMessage],
        event: NewEvent,
        outcome: RunOutcome,
    ) -> ClosedRun:
        now = self._clock.now()
        lease_until = now + timedelta(seconds=self._lease_seconds)
        hand_on = None if run.chat_id is None else HandOn(run.chat_id, lease_until)
        async with self._uow(user_id=run.user_id) as uow:
            chat_id = run.chat_id if opened is not None else None
            turn = opened.turn if opened is not None else 0
            closed = await uow.turns.close(
                run.user_id, chat_id, turn, messages, event, now=now, outcome=outcome, hand_on=hand_on
            )
            await uow.commit()
        return closed


async def _tell(writer: RunWriter, run: Run, error: ChatServerError) -> None:
    if not writer.ended:
        await writer.emit("error", {"run_id": run.id, "detail": error.detail, "code": code_of(error)})


async def lost(run: Run, writer: RunWriter) -> None:
    """The run is no longer this replica's: its readers learn that it ended elsewhere."""
    if not writer.ended:
        detail = "the run was taken over after this server lost its lease"
        await writer.emit("error", {"run_id": run.id, "detail": detail, "code": "server_restarted"})


def done_data(
    run: Run, result: TurnResult, model: str | None, input_items: Sequence[dict[str, Any]] = ()
) -> dict[str, Any]:
    """The ``done`` event of a run, also kept on its record for readers that come after its log.

    The caller's tool calls and input items come only when there are any (the OpenAI API's)."""
    usage = result.usage
    extra: dict[str, Any] = {}
    if result.client_calls:
        extra["client_tool_calls"] = [asdict(call) for call in result.client_calls]
    if input_items:
        extra["input_items"] = list(input_items)
    return {
        "run_id": run.id,
        "chat_id": run.chat_id,
        "response": result.output,
        "tool_calls": [asdict(call) for call in result.tool_calls],
        "usage": {
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "requests": usage.requests,
        },
        "model": model,
        **extra,
    }


def turn_event(kind: str, run: Run, opened: OpenedTurn | None, **data: Any) -> NewEvent:
    """The run's audit event: counts and codes only, never content."""
    where: dict[str, Any] = (
        {"stateless": True} if run.chat_id is None else {"turn": opened.turn if opened else 0}
    )
    return NewEvent(
        kind,
        user_id=run.user_id,
        agent_name=run.agent_name,
        chat_id=run.chat_id,
        data={**where, "run_id": run.id, **data},
    )
