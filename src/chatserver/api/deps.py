"""Request-scoped dependencies as ``Annotated`` aliases."""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from chatserver.container import Container
from chatserver.domain import Principal
from chatserver.errors import PermissionDenied, Unauthorized

bearer = HTTPBearer(auto_error=False, description="A JWT or an API key issued by `chatserver keys create`")


async def get_container(request: Request) -> Container:
    # async: FastAPI runs a plain ``def`` dependency in a worker thread, a thread hop per request.
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]


async def current_principal(
    container: ContainerDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("missing bearer token")
    principal = await container.identity.authenticate(credentials.credentials)
    # Every authenticated request counts once (FastAPI resolves this dependency once per request).
    await container.rate_limiter.hit(principal.user_id)
    return principal


CurrentUser = Annotated[Principal, Depends(current_principal)]


async def admin_principal(principal: CurrentUser) -> Principal:
    if not principal.is_admin:
        raise PermissionDenied("admin only")
    return principal


AdminUser = Annotated[Principal, Depends(admin_principal)]


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=r"^[\x20-\x7e]{1,255}$",
        description="Retry safely: the same key (within 24 h) returns the same run and stores nothing twice",
    ),
]


def request_hash(route: str, body: BaseModel) -> str:
    """What an idempotent retry must repeat: the route and the body, as parsed."""
    return hashlib.sha256(f"{route}\n{body.model_dump_json()}".encode()).hexdigest()
