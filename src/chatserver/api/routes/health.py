"""Liveness, readiness and Prometheus metrics; no authentication (DESIGN.md)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from chatserver.api.deps import ContainerDep
from chatserver.api.responses import READINESS_ERRORS
from chatserver.errors import ChatServerError
from chatserver.observability.metrics import CONTENT_TYPE

router = APIRouter(tags=["health"])
log = logging.getLogger("chatserver.health")


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive and serving; no I/O."""
    return {"status": "ok"}


OPTIONAL_CHECKS = frozenset({"redis"})
"""Chat turns work without them: when they fail the replica is degraded, not unready."""


@router.get("/readyz", responses=READINESS_ERRORS)
async def readyz(container: ContainerDep) -> JSONResponse:
    """200 when the database answers (within ``CHATSERVER_READINESS_TIMEOUT_SECONDS``) and migrations
    are current; a Redis that does not answer is named under ``degraded``, and the replica stays ready.

    503 otherwise, naming each failing check (with ``code: database_unavailable`` when the database
    does not answer).
    """
    checks = await container.readiness()
    degraded = [name for name, ok in checks.items() if not ok and name in OPTIONAL_CHECKS]
    failing = [name for name, ok in checks.items() if not ok and name not in OPTIONAL_CHECKS]
    body: dict[str, Any] = {
        "status": "unavailable" if failing else "ready",
        "checks": {name: _state(name, ok) for name, ok in checks.items()},
        "failing": failing,
        "degraded": degraded,
    }
    if not checks["database"]:
        body["code"] = "database_unavailable"
    return JSONResponse(body, status_code=503 if failing else 200)


def _state(name: str, ok: bool) -> str:
    if ok:
        return "ok"
    return "degraded" if name in OPTIONAL_CHECKS else "failing"


@router.get("/metrics", response_class=Response)
async def metrics(container: ContainerDep) -> Response:
    """Prometheus text format. Gauges read from the database are refreshed first, when it answers."""
    try:
        container.metrics.active_sessions.set(await container.operations.active_sessions())
    except ChatServerError:
        log.warning("metrics: active sessions not refreshed (database unavailable)")
    return Response(container.metrics.render(), media_type=CONTENT_TYPE)
