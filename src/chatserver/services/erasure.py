"""Erasing a user: their runs stopped, their cached agents dropped everywhere, every row naming them
deleted, and one ``user.erased`` receipt that names them only by a salted hash.

Order matters: runs are cancelled (and awaited) first, so no run of theirs writes after the
deletion; caches are dropped after the commit, so nothing rebuilt in between survives it.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
from typing import Protocol

from chatserver.clock import Clock
from chatserver.domain import NewEvent
from chatserver.errors import ChatServerError, InvalidInput, NotFound
from chatserver.storage.protocols import UnitOfWorkFactory


class RunCanceller(Protocol):
    async def cancel(self, user_id: str, run_id: str) -> object: ...


class AgentEvictor(Protocol):
    def invalidate_user(self, user_id: str, agent_names: set[str]) -> None:
        """Drop the user's cached agents of ``agent_names`` (and any other held here), on every replica."""


class KnownSubjects(Protocol):
    def forget(self, user_id: str) -> None:
        """Stop assuming the user exists (JWT subjects are signed up on first sight)."""


def subject_hash(salt: bytes, user_id: str) -> str:
    return hmac.new(salt, user_id.encode(), hashlib.sha256).hexdigest()


class ErasureService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        runs: RunCanceller,
        agents: AgentEvictor,
        subjects: KnownSubjects,
        clock: Clock,
        *,
        salt: bytes,
    ) -> None:
        self._uow = uow
        self._subjects = subjects
        self._runs = runs
        self._agents = agents
        self._clock = clock
        self._salt = salt

    async def erase_self(self, user_id: str, *, confirm: str) -> dict[str, int]:
        """The caller's own erasure, confirmed by repeating their id."""
        if confirm != user_id:
            raise InvalidInput("must be your own user id", field="confirm")
        return await self.erase(user_id, by="self")

    async def erase(self, user_id: str, *, by: str = "admin") -> dict[str, int]:
        """Erase ``user_id``; ``NotFound`` when there is no such user. How many of each kind went."""
        async with self._uow(user_id=user_id) as uow:
            if await uow.users.get(user_id) is None:
                raise NotFound(f"user '{user_id}' not found")
            run_ids = await uow.user_data.active_run_ids(user_id)
            agent_names = {agent.name for agent in await uow.agents.list()}
        for run_id in run_ids:
            # A run that ended meanwhile (Conflict) or is gone has nothing left to stop.
            with contextlib.suppress(ChatServerError):
                await self._runs.cancel(user_id, run_id)
        async with self._uow(user_id=user_id) as uow:
            counts = await uow.user_data.erase(user_id)
            data = {"subject": subject_hash(self._salt, user_id), "by": by, "erased": counts}
            await uow.events.add(NewEvent("user.erased", data=data), now=self._clock.now())
            await uow.commit()
        self._agents.invalidate_user(user_id, agent_names)
        self._subjects.forget(user_id)
        return counts
