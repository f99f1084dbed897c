"""Front-end protocols: the AI SDK's UI message stream (``/api/ui/chat``) and AG-UI (``/api/agui``).

Both start a run as ``POST /api/chat/stream`` does and render its handle in their own format.
"""

from __future__ import annotations

from typing import Annotated

from ag_ui.core import RunAgentInput
from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import Response, StreamingResponse

from chatserver.api.agui import agui_command, agui_stream
from chatserver.api.deps import ContainerDep, CurrentUser
from chatserver.api.run_streams import EventStream
from chatserver.api.schemas import CHAT_ID_PATTERN
from chatserver.api.ui_stream import UIChatRequest, ui_message_stream

router = APIRouter(prefix="/api", tags=["front-end protocols"])

ChatId = Annotated[str, PathParam(pattern=CHAT_ID_PATTERN)]
UI_STREAM = {
    "content": {"text/event-stream": {}},
    "description": "The AI SDK's UI message stream (`x-vercel-ai-ui-message-stream: v1`), ending `[DONE]`",
}


@router.post("/ui/chat", response_class=StreamingResponse, responses={200: UI_STREAM})
async def ui_chat(body: UIChatRequest, principal: CurrentUser, container: ContainerDep) -> EventStream:
    handle = await container.runs.start(await body.command(principal.user_id, container.chats))
    return ui_message_stream(handle)


@router.get(
    "/ui/chat/{chat_id}/stream",
    response_class=StreamingResponse,
    responses={200: UI_STREAM, 204: {"description": "No run of this chat is active"}},
)
async def ui_chat_resume(chat_id: ChatId, principal: CurrentUser, container: ContainerDep) -> Response:
    handle = await container.runs.active(principal.user_id, chat_id)
    if handle is None:
        return Response(status_code=204)
    return ui_message_stream(handle)


@router.post(
    "/agui",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "AG-UI events"}},
)
async def agui(body: RunAgentInput, principal: CurrentUser, container: ContainerDep) -> EventStream:
    handle = await container.runs.start(agui_command(body, principal.user_id))
    return agui_stream(handle, body)
