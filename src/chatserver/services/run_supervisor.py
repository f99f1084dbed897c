"""RunSupervisor: keeps this replica's leases, ends runs whose replica died, starts stranded queues.

Every ``lease_seconds / 3`` it renews the leases of the runs this replica executes. A run that is
no longer this replica's (the sweep of another replica ended it while this one could not reach
the database), or whose lease ran out while renewals failed, is stopped here without writing
anything more; a run flagged for cancellation (by a
replica that could not reach this one) is cancelled. Then any replica may end the runs whose lease
has expired as ``interrupted`` and start the next queued run of their chats, so a run whose
replica was killed is ended within two leases and its chat goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from chatserver.clock import Clock
from chatserver.errors import ChatServerError
from chatserver.services.run_events import RunEventLog
from chatserver.services.run_executor import RunExecutor
from chatserver.storage.protocols import UnitOfWorkFactory

log = logging.getLogger("chatserver.runs")


class RunSupervisor:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        executor: RunExecutor,
        events: RunEventLog,
        clock: Clock,
        *,
        lease_seconds: float,
        expire_approvals: Callable[[], Awaitable[int]] | None = None,
    ) -> None:
        self._expire_approvals = expire_approvals
        self._uow = uow
        self._executor = executor
        self._events = events
        self._clock = clock
        self._interval = lease_seconds / 3
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="chatserver-run-supervisor")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def tick(self) -> None:
        await self.renew()
        await self.sweep()
        if self._expire_approvals is not None:
            await self._expire_approvals()

    async def renew(self) -> None:
        mine = self._executor.running()
        if not mine:
            return
        asked_at = asyncio.get_running_loop().time()
        try:
            async with self._uow() as uow:
                held = await uow.runs.renew(
                    self._executor.replica, mine, lease_until=self._executor.lease_until()
                )
                await uow.commit()
        except ChatServerError:
            self._stop_lapsed()
            raise
        kept = dict(held)
        self._executor.renewed(list(kept), asked_at)
        for run_id in mine:
            if run_id not in kept:
                self._executor.cancel_local(run_id, "lease_lost")
            elif kept[run_id]:
                self._executor.cancel_local(run_id, "cancelled")

    def _stop_lapsed(self) -> None:
        """Runs whose lease ran out unrenewed stop: another replica may be running their chat now."""
        for run_id in self._executor.lapsed():
            log.warning(
                "run stopped: its lease ran out while the database was unreachable", extra={"run_id": run_id}
            )
            self._executor.cancel_local(run_id, "lease_lost")

    async def sweep(self) -> None:
        async with self._uow() as uow:
            expired = await uow.runs.expire(now=self._clock.now())
            startable = await uow.runs.startable()
            await uow.commit()
        for run in expired:
            log.warning("run interrupted: its lease expired", extra={"run_id": run.id})
            error = run.error
            data = {"run_id": run.id, "code": "server_restarted", "detail": error.detail if error else ""}
            await self._events.append(run.id, "error", data)
            await self._events.close(run.id)
        for user_id, chat_id in startable:
            async with self._uow(user_id=user_id) as uow:
                claimed = await self._executor.claim(uow, user_id, chat_id)
                await uow.commit()
            if claimed is not None:
                self._executor.launch(claimed)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.tick()
            except ChatServerError:
                log.warning("run supervision failed; retrying", exc_info=True)
            except Exception:
                log.exception("run supervision failed; retrying")
