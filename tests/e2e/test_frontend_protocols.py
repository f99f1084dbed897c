"""POST /api/ui/chat, GET /api/ui/chat/{id}/stream and POST /api/agui over real HTTP: the wire shapes
of the AI SDK's UI message stream and of AG-UI, and the refusals of bad input."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import DATABASES, live_server
from tests.e2e.harness import LiveServer
from tests.e2e.streams import events_of

SLOW_MS = 3000
"""A turn long enough that what a test does meanwhile lands while it runs, on a loaded machine too."""


@pytest.fixture(scope="module", params=DATABASES)
def rejecting(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A busy chat refuses another turn (409) instead of queueing it."""
    with live_server(request.param, tmp_path_factory.mktemp("reject"), busy_chat_policy="reject") as server:
        yield server


def new_chat_id() -> str:
    return uuid.uuid4().hex


def ui_body(text: str, chat_id: str, **extra: Any) -> dict[str, Any]:
    message = {"id": "m1", "role": "user", "parts": [{"type": "text", "text": text}]}
    body = {"id": chat_id, "messages": [message], "trigger": "submit-message", "agent_name": "assistant"}
    return {**body, **extra}


def agui_body(text: str, chat_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "threadId": chat_id,
        "runId": "client-run-1",
        "messages": [{"id": "u1", "role": "user", "content": text}],
        "tools": [],
        "context": [],
        "forwardedProps": {"agent_name": "assistant"},
        **extra,
    }


async def chunks(client: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> list[Any]:
    async with client.stream(method, path, **kwargs) as response:
        assert response.status_code == 200, await response.aread()
        return [event.data async for event in events_of(response)]


def types(received: list[Any]) -> list[str]:
    return [chunk if isinstance(chunk, str) else chunk["type"] for chunk in received]


def deltas(received: list[Any], kind: str = "text-delta", key: str = "delta") -> str:
    return "".join(chunk[key] for chunk in received if isinstance(chunk, dict) and chunk["type"] == kind)


async def stored(client: httpx.AsyncClient, chat_id: str) -> list[tuple[str, str]]:
    page = await client.get(f"/api/chats/{chat_id}/messages")
    assert page.status_code == 200, page.text
    return [(message["role"], message["content"]) for message in page.json()["items"]]


class TestUIMessageStream:
    async def test_a_text_turn_is_start_text_parts_and_finish_with_the_runs_metadata_then_done(
        self, live: LiveServer
    ) -> None:
        chat_id = new_chat_id()
        async with (
            live.client("una") as client,
            client.stream("POST", "/api/ui/chat", json=ui_body("one two", chat_id)) as response,
        ):
            assert response.headers["x-vercel-ai-ui-message-stream"] == "v1"
            assert response.headers["content-type"].startswith("text/event-stream")
            received = [event.data async for event in events_of(response)]
        assert types(received) == [
            "start", "start-step", "text-start", "text-delta", "text-delta", "text-delta", "text-end",
            "finish-step", "finish", "[DONE]",
        ]  # fmt: skip
        start, finish = received[0], received[-2]
        run_id = start["messageId"]
        assert start["messageMetadata"] == {"run_id": run_id, "chat_id": chat_id}
        assert deltas(received) == "echo: one two"
        assert finish["finishReason"] == "stop"
        metadata = finish["messageMetadata"]
        assert metadata["run_id"] == run_id and metadata["chat_id"] == chat_id and metadata["model"] == "echo"
        assert metadata["usage"]["requests"] == 1

    async def test_a_tool_turn_streams_the_calls_input_and_output_then_a_second_step_of_text(
        self, live: LiveServer
    ) -> None:
        body = ui_body('/tool remember {"note": "walks"}', new_chat_id())
        async with live.client("una") as client:
            received = await chunks(client, "POST", "/api/ui/chat", json=body)
        tool_chunks = [chunk for chunk in received if chunk != "[DONE]" and chunk["type"].startswith("tool-")]
        assert [chunk["type"] for chunk in tool_chunks] == [
            "tool-input-start", "tool-input-delta", "tool-input-available", "tool-output-available",
        ]  # fmt: skip
        assert len({chunk["toolCallId"] for chunk in tool_chunks}) == 1
        assert tool_chunks[2]["toolName"] == "remember" and tool_chunks[2]["input"] == {"note": "walks"}
        assert deltas(received) == f"tool remember returned: {tool_chunks[3]['output']}"
        assert types(received).count("start-step") == 2

    async def test_a_model_failure_is_an_error_chunk_and_the_users_message_stays_stored(
        self, live: LiveServer
    ) -> None:
        chat_id = new_chat_id()
        async with live.client("una") as client:
            received = await chunks(client, "POST", "/api/ui/chat", json=ui_body("/fail", chat_id))
            kept = await stored(client, chat_id)
        assert types(received) == ["start", "error", "finish-step", "finish", "[DONE]"]
        assert "model provider error" in received[1]["errorText"]
        assert received[3]["finishReason"] == "error"
        assert kept == [("user", "/fail")]

    async def test_a_cancelled_run_ends_with_an_abort_chunk_and_no_finish(self, live: LiveServer) -> None:
        body = ui_body("/sleep 5000 never", new_chat_id())
        async with live.client("una") as client, client.stream("POST", "/api/ui/chat", json=body) as response:
            received = []
            async for event in events_of(response):
                received.append(event.data)
                if len(received) == 1:
                    cancel = await client.post(f"/api/runs/{event.data['messageId']}/cancel")
                    assert cancel.status_code == 200, cancel.text
        assert types(received) == ["start", "abort", "finish-step", "[DONE]"]


class TestResume:
    async def test_a_reader_that_left_resumes_the_chats_run_from_its_first_chunk(
        self, live: LiveServer
    ) -> None:
        chat_id = new_chat_id()
        body = ui_body(f"/sleep {SLOW_MS} later", chat_id)
        async with live.client("una") as client:
            async with client.stream("POST", "/api/ui/chat", json=body) as left:
                start = await anext(aiter(events_of(left)))
            resumed = await chunks(client, "GET", f"/api/ui/chat/{chat_id}/stream")
            idle = await client.get(f"/api/ui/chat/{chat_id}/stream")
        assert resumed[0] == start.data
        assert deltas(resumed) == "echo: later" and types(resumed)[-2:] == ["finish", "[DONE]"]
        assert idle.status_code == 204 and idle.content == b""

    async def test_a_chat_the_caller_has_no_chat_under_is_404_and_a_bad_id_422(
        self, live: LiveServer
    ) -> None:
        chat_id = new_chat_id()
        body = ui_body("/sleep 500 mine", chat_id)
        async with live.client("una") as una, live.client("vic") as vic:
            async with una.stream("POST", "/api/ui/chat", json=body) as running:
                await anext(aiter(events_of(running)))
                others = await vic.get(f"/api/ui/chat/{chat_id}/stream")
            bad = await una.get("/api/ui/chat/not%20an%20id/stream")
        assert others.status_code == 404 and others.json()["code"] == "not_found"
        assert bad.status_code == 422

    async def test_without_a_token_the_stream_is_401(self, live: LiveServer) -> None:
        async with live.raw_client() as client:
            response = await client.get(f"/api/ui/chat/{new_chat_id()}/stream")
        assert response.status_code == 401 and response.json()["code"] == "unauthorized"


def field_error(response: httpx.Response) -> tuple[list[str | int], str]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "validation_error"
    return body["detail"][0]["loc"], body["detail"][0]["msg"]


class TestUIChatBadInput:
    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"messages": []}, "messages"),
            ({"id": "no spaces"}, "id"),
            ({"agent_name": ""}, "agent_name"),
            ({"trigger": "regenerate-message"}, "trigger"),
        ],
    )
    async def test_a_body_the_ai_sdk_would_not_send_is_422_naming_the_field(
        self, live: LiveServer, change: dict[str, Any], field: str
    ) -> None:
        async with live.client("una") as client:
            response = await client.post("/api/ui/chat", json={**ui_body("hi", new_chat_id()), **change})
        loc, _ = field_error(response)
        assert loc[:2] == ["body", field]

    async def test_a_newest_message_that_is_not_the_users_is_422(self, live: LiveServer) -> None:
        body = ui_body("hi", new_chat_id())
        body["messages"].append({"id": "a1", "role": "assistant", "parts": [{"type": "text", "text": "x"}]})
        async with live.client("una") as client:
            response = await client.post("/api/ui/chat", json=body)
        assert field_error(response) == (["body", "messages"], "the newest message must be the user's")

    async def test_a_user_message_without_text_is_422_and_nul_in_text_too(self, live: LiveServer) -> None:
        no_text = ui_body("hi", new_chat_id())
        no_text["messages"][0]["parts"] = [{"type": "file", "mediaType": "image/png", "url": "data:,"}]
        async with live.client("una") as client:
            empty = await client.post("/api/ui/chat", json=no_text)
            nul = await client.post("/api/ui/chat", json=ui_body("a\x00b", new_chat_id()))
        assert field_error(empty)[1] == "message must not be empty"
        assert field_error(nul)[0][:3] == ["body", "messages", 0]

    async def test_an_unknown_agent_is_404_and_no_token_401(self, live: LiveServer) -> None:
        nobody = ui_body("hi", new_chat_id(), agent_name="nobody")
        async with live.client("una") as client, live.raw_client() as anonymous:
            unknown = await client.post("/api/ui/chat", json=nobody)
            refused = await anonymous.post("/api/ui/chat", json=ui_body("hi", new_chat_id()))
        assert unknown.status_code == 404 and unknown.json()["code"] == "not_found"
        assert refused.status_code == 401


class TestAGUIEvents:
    async def test_a_run_is_started_text_and_finished_under_the_clients_ids_with_ours_in_result(
        self, live: LiveServer
    ) -> None:
        chat_id = new_chat_id()
        async with live.client("una") as client:
            received = await chunks(client, "POST", "/api/agui", json=agui_body("hey there", chat_id))
        assert types(received)[:2] == ["RUN_STARTED", "CUSTOM"] and types(received)[-1] == "RUN_FINISHED"
        started, run, finished = received[0], received[1], received[-1]
        assert (started["threadId"], started["runId"]) == (chat_id, "client-run-1")
        assert run["name"] == "run"
        assert run["value"] == {"run_id": finished["result"]["run_id"], "chat_id": chat_id}
        assert deltas(received, "TEXT_MESSAGE_CONTENT") == "echo: hey there"
        assert finished["result"]["chat_id"] == chat_id and finished["result"]["model"] == "echo"

    async def test_a_tool_run_has_the_call_events_and_its_result(self, live: LiveServer) -> None:
        body = agui_body('/tool remember {"note": "agui"}', new_chat_id())
        async with live.client("una") as client:
            received = await chunks(client, "POST", "/api/agui", json=body)
        calls = [chunk for chunk in received if chunk["type"].startswith("TOOL_CALL")]
        assert [chunk["type"] for chunk in calls] == [
            "TOOL_CALL_START", "TOOL_CALL_ARGS", "TOOL_CALL_END", "TOOL_CALL_RESULT",
        ]  # fmt: skip
        assert calls[0]["toolCallName"] == "remember" and len({c["toolCallId"] for c in calls}) == 1

    async def test_a_model_failure_is_run_error_and_the_message_stays_stored(self, live: LiveServer) -> None:
        chat_id = new_chat_id()
        async with live.client("una") as client:
            received = await chunks(client, "POST", "/api/agui", json=agui_body("/fail", chat_id))
            kept = await stored(client, chat_id)
        assert types(received) == ["RUN_STARTED", "CUSTOM", "RUN_ERROR"]
        assert kept == [("user", "/fail")]

    async def test_a_run_cancelled_by_the_id_it_names_finishes_with_the_cancelled_outcome(
        self, live: LiveServer
    ) -> None:
        body = agui_body("/sleep 5000 never", new_chat_id(), protocolVersion="1.0")
        async with live.client("una") as client, client.stream("POST", "/api/agui", json=body) as response:
            received = []
            async for event in events_of(response):
                received.append(event.data)
                if event.data["type"] == "CUSTOM":
                    cancel = await client.post(f"/api/runs/{event.data['value']['run_id']}/cancel")
                    assert cancel.status_code == 200, cancel.text
        assert types(received) == ["RUN_STARTED", "CUSTOM", "RUN_FINISHED"]
        assert received[-1]["outcome"] == {"type": "cancelled"}


class TestAGUIBadInput:
    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"threadId": "not an id"}, "threadId"),
            ({"forwardedProps": {}}, "forwardedProps"),
            ({"forwardedProps": None}, "forwardedProps"),
            ({"messages": []}, "messages"),
            ({"messages": [{"id": "a1", "role": "assistant", "content": "x"}]}, "messages"),
        ],
    )
    async def test_input_without_a_chat_an_agent_or_a_user_message_is_422_naming_the_field(
        self, live: LiveServer, change: dict[str, Any], field: str
    ) -> None:
        async with live.client("una") as client:
            response = await client.post("/api/agui", json={**agui_body("hi", new_chat_id()), **change})
        assert field_error(response)[0] == ["body", field]

    async def test_input_that_is_not_run_agent_input_is_422(self, live: LiveServer) -> None:
        async with live.client("una") as client:
            response = await client.post("/api/agui", json={"threadId": new_chat_id()})
        locs = [item["loc"] for item in response.json()["detail"]]
        assert response.status_code == 422 and ["body", "runId"] in locs and ["body", "messages"] in locs

    async def test_an_unknown_agent_is_404_and_no_token_401(self, live: LiveServer) -> None:
        unknown = agui_body("hi", new_chat_id(), forwardedProps={"agent_name": "nobody"})
        async with live.client("una") as client, live.raw_client() as anonymous:
            missing = await client.post("/api/agui", json=unknown)
            refused = await anonymous.post("/api/agui", json=agui_body("hi", new_chat_id()))
        assert missing.status_code == 404 and refused.status_code == 401

    async def test_another_users_thread_id_is_the_callers_own_new_chat(self, live: LiveServer) -> None:
        chat_id = new_chat_id()
        async with live.client("una") as una, live.client("vic") as vic:
            await chunks(una, "POST", "/api/agui", json=agui_body("una's words", chat_id))
            received = await chunks(vic, "POST", "/api/agui", json=agui_body("/recall", chat_id))
            unas = await stored(una, chat_id)
        assert deltas(received, "TEXT_MESSAGE_CONTENT") == "recall: "
        assert unas == [("user", "una's words"), ("assistant", "echo: una's words")]


class TestSameRulesAsChat:
    async def test_a_busy_chat_is_409_chat_busy_on_both_protocols_and_the_running_turn_goes_on(
        self, rejecting: LiveServer
    ) -> None:
        chat_id = new_chat_id()
        body = ui_body(f"/sleep {SLOW_MS} first", chat_id)
        async with (
            rejecting.client("una") as client,
            client.stream("POST", "/api/ui/chat", json=body) as first,
        ):
            events = events_of(first)
            await anext(events)
            ui = await client.post("/api/ui/chat", json=ui_body("second", chat_id))
            agui = await client.post("/api/agui", json=agui_body("second", chat_id))
            rest = [event.data async for event in events]
        assert (ui.status_code, ui.json()["code"]) == (409, "chat_busy")
        assert (agui.status_code, agui.json()["code"]) == (409, "chat_busy")
        assert deltas(rest) == "echo: first"
