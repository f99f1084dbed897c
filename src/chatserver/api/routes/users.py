"""DELETE /api/admin/users/{user_id}: admins erase a user and everything of theirs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from chatserver.api.deps import AdminUser, ContainerDep
from chatserver.api.routes.me import Erased

router = APIRouter(prefix="/api/admin/users", tags=["admin"])


@router.delete("/{user_id}", response_model=Erased)
async def erase_user(
    user_id: Annotated[str, Path(min_length=1, max_length=255)], _: AdminUser, container: ContainerDep
) -> Erased:
    """Erase the user (404 when unknown): runs stopped, cached agents dropped, every row deleted."""
    return Erased(erased=await container.erasure.erase(user_id))
