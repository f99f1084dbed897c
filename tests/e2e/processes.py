"""Run the real ``chatserver serve`` as a child process and read what it prints."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.e2e.harness import free_port


@dataclass
class ServerProcess:
    process: subprocess.Popen[str]
    url: str
    output: list[str] = field(default_factory=list)

    def read_until(self, marker: str, timeout: float = 60) -> list[str]:
        """Lines printed up to and including the first one containing ``marker``."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line and self.process.poll() is not None:
                break
            self.output.append(line.rstrip("\n"))
            if marker in line:
                return self.output
        raise AssertionError(f"'{marker}' not printed; output so far: {self.output}")

    def wait_healthy(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError("server never became healthy")

    def terminate(self, timeout: float = 30) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATSERVER_")}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


@contextmanager
def chatserver_serve(
    cwd: Path, *, stderr: int = subprocess.STDOUT, args: Sequence[str] = (), **env: str
) -> Iterator[ServerProcess]:
    """``serve`` seeds the echo model here unless ``env`` says otherwise (the local extra would win).

    Its stderr goes with its stdout unless ``stderr`` is a file descriptor to write it to instead;
    ``args`` are more options of ``serve``.
    """
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "chatserver", "serve", "--port", str(port), *args],
        cwd=cwd,
        env=clean_env(**{"CHATSERVER_DEFAULT_MODEL": "echo", **env}),
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
    server = ServerProcess(process, f"http://127.0.0.1:{port}")
    try:
        yield server
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        if process.stdout:
            process.stdout.close()
