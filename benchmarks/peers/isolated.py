"""What the peers share: a virtualenv of their own from pinned requirements, a server process that
inherits nothing of the project's environment, and the benchmark's JWTs.

The peers' code is installed from PyPI here and never kept in the repository; only our app and
configuration files for them (``agno_app/``, ``langgraph_app/``) are.
"""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import jwt

from benchmarks.common import JWT_SECRET, Server

DEFAULT_CACHE = Path(os.environ.get("CHATSERVER_BENCH_CACHE", Path.home() / ".cache" / "chatserver-bench"))
_STAMP = ".requirements.sha256"
# What a peer's process must not inherit: the project's interpreter and settings. What it gets:
# no telemetry or analytics of any kind (there is no internet here, and none of it is measured).
_NOT_INHERITED = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
NO_TELEMETRY = {
    "AGNO_TELEMETRY": "false",
    "LANGGRAPH_CLI_NO_ANALYTICS": "1",
    "LANGSMITH_TRACING": "false",
    "LANGCHAIN_TRACING_V2": "false",
    "LANGSMITH_TRACING_V2": "false",
    "DO_NOT_TRACK": "1",
}


def venv_dir(cache: Path, name: str) -> Path:
    return cache / "venvs" / name


def ensure_venv(cache: Path, name: str, requirements: Path) -> Path:
    """The virtualenv ``cache/venvs/name`` with exactly ``requirements`` installed; kept as it is
    while the requirements file is unchanged. Returns its ``bin`` folder."""
    venv = venv_dir(cache, name)
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    stamp = venv / _STAMP
    python = venv / "bin" / "python"
    if python.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return venv / "bin"
    venv.parent.mkdir(parents=True, exist_ok=True)
    # A fresh one: an older set of packages left in place could mask a missing pin.
    subprocess.run(["/usr/bin/env", "python3", "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(requirements)], check=True)
    stamp.write_text(digest + "\n")
    return venv / "bin"


def peer_env(**extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in _NOT_INHERITED and not key.startswith("CHATSERVER_")
    }
    return {**env, **NO_TELEMETRY, **extra}


def bearer(user: str, scopes: tuple[str, ...] = ()) -> dict[str, str]:
    """The header of a benchmark user: the same HS256 JWT (``sub``, ``aud``) chatserver checks,
    with ``scopes`` when the server wants them."""
    return {"Authorization": f"Bearer {_token(user, scopes)}"}


@functools.cache
def _token(user: str, scopes: tuple[str, ...]) -> str:
    # One per user, made once: signing is the driver's CPU, not the server's.
    payload: dict[str, object] = {"sub": user, "aud": "authenticated", "exp": int(time.time()) + 86400}
    if scopes:
        payload["scopes"] = list(scopes)
    return jwt.encode(payload, JWT_SECRET, algorithm="HS256")


@contextmanager
def peer_process(
    argv: list[str], env: dict[str, str], url: str, health_path: str, cwd: Path, log: Path
) -> Iterator[Server]:
    """Starts a peer's server with its log in ``log``; yields once ``health_path`` answers 200."""
    with log.open("wb") as out:
        process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        server = Server(process, url)
        try:
            _wait_until_up(server, health_path, log)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _wait_until_up(server: Server, health_path: str, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.process.args!r} exited early: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{server.url}{health_path}", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"no answer from {server.url}{health_path} within {timeout:.0f} s; see {log}")
