"""Admin agent management and API keys over real HTTP."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.e2e.conftest import live_server
from tests.e2e.harness import LiveServer

NOT_A_TOKEN = "the token is not a valid API key (they start with 'cs_') or JWT"


async def test_an_admin_creates_reads_updates_and_deletes_an_agent(live: LiveServer) -> None:
    agent = {"name": "helper", "model": "echo", "system_prompt": "Be brief.", "tools": ["current_time"]}
    async with live.client("root", admin=True) as admin, live.client("user") as user:
        created = await admin.post("/api/admin/agents", json=agent)
        assert created.status_code == 201
        assert created.json()["tools"] == ["current_time"]
        duplicate = await admin.post("/api/admin/agents", json=agent)
        listed = await user.get("/api/agents")
        updated = await admin.put("/api/admin/agents/helper", json={**agent, "system_prompt": "Be verbose."})
        system = await user.post(
            "/api/chat", json={"agent_name": "helper", "message": "/system", "session_id": "h1"}
        )
        deleted = await admin.delete("/api/admin/agents/helper")
        missing = await admin.get("/api/admin/agents/helper")
    assert duplicate.status_code == 409 and duplicate.json()["code"] == "conflict"
    assert {"name": "helper", "description": "", "model": "echo", "tools": ["current_time"]} in listed.json()
    assert updated.json()["system_prompt"] == "Be verbose."
    assert system.json()["response"] == "Be verbose."
    assert deleted.status_code == 204
    assert missing.status_code == 404


async def test_an_agent_with_an_unknown_tool_or_provider_is_refused(live: LiveServer) -> None:
    async with live.client("root", admin=True) as admin:
        bad_tool = await admin.post(
            "/api/admin/agents", json={"name": "x1", "model": "echo", "system_prompt": "", "tools": ["rm_rf"]}
        )
        bad_model = await admin.post(
            "/api/admin/agents", json={"name": "x2", "model": "nope:thing", "system_prompt": ""}
        )
        bad_name = await admin.post(
            "/api/admin/agents", json={"name": "Bad Name", "model": "echo", "system_prompt": ""}
        )
    for response, field in [(bad_tool, "tools"), (bad_model, "model"), (bad_name, "name")]:
        assert response.status_code == 422, response.text
        assert any(error["loc"][-1] == field for error in response.json()["detail"])


async def test_an_api_key_authenticates_until_it_is_revoked(live: LiveServer) -> None:
    issued = await live.issue_key("keyholder")
    async with live.raw_client() as client:
        headers = {"Authorization": f"Bearer {issued.key}"}
        ok = await client.post(
            "/api/chat",
            json={"agent_name": "assistant", "message": "hi", "session_id": "k1"},
            headers=headers,
        )
        await live.revoke_key(issued.prefix)
        revoked = await client.get("/api/agents", headers=headers)
    assert ok.status_code == 200
    assert revoked.status_code == 401


async def test_a_mistyped_api_key_is_told_apart_from_a_jwt_problem(live: LiveServer) -> None:
    issued = await live.issue_key("typist")
    async with live.raw_client() as client:
        headers = {"Authorization": f"Bearer {issued.key.removeprefix('cs_')}"}
        mistyped = await client.get("/api/agents", headers=headers)
    assert (mistyped.status_code, mistyped.json()["detail"]) == (401, NOT_A_TOKEN)


def test_without_jwt_configuration_a_mistyped_key_is_not_blamed_on_jwt(tmp_path: Path) -> None:
    with live_server("sqlite", tmp_path, jwt_secret=None) as server:
        response = httpx.get(
            f"{server.url}/api/agents", headers={"Authorization": "Bearer sk-abc123"}, timeout=30
        )
    assert (response.status_code, response.json()["detail"]) == (401, NOT_A_TOKEN)


async def test_health_and_docs_need_no_token(live: LiveServer) -> None:
    async with live.raw_client() as client:
        health = await client.get("/healthz")
        ready = await client.get("/readyz")
        schema = await client.get("/openapi.json")
    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "migrations": "ok"}
    assert "/api/chat" in schema.json()["paths"]
