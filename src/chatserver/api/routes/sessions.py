"""Session instances of the caller: open, heartbeat, end, list."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field

from chatserver.api.deps import ContainerDep, CurrentUser
from chatserver.api.schemas import CHAT_ID_PATTERN, Strict
from chatserver.domain import SessionInstance

router = APIRouter(prefix="/api/chat_sessions", tags=["chat sessions"])

SessionId = Annotated[str, Path(min_length=1, max_length=64)]


class SessionIn(Strict):
    agent_name: str = Field(min_length=1, max_length=64)
    chat_id: str | None = Field(
        None, pattern=CHAT_ID_PATTERN, description="The caller's chat; a new one is created when omitted"
    )


class SessionOut(BaseModel):
    id: str
    chat_id: str
    agent_name: str
    is_active: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, session: SessionInstance) -> SessionOut:
        return cls(
            id=session.id,
            chat_id=session.chat_id,
            agent_name=session.agent_name,
            is_active=session.is_active,
            created_at=session.created_at,
            updated_at=session.updated_at,
        )


@router.post("", response_model=SessionOut, status_code=201)
async def open_session(body: SessionIn, principal: CurrentUser, container: ContainerDep) -> SessionOut:
    session = await container.sessions.open(principal.user_id, body.agent_name, body.chat_id)
    return SessionOut.of(session)


@router.post("/{session_id}/heartbeat", response_model=SessionOut)
async def heartbeat(session_id: SessionId, principal: CurrentUser, container: ContainerDep) -> SessionOut:
    return SessionOut.of(await container.sessions.heartbeat(principal.user_id, session_id))


@router.delete("/{session_id}", status_code=204, response_class=Response)
async def end_session(session_id: SessionId, principal: CurrentUser, container: ContainerDep) -> Response:
    await container.sessions.end(principal.user_id, session_id)
    return Response(status_code=204)


@router.get("", response_model=list[SessionOut])
async def list_sessions(
    principal: CurrentUser,
    container: ContainerDep,
    agent_name: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    active: bool | None = None,
) -> list[SessionOut]:
    sessions = await container.sessions.list(principal.user_id, agent_name=agent_name, active=active)
    return [SessionOut.of(session) for session in sessions]
