"""Per-user authentication for the LangGraph server: chatserver's HS256 JWT (``sub`` is the user),
and every thread and run owned by, and visible only to, the user who made it."""

from __future__ import annotations

import os
from typing import Any

import jwt
from langgraph_sdk import Auth

auth = Auth()
_SECRET = os.environ["LANGGRAPH_BENCH_JWT_SECRET"]


@auth.authenticate
async def authenticate(authorization: str | None) -> str:
    scheme, _, credentials = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not credentials:
        raise Auth.exceptions.HTTPException(status_code=401, detail="missing bearer token")
    try:
        claims = jwt.decode(credentials, _SECRET, algorithms=["HS256"], audience="authenticated")
    except jwt.PyJWTError as exc:
        raise Auth.exceptions.HTTPException(status_code=401, detail="invalid token") from exc
    return str(claims["sub"])


@auth.on.threads
async def owner_only(ctx: Auth.types.AuthContext, value: Any) -> dict[str, str]:
    """Stamp the owner on the threads (and runs) a user creates and filter every read and write of
    them by it; the one assistant (the graph) is everyone's."""
    # In place: the server keeps its own reference to the metadata dict it handed over.
    metadata = value.get("metadata") if isinstance(value, dict) else None
    if isinstance(metadata, dict):
        metadata["owner"] = ctx.user.identity
    elif isinstance(value, dict):
        value["metadata"] = {"owner": ctx.user.identity}
    return {"owner": ctx.user.identity}
