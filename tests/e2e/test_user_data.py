"""A user's own data over real HTTP: who they are, and everything of theirs as a download."""

from __future__ import annotations

import json
import uuid

import httpx

from tests.e2e.harness import LiveServer

AGENT = "lifecycle"


async def chat_once(live: LiveServer, client: httpx.AsyncClient, message: str) -> str:
    agents = (await client.get("/api/agents")).json()
    if AGENT not in [agent["name"] for agent in agents]:
        await live.create_agent(AGENT)
    chat_id = str(uuid.uuid4())
    body = {"agent_name": AGENT, "message": message, "session_id": chat_id}
    response = await client.post("/api/chat", json=body)
    assert response.status_code == 200, response.text
    return chat_id


async def test_me_says_who_the_caller_is_and_whether_they_are_an_admin(live: LiveServer) -> None:
    async with live.client("me-user") as user, live.client("me-admin", admin=True) as admin:
        mine, theirs = (await user.get("/api/me")).json(), (await admin.get("/api/me")).json()
    assert (mine["id"], mine["is_admin"], theirs["id"], theirs["is_admin"]) == (
        "me-user",
        False,
        "me-admin",
        True,
    )
    assert mine["created_at"].startswith("20")


async def test_the_export_is_a_json_download_of_the_callers_chats_and_messages_only(
    live: LiveServer,
) -> None:
    async with live.client("exporter") as exporter, live.client("bystander") as bystander:
        chat_id = await chat_once(live, exporter, "hello from the exporter")
        await chat_once(live, bystander, "hello from the bystander")
        response = await exporter.get("/api/me/export")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-disposition"].startswith('attachment; filename="chatserver-export-')
    document = response.json()
    [chat] = document["chats"]
    assert (document["user"]["id"], chat["id"]) == ("exporter", chat_id)
    assert [m["role"] for m in chat["messages"]] == ["user", "assistant"]
    assert chat["messages"][0]["content"] == "hello from the exporter"
    assert [run["status"] for run in document["runs"]] == ["completed"]
    assert chat_id in {event["chat_id"] for event in document["events"]}
    assert "bystander" not in json.dumps(document)


async def test_the_export_needs_credentials(live: LiveServer) -> None:
    async with live.raw_client() as anonymous:
        response = await anonymous.get("/api/me/export")
    assert response.status_code == 401
