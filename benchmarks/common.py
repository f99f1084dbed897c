"""Shared pieces of the benchmarks: throwaway databases, server processes, /proc readings, tokens."""

from __future__ import annotations

import asyncio
import functools
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
REPO = Path(__file__).resolve().parent.parent

# The server connects as a plain role, as in production: a superuser would skip row-level security
# (and its cost). Benchmark-only credentials, for servers that do not trust loopback.
APP_ROLE = "chatserver_bench"
_CREATE_APP_ROLE = f"""
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
        CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD '{APP_ROLE}';
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def token(user: str, scopes: tuple[str, ...] = ()) -> str:
    """A benchmark user's HS256 JWT (``sub``, ``aud``), with ``scopes`` for a server that wants them."""
    claims: dict[str, object] = {"sub": user, "aud": "authenticated", "exp": int(time.time()) + 86400}
    if scopes:
        claims["scopes"] = list(scopes)
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


@functools.cache
def bearer(user: str, scopes: tuple[str, ...] = ()) -> dict[str, str]:
    """The ``Authorization`` header of ``user``, made once (signing is the load driver's CPU)."""
    return {"Authorization": f"Bearer {token(user, scopes)}"}


@asynccontextmanager
async def fresh_database(kind: str, directory: Path) -> AsyncIterator[str]:
    """An empty database URL (SQLite file or a new PostgreSQL database), dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{directory / f'bench-{secrets.token_hex(4)}.db'}"
        return
    name = f"cs_bench_{secrets.token_hex(5)}"
    admin = create_async_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    async with admin.connect() as conn:
        await conn.execute(text(_CREATE_APP_ROLE))
        await conn.execute(text(f"ALTER ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS"))
        await conn.execute(text(f'CREATE DATABASE "{name}" OWNER {APP_ROLE}'))
    try:
        url = make_url(POSTGRES_ADMIN_URL).set(username=APP_ROLE, password=APP_ROLE, database=name)
        yield url.render_as_string(hide_password=False)
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
    fields = _stat_fields(pid)
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    return Usage(cpu, int(status["VmHWM"].split()[0]) / 1024, int(status["VmRSS"].split()[0]) / 1024)


def _stat_fields(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_tree(pid: int) -> list[int]:
    """``pid`` and every live process descending from it (a server's workers, a reloader's child)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                children.setdefault(int(_stat_fields(int(entry.name))[1]), []).append(int(entry.name))
            except (OSError, IndexError):
                continue  # the process ended while being read
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def postgres_pid() -> int | None:
    """The local PostgreSQL server's first process (the postmaster), whose tree holds every backend;
    None when none runs here. Its CPU is the database's share of a turn, whoever's turn it is."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
            parent = int(_stat_fields(int(entry.name))[1])
            if Path(f"/proc/{parent}/comm").read_text().strip() != "postgres":
                return int(entry.name)
        except (OSError, IndexError):
            continue
    return None


def tree_usage(pid: int) -> Usage:
    """CPU (user + system, with that of children already reaped) and memory summed over a process tree."""
    cpu = peak = rss = 0.0
    for member in process_tree(pid):
        try:
            fields = _stat_fields(member)
            usage = process_usage(member)
        except OSError:
            continue
        cpu += usage.cpu_seconds + (int(fields[13]) + int(fields[14])) / CLOCK_TICKS
        peak += usage.peak_rss_mb
        rss += usage.rss_mb
    return Usage(cpu, peak, rss)


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str

    def usage(self) -> Usage:
        return process_usage(self.process.pid)


@contextmanager
def server_process(
    argv: list[str],
    env: dict[str, str],
    port: int,
    cwd: Path,
    log_dir: Path,
    *,
    health_path: str = "/healthz",
    timeout: float = 60,
) -> Iterator[Server]:
    """Starts a server with its log in ``log_dir``; yields once ``health_path`` answers 200."""
    # Logs go to a file: a pipe nobody reads would block the server once its buffer is full.
    log_path = log_dir / f"server-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
        server = Server(process, f"http://127.0.0.1:{port}")
        try:
            wait_healthy(server, log_path, health_path=health_path, timeout=timeout)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def wait_healthy(
    server: Server, log_path: Path, *, health_path: str = "/healthz", timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited early: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(f"{server.url}{health_path}", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("server did not become healthy")


def chatserver_env(database_url: str, port: int, **extra: str) -> dict[str, str]:
    """Default settings (INFO JSON logs with an access line per request, metrics, background tasks),
    but the ``echo`` model: without ``CHATSERVER_DEFAULT_MODEL`` the seeded agent would run the
    local llama.cpp model whenever it is installed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATSERVER_")}
    return {
        **env,
        "CHATSERVER_DATABASE_URL": database_url,
        "CHATSERVER_JWT_SECRET": JWT_SECRET,
        "CHATSERVER_PORT": str(port),
        "CHATSERVER_DEFAULT_MODEL": "echo",
        **extra,
    }


@contextmanager
def chatserver(database_url: str, directory: Path, **extra: str) -> Iterator[Server]:
    """`chatserver serve` as a user runs it: one uvicorn worker on loopback."""
    port = free_port()
    argv = [sys.executable, "-m", "chatserver", "serve", "--port", str(port)]
    env = chatserver_env(database_url, port, **extra)
    with server_process(argv, env, port, directory, directory) as server:
        yield server


class _DiscardTraces(BaseHTTPRequestHandler):
    """Answers OTLP/HTTP exports as a collector does (200, an empty protobuf response), keeps nothing."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def otlp_sink() -> Iterator[str]:
    """An OTLP/HTTP endpoint on loopback for a traced server; its own CPU is this process's."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _DiscardTraces)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]
