"""The original server (app.py, re-created) as a contender, run from its own virtualenv."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks.common import JWT_SECRET, Server, free_port, server_process
from benchmarks.peers.contender import ServeOptions
from benchmarks.peers.isolated import ensure_venv, venv_dir
from benchmarks.peers.seed_api import SeedChatApi

HERE = Path(__file__).resolve().parent


class OriginalContender(SeedChatApi):
    name = "original"
    uses_postgres = True

    def install(self, cache: Path) -> None:
        ensure_venv(cache, self.name, HERE / "requirements.txt")

    @contextmanager
    def serve(self, options: ServeOptions) -> Iterator[Server]:
        if options.database_url is None:
            raise ValueError("the original keeps its history in PostgreSQL")
        port = free_port()
        python = venv_dir(options.cache, self.name) / "bin" / "python"
        # As the original was run: `uvicorn main:app`, INFO logs with an access line per request.
        argv = [str(python), "-m", "uvicorn", "app:app", "--app-dir", str(HERE), "--port", str(port)]
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "DATABASE_URL": options.database_url,
            "SUPABASE_JWT_SECRET": JWT_SECRET,
            "ECHO_LATENCY_MS": str(options.latency_ms),
        }
        with server_process(argv, env, port, options.directory, options.directory) as server:
            yield server
