"""/api/admin/users: admins list users, see one with their keys, and erase one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from chatserver.api.admin_schemas import UserDetailOut, UserOut
from chatserver.api.deps import AdminUser, ContainerDep
from chatserver.api.routes.me import Erased

router = APIRouter(prefix="/api/admin/users", tags=["admin"])

UserId = Annotated[str, Path(min_length=1, max_length=255)]


@router.get("", response_model=list[UserOut])
async def list_users(_: AdminUser, container: ContainerDep) -> list[UserOut]:
    """Every user, oldest first, with how many active API keys each has."""
    return [UserOut.of(user, keys) for user, keys in await container.identity.users()]


@router.get("/{user_id}", response_model=UserDetailOut)
async def show_user(user_id: UserId, _: AdminUser, container: ContainerDep) -> UserDetailOut:
    """One user (by id, or by name as given to keys create) with every key of theirs (404 when unknown)."""
    user, keys = await container.identity.user(user_id)
    return UserDetailOut.with_keys(user, keys)


@router.delete("/{user_id}", response_model=Erased)
async def erase_user(user_id: UserId, _: AdminUser, container: ContainerDep) -> Erased:
    """Erase the user (404 when unknown): runs stopped, cached agents dropped, every row deleted."""
    return Erased(erased=await container.erasure.erase(user_id))
