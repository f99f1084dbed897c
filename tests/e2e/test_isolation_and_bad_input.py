"""Users never see each other's data; bad input is a clear 4xx and the server keeps serving."""

from __future__ import annotations

import uuid

import pytest

from tests.e2e.harness import LiveServer


async def test_another_users_chat_is_not_found_for_every_route(live: LiveServer) -> None:
    chat_id = str(uuid.uuid4())
    async with live.client("owner") as owner, live.client("intruder") as intruder:
        created = await owner.post(
            "/api/chat", json={"agent_name": "assistant", "message": "secret", "session_id": chat_id}
        )
        assert created.status_code == 200
        run_id = created.json()["run_id"]
        read = await intruder.get(f"/api/chats/{chat_id}/messages")
        runs = await intruder.get(f"/api/chats/{chat_id}/runs")
        run = await intruder.get(f"/api/runs/{run_id}")
        delete = await intruder.delete(f"/api/chats/{chat_id}")
        listing = await intruder.get("/api/chats")
        still_there = await owner.get(f"/api/chats/{chat_id}/messages")
    answers = [read, runs, run, delete]
    assert [(r.status_code, r.json()["code"]) for r in answers] == [(404, "not_found")] * 4
    assert chat_id not in {c["id"] for c in listing.json()["items"]}
    assert [m["content"] for m in still_there.json()["items"]] == ["secret", "echo: secret"]


async def test_two_users_with_one_chat_id_each_have_their_own_chat(live: LiveServer) -> None:
    """The second user gets no hint that the id exists: a new chat, empty history, its own listing."""
    chat_id = "my-first-chat"
    async with live.client("first-of-two") as first, live.client("second-of-two") as second:
        for client, message in ((first, "apples"), (second, "/recall")):
            answer = await client.post(
                "/api/chat", json={"agent_name": "assistant", "message": message, "session_id": chat_id}
            )
            assert answer.status_code == 200, answer.text
        seconds = answer.json()["response"]
        firsts_messages = (await first.get(f"/api/chats/{chat_id}/messages")).json()["items"]
        seconds_messages = (await second.get(f"/api/chats/{chat_id}/messages")).json()["items"]
        seconds_chats = (await second.get("/api/chats")).json()["items"]
        deleted = await second.delete(f"/api/chats/{chat_id}")
        firsts_after = (await first.get(f"/api/chats/{chat_id}/messages")).json()["items"]
        seconds_after = await second.get(f"/api/chats/{chat_id}/messages")
    assert seconds == "recall: "
    assert [m["content"] for m in firsts_messages] == ["apples", "echo: apples"]
    assert [m["content"] for m in seconds_messages] == ["/recall", "recall: "]
    # A title is the first message cleaned up: an echo command loses its slash.
    assert [(c["id"], c["title"]) for c in seconds_chats] == [(chat_id, "recall")]
    assert deleted.status_code == 204 and firsts_after == firsts_messages
    assert seconds_after.status_code == 404


async def test_chats_are_listed_newest_first_paged_and_deletable(live: LiveServer) -> None:
    ids = [str(uuid.uuid4()) for _ in range(3)]
    async with live.client("pager") as client:
        for chat_id in ids:
            await client.post(
                "/api/chat",
                json={"agent_name": "assistant", "message": f"hi {chat_id}", "session_id": chat_id},
            )
        first = (await client.get("/api/chats", params={"limit": 2})).json()
        second = (await client.get("/api/chats", params={"limit": 2, "before": first["next_before"]})).json()
        assert [c["id"] for c in first["items"] + second["items"]] == list(reversed(ids))
        assert second["next_before"] is None
        assert first["items"][0]["title"] == f"hi {ids[2]}"
        assert (await client.delete(f"/api/chats/{ids[0]}")).status_code == 204
        after = (await client.get("/api/chats")).json()
        gone = await client.get(f"/api/chats/{ids[0]}/messages")
    assert [c["id"] for c in after["items"]] == [ids[2], ids[1]]
    assert gone.status_code == 404


@pytest.mark.parametrize(
    ("path", "cursor"),
    [
        ("/api/chats", "not a cursor!"),
        ("/api/chats", "bm8gYmFy"),
        ("/api/chats/c-1/messages", "abc"),
        ("/api/chats/c-1/messages", "9" * 30),
        ("/api/admin/events", "-1"),
    ],
)
async def test_a_bad_cursor_is_reported_at_its_query_parameter(
    live: LiveServer, path: str, cursor: str
) -> None:
    async with live.client("cursor-admin", admin=True) as client:
        response = await client.get(path, params={"before": cursor})
    assert (response.status_code, response.json()["code"]) == (422, "validation_error")
    assert [error["loc"] for error in response.json()["detail"]] == [["query", "before"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"message": "hi", "session_id": "s1"}, "agent_name"),
        ({"agent_name": "assistant", "session_id": "s1"}, "message"),
        ({"agent_name": "assistant", "message": "hi"}, "session_id"),
        ({"agent_name": "assistant", "message": "hi", "session_id": "bad id!"}, "session_id"),
        ({"agent_name": "assistant", "message": 5, "session_id": "s1"}, "message"),
    ],
)
async def test_a_malformed_chat_request_is_a_422_naming_the_field(
    live: LiveServer, body: dict[str, object], field: str
) -> None:
    async with live.client("validator") as client:
        response = await client.post("/api/chat", json=body)
    assert response.status_code == 422
    payload = response.json()
    assert payload["code"] == "validation_error"
    assert any(error["loc"][-1] == field for error in payload["detail"])


async def test_bad_requests_get_clear_errors_and_the_server_keeps_serving(live: LiveServer) -> None:
    too_long = "x" * 32_001
    async with live.client("mallory") as client:
        not_json = await client.post(
            "/api/chat", content=b"{nope", headers={"content-type": "application/json"}
        )
        long_message = await client.post(
            "/api/chat", json={"agent_name": "assistant", "message": too_long, "session_id": "s"}
        )
        unknown_agent = await client.post(
            "/api/chat", json={"agent_name": "nobody", "message": "hi", "session_id": "s"}
        )
        not_admin = await client.get("/api/admin/agents")
        fine = await client.post(
            "/api/chat", json={"agent_name": "assistant", "message": "still here", "session_id": "s2"}
        )
    async with live.raw_client() as anonymous:
        no_token = await anonymous.post(
            "/api/chat", json={"agent_name": "assistant", "message": "hi", "session_id": "s"}
        )
        bad_token = await anonymous.get("/api/agents", headers={"Authorization": "Bearer not-a-token"})
        bad_key = await anonymous.get("/api/agents", headers={"Authorization": "Bearer cs_" + "A" * 43})
    expected = [
        (not_json, 422, "validation_error"),
        (long_message, 413, "payload_too_large"),
        (unknown_agent, 404, "not_found"),
        (not_admin, 403, "forbidden"),
        (no_token, 401, "unauthorized"),
        (bad_token, 401, "unauthorized"),
        (bad_key, 401, "unauthorized"),
    ]
    for response, status, code in expected:
        assert (response.status_code, response.json()["code"]) == (status, code), response.text
        assert "Traceback" not in response.text
    assert fine.json()["response"] == "echo: still here"


async def test_an_oversized_body_is_refused_with_413(live: LiveServer) -> None:
    async with live.client("bulky") as client:
        response = await client.post(
            "/api/chat",
            content=b"x" * (live.settings.max_body_bytes + 1),
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
