"""A real chatserver on loopback: uvicorn in a thread with its own event loop, real HTTP to it."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import uvicorn

from chatserver.api.app import create_app
from chatserver.config import Settings

JWT_SECRET = "e2e-test-secret-that-is-long-enough-for-hs256"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mint_token(user: str, *, admin: bool = False, secret: str = JWT_SECRET, **claims: Any) -> str:
    payload: dict[str, Any] = {
        "sub": user,
        "aud": "authenticated",
        "exp": int(time.time()) + 3600,
        "role": "admin" if admin else "authenticated",
        **claims,
    }
    return jwt.encode(payload, secret, algorithm="HS256")


@dataclass(frozen=True)
class IssuedKey:
    key: str
    prefix: str


@dataclass
class LiveServer:
    settings: Settings
    url: str

    def client(self, user: str, *, admin: bool = False, timeout: float = 30.0) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {mint_token(user, admin=admin)}"}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=timeout)

    def raw_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=30.0)

    async def create_agent(
        self,
        name: str,
        *,
        system_prompt: str = "You are a test agent.",
        tools: list[str] | None = None,
        history_window: int | None = None,
        model: str = "echo",
    ) -> dict[str, Any]:
        body = {
            "name": name,
            "model": model,
            "system_prompt": system_prompt,
            "tools": ["current_time"] if tools is None else tools,
            "history_window": history_window,
        }
        async with self.client("e2e-admin", admin=True) as admin:
            response = await admin.post("/api/admin/agents", json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the real ``chatserver`` command against this server's database."""
        env = {**os.environ, **self.env()}
        return subprocess.run(
            [sys.executable, "-m", "chatserver", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )

    def env(self) -> dict[str, str]:
        return {"CHATSERVER_DATABASE_URL": self.settings.database_url}

    async def issue_key(self, user: str, *, admin: bool = False) -> IssuedKey:
        args = ["keys", "create", "--user", user, *(["--admin"] if admin else [])]
        done = await asyncio.to_thread(self.cli, *args)
        key = done.stdout.strip().splitlines()[-1]
        return IssuedKey(key=key, prefix=key[:10])

    async def revoke_key(self, prefix: str) -> None:
        await asyncio.to_thread(self.cli, "keys", "revoke", prefix)


def e2e_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "jwt_secret": JWT_SECRET,
        "port": free_port(),
        # Far above an echo turn's milliseconds: a loaded two-core machine stalls for seconds.
        "model_timeout_seconds": 10.0,
        "max_body_bytes": 64 * 1024,
        "log_level": "WARNING",
        **overrides,
    }
    return Settings(**values)


@contextmanager
def serve_in_thread(settings: Settings) -> Iterator[LiveServer]:
    """Serve ``create_app(settings)`` on loopback until the block ends; fail fast if it won't start."""
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=settings.port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="e2e-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the e2e server did not start")
        time.sleep(0.02)
    try:
        yield LiveServer(settings, f"http://127.0.0.1:{settings.port}")
    finally:
        server.should_exit = True
        thread.join(timeout=20)
