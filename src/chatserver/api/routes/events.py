"""GET /api/admin/events: the audit log for admins, newest first, paged by an id cursor."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from chatserver.api.cursors import decode_id_cursor
from chatserver.api.deps import AdminUser, ContainerDep
from chatserver.domain import AuditEvent

router = APIRouter(prefix="/api/admin/events", tags=["admin"])

Limit = Annotated[int, Query(ge=1, le=200)]


class EventOut(BaseModel):
    id: int
    type: str
    user_id: str | None
    agent_name: str | None
    chat_id: str | None
    data: dict[str, Any]
    created_at: datetime

    @classmethod
    def of(cls, event: AuditEvent) -> EventOut:
        return cls(
            id=event.id,
            type=event.type,
            user_id=event.user_id,
            agent_name=event.agent_name,
            chat_id=event.chat_id,
            data=event.data,
            created_at=event.created_at,
        )


class EventPage(BaseModel):
    items: list[EventOut]
    next_before: str | None


@router.get("", response_model=EventPage)
async def list_events(
    _: AdminUser,
    container: ContainerDep,
    type: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    user_id: Annotated[str | None, Query(min_length=1, max_length=255)] = None,
    limit: Limit = 50,
    before: str | None = None,
) -> EventPage:
    cursor = decode_id_cursor(before) if before else None
    events = await container.events.list(type=type, user_id=user_id, limit=limit, before=cursor)
    next_before = str(events[-1].id) if len(events) == limit else None
    return EventPage(items=[EventOut.of(event) for event in events], next_before=next_before)
