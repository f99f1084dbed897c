"""What the services need from storage. Every method on user-owned rows takes the owner id.

The SQLAlchemy implementation lives in ``storage.sql``; tests use in-memory fakes of the same
protocols. Methods never commit: the unit of work does, once per use case.
"""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Literal, Protocol, Self

from chatserver.domain import (
    AgentConfig,
    ApiKey,
    AuditEvent,
    Chat,
    ConfigVersions,
    Memory,
    Message,
    NewEvent,
    NewMessage,
    PromptCustomization,
    Run,
    RunOutcome,
    SessionInstance,
    User,
)
from chatserver.domain.chats import ANY_CHAT, ChatChange, ChatFilters, SearchHit, TurnRun
from chatserver.domain.steps import RunStep
from chatserver.storage.metering import BudgetRepository, UsageRepository


class UserRepository(Protocol):
    async def get(self, user_id: str) -> User | None: ...
    async def get_by_name(self, name: str) -> User | None: ...
    async def add(self, user: User) -> None:
        """Insert; raises ``Conflict`` when the id or name is taken."""

    async def ensure(self, user_id: str, *, is_admin: bool, now: datetime) -> None:
        """Insert the user if absent (safe under races); keeps ``is_admin`` current."""

    async def provision_subject(self, user_id: str, *, now: datetime) -> bool:
        """Insert a JWT's user (no name, not an admin) if absent; False when ``user_id`` belongs to a
        user created for API keys (those have a name), which no JWT may act as."""

    async def count(self) -> int: ...
    async def list(self, *, limit: int) -> builtins.list[User]:
        """System task (CLI): users by creation, oldest first."""

    async def set_admin(self, user_id: str, *, is_admin: bool) -> bool:
        """False when there is no such user."""


class ApiKeyRepository(Protocol):
    async def add(self, key: ApiKey, *, key_hash: str) -> None: ...
    async def find_active(self, key_hash: str) -> tuple[ApiKey, User] | None: ...
    async def list_for_user(self, user_id: str) -> list[ApiKey]: ...
    async def list_all(self, *, limit: int) -> list[ApiKey]:
        """System task (CLI): every key, oldest first."""

    async def get(self, key_id: str) -> ApiKey | None:
        """By id or by prefix; an active key before a revoked one of the same prefix."""

    async def count_active_of_admins(self) -> int:
        """Active keys whose user is an admin."""

    async def revoke(self, key_id: str, *, now: datetime) -> bool:
        """Revoke by id or by prefix; False when no active key matched."""


class AgentRepository(Protocol):
    async def get(self, name: str) -> AgentConfig | None: ...
    async def versions(self, name: str, user_id: str) -> ConfigVersions | None:
        """The stamps of the agent and of the user's customizations (None: no such agent). Every
        write of an agent, and of a user's customizations (``CustomizationRepository``), changes its
        stamp in the writing transaction."""

    async def list(self) -> list[AgentConfig]: ...
    async def add(self, agent: AgentConfig) -> None:
        """Insert; raises ``Conflict`` when the name is taken."""

    async def update(self, agent: AgentConfig) -> bool: ...
    async def delete(self, name: str) -> bool:
        """Delete the agent and, for every user, its chats, sessions, memories and customizations."""


class ChatRepository(Protocol):
    async def get(self, user_id: str, chat_id: str) -> Chat | None: ...
    async def create_if_absent(self, chat: Chat) -> bool:
        """Insert unless the id exists (for anyone); True when this call created it."""

    async def claim_turn(self, user_id: str, chat_id: str, *, title: str, now: datetime) -> Chat | None:
        """Increment the turn counter of the caller's chat, set the title if it has none.

        Returns the updated chat, or None when the caller owns no such chat.
        """

    async def list(
        self,
        user_id: str,
        *,
        limit: int,
        before: tuple[datetime, str] | None,
        filters: ChatFilters = ANY_CHAT,
    ) -> list[Chat]:
        """The caller's chats, newest ``updated_at`` first; ``before`` is (updated_at, id)."""

    async def set_active(self, user_id: str, chat_id: str, message_id: int | None) -> None:
        """Make ``message_id`` the active branch's leaf: the next message written follows it."""

    async def change(self, user_id: str, chat_id: str, change: ChatChange) -> Chat | None:
        """Set the title and flags ``change`` names; None when the caller owns no such chat."""

    async def retitle(self, user_id: str, chat_id: str, *, was: str, title: str) -> bool:
        """Replace the title only while it is still ``was``."""

    async def delete(self, user_id: str, chat_id: str) -> bool: ...


class MessageRepository(Protocol):
    async def add(
        self, user_id: str, chat_id: str, turn: int, messages: Sequence[NewMessage], *, now: datetime
    ) -> list[Message]: ...

    async def window(self, user_id: str, chat_id: str, *, from_id: int | None, turns: int) -> list[Message]:
        """The branch ending at ``from_id``: its last ``turns`` turns, oldest first (LIMIT-bound)."""

    async def branch(self, user_id: str, chat_id: str, *, from_id: int | None, limit: int) -> list[Message]:
        """The last ``limit`` messages of the branch ending at ``from_id``, oldest first."""

    async def page(self, user_id: str, chat_id: str, *, limit: int, before: int | None) -> list[Message]:
        """Up to ``limit`` messages of every branch with id < ``before`` (newest page), oldest first."""

    async def get(self, user_id: str, chat_id: str, message_id: int) -> Message | None: ...
    async def children(self, user_id: str, chat_id: str, parent_ids: Sequence[int | None]) -> list[Message]:
        """The messages following any of ``parent_ids`` (None: the chat's first ones), by id."""

    async def answer_of_run(self, user_id: str, chat_id: str, run_id: str) -> int | None:
        """The id of the first answer message run ``run_id`` of the chat wrote; None: it wrote none."""

    async def last_of_run(self, user_id: str, chat_id: str, run_id: str) -> int | None:
        """The id of the last message run ``run_id`` of the chat wrote; None: it wrote none."""

    async def newest_under(self, user_id: str, chat_id: str, message_id: int) -> int | None:
        """The newest message of the subtree from ``message_id`` (None: no such message)."""


class ChatSearch(Protocol):
    async def search(self, user_id: str, query: str, filters: ChatFilters, *, limit: int) -> list[SearchHit]:
        """The caller's chats whose title or messages match every word of ``query``, newest first."""


@dataclass(frozen=True, slots=True)
class ClaimedTurn:
    chat: Chat
    """The chat after the claim: ``turn_count`` is the number of the turn just claimed."""
    window: list[Message]
    """The turns before it, oldest first (``MessageRepository.window``)."""
    versions: ConfigVersions | None = None
    """The agent's and the user's customizations' stamps as the claim saw them (None: no agent)."""
    window_from: int | None = None
    """The message the window ends at (None: none before this turn)."""


@dataclass(frozen=True, slots=True)
class StartedRun:
    """What ``TurnRepository.start`` did with a new run of a chat."""

    outcome: Literal["accepted", "not_found", "other_agent", "busy", "key_taken", "too_many"]
    """Only ``accepted`` wrote anything: the run is stored (queued, or started: see ``claimed``)."""
    claimed: str | None = None
    """The id of the run of the chat that started now (this one, or an older queued one)."""
    running: str | None = None
    """The run that was running on the chat when this one came (the one interrupt and steer act on)."""
    chat_agent: str | None = None


@dataclass(frozen=True, slots=True)
class HandOn:
    """After a run's end, start its chat's oldest queued run (if no other runs) under this lease."""

    chat_id: str
    lease_until: datetime


@dataclass(frozen=True, slots=True)
class ClosedRun:
    """What ``TurnRepository.close`` did."""

    written: bool
    """False, with nothing written, when the run was no longer running under the closer's lease."""
    started: Run | None = None
    """The chat's queued run that started in its place (``hand_on``), now under the closer's lease."""


class TurnRepository(Protocol):
    """A chat turn's transactions, each in as few round trips as the database allows."""

    async def start(
        self, run: Run, *, policy: str, owner: str, lease_until: datetime, max_active: int | None = None
    ) -> StartedRun:
        """Store a new run of the caller's chat ``run.chat_id`` (created if new), as one transaction.

        First refuses, writing nothing, a user with ``max_active`` runs queued or running
        (``too_many``), counted after the runs of the user's other starts are stored.

        Refuses, writing nothing, another user's chat (``not_found``), a chat of another agent
        (``other_agent``), a busy chat under the ``reject`` policy (``busy``) and a taken
        idempotency key (``key_taken``). Else the run is queued (``steer``: pointing at the running
        run), the running run is flagged for cancellation (``interrupt``), and the chat's oldest
        queued run starts under ``owner``'s lease if none runs.
        """

    async def open(
        self,
        user_id: str,
        chat_id: str,
        agent_name: str,
        message: str,
        *,
        title: str,
        now: datetime,
        window_turns: int,
        run_id: str | None = None,
    ) -> ClaimedTurn | None:
        """Claim the next turn of the caller's chat (``ChatRepository.claim_turn``), store the user's
        ``message`` in it, and read the ``window_turns`` turns before it.

        The run ``run_id``'s ``edit_of`` and ``regenerate`` say where the turn goes in the chat's
        tree: after the edited message's parent, or (storing no user message) after the user message
        answered again; else after the active branch's leaf. The window follows that branch only.

        None, with nothing written, when the caller owns no such chat. A chat of another agent comes
        back with its ``agent_name``: the turn must not go on, and nothing of it may be committed.
        """

    async def resume(
        self,
        user_id: str,
        chat_id: str,
        agent_name: str,
        opening: Sequence[NewMessage],
        *,
        now: datetime,
        window_turns: int,
    ) -> ClaimedTurn | None:
        """``open`` for a turn that begins with ``opening`` instead of a user message (the caller's
        tool results answering the previous turn's calls, or a whole input); the window is of the
        turns before it, and the chat's title, if it has none, the first user message's."""

    async def close(
        self,
        user_id: str,
        chat_id: str | None,
        turn: int,
        messages: Sequence[NewMessage],
        event: NewEvent,
        *,
        now: datetime,
        outcome: RunOutcome,
        hand_on: HandOn | None = None,
    ) -> ClosedRun:
        """End the run as ``outcome`` says, and store the turn's answer (``chat_id`` None: a stateless
        turn, no messages) and its audit event; then, when written and asked (``hand_on``), start the
        chat's next queued run under ``outcome.owner`` (``RunRepository.claim_next``).

        Fenced: not written, with nothing written, when the run is no longer running under
        ``outcome.owner``'s lease (the sweep ended it, or it was never claimed).
        """


class RunRepository(Protocol):
    """Runs of the caller's (system work: ``renew``, ``expire``, ``startable``)."""

    async def add(self, run: Run, *, owner: str | None = None, lease_until: datetime | None = None) -> bool:
        """Insert; False when the caller's idempotency key is taken (nothing written)."""

    async def set_branch(
        self, user_id: str, run_id: str, *, edit_of: int | None, regenerate: int | None
    ) -> None:
        """Store where the run's turn goes in its chat's tree (``TurnRepository.open`` reads it)."""

    async def add_stateless(
        self, run: Run, *, owner: str, lease_until: datetime
    ) -> tuple[bool, ConfigVersions | None]:
        """``add`` of a run without a chat, and in the same statement the stamps of its agent and of
        its user's customizations (``AgentRepository.versions``): a stateless turn's only statement
        before its model runs."""

    async def get(self, user_id: str, run_id: str) -> Run | None: ...
    async def by_idempotency_key(self, user_id: str, key: str) -> Run | None: ...
    async def forget_idempotency_key(self, user_id: str, key: str) -> None:
        """Free an expired key for reuse; the run stays."""

    async def list(
        self,
        user_id: str,
        chat_id: str,
        *,
        status: str | None,
        limit: int,
        before: tuple[datetime, str] | None,
    ) -> builtins.list[Run]:
        """Newest first; ``before`` is (created_at, id)."""

    async def of_turns(
        self, user_id: str, chat_id: str, *, turns: Sequence[int], answering: Sequence[int]
    ) -> builtins.list[TurnRun]:
        """The runs that opened any of ``turns`` of the chat, and those that answered any of the user
        messages ``answering`` again (``Run.regenerate``)."""

    async def active(self, user_id: str, chat_id: str) -> builtins.list[Run]:
        """The chat's queued and running runs, oldest first."""

    async def count_active(self, user_id: str) -> int:
        """The user's queued and running runs, in every chat and none.

        Counted once any other transaction doing this for the user has ended (PostgreSQL: a
        transaction lock per user), so that two starts at once never both see room for one.
        """

    async def claim_next(
        self, user_id: str, chat_id: str, *, owner: str, now: datetime, lease_until: datetime
    ) -> Run | None:
        """Start the chat's oldest queued run under ``owner``'s lease, unless a run is running."""

    async def steering(self, user_id: str, run_id: str) -> builtins.list[Run]:
        """Queued messages sent to steer ``run_id``, oldest first."""

    async def request_cancel(self, user_id: str, run_id: str) -> None:
        """Flag a running run: its holder stops it at its next lease renewal at the latest."""

    async def delete_ended(self, user_id: str, run_id: str) -> bool:
        """Delete the caller's run if it has ended; False when there is no such ended run."""

    async def finish(self, user_id: str, outcome: RunOutcome, *, now: datetime, fenced: bool = True) -> bool:
        """End a run (fenced: only while running under ``outcome.owner``; else only a queued one)."""

    async def renew(
        self, owner: str, run_ids: Sequence[str], *, lease_until: datetime
    ) -> builtins.list[tuple[str, bool]]:
        """Extend ``owner``'s leases: (id, cancel requested) of the runs it still holds."""

    async def expire(self, *, now: datetime, limit: int = 100) -> builtins.list[Run]:
        """End running runs whose lease expired as ``interrupted``; the ended runs."""

    async def startable(self, *, limit: int = 100) -> builtins.list[tuple[str, str]]:
        """(user_id, chat_id) of chats with a queued run and none running."""


class StepRepository(Protocol):
    """A run's ledger (``domain.steps``), the caller's; ``overdue`` is system work."""

    async def add(self, user_id: str, steps: Sequence[RunStep]) -> None: ...
    async def finish(
        self, user_id: str, run_id: str, seq: int, *, status: str, payload: Any, now: datetime | None
    ) -> None: ...
    async def list(self, user_id: str, run_id: str) -> builtins.list[RunStep]:
        """In the order they were taken."""

    async def decide(
        self,
        user_id: str,
        run_id: str,
        tool_call_id: str,
        *,
        status: str,
        args: dict[str, Any] | None,
        reason: str | None,
        now: datetime,
    ) -> bool:
        """Decide a pending call; False when it is not pending (decided already, or no such call)."""

    async def overdue(self, *, before: datetime, limit: int = 100) -> builtins.list[tuple[str, str]]:
        """(user_id, run_id) of runs with a call pending since before ``before``."""


class PauseRepository(Protocol):
    async def pause(self, user_id: str, run_id: str, *, owner: str, result: dict[str, Any]) -> bool:
        """A running run of ``owner``'s waits for the user (``requires_action``), holding no lease."""

    async def take_up(
        self, user_id: str, run_id: str, *, status: str, owner: str, lease_until: datetime
    ) -> Run | None:
        """The run, if its status is ``status``, running again under ``owner``'s lease."""


class CustomizationRepository(Protocol):
    async def add(self, customization: PromptCustomization) -> None:
        """Insert; raises ``Conflict`` on a second (user, agent, type)."""

    async def get(self, user_id: str, customization_id: str) -> PromptCustomization | None: ...
    async def find(
        self, user_id: str, agent_name: str, customization_type: str
    ) -> PromptCustomization | None: ...
    async def list_active(self, user_id: str, agent_name: str) -> list[PromptCustomization]:
        """Active ones, priority ascending, then creation order."""

    async def list_for_agent(
        self, user_id: str, agent_name: str, *, include_inactive: bool
    ) -> list[PromptCustomization]:
        """Like ``list_active``, with the inactive ones too when ``include_inactive``."""

    async def update(self, customization: PromptCustomization) -> bool:
        """Replace the row (matched by id and owner); raises ``Conflict`` on a duplicate type."""

    async def delete(self, user_id: str, customization_id: str) -> bool: ...


class SessionRepository(Protocol):
    async def add(self, session: SessionInstance) -> None: ...
    async def get(self, user_id: str, session_id: str) -> SessionInstance | None: ...
    async def list(
        self, user_id: str, *, agent_name: str | None, active: bool | None
    ) -> builtins.list[SessionInstance]: ...

    async def heartbeat(self, user_id: str, session_id: str, *, now: datetime) -> SessionInstance | None: ...
    async def end(self, user_id: str, session_id: str, *, now: datetime) -> SessionInstance | None: ...
    async def deactivate_stale(self, *, cutoff: datetime, now: datetime) -> builtins.list[SessionInstance]:
        """System task: mark every active instance with a heartbeat before ``cutoff`` inactive."""

    async def active_pairs(self) -> set[tuple[str, str]]:
        """System task: the (user_id, agent_name) pairs that have an active instance."""

    async def count_active(self) -> int:
        """System task (metrics): how many instances are active, across all users."""


class EventRepository(Protocol):
    async def add(self, event: NewEvent, *, now: datetime) -> None: ...
    async def list(
        self, *, type: str | None, user_id: str | None, limit: int, before: int | None
    ) -> list[AuditEvent]:
        """Newest first; ``before`` is an event id."""

    async def list_after(self, event_id: int, *, limit: int) -> builtins.list[AuditEvent]:
        """Up to ``limit`` events with an id above ``event_id``, oldest first (feeds, e.g. Redis)."""


class MemoryRepository(Protocol):
    async def add(self, user_id: str, agent_name: str, content: str, *, now: datetime) -> Memory: ...
    async def count(self, user_id: str, agent_name: str) -> int: ...
    async def search(
        self, user_id: str, agent_name: str, *, keywords: Sequence[str], limit: int
    ) -> builtins.list[Memory]:
        """Newest first; notes containing any keyword (case-insensitive), or all notes when none."""

    async def list(
        self,
        user_id: str,
        *,
        agent_name: str | None,
        limit: int,
        before: int | None = None,
        words: Sequence[str] = (),
    ) -> builtins.list[Memory]:
        """The caller's notes, newest first, with ids below ``before`` when given; every agent's when
        ``agent_name`` is None."""

    async def delete(self, user_id: str, memory_id: int) -> Memory | None:
        """Delete the caller's note; the deleted note, or None when the caller has no such note."""

    async def delete_all(self, user_id: str, agent_name: str) -> int: ...


EXPORT_SECTIONS = ("chats", "messages", "customizations", "memories", "sessions", "runs", "events", "usage")
"""What a user's export holds besides the user: messages nested in their chats."""

ERASED_KINDS = (
    "chats",
    "messages",
    "memories",
    "customizations",
    "sessions",
    "runs",
    "api_keys",
    "events",
    "usage",
    "budgets",
)


class UserDataRepository(Protocol):
    """All of one user's rows, for export (and erasure)."""

    async def export_page(
        self, user_id: str, section: str, *, after: Any | None, limit: int, chat_id: str | None = None
    ) -> builtins.list[dict[str, Any]]:
        """Up to ``limit`` of the user's rows of ``section`` (an ``EXPORT_SECTIONS`` name) with an id
        above ``after``, by id, as JSON values; ``messages`` are one chat's (``chat_id``)."""

    async def active_run_ids(self, user_id: str) -> builtins.list[str]:
        """The user's queued and running runs, of every chat and stateless."""

    async def erase(self, user_id: str) -> dict[str, int]:
        """Delete the user and every row naming them (audit events of theirs or of their chats
        included); how many of each kind (``ERASED_KINDS``)."""


@dataclass(frozen=True, slots=True)
class RetentionCutoffs:
    """Rows older than these go; None keeps them forever."""

    chats: datetime | None
    """Chats whose ``updated_at`` is older, with everything under them."""
    sessions: datetime | None
    """Inactive session instances last updated before."""
    runs: datetime | None
    """Ended runs that finished before."""
    events: datetime | None
    """Audit events created before."""


class RetentionRepository(Protocol):
    """System work: old rows of every user."""

    async def purge(self, cutoffs: RetentionCutoffs, *, limit: int) -> dict[str, int]:
        """Delete at most ``limit`` rows in all (no cascade beyond them) past their cutoff; how many
        of each kind: ``messages``, ``runs``, ``sessions``, ``chats``, ``events``."""


class UnitOfWork(Protocol):
    users: UserRepository
    api_keys: ApiKeyRepository
    agents: AgentRepository
    chats: ChatRepository
    messages: MessageRepository
    search: ChatSearch
    customizations: CustomizationRepository
    sessions: SessionRepository
    events: EventRepository
    memories: MemoryRepository
    turns: TurnRepository
    runs: RunRepository
    user_data: UserDataRepository
    retention: RetentionRepository
    usage: UsageRepository
    budgets: BudgetRepository
    steps: StepRepository
    pauses: PauseRepository

    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Roll back whatever was not committed."""

    async def commit(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self, *, user_id: str | None = None) -> UnitOfWork:
        """A unit of work acting for ``user_id`` (row-level security on PostgreSQL), or for the system."""


class Database(Protocol):
    """The engine-level handle: readiness and shutdown."""

    async def ping(self) -> None: ...
    async def migrations_current(self) -> bool: ...
    async def enforce_row_level_security(self, app_role: str) -> None:
        """Where the configured role would bypass row-level security, serve as ``app_role``."""

    async def dispose(self) -> None: ...


MaintenanceWork = Callable[[UnitOfWork], Awaitable[dict[str, Any]]]
"""A system job's body: runs in the gate's unit of work, returns what to record on completion."""


class MaintenanceGate(Protocol):
    """Coordinates system jobs (the session sweep) across replicas sharing one database."""

    async def run_exclusive(
        self, job: str, work: MaintenanceWork, *, now: datetime, min_gap: timedelta
    ) -> dict[str, Any] | None:
        """Run ``work`` in one system transaction, unless the job is running elsewhere right now or
        its last ``<job>.completed`` audit event is younger than ``min_gap``.

        Records ``<job>.completed`` (data: what ``work`` returned) in the same transaction and
        commits; returns that data, or None when skipped.
        """
