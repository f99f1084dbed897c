"""Runs: start one in the background, read it, follow its events from any point, cancel it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Response
from fastapi.responses import StreamingResponse

from chatserver.api.cursors import decode_stamp_cursor, encode_stamp_cursor
from chatserver.api.deps import ContainerDep, CurrentUser, IdempotencyKey, request_hash
from chatserver.api.routes.chats import ChatId, Limit
from chatserver.api.run_streams import EventStream, sse_events
from chatserver.api.schemas import RunOut, RunPage, RunRequest
from chatserver.domain import RunStatus, StartRun

router = APIRouter(prefix="/api", tags=["runs"])

RunId = Annotated[str, Path(min_length=1, max_length=64)]
LastEventId = Annotated[str | None, Header(alias="Last-Event-ID", max_length=64)]


@router.post("/chats/{chat_id}/runs", status_code=202, response_model=RunOut)
async def start_run(
    chat_id: ChatId,
    body: RunRequest,
    principal: CurrentUser,
    container: ContainerDep,
    response: Response,
    key: IdempotencyKey = None,
) -> RunOut:
    command = StartRun(
        user_id=principal.user_id,
        agent_name=body.agent_name,
        message=body.message,
        chat_id=chat_id,
        busy_policy=body.busy_policy,
        edit_of=body.edit_of,
        regenerate=body.regenerate,
        idempotency_key=key,
        request_hash=request_hash(f"runs:{chat_id}", body) if key else None,
    )
    handle = await container.runs.start(command)
    response.headers["Location"] = f"/api/runs/{handle.run.id}"
    return RunOut.of(handle.run)


@router.get("/runs/{run_id}", response_model=RunOut)
async def get_run(run_id: RunId, principal: CurrentUser, container: ContainerDep) -> RunOut:
    return RunOut.of(await container.runs.get(principal.user_id, run_id))


@router.get("/chats/{chat_id}/runs", response_model=RunPage)
async def list_runs(
    chat_id: ChatId,
    principal: CurrentUser,
    container: ContainerDep,
    status: RunStatus | None = None,
    limit: Limit = 50,
    before: str | None = None,
) -> RunPage:
    cursor = decode_stamp_cursor(before) if before else None
    runs = await container.runs.list(principal.user_id, chat_id, status=status, limit=limit, before=cursor)
    next_before = encode_stamp_cursor(runs[-1].created_at, runs[-1].id) if len(runs) == limit else None
    return RunPage(items=[RunOut.of(run) for run in runs], next_before=next_before)


@router.get(
    "/runs/{run_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "the run's events after the given one"}
    },
)
async def run_events(
    run_id: RunId,
    principal: CurrentUser,
    container: ContainerDep,
    last_event_id: LastEventId = None,
    after: Annotated[str | None, Query(max_length=64)] = None,
) -> EventStream:
    handle = await container.runs.attach(principal.user_id, run_id, last_event_id or after)
    return EventStream(sse_events(handle.events(last_event_id or after)))


@router.post("/runs/{run_id}/cancel", response_model=RunOut)
async def cancel_run(run_id: RunId, principal: CurrentUser, container: ContainerDep) -> RunOut:
    return RunOut.of(await container.runs.cancel(principal.user_id, run_id))
