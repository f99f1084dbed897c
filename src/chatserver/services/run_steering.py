"""RunSteering: the steering messages of one running run, taken once each before a model request."""

from __future__ import annotations

import logging

from chatserver.clock import Clock
from chatserver.domain import Run, RunOutcome, TurnUsage
from chatserver.errors import ChatServerError
from chatserver.storage.protocols import UnitOfWorkFactory

log = logging.getLogger("chatserver.runs")


class RunSteering:
    """Implements ``agents.types.Steering`` for one run.

    A steering message is a queued run pointing at this one; taking it ends that run (it is no
    longer queued, so it is taken once, and never also started after this run).
    """

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, replica: str, run: Run) -> None:
        self._uow = uow
        self._clock = clock
        self._replica = replica
        self._run = run
        self.pending = False
        """Set by a steering signal: the queued messages are read only then, not at every request."""
        self.absorbed: list[str] = []
        """The runs of the messages taken: they end with this run's end."""

    async def take(self) -> list[str]:
        if not self.pending:
            return []
        self.pending = False
        run = self._run
        try:
            async with self._uow(user_id=run.user_id) as uow:
                taken = []
                for message in await uow.runs.steering(run.user_id, run.id):
                    result = {"run_id": message.id, "chat_id": message.chat_id, "steered_into": run.id}
                    outcome = RunOutcome(
                        message.id, self._replica, "completed", None, TurnUsage(), result=result
                    )
                    if await uow.runs.finish(run.user_id, outcome, now=self._clock.now(), fenced=False):
                        taken.append(message)
                await uow.commit()
        except ChatServerError:
            log.warning("steering messages not taken; they run after this run", exc_info=True)
            return []
        self.absorbed += [message.id for message in taken]
        return [message.message for message in taken]
