"""MCP tools over real HTTP: an agent's MCP servers (stdio and streamable HTTP on loopback), used
through the echo model's ``/tool <server>_<tool> {...}``."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import DATABASES, live_server
from tests.e2e.harness import LiveServer, free_port

DEMO_SCRIPT = Path(__file__).resolve().parent.parent / "unit" / "agents" / "mcp_demo_server.py"
AGENT = "toolsmith"


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the MCP server exited")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the MCP server did not start")


@pytest.fixture(scope="module")
def mcp_http_url() -> Iterator[str]:
    """The demo MCP server over streamable HTTP on loopback, for the module."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(DEMO_SCRIPT), "http", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module", params=DATABASES)
def mcp_live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A live server that may run stdio MCP servers (off by default)."""
    # Connecting to a stdio server starts a Python process: more than the 2 s the other e2e tests allow.
    directory = tmp_path_factory.mktemp("e2e-mcp")
    with live_server(request.param, directory, mcp_allow_stdio=True, model_timeout_seconds=30) as server:
        yield server


def agent_body(name: str, servers: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": name, "model": "echo", "system_prompt": "", "tools": [], "mcp_servers": servers}


@pytest.fixture
async def toolsmith(mcp_live: LiveServer, mcp_http_url: str) -> str:
    servers = [
        {"name": "local", "command": [sys.executable, str(DEMO_SCRIPT)]},
        {"name": "web", "url": mcp_http_url},
        {"name": "down", "url": f"http://127.0.0.1:{free_port()}/mcp"},
    ]
    async with mcp_live.client("e2e-admin", admin=True) as admin:
        response = await admin.post("/api/admin/agents", json=agent_body(AGENT, servers))
    assert response.status_code in (201, 409), response.text
    return AGENT


async def say(client: httpx.AsyncClient, message: str) -> httpx.Response:
    body = {"agent_name": AGENT, "message": message, "session_id": str(uuid.uuid4())}
    return await client.post("/api/chat", json=body)


async def test_the_admin_api_stores_and_shows_an_agents_mcp_servers(
    mcp_live: LiveServer, toolsmith: str
) -> None:
    async with mcp_live.client("e2e-admin", admin=True) as admin:
        shown = (await admin.get(f"/api/admin/agents/{toolsmith}")).json()
    assert [(s["name"], s["command"] is not None, s["url"] is not None) for s in shown["mcp_servers"]] == [
        ("local", True, False),
        ("web", False, True),
        ("down", False, True),
    ]


@pytest.mark.parametrize("server", ["local", "web"])
async def test_a_servers_tools_are_called_under_its_name(
    mcp_live: LiveServer, toolsmith: str, server: str
) -> None:
    async with mcp_live.client("tara") as tara:
        reply = await say(tara, f'/tool {server}_add {{"a": 20, "b": 22}}')
    assert reply.status_code == 200
    assert reply.json()["response"] == f"tool {server}_add returned: 42"
    assert reply.json()["tool_calls"] == [{"name": f"{server}_add", "args": {"a": 20, "b": 22}, "result": 42}]


@pytest.mark.parametrize("server", ["local", "web"])
async def test_the_server_learns_the_user_from_the_server_never_from_the_model(
    mcp_live: LiveServer, toolsmith: str, server: str
) -> None:
    async with mcp_live.client("tara") as tara, mcp_live.client("uma") as uma:
        as_tara = await say(tara, f'/tool {server}_whoami {{"user_id": "uma"}}')
        as_uma = await say(uma, f"/tool {server}_whoami {{}}")
    assert as_tara.json()["response"] == f"tool {server}_whoami returned: tara via {AGENT}"
    assert as_uma.json()["response"] == f"tool {server}_whoami returned: uma via {AGENT}"


async def test_a_failing_tool_is_a_tool_error_the_model_sees_not_a_500(
    mcp_live: LiveServer, toolsmith: str
) -> None:
    async with mcp_live.client("tara") as tara:
        failed = await say(tara, "/tool web_broken {}")
        crashed = await say(tara, "/tool local_crash {}")
        recovered = await say(tara, '/tool local_add {"a": 1, "b": 2}')
    assert failed.status_code == 200 and failed.json()["response"].startswith("tool web_broken failed: ")
    assert crashed.status_code == 200
    assert "MCP server 'local' failed" in crashed.json()["response"]
    assert recovered.json()["response"] == "tool local_add returned: 3"


async def test_an_unreachable_server_leaves_the_agent_working(mcp_live: LiveServer, toolsmith: str) -> None:
    async with mcp_live.client("tara") as tara:
        down = await say(tara, "/tool down_add {}")
        plain = await say(tara, "hello")
    assert down.status_code == 200 and down.json()["response"] == "unknown tool: down_add"
    assert plain.json()["response"] == "echo: hello"


async def test_stdio_servers_are_refused_unless_the_server_allows_them(live: LiveServer) -> None:
    body = agent_body("stdio-agent", [{"name": "local", "command": [sys.executable, str(DEMO_SCRIPT)]}])
    bad = agent_body("bad-mcp", [{"name": "x", "command": ["a"], "url": "http://127.0.0.1:1/mcp"}])
    async with live.client("e2e-admin", admin=True) as admin:
        refused = await admin.post("/api/admin/agents", json=body)
        malformed = await admin.post("/api/admin/agents", json=bad)
    assert refused.status_code == 422 and "CHATSERVER_MCP_ALLOW_STDIO" in str(refused.json()["detail"])
    assert malformed.status_code == 422 and malformed.json()["code"] == "validation_error"
