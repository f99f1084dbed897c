"""The caller's own account: who they are, and everything of theirs as a download."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from chatserver.api.deps import ContainerDep, CurrentUser

router = APIRouter(prefix="/api/me", tags=["me"])


class MeOut(BaseModel):
    id: str
    is_admin: bool
    created_at: datetime


@router.get("", response_model=MeOut)
async def me(principal: CurrentUser, container: ContainerDep) -> MeOut:
    """Who you are; ``is_admin`` as your credentials say for this request."""
    user = await container.user_data.me(principal.user_id)
    return MeOut(id=user.id, is_admin=principal.is_admin, created_at=user.created_at)


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/json": {}}, "description": "The export, as a download"}},
)
async def export(principal: CurrentUser, container: ContainerDep) -> StreamingResponse:
    """Everything of yours: chats with their messages, customizations, memories, sessions, runs and
    your audit events, written as it is read (a failure midway cuts the download short)."""
    chunks = await container.user_data.export(principal.user_id)
    day = container.clock.now().strftime("%Y%m%d")
    headers = {"Content-Disposition": f'attachment; filename="chatserver-export-{day}.json"'}
    return StreamingResponse(chunks, media_type="application/json", headers=headers)
