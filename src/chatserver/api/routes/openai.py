"""The OpenAI-compatible API: GET /v1/models[/{id}] and POST /v1/chat/completions (model = agent name).

With an ``X-Chat-Id`` header the server keeps the conversation in that chat (only the newest user
message is read from the request); without it the request's messages are the whole context and
nothing is stored. The agent's tools run on the server; the request's ``tools`` are the caller's:
a call of one ends the answer with ``finish_reason: tool_calls``, and the caller sends the results
back as ``tool`` messages.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse, Response

from chatserver.api.deps import ContainerDep, CurrentUser, IdempotencyKey, request_hash
from chatserver.api.errors import OPENAI_TYPES, status_and_code
from chatserver.api.openai_schemas import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChunkChoice,
    FinishReason,
    ModelList,
    ModelOut,
    ToolCallOut,
    UsageOut,
    error_body,
)
from chatserver.api.run_streams import EventStream, answer
from chatserver.api.schemas import CHAT_ID_PATTERN
from chatserver.domain import StartRun, TurnUsage
from chatserver.errors import ChatServerError, NotFound
from chatserver.services.runs import RunHandle
from chatserver.services.turn_policy import AgentNotFound

router = APIRouter(prefix="/v1", tags=["openai"])
log = logging.getLogger("chatserver.api")

ChatIdHeader = Annotated[
    str | None,
    Header(
        alias="X-Chat-Id",
        pattern=CHAT_ID_PATTERN,
        description="Keep the conversation in this chat (created on first use); omit for stateless",
    ),
]


@dataclass(frozen=True, slots=True)
class _Completion:
    """What every chunk of one completion repeats."""

    id: str
    created: int
    model: str

    def chunk(self, delta: dict[str, Any], *, finish: FinishReason | None = None) -> str:
        choice = ChunkChoice(delta=delta, finish_reason=finish)
        body = ChatCompletionChunk(id=self.id, created=self.created, model=self.model, choices=[choice])
        return _data(body.model_dump(mode="json", exclude={"usage"}))

    def answer(self, text: str, calls: list[ToolCallOut], usage: TurnUsage) -> dict[str, Any]:
        message = (
            AssistantMessage(content=text or None, tool_calls=calls)
            if calls
            else AssistantMessage(content=text)
        )
        choice = Choice(message=message, finish_reason="tool_calls" if calls else "stop")
        body = ChatCompletion(
            id=self.id, created=self.created, model=self.model, choices=[choice], usage=UsageOut.of(usage)
        )
        return body.model_dump(mode="json", exclude_none=False)

    def usage_chunk(self, usage: TurnUsage) -> str:
        body = ChatCompletionChunk(
            id=self.id, created=self.created, model=self.model, choices=[], usage=UsageOut.of(usage)
        )
        return _data(body.model_dump(mode="json"))


@router.get("/models", response_model=ModelList)
async def list_models(_: CurrentUser, container: ContainerDep) -> ModelList:
    return ModelList(data=[ModelOut.of(agent) for agent in await container.agents.list()])


@router.get("/models/{model}", response_model=ModelOut)
async def retrieve_model(model: str, _: CurrentUser, container: ContainerDep) -> ModelOut | JSONResponse:
    try:
        return ModelOut.of(await container.agents.get(model))
    except NotFound:
        return model_not_found(model)


@router.post(
    "/chat/completions",
    response_model=None,
    responses={
        200: {
            "model": ChatCompletion,
            "content": {"text/event-stream": {}},
            "description": "a chat.completion, or chat.completion.chunk events ending with [DONE]",
        }
    },
)
async def chat_completions(
    body: ChatCompletionRequest,
    principal: CurrentUser,
    container: ContainerDep,
    chat_id: ChatIdHeader = None,
    key: IdempotencyKey = None,
) -> Response:
    completion = _Completion(
        f"chatcmpl-{uuid.uuid4().hex}", int(container.clock.now().timestamp()), body.model
    )
    headers = {"X-Chat-Id": chat_id} if chat_id else {}
    try:
        command = _command(body, principal.user_id, chat_id, key)
        handle = await container.runs.start(command)
        if body.stream:
            checked = command.options.output is not None
            chunks = _chunks(completion, handle, body.include_usage, checked=checked)
            return EventStream(chunks, headers)
        outcome = await handle.outcome()
    except AgentNotFound:
        return model_not_found(body.model)
    reply = answer(outcome, chat_id)
    usage = TurnUsage(**reply.usage.model_dump())
    calls = _handed_calls(outcome.data)
    return JSONResponse(completion.answer(reply.response or "", calls, usage), headers=headers)


def _command(body: ChatCompletionRequest, user_id: str, chat_id: str | None, key: str | None) -> StartRun:
    turn = body.to_turn()
    digest = request_hash(f"v1:{chat_id}", body) if key else None
    message = turn.prompt or ""
    if chat_id:
        return StartRun(
            user_id,
            body.model,
            message,
            chat_id=chat_id,
            idempotency_key=key,
            request_hash=digest,
            options=turn.options,
        )
    return StartRun(
        user_id,
        body.model,
        message,
        idempotency_key=key,
        request_hash=digest,
        history=tuple(turn.history),
        instructions=turn.instructions,
        options=turn.options,
    )


def _handed_calls(done: dict[str, Any]) -> list[ToolCallOut]:
    """The client tools' calls a finished run handed back (its ``done`` event)."""
    return [ToolCallOut.of(call) for call in done.get("client_tool_calls") or ()]


def _call_deltas(calls: list[ToolCallOut]) -> dict[str, Any]:
    return {"tool_calls": [{"index": index, **call.model_dump()} for index, call in enumerate(calls)]}


async def _chunks(
    completion: _Completion, handle: RunHandle, include_usage: bool, *, checked: bool
) -> AsyncGenerator[str, None]:
    """``checked``: the answer must be checked (structured output), so it comes whole, at the end."""
    yield completion.chunk({"role": "assistant", "content": ""})
    try:
        async for event in handle.events():
            if event.kind == "token" and not checked:
                yield completion.chunk({"content": event.data["delta"]})
            elif event.kind == "done":
                for chunk in _last_chunks(completion, event.data, include_usage, checked=checked):
                    yield chunk
            elif event.kind == "cancelled":
                yield completion.chunk({}, finish="stop")
            elif event.kind == "error":
                answer(event, None)
    except ChatServerError as error:
        status, code = status_and_code(error)
        yield _data(error_body(error.detail, type_=_error_type(status), code=code))
        return
    except Exception:
        log.exception("streamed completion failed")
        yield _data(error_body("internal server error", type_="api_error", code="internal_error"))
        return
    yield "data: [DONE]\n\n"


def _last_chunks(
    completion: _Completion, done: dict[str, Any], include_usage: bool, *, checked: bool
) -> list[str]:
    calls = _handed_calls(done)
    chunks = []
    if calls:
        chunks.append(completion.chunk(_call_deltas(calls)))
    elif checked and done.get("response"):
        chunks.append(completion.chunk({"content": done["response"]}))
    chunks.append(completion.chunk({}, finish="tool_calls" if calls else "stop"))
    if include_usage:
        chunks.append(completion.usage_chunk(TurnUsage(**done["usage"])))
    return chunks


def _data(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload)}\n\n"


def _error_type(status: int) -> str:
    return OPENAI_TYPES.get(status, "invalid_request_error" if status < 500 else "api_error")


def model_not_found(model: str) -> JSONResponse:
    message = f"The model '{model}' does not exist or you do not have access to it."
    return _error(404, message, code="model_not_found", type_="invalid_request_error", param="model")


def _error(
    status: int, message: str, *, code: str, type_: str | None = None, param: str | None = None
) -> JSONResponse:
    body = error_body(message, type_=type_ or _error_type(status), code=code, param=param)
    return JSONResponse(body, status)
