"""LangGraph's API server in its in-memory mode as a contender (``langgraph-api`` with
``langgraph-runtime-inmem``, run headless by ``langgraph dev``; no license key is needed).

``langgraph_app/`` runs in LangGraph's own virtualenv: a prebuilt ReAct agent with one tool and a
fake chat model answering like ``echo``, the model's input trimmed to the last 100 messages in a
pre-model hook; custom auth checks the benchmark's HS256 tokens and keeps each user's threads to
that user. A chat is a thread; a turn is a run waited for. State lives in the server's memory
(flushed to files in the run's folder now and then, as the in-memory mode does).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from benchmarks.common import JWT_SECRET, Server, bearer, free_port, server_process
from benchmarks.peers.contender import Chat, ServeOptions, Turn
from benchmarks.peers.isolated import ensure_venv, peer_env, venv_dir

APP = Path(__file__).resolve().parent / "langgraph_app"
ASSISTANT = "echo"
# ``langgraph dev`` runs at most this many runs at once (its default is 10); the benchmark's
# highest concurrency is 64 and its latency scenario keeps up to 128 chats busy.
JOBS = int(os.environ.get("CHATSERVER_BENCH_LANGGRAPH_JOBS", "128"))


def write_config(directory: Path) -> Path:
    """The server's ``langgraph.json``, in the run's folder: it resolves paths from its working
    folder, which is the run's."""
    config = {
        "dependencies": [str(APP)],
        "graphs": {ASSISTANT: f"{APP / 'graph.py'}:graph"},
        "auth": {"path": f"{APP / 'auth.py'}:auth"},
    }
    path = directory / "langgraph.json"
    path.write_text(json.dumps(config, indent=2))
    return path


class LangGraphContender:
    name = "langgraph"
    uses_postgres = False

    def install(self, cache: Path) -> None:
        ensure_venv(cache, self.name, APP / "requirements.txt")

    @contextmanager
    def serve(self, options: ServeOptions) -> Iterator[Server]:
        bin_dir = venv_dir(options.cache, self.name) / "bin"
        port = free_port()
        # --allow-blocking turns off blockbuster, a development-only detector of blocking calls
        # that wraps many functions; a deployment does not run it.
        argv = [
            str(bin_dir / "langgraph"),
            "dev",
            "--no-browser",
            "--no-reload",
            "--allow-blocking",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n-jobs-per-worker",
            str(JOBS),
            "--config",
            str(write_config(options.directory)),
        ]
        env = peer_env(
            LANGGRAPH_BENCH_LATENCY_MS=str(options.latency_ms),
            LANGGRAPH_BENCH_JWT_SECRET=JWT_SECRET,
            PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        )
        # Its working folder is the run's: the in-memory mode writes its files there.
        with server_process(
            argv, env, port, options.directory, options.directory, health_path="/ok", timeout=120
        ) as server:
            yield server

    async def open_chats(self, client: httpx.AsyncClient, chats: list[Chat]) -> list[Chat]:
        opened = []
        for chat in chats:
            response = await client.post("/threads", json={}, headers=bearer(chat.user))
            response.raise_for_status()
            opened.append(Chat(chat.user, str(response.json()["thread_id"])))
        return opened

    def turn(self, chat: Chat, message: str) -> Turn:
        body = {"assistant_id": ASSISTANT, "input": {"messages": [{"role": "user", "content": message}]}}
        return Turn(f"/threads/{chat.chat_id}/runs/wait", headers=bearer(chat.user), json=body)

    def answer_of(self, response: httpx.Response) -> str:
        messages = response.json()["messages"]
        return str(next(m["content"] for m in reversed(messages) if m["type"] == "ai"))
