"""Shared pieces of the benchmarks: throwaway databases, server processes, /proc readings, tokens."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

JWT_SECRET = "benchmark-secret-benchmark-secret-0123456789"
POSTGRES_ADMIN_URL = os.environ.get(
    "CHATSERVER_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def token(user: str) -> str:
    claims = {"sub": user, "aud": "authenticated", "exp": int(time.time()) + 86400}
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


@asynccontextmanager
async def fresh_database(kind: str, directory: Path) -> AsyncIterator[str]:
    """An empty database URL (SQLite file or a new PostgreSQL database), dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{directory / f'bench-{secrets.token_hex(4)}.db'}"
        return
    name = f"cs_bench_{secrets.token_hex(5)}"
    admin = create_async_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


@dataclass
class Usage:
    cpu_seconds: float
    peak_rss_mb: float
    rss_mb: float


def process_usage(pid: int) -> Usage:
    """CPU (user + system) and memory of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    return Usage(cpu, int(status["VmHWM"].split()[0]) / 1024, int(status["VmRSS"].split()[0]) / 1024)


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str

    def usage(self) -> Usage:
        return process_usage(self.process.pid)


@contextmanager
def server_process(argv: list[str], env: dict[str, str], port: int, cwd: Path) -> Iterator[Server]:
    process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    server = Server(process, f"http://127.0.0.1:{port}")
    try:
        wait_healthy(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def wait_healthy(server: Server, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            err = server.process.stderr.read().decode() if server.process.stderr else ""
            raise RuntimeError(f"server exited early: {err[-2000:]}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("server did not become healthy")


def chatserver_env(database_url: str, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATSERVER_")}
    return {
        **env,
        "CHATSERVER_DATABASE_URL": database_url,
        "CHATSERVER_JWT_SECRET": JWT_SECRET,
        "CHATSERVER_PORT": str(port),
        "CHATSERVER_LOG_LEVEL": "WARNING",
        "CHATSERVER_RATE_LIMIT_PER_MINUTE": "0",
        **extra,
    }


@contextmanager
def chatserver(database_url: str, directory: Path, **extra: str) -> Iterator[Server]:
    """`chatserver serve` as a user runs it: one uvicorn worker on loopback."""
    port = free_port()
    argv = [sys.executable, "-m", "chatserver", "serve", "--port", str(port)]
    with server_process(argv, chatserver_env(database_url, port, **extra), port, directory) as server:
        yield server


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]
