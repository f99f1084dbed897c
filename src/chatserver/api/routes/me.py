"""The caller's own account: who they are, and everything of theirs as a download."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from chatserver.api.deps import ContainerDep, CurrentUser

router = APIRouter(prefix="/api/me", tags=["me"])


class MeOut(BaseModel):
    id: str
    is_admin: bool
    created_at: datetime


class EraseConfirmation(BaseModel):
    confirm: str = Field(description="Your own user id: erasure cannot be undone")


class Erased(BaseModel):
    erased: dict[str, int] = Field(description="How many rows of each kind were deleted")


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


@router.delete("", response_model=Erased)
async def erase_me(body: EraseConfirmation, principal: CurrentUser, container: ContainerDep) -> Erased:
    """Erase yourself and everything of yours: your runs are stopped first. A JWT of yours signs you
    up again as a new user afterwards; your API keys are gone."""
    return Erased(erased=await container.erasure.erase_self(principal.user_id, confirm=body.confirm))
