"""Session instances: a client's presence on a chat, opened with the window, kept by heartbeats.

Opening a session creates its chat at once when it does not exist yet (the instance refers to the
chat, and the chat then shows in the caller's chat list before its first message). Each change is
audited in the transaction that makes it. A heartbeat is not audited: it is frequent and says
nothing new beyond ``last_heartbeat_at``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from chatserver.clock import Clock
from chatserver.domain import Chat, NewEvent, SessionInstance
from chatserver.errors import Conflict, NotFound
from chatserver.storage.protocols import UnitOfWork, UnitOfWorkFactory


def new_id() -> str:
    return str(uuid.uuid4())


class SessionService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, *, ids: Callable[[], str] = new_id) -> None:
        self._uow = uow
        self._clock = clock
        self._ids = ids

    async def open(self, user_id: str, agent_name: str, chat_id: str | None = None) -> SessionInstance:
        """A new active instance on the caller's chat ``chat_id`` (created when absent, new when None).

        ``NotFound`` for an unknown agent or another user's chat; ``Conflict`` when the caller's chat
        belongs to another agent.
        """
        now = self._clock.now()
        async with self._uow(user_id=user_id) as uow:
            if await uow.agents.get(agent_name) is None:
                raise NotFound(f"agent '{agent_name}' not found")
            chat = await self._chat(uow, Chat(chat_id or self._ids(), user_id, agent_name, None, 0, now, now))
            session = SessionInstance(
                id=self._ids(),
                user_id=user_id,
                chat_id=chat.id,
                agent_name=agent_name,
                is_active=True,
                last_heartbeat_at=now,
                created_at=now,
                updated_at=now,
            )
            await uow.sessions.add(session)
            await uow.events.add(_event("session.started", session), now=now)
            await uow.commit()
        return session

    async def heartbeat(self, user_id: str, session_id: str) -> SessionInstance:
        """Refresh the caller's instance, reactivating it if it was ended or swept."""
        async with self._uow(user_id=user_id) as uow:
            session = await uow.sessions.heartbeat(user_id, session_id, now=self._clock.now())
            if session is None:
                raise NotFound(f"session '{session_id}' not found")
            await uow.commit()
        return session

    async def end(self, user_id: str, session_id: str) -> SessionInstance:
        now = self._clock.now()
        async with self._uow(user_id=user_id) as uow:
            session = await uow.sessions.end(user_id, session_id, now=now)
            if session is None:
                raise NotFound(f"session '{session_id}' not found")
            await uow.events.add(_event("session.ended", session), now=now)
            await uow.commit()
        return session

    async def list(
        self, user_id: str, *, agent_name: str | None = None, active: bool | None = None
    ) -> list[SessionInstance]:
        async with self._uow(user_id=user_id) as uow:
            return await uow.sessions.list(user_id, agent_name=agent_name, active=active)

    @staticmethod
    async def _chat(uow: UnitOfWork, new: Chat) -> Chat:
        """The caller's chat with ``new.id``, inserting ``new`` when nobody has that id yet."""
        await uow.chats.create_if_absent(new)
        chat = await uow.chats.get(new.user_id, new.id)
        if chat is None:
            raise NotFound(f"chat '{new.id}' not found")
        if chat.agent_name != new.agent_name:
            raise Conflict(f"chat '{new.id}' belongs to agent '{chat.agent_name}'")
        return chat


def _event(type: str, session: SessionInstance) -> NewEvent:
    return NewEvent(
        type,
        user_id=session.user_id,
        agent_name=session.agent_name,
        chat_id=session.chat_id,
        data={"session_id": session.id},
    )
