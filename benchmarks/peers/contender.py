"""What the side-by-side benchmark needs of each server it drives (chatserver, the original, peers).

Every contender answers like ``echo`` (``echo: <message>``), keeps the same window of history
(the last 50 exchanges), has one tool, and is driven by the same load driver over loopback HTTP.
A peer is installed from PyPI into its own virtualenv under the benchmark's cache folder, never
into the project's environment, and none of its code is kept in this repository.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

from benchmarks.common import Server

HISTORY_EXCHANGES = 50
"""The window every contender keeps: the seed's ``k=50`` pairs, chatserver's default."""


@dataclass(frozen=True)
class Chat:
    """One worker's conversation: the user it belongs to and the contender's own id for it."""

    user: str
    chat_id: str


@dataclass(frozen=True)
class Turn:
    """One HTTP request that runs one turn and returns its whole answer (no stream)."""

    path: str
    headers: dict[str, str] = field(default_factory=dict)
    json: dict[str, Any] | None = None
    form: dict[str, str] | None = None
    """Form fields, for a server whose run route takes a form (Agno's AgentOS)."""


@dataclass(frozen=True)
class ServeOptions:
    directory: Path
    """A throwaway folder for logs and files of this run."""
    cache: Path
    """Where virtualenvs live between runs (outside the repository)."""
    database_url: str | None
    """A fresh PostgreSQL database (``postgresql://...``, no driver suffix) for contenders that
    keep history in PostgreSQL; ``None`` for in-memory ones."""
    latency_ms: int
    """Model latency added before every reply (0 for the zero-latency scenarios)."""


class Contender(Protocol):
    name: str
    uses_postgres: bool

    def install(self, cache: Path) -> None:
        """Create or reuse this contender's virtualenv under ``cache`` (idempotent, from PyPI)."""
        ...

    def serve(self, options: ServeOptions) -> AbstractContextManager[Server]:
        """Start the server on a free loopback port; yield once it answers; stop it afterwards.
        ``Server.process`` is the process whose tree's CPU and memory the table reports."""
        ...

    async def open_chats(self, client: httpx.AsyncClient, chats: list[Chat]) -> list[Chat]:
        """Whatever must exist before a chat's first turn (a thread, a session); returns the chats
        with the ids the contender gave them."""
        ...

    def turn(self, chat: Chat, message: str) -> Turn:
        """The request of one turn of ``chat``."""
        ...

    def answer_of(self, response: httpx.Response) -> str:
        """The answer text of a turn's response (the driver checks it is ``echo: <message>``)."""
        ...
