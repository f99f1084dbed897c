"""The OpenAI Responses API on the run pipeline: a response is a run (``resp_<run id>``).

Stored responses (``store``, the default) are turns of a chat: a response without
``previous_response_id`` begins a chat, one with it continues from that response: the newest
response of the chat goes on, an older one begins a new branch there, as OpenAI's context is the
named response's own chain. With
``store: false`` the input is the whole context, as a run without a chat, and the response cannot
be retrieved or continued. ``background: true`` answers at once; the run goes on, to be read with
``GET`` or stopped with ``POST .../cancel``.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse, Response

from chatserver.api.deps import ContainerDep, CurrentUser, IdempotencyKey, request_hash
from chatserver.api.responses_render import (
    EventWriter,
    Shown,
    input_items,
    of_run,
    response_events,
    run_id_of,
)
from chatserver.api.responses_schemas import ResponseRequest, ResponseTurn, responses_field
from chatserver.api.routes.openai import model_not_found
from chatserver.api.run_streams import EventStream, answer
from chatserver.domain import Run, StartRun
from chatserver.errors import InvalidInput, NotFound
from chatserver.services.turn_policy import AgentNotFound

router = APIRouter(prefix="/v1", tags=["openai"])

ResponseId = Annotated[str, Path(min_length=1, max_length=80)]


@router.post(
    "/responses",
    response_model=None,
    responses={
        200: {
            "content": {"application/json": {}, "text/event-stream": {}},
            "description": "a response object, or its typed events (stream: true)",
        }
    },
)
async def create_response(
    body: ResponseRequest, principal: CurrentUser, container: ContainerDep, key: IdempotencyKey = None
) -> Response:
    previous = await _previous(container, principal.user_id, body.previous_response_id)
    turn = body.to_turn(_handed_calls(previous))
    command = _command(body, turn, principal.user_id, previous, key)
    try:
        handle = await container.runs.start(command)
    except AgentNotFound:
        return model_not_found(body.model)
    except InvalidInput as error:
        raise InvalidInput(error.detail, field=responses_field(error.field)) from None
    shown = replace(
        Shown.of(handle.run),
        background=body.background,
        store=body.store,
        previous_response_id=body.previous_response_id,
        instructions=body.instructions,
    )
    checked = command.options.output is not None
    if body.stream:
        return EventStream(response_events(EventWriter(shown), handle.events(), checked=checked))
    if body.background:
        return JSONResponse(shown.response("queued" if handle.run.status == "queued" else "in_progress"))
    outcome = await handle.outcome()
    answer(outcome, command.chat_id)  # a failed run raises its error here
    status = "completed" if outcome.kind == "done" else "cancelled"
    return JSONResponse(shown.response(status, done=outcome.data if outcome.kind == "done" else None))


@router.get("/responses/{response_id}", response_model=None)
async def retrieve_response(response_id: ResponseId, principal: CurrentUser, container: ContainerDep) -> Any:
    return of_run(await _stored(container, principal.user_id, response_id))


@router.delete("/responses/{response_id}", response_model=None)
async def delete_response(response_id: ResponseId, principal: CurrentUser, container: ContainerDep) -> Any:
    run = await _stored(container, principal.user_id, response_id)
    await container.runs.delete(principal.user_id, run.id)
    return {"id": response_id, "object": "response", "deleted": True}


@router.post("/responses/{response_id}/cancel", response_model=None)
async def cancel_response(response_id: ResponseId, principal: CurrentUser, container: ContainerDep) -> Any:
    run = await _stored(container, principal.user_id, response_id)
    return of_run(await container.runs.cancel(principal.user_id, run.id))


@router.get("/responses/{response_id}/input_items", response_model=None)
async def list_input_items(response_id: ResponseId, principal: CurrentUser, container: ContainerDep) -> Any:
    items = input_items(await _stored(container, principal.user_id, response_id))
    first, last = (items[0]["id"], items[-1]["id"]) if items else (None, None)
    return {"object": "list", "data": items, "first_id": first, "last_id": last, "has_more": False}


async def _stored(container: ContainerDep, user_id: str, response_id: str) -> Run:
    """The caller's stored response; one of ``store: false`` was never kept."""
    run = await container.runs.get(user_id, run_id_of(response_id))
    if run.chat_id is None:
        raise NotFound(f"response '{response_id}' not found")
    return run


async def _previous(container: ContainerDep, user_id: str, response_id: str | None) -> Run | None:
    if response_id is None:
        return None
    try:
        return await _stored(container, user_id, response_id)
    except NotFound:
        raise NotFound(f"previous response '{response_id}' not found") from None


def _handed_calls(previous: Run | None) -> dict[str, str]:
    """Id -> name of the caller's tools the previous response called: its outputs may answer them."""
    calls = ((previous.result if previous else None) or {}).get("client_tool_calls") or []
    return {str(call["id"]): str(call["name"]) for call in calls}


def _command(
    body: ResponseRequest, turn: ResponseTurn, user_id: str, previous: Run | None, key: str | None
) -> StartRun:
    digest = request_hash("v1:responses", body) if key else None
    if not body.store:
        if body.previous_response_id or body.background:
            field = "previous_response_id" if body.previous_response_id else "background"
            raise InvalidInput(f"{field} needs a stored response (store: true)", field=field)
        # The run's record keeps no copy of the input: the context goes to the model only.
        return StartRun(
            user_id,
            body.model,
            "",
            idempotency_key=key,
            request_hash=digest,
            history=turn.messages,
            instructions=turn.instructions,
            options=turn.options,
        )
    options = replace(
        turn.options, opening=turn.messages, instructions=turn.instructions, input_items=turn.input_items
    )
    return StartRun(
        user_id,
        body.model,
        turn.last_user_text,
        chat_id=previous.chat_id if previous else f"resp-{uuid.uuid4().hex}",
        follows_run=previous.id if previous else None,
        idempotency_key=key,
        request_hash=digest,
        options=options,
    )
