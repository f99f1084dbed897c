"""The real local model (SmolLM2-135M-Instruct through llama-cpp-python), over real HTTP.

Needs the local extra (README, "Local model"); CI installs it. Answers are not asserted word for
word (it is a language model), only that they are real, stored, streamed, and that the second
turn is given the first as history.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import live_server
from tests.e2e.harness import LiveServer, free_port
from tests.e2e.processes import ServerProcess, clean_env

MODEL = "local:smollm2-135m"
AGENT = "offline"


@pytest.fixture(scope="module")
def local_live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # Short answers keep the test quick on two cores; the first turn also loads the model.
    with live_server(
        "sqlite", tmp_path_factory.mktemp("local"), model_timeout_seconds=300, local_max_tokens=48
    ) as server:
        yield server


async def ensure_agent(live: LiveServer) -> None:
    body = {"name": AGENT, "model": MODEL, "system_prompt": "You are a helpful assistant. Be brief."}
    async with live.client("e2e-admin", admin=True, timeout=60) as admin:
        response = await admin.post("/api/admin/agents", json=body)
    assert response.status_code in (201, 409), response.text


async def test_a_two_turn_chat_with_the_local_model(local_live: LiveServer) -> None:
    await ensure_agent(local_live)
    chat_id = str(uuid.uuid4())
    async with local_live.client("lena", timeout=300) as lena:
        first = await lena.post(
            "/api/chat",
            json={"agent_name": AGENT, "message": "My name is Lena. What is 2 + 2?", "session_id": chat_id},
        )
        second = await lena.post(
            "/api/chat", json={"agent_name": AGENT, "message": "What is my name?", "session_id": chat_id}
        )
        stored = (await lena.get(f"/api/chats/{chat_id}/messages")).json()["items"]
    assert first.status_code == 200 and second.status_code == 200, (first.text, second.text)
    answers = [first.json()["response"], second.json()["response"]]
    assert all(answer.strip() for answer in answers)
    assert [(m["role"], m["content"]) for m in stored] == [
        ("user", "My name is Lena. What is 2 + 2?"),
        ("assistant", answers[0]),
        ("user", "What is my name?"),
        ("assistant", answers[1]),
    ]
    # The second request carried the first turn as history.
    assert second.json()["usage"]["input_tokens"] > first.json()["usage"]["input_tokens"]


async def test_the_local_model_streams_its_answer(local_live: LiveServer) -> None:
    await ensure_agent(local_live)
    body = {"agent_name": AGENT, "message": "Name three colours.", "session_id": str(uuid.uuid4())}
    events: list[tuple[str, Any]] = []
    async with (
        local_live.client("lena", timeout=300) as lena,
        lena.stream("POST", "/api/chat/stream", json=body) as response,
    ):
        assert response.status_code == 200
        name = "message"
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                name = line.removeprefix("event:").strip()
            elif line.startswith("data:"):
                events.append((name, json.loads(line.removeprefix("data:"))))
    tokens = [data["delta"] for kind, data in events if kind == "token"]
    [done] = [data for kind, data in events if kind == "done"]
    assert len(tokens) > 1
    assert "".join(tokens) == done["response"] and done["response"].strip()


@pytest.fixture
def fresh_serve(tmp_path: Path) -> Iterator[ServerProcess]:
    """``chatserver serve`` in an empty folder with no CHATSERVER_DEFAULT_MODEL set."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "chatserver", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield ServerProcess(process, f"http://127.0.0.1:{port}")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        if process.stdout:
            process.stdout.close()


def test_serve_seeds_the_local_model_when_the_extra_is_installed(fresh_serve: ServerProcess) -> None:
    lines = fresh_serve.read_until("API key:")
    key = fresh_serve.read_until("cs_")[-1].strip()
    fresh_serve.wait_healthy()
    agents = httpx.get(
        f"{fresh_serve.url}/api/agents", headers={"Authorization": f"Bearer {key}"}, timeout=10
    )
    assert fresh_serve.terminate() == 0
    assert any(f"created agent 'assistant' with model {MODEL}" in line for line in lines)
    assert [(a["name"], a["model"]) for a in agents.json()] == [("assistant", MODEL)]
