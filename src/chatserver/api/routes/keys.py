"""POST /api/admin/keys and DELETE /api/admin/keys/{key_id}: admins issue and revoke API keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from chatserver.api.admin_schemas import IssuedKeyOut, KeyIn
from chatserver.api.deps import AdminUser, ContainerDep

router = APIRouter(prefix="/api/admin/keys", tags=["admin"])


@router.post("", response_model=IssuedKeyOut, status_code=201)
async def issue_key(body: KeyIn, admin: AdminUser, container: ContainerDep) -> IssuedKeyOut:
    """Issue a key for the user named ``user`` (created when new); the key is in this answer only."""
    issued = await container.identity.create_key(body.user, admin=body.admin, actor=admin.user_id)
    _user, keys = await container.identity.user(issued.user.id)
    return IssuedKeyOut.of(issued, keys)


@router.delete("/{key_id}", status_code=204, response_class=Response)
async def revoke_key(
    key_id: Annotated[str, Path(min_length=1, max_length=255)], admin: AdminUser, container: ContainerDep
) -> Response:
    """Revoke an active key by id or prefix (404 when none); 409 for your own last admin key."""
    await container.identity.revoke_key(key_id, actor=admin.user_id)
    return Response(status_code=204)
