"""Approvals survive their server: a run paused on replica A is decided on replica B, and one
paused before A is killed (SIGKILL) is approved on a server started afterwards. Either way the
tool (``remember``, whose side effect is a stored note) runs exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import JWT_SECRET, mint_token
from tests.e2e.processes import chatserver_serve
from tests.e2e.test_runs import wait_for_status
from tests.support.databases import throwaway_database

AGENT = {
    "name": "careful",
    "model": "echo",
    "system_prompt": "",
    "tools": ["remember"],
    "tools_requiring_approval": ["remember"],
}


def _client(url: str, user: str, *, admin: bool = False) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {mint_token(user, admin=admin)}"}
    return httpx.AsyncClient(base_url=url, headers=headers, timeout=30)


async def _pause(url: str, note: str) -> dict[str, Any]:
    async with _client(url, "e2e-admin", admin=True) as admin:
        created = await admin.post("/api/admin/agents", json=AGENT)
        assert created.status_code in (201, 409), created.text
    async with _client(url, "pia") as pia:
        message = f'/tool remember {{"note": "{note}"}}'
        body = {"agent_name": "careful", "message": message, "session_id": str(uuid.uuid4())}
        paused = await pia.post("/api/chat", json=body)
    assert paused.status_code == 200 and paused.json()["status"] == "requires_action", paused.text
    return dict(paused.json())


async def _approve(url: str, paused: dict[str, Any]) -> list[str]:
    """Approve on the server at ``url``; the user's notes once the run completed."""
    [pending] = paused["pending_approvals"]
    async with _client(url, "pia") as pia:
        body = {"decisions": [{"id": pending["id"], "approve": True}]}
        decided = await pia.post(f"/api/runs/{paused['run_id']}/approvals", json=body)
        assert decided.status_code == 200, decided.text
        await wait_for_status(pia, paused["run_id"], "completed")
        items = (await pia.get("/api/memories")).json()["items"]
    return [item["content"] for item in items]


@pytest.mark.postgres
def test_a_decision_on_another_replica_or_after_a_kill_runs_the_tool_once(tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
    with asyncio.Runner() as runner:
        database = throwaway_database("postgres", tmp_path / "pg")
        url = runner.run(database.__aenter__())
        env = {
            "CHATSERVER_DATABASE_URL": url,
            "CHATSERVER_JWT_SECRET": JWT_SECRET,
            "CHATSERVER_RUN_LEASE_SECONDS": "1",
            "CHATSERVER_LOG_LEVEL": "WARNING",
        }
        try:
            with chatserver_serve(tmp_path / "a", **env) as a, chatserver_serve(tmp_path / "b", **env) as b:
                a.wait_healthy(timeout=90)
                b.wait_healthy(timeout=90)
                paused = runner.run(_pause(a.url, "decided on b"))
                assert runner.run(_approve(b.url, paused)) == ["decided on b"]
                paused = runner.run(_pause(a.url, "approved after a kill"))
                os.kill(a.process.pid, signal.SIGKILL)
                a.process.wait(timeout=10)
            with chatserver_serve(tmp_path / "c", **env) as c:
                c.wait_healthy(timeout=90)
                notes = runner.run(_approve(c.url, paused))
            assert sorted(notes) == ["approved after a kill", "decided on b"]
        finally:
            runner.run(database.__aexit__(None, None, None))
