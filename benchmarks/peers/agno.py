"""Agno's AgentOS as a contender: the closest twin of chatserver (FastAPI, uvicorn, PostgreSQL).

``agno_app/app.py`` runs in Agno's own virtualenv: one agent whose model is a custom Agno
``Model`` answering like ``echo``, one tool, history in PostgreSQL through Agno's async Postgres
db (psycopg 3) with the last 50 runs added to the model's context, sessions per user and session.
AgentOS's JWT authorization checks the benchmark's HS256 tokens, takes the user from ``sub`` and
isolates each user's sessions (``user_isolation``); its tokens must also carry the run scope.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from benchmarks.common import JWT_SECRET, Server, bearer, free_port, server_process
from benchmarks.peers.contender import HISTORY_EXCHANGES, Chat, ServeOptions, Turn
from benchmarks.peers.isolated import ensure_venv, peer_env, venv_dir

APP = Path(__file__).resolve().parent / "agno_app"
AGENT_ID = "echo"
RUN_SCOPE = f"agents:{AGENT_ID}:run"


class AgnoContender:
    name = "agno"
    uses_postgres = True

    def install(self, cache: Path) -> None:
        ensure_venv(cache, self.name, APP / "requirements.txt")

    @contextmanager
    def serve(self, options: ServeOptions) -> Iterator[Server]:
        if options.database_url is None:
            raise ValueError("Agno keeps its history in PostgreSQL: a database URL is needed")
        bin_dir = venv_dir(options.cache, self.name) / "bin"
        port = free_port()
        argv = [
            str(bin_dir / "python"),
            "-m",
            "uvicorn",
            "app:app",
            "--app-dir",
            str(APP),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
        ]
        env = peer_env(
            AGNO_BENCH_DATABASE_URL=options.database_url,
            AGNO_BENCH_LATENCY_MS=str(options.latency_ms),
            AGNO_BENCH_JWT_SECRET=JWT_SECRET,
            AGNO_BENCH_HISTORY_RUNS=str(HISTORY_EXCHANGES),
        )
        with server_process(
            argv, env, port, options.directory, options.directory, health_path="/health", timeout=120
        ) as server:
            yield server

    async def open_chats(self, client: httpx.AsyncClient, chats: list[Chat]) -> list[Chat]:
        # A session is created by its first run; the chat's id is the session id.
        return chats

    def turn(self, chat: Chat, message: str) -> Turn:
        form = {"message": message, "stream": "false", "session_id": chat.chat_id, "user_id": chat.user}
        return Turn(f"/agents/{AGENT_ID}/runs", headers=bearer(chat.user, (RUN_SCOPE,)), form=form)

    def answer_of(self, response: httpx.Response) -> str:
        return str(response.json()["content"])
