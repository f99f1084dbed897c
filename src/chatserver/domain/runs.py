"""Runs: every turn is a durable record that outlives the connection that started it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from chatserver.domain.models import NewMessage, TurnUsage
from chatserver.domain.turn_options import NO_OPTIONS, TurnOptions
from chatserver.domain.usage import ModelUsage

RunStatus = Literal["queued", "running", "requires_action", "completed", "failed", "cancelled", "interrupted"]
BusyPolicy = Literal["enqueue", "wait", "reject", "interrupt", "steer"]
OnDisconnect = Literal["continue", "cancel"]

ENDED: frozenset[str] = frozenset({"completed", "failed", "cancelled", "interrupted"})
TERMINAL_EVENTS: frozenset[str] = frozenset({"done", "error", "cancelled"})
"""The kinds of event a run's log ends with."""
PAUSE_EVENT = "approval_required"
"""The run waits for the user: a reader stops there; the log goes on once the run does."""


@dataclass(frozen=True, slots=True)
class RunError:
    code: str
    detail: str


@dataclass(frozen=True, slots=True)
class Run:
    id: str
    user_id: str
    chat_id: str | None
    """None for a stateless run (the OpenAI-compatible API without a chat id)."""
    agent_name: str
    status: RunStatus
    message: str
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    model: str | None = None
    usage: TurnUsage = field(default_factory=TurnUsage)
    error: RunError | None = None
    result: dict[str, Any] | None = None
    """The finished answer as the ``done`` event carries it, so a late reader needs no event log."""
    idempotency_key: str | None = None
    request_hash: str | None = None
    steers: str | None = None
    """Sent with the steer policy: the id of the running run this message is handed to."""
    edit_of: int | None = None
    """The user message this run's message replaces (a sibling of it: edit and resend)."""
    regenerate: int | None = None
    """The user message this run answers again (no new user message)."""

    @property
    def ended(self) -> bool:
        return self.status in ENDED


@dataclass(frozen=True, slots=True)
class StartRun:
    """Everything a turn needs, from every route alike: the one command of the run pipeline."""

    user_id: str
    agent_name: str
    message: str
    chat_id: str | None = None
    busy_policy: BusyPolicy | None = None
    """None: the server's default."""
    idempotency_key: str | None = None
    request_hash: str | None = None
    """What the idempotency key must match on a retry: a digest of the request's body."""
    history: tuple[NewMessage, ...] = ()
    """Stateless runs only: the caller's context."""
    instructions: str | None = None
    """Stateless runs only: appended to the agent's system prompt."""
    options: TurnOptions = NO_OPTIONS
    edit_of: int | None = None
    """A user message of the chat: the new message becomes its sibling (edit and resend)."""
    regenerate: int | None = None
    """An assistant message of the chat: a new answer to the same user message, with no ``message``."""
    follows_run: str | None = None
    """A run of the chat: the turn follows the last message it wrote, a new branch when that is not
    the active branch's leaf (a client continuing from an older response)."""


@dataclass(frozen=True, slots=True)
class RunEvent:
    """One event of a run's log; ``id`` is opaque and increases within the run."""

    id: str
    kind: str
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def terminal(self) -> bool:
        return self.kind in TERMINAL_EVENTS

    @property
    def pauses(self) -> bool:
        return self.kind == PAUSE_EVENT


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How a run ended, written with its last messages in the turn's closing statement."""

    run_id: str
    owner: str
    """The lease holder: nothing is written when another replica or the sweep took the run."""
    status: RunStatus
    model: str | None
    usage: TurnUsage
    error: RunError | None = None
    result: dict[str, Any] | None = None
    usage_by_model: tuple[ModelUsage, ...] = ()
    """The usage ledger's rows of the run, written with its end."""
