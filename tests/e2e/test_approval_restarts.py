"""Approvals and runs survive their server: a run paused on replica A is decided on replica B, and
one paused before A is killed (SIGKILL) is approved on a server started afterwards: the tool runs
exactly once. A run killed in the middle of a tool call resumes without calling it again."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import JWT_SECRET, free_port, mint_token
from tests.e2e.processes import chatserver_serve
from tests.e2e.test_mcp_tools import DEMO_SCRIPT, wait_for_port
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


@pytest.mark.postgres
def test_a_run_killed_mid_tool_resumes_without_running_the_tool_again(tmp_path: Path) -> None:
    """The tool (an MCP server's, in a process of its own that outlives chatserver) started before
    the kill: resumed, the run tells the model the outcome is unknown and never calls it again."""
    ledger = tmp_path / "ledger.txt"
    ledger.touch()
    port = free_port()
    mcp_env = {**os.environ, "MCP_DEMO_LEDGER": str(ledger), "MCP_DEMO_NOTE_SECONDS": "60"}
    mcp = subprocess.Popen(
        [sys.executable, str(DEMO_SCRIPT), "http", str(port)],
        env=mcp_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    try:
        wait_for_port(port, mcp)
        with asyncio.Runner() as runner:
            database = throwaway_database("postgres", tmp_path / "pg")
            url = runner.run(database.__aenter__())
            env = {
                "CHATSERVER_DATABASE_URL": url,
                "CHATSERVER_JWT_SECRET": JWT_SECRET,
                "CHATSERVER_RUN_LEASE_SECONDS": "1",
                "CHATSERVER_MODEL_TIMEOUT_SECONDS": "120",
                "CHATSERVER_LOG_LEVEL": "WARNING",
            }
            try:
                with chatserver_serve(tmp_path / "a", **env) as a:
                    a.wait_healthy(timeout=90)
                    run_id = runner.run(_start_noting(a.url, f"http://127.0.0.1:{port}/mcp"))
                    _wait_for_call(ledger)
                    os.kill(a.process.pid, signal.SIGKILL)
                    a.process.wait(timeout=10)
                with chatserver_serve(tmp_path / "b", **env) as b:
                    b.wait_healthy(timeout=90)
                    resumed = runner.run(_resume(b.url, run_id))
            finally:
                runner.run(database.__aexit__(None, None, None))
    finally:
        mcp.terminate()
        mcp.wait(timeout=10)
    steps, answer, again = resumed
    assert ledger.read_text().splitlines() == ["once"]
    assert [(s["kind"], s["name"], s["status"]) for s in steps] == [
        ("model", "echo", "completed"),
        ("tool", "demo_note", "unknown"),
        ("model", "echo", "completed"),
    ]
    assert answer == "tool demo_note returned: interrupted: outcome unknown"
    assert again == 409


async def _start_noting(url: str, mcp_url: str) -> str:
    agent = {
        "name": "noter",
        "model": "echo",
        "system_prompt": "",
        "mcp_servers": [{"name": "demo", "url": mcp_url}],
    }
    async with _client(url, "e2e-admin", admin=True) as admin:
        created = await admin.post("/api/admin/agents", json=agent)
        assert created.status_code == 201, created.text
    async with _client(url, "rex") as rex:
        body = {"agent_name": "noter", "message": '/tool demo_note {"text": "once"}'}
        started = await rex.post(f"/api/chats/{uuid.uuid4()}/runs", json=body)
        assert started.status_code == 202, started.text
    return str(started.json()["id"])


def _wait_for_call(ledger: Path) -> None:
    """Until the tool has begun (its side effect is there) and sleeps."""
    deadline = time.monotonic() + 30
    while not ledger.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ledger.read_text() == "once\n"


async def _resume(url: str, run_id: str) -> tuple[list[dict[str, Any]], str, int]:
    async with _client(url, "rex") as rex:
        await wait_for_status(rex, run_id, "interrupted", seconds=30)
        resumed = await rex.post(f"/api/runs/{run_id}/resume")
        assert resumed.status_code == 200, resumed.text
        run = await wait_for_status(rex, run_id, "completed", seconds=30)
        steps = (await rex.get(f"/api/runs/{run_id}/steps")).json()
        messages = (await rex.get(f"/api/chats/{run['chat_id']}/messages")).json()["items"]
        again = await rex.post(f"/api/runs/{run_id}/resume")
    return steps, str(messages[-1]["content"]), again.status_code


@pytest.mark.postgres
def test_a_run_interrupted_by_a_shutdown_before_any_step_resumes_from_its_prompt(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    with asyncio.Runner() as runner:
        database = throwaway_database("postgres", tmp_path / "pg")
        url = runner.run(database.__aenter__())
        env = {
            "CHATSERVER_DATABASE_URL": url,
            "CHATSERVER_JWT_SECRET": JWT_SECRET,
            "CHATSERVER_SHUTDOWN_GRACE_SECONDS": "0.2",
            "CHATSERVER_LOG_LEVEL": "WARNING",
        }
        try:
            with chatserver_serve(tmp_path / "a", **env) as a:
                a.wait_healthy(timeout=90)
                run_id = runner.run(_start_sleeping(a.url))
                a.process.send_signal(signal.SIGTERM)
                a.process.wait(timeout=30)
            with chatserver_serve(tmp_path / "b", **env) as b:
                b.wait_healthy(timeout=90)
                answer = runner.run(_resume_to_answer(b.url, run_id))
        finally:
            runner.run(database.__aexit__(None, None, None))
    assert answer == "echo: later"


async def _start_sleeping(url: str) -> str:
    async with _client(url, "sol") as sol:
        body = {"agent_name": "assistant", "message": "/sleep 2000 later"}
        started = await sol.post(f"/api/chats/{uuid.uuid4()}/runs", json=body)
        assert started.status_code == 202, started.text
        await wait_for_status(sol, started.json()["id"], "running")
    return str(started.json()["id"])


async def _resume_to_answer(url: str, run_id: str) -> str:
    async with _client(url, "sol") as sol:
        interrupted = await wait_for_status(sol, run_id, "interrupted")
        assert interrupted["error"]["code"] == "server_restarted"
        resumed = await sol.post(f"/api/runs/{run_id}/resume")
        assert resumed.status_code == 200, resumed.text
        run = await wait_for_status(sol, run_id, "completed", seconds=30)
        messages = (await sol.get(f"/api/chats/{run['chat_id']}/messages")).json()["items"]
    return str(messages[-1]["content"])
