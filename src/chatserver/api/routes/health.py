"""Liveness, readiness and Prometheus metrics; no authentication (DESIGN.md)."""

from __future__ import annotations

import logging

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


@router.get("/readyz", responses=READINESS_ERRORS)
async def readyz(container: ContainerDep) -> JSONResponse:
    """200 when the database answers, migrations are current and Redis (if configured) answers.

    503 otherwise, naming each failing check.
    """
    checks = await container.readiness()
    failing = [name for name, ok in checks.items() if not ok]
    body = {
        "status": "unavailable" if failing else "ready",
        "checks": {name: "ok" if ok else "failing" for name, ok in checks.items()},
        "failing": failing,
    }
    return JSONResponse(body, status_code=503 if failing else 200)


@router.get("/metrics", response_class=Response)
async def metrics(container: ContainerDep) -> Response:
    """Prometheus text format. Gauges read from the database are refreshed first, when it answers."""
    try:
        container.metrics.active_sessions.set(await container.operations.active_sessions())
    except ChatServerError:
        log.warning("metrics: active sessions not refreshed (database unavailable)")
    return Response(container.metrics.render(), media_type=CONTENT_TYPE)
