"""chatserver as a contender: ``chatserver serve`` on PostgreSQL with default settings and ``echo``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks.common import Server, chatserver
from benchmarks.peers.contender import ServeOptions
from benchmarks.peers.seed_api import SeedChatApi


class ChatserverContender(SeedChatApi):
    name = "chatserver"
    uses_postgres = True

    def install(self, cache: Path) -> None:
        """Runs from the project's own environment: nothing to install."""

    @contextmanager
    def serve(self, options: ServeOptions) -> Iterator[Server]:
        if options.database_url is None:
            raise ValueError("chatserver is measured on PostgreSQL")
        url = options.database_url.replace("postgresql://", "postgresql+asyncpg://", 1)
        latency = {"CHATSERVER_ECHO_LATENCY_MS": str(options.latency_ms)}
        with chatserver(url, options.directory, **latency) as server:
            yield server
