"""In-memory fakes of the storage protocols: same contracts, state you can assert on."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self

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
    RunError,
    RunOutcome,
    SessionInstance,
    User,
)
from chatserver.domain.chats import ANY_CHAT, ChatChange, ChatFilters, SearchHit, TurnRun
from chatserver.domain.steps import RunStep
from chatserver.errors import Conflict
from chatserver.storage.protocols import MaintenanceWork, RetentionCutoffs
from chatserver.storage.turns import ComposedTurnRepository
from tests.unit.fake_metering import FakeBudgets, FakeUsage, MeteringState


@dataclass
class FakeStore:
    users: dict[str, User] = field(default_factory=dict)
    keys: dict[str, tuple[ApiKey, str]] = field(default_factory=dict)
    agents: dict[str, AgentConfig] = field(default_factory=dict)
    chats: dict[tuple[str, str], Chat] = field(default_factory=dict)
    """(user id, chat id) -> chat: a chat id names a chat of each user who has one."""
    messages: list[Message] = field(default_factory=list)
    message_owners: dict[int, str] = field(default_factory=dict)
    """message id -> user id (a message names only its chat's id)."""
    customizations: dict[str, PromptCustomization] = field(default_factory=dict)
    sessions: dict[str, SessionInstance] = field(default_factory=dict)
    events: list[AuditEvent] = field(default_factory=list)
    commits: int = 0
    memories: list[Memory] = field(default_factory=list)
    runs: dict[str, Run] = field(default_factory=dict)
    leases: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    """run id -> (owner, lease until), for running runs."""
    cancel_requested: set[str] = field(default_factory=set)
    versions: dict[str, str] = field(default_factory=dict)
    """"agent:<name>" / "user:<id>" -> the stamp of its last write (``AgentRepository.versions``)."""
    metering: MeteringState = field(default_factory=MeteringState)
    steps: list[RunStep] = field(default_factory=list)
    run_turns: dict[str, int] = field(default_factory=dict)
    """run id -> the turn of its chat it opened (``runs.turn``)."""


class FakeUsers:
    def __init__(self, s: FakeStore) -> None:
        self.s = s

    async def get(self, user_id: str) -> User | None:
        return self.s.users.get(user_id)

    async def get_by_name(self, name: str) -> User | None:
        return next((u for u in self.s.users.values() if u.name == name), None)

    async def add(self, user: User) -> None:
        if user.id in self.s.users or (user.name and await self.get_by_name(user.name)):
            raise Conflict("user exists")
        self.s.users[user.id] = user

    async def ensure(self, user_id: str, *, is_admin: bool, now: datetime) -> None:
        current = self.s.users.get(user_id)
        name = current.name if current else None
        created = current.created_at if current else now
        self.s.users[user_id] = User(user_id, name, is_admin, created)

    async def provision_subject(self, user_id: str, *, now: datetime) -> bool:
        current = self.s.users.setdefault(user_id, User(user_id, None, False, now))
        return current.name is None

    async def count(self) -> int:
        return len(self.s.users)

    async def list(self, *, limit: int) -> list[User]:
        return sorted(self.s.users.values(), key=lambda u: (u.created_at, u.id))[:limit]

    async def set_admin(self, user_id: str, *, is_admin: bool) -> bool:
        user = self.s.users.get(user_id)
        if user is None:
            return False
        self.s.users[user_id] = replace(user, is_admin=is_admin)
        return True


class FakeApiKeys:
    def __init__(self, s: FakeStore) -> None:
        self.s = s

    async def add(self, key: ApiKey, *, key_hash: str) -> None:
        self.s.keys[key.id] = (key, key_hash)

    async def find_active(self, key_hash: str) -> tuple[ApiKey, User] | None:
        for key, stored in self.s.keys.values():
            if stored == key_hash and key.revoked_at is None:
                return key, self.s.users[key.user_id]
        return None

    async def list_for_user(self, user_id: str) -> list[ApiKey]:
        return [k for k, _ in self.s.keys.values() if k.user_id == user_id]

    async def list_all(self, *, limit: int) -> list[ApiKey]:
        return sorted((k for k, _ in self.s.keys.values()), key=lambda k: (k.created_at, k.id))[:limit]

    async def get(self, key_id: str) -> ApiKey | None:
        found = [k for k, _ in self.s.keys.values() if key_id in (k.id, k.prefix)]
        return min(found, key=lambda k: k.revoked_at is not None, default=None)

    async def count_active_of_admins(self) -> int:
        keys = (k for k, _ in self.s.keys.values())
        return sum(k.revoked_at is None and self.s.users[k.user_id].is_admin for k in keys)

    async def revoke(self, key_id: str, *, now: datetime) -> bool:
        for key, stored in list(self.s.keys.values()):
            if key.revoked_at is None and key_id in (key.id, key.prefix):
                self.s.keys[key.id] = (replace(key, revoked_at=now), stored)
                return True
        return False


class FakeAgents:
    def __init__(self, s: FakeStore) -> None:
        self.s = s

    async def get(self, name: str) -> AgentConfig | None:
        return self.s.agents.get(name)

    async def list(self) -> list[AgentConfig]:
        return sorted(self.s.agents.values(), key=lambda a: a.name)

    async def versions(self, name: str, user_id: str) -> ConfigVersions | None:
        if name not in self.s.agents:
            return None
        return ConfigVersions(
            self.s.versions.get(f"agent:{name}", "0"), self.s.versions.get(f"user:{user_id}", "0")
        )

    async def add(self, agent: AgentConfig) -> None:
        if agent.name in self.s.agents:
            raise Conflict(f"agent '{agent.name}' exists")
        self.s.agents[agent.name] = agent
        self.s.versions[f"agent:{agent.name}"] = uuid.uuid4().hex
        self._delete_kept_for(agent.name)

    async def update(self, agent: AgentConfig) -> bool:
        found = agent.name in self.s.agents
        if found:
            self.s.agents[agent.name] = agent
            self.s.versions[f"agent:{agent.name}"] = uuid.uuid4().hex
        return found

    async def delete(self, name: str) -> bool:
        if self.s.agents.pop(name, None) is None:
            return False
        self._delete_kept_for(name)
        return True

    def _delete_kept_for(self, name: str) -> None:
        gone = {key for key, chat in self.s.chats.items() if chat.agent_name == name}
        self.s.chats = {k: v for k, v in self.s.chats.items() if k not in gone}
        self.s.messages = [m for m in self.s.messages if (self.s.message_owners[m.id], m.chat_id) not in gone]
        self.s.sessions = {
            k: v
            for k, v in self.s.sessions.items()
            if v.agent_name != name and (v.user_id, v.chat_id) not in gone
        }
        self.s.memories = [m for m in self.s.memories if m.agent_name != name]
        self.s.customizations = {k: v for k, v in self.s.customizations.items() if v.agent_name != name}


class FakeChats:
    def __init__(self, s: FakeStore) -> None:
        self.s = s

    async def get(self, user_id: str, chat_id: str) -> Chat | None:
        return self.s.chats.get((user_id, chat_id))

    async def create_if_absent(self, chat: Chat) -> bool:
        if (chat.user_id, chat.id) in self.s.chats:
            return False
        self.s.chats[(chat.user_id, chat.id)] = chat
        return True

    async def claim_turn(self, user_id: str, chat_id: str, *, title: str, now: datetime) -> Chat | None:
        chat = await self.get(user_id, chat_id)
        if chat is None:
            return None
        chat = replace(chat, turn_count=chat.turn_count + 1, title=chat.title or title, updated_at=now)
        self.s.chats[(user_id, chat_id)] = chat
        # As migration 0011's trigger does: the chat's running run opens the turn.
        for run in self.s.runs.values():
            if (run.user_id, run.chat_id, run.status) == (user_id, chat_id, "running"):
                self.s.run_turns[run.id] = chat.turn_count
        return chat

    async def list(
        self,
        user_id: str,
        *,
        limit: int,
        before: tuple[datetime, str] | None,
        filters: ChatFilters = ANY_CHAT,
    ) -> list[Chat]:
        def kept(c: Chat) -> bool:
            return filters.pinned in (None, c.pinned) and filters.archived in (None, c.archived)

        mine = sorted(
            (c for c in self.s.chats.values() if c.user_id == user_id and kept(c)),
            key=lambda c: (c.updated_at, c.id),
            reverse=True,
        )
        if before:
            mine = [c for c in mine if (c.updated_at, c.id) < before]
        return mine[:limit]

    async def set_active(self, user_id: str, chat_id: str, message_id: int | None) -> None:
        chat = self.s.chats.get((user_id, chat_id))
        if chat is not None:
            self.s.chats[(user_id, chat_id)] = replace(chat, active_message_id=message_id)

    async def retitle(self, user_id: str, chat_id: str, *, was: str, title: str) -> bool:
        chat = self.s.chats.get((user_id, chat_id))
        if chat is None or chat.title != was:
            return False
        self.s.chats[(user_id, chat_id)] = replace(chat, title=title)
        return True

    async def change(self, user_id: str, chat_id: str, change: ChatChange) -> Chat | None:
        chat = self.s.chats.get((user_id, chat_id))
        if chat is None:
            return None
        chat = replace(chat, **{k: v for k, v in asdict(change).items() if v is not None})
        self.s.chats[(user_id, chat_id)] = chat
        return chat

    async def delete(self, user_id: str, chat_id: str) -> bool:
        if await self.get(user_id, chat_id) is None:
            return False
        del self.s.chats[(user_id, chat_id)]
        mine = set(FakeMessages(self.s).owned(user_id, chat_id))
        self.s.messages = [m for m in self.s.messages if m not in mine]
        return True


class FakeMessages:
    def __init__(self, s: FakeStore) -> None:
        self.s = s

    async def add(
        self, user_id: str, chat_id: str, turn: int, messages: Sequence[NewMessage], *, now: datetime
    ) -> list[Message]:
        """Chains each message after the chat's active one, as migration 0009's trigger does."""
        chat = self.s.chats.get((user_id, chat_id))
        parent = chat.active_message_id if chat else None
        last = max((m.id for m in self.s.messages), default=0)
        added: list[Message] = []
        for i, m in enumerate(messages):
            added.append(
                Message(
                    last + i + 1,
                    chat_id,
                    turn,
                    m.role,
                    m.content,
                    now,
                    m.tool_calls,
                    m.tool_call_id,
                    m.tool_name,
                    m.incomplete,
                    parent_id=parent,
                )
            )
            parent = last + i + 1
        self.s.messages.extend(added)
        self.s.message_owners.update((m.id, user_id) for m in added)
        if chat is not None and added:
            self.s.chats[(user_id, chat_id)] = replace(chat, active_message_id=added[-1].id)
        return added

    def owned(self, user_id: str, chat_id: str) -> list[Message]:
        owners = self.s.message_owners
        return [m for m in self.s.messages if m.chat_id == chat_id and owners[m.id] == user_id]

    async def window(self, user_id: str, chat_id: str, *, from_id: int | None, turns: int) -> list[Message]:
        line = await self.branch(user_id, chat_id, from_id=from_id, limit=len(self.s.messages))
        kept = sorted({m.turn for m in line})[-turns:] if turns > 0 else []
        return [m for m in line if m.turn in kept]

    async def branch(self, user_id: str, chat_id: str, *, from_id: int | None, limit: int) -> list[Message]:
        by_id = {m.id: m for m in self.owned(user_id, chat_id)}
        line: list[Message] = []
        at = by_id.get(from_id) if from_id is not None else None
        while at is not None and len(line) < limit:
            line.append(at)
            at = by_id.get(at.parent_id) if at.parent_id is not None else None
        return line[::-1]

    async def get(self, user_id: str, chat_id: str, message_id: int) -> Message | None:
        return next((m for m in self.owned(user_id, chat_id) if m.id == message_id), None)

    async def children(self, user_id: str, chat_id: str, parent_ids: Sequence[int | None]) -> list[Message]:
        return [m for m in self.owned(user_id, chat_id) if m.parent_id in parent_ids]

    async def answer_of_run(self, user_id: str, chat_id: str, run_id: str) -> int | None:
        return next((m.id for m in self._of_run(user_id, chat_id, run_id) if m.role == "assistant"), None)

    async def last_of_run(self, user_id: str, chat_id: str, run_id: str) -> int | None:
        return max((m.id for m in self._of_run(user_id, chat_id, run_id)), default=None)

    def _of_run(self, user_id: str, chat_id: str, run_id: str) -> list[Message]:
        run = self.s.runs.get(run_id)
        if run is None or (run.user_id, run.chat_id) != (user_id, chat_id) or run_id not in self.s.run_turns:
            return []
        return [m for m in self.owned(user_id, chat_id) if m.turn == self.s.run_turns[run_id]]

    async def newest_under(self, user_id: str, chat_id: str, message_id: int) -> int | None:
        mine = self.owned(user_id, chat_id)
        under = {message_id} if any(m.id == message_id for m in mine) else set()
        for m in mine:
            if m.parent_id in under:
                under.add(m.id)
        return max(under, default=None)

    async def page(self, user_id: str, chat_id: str, *, limit: int, before: int | None) -> list[Message]:
        rows = [m for m in self.owned(user_id, chat_id) if before is None or m.id < before]
        return rows[-limit:]


class FakeSearch:
    def __init__(self, s: FakeStore) -> None:
        self.s = s

    async def search(self, user_id: str, query: str, filters: ChatFilters, *, limit: int) -> list[SearchHit]:
        words = query.lower().split()
        hits = []
        for chat in await FakeChats(self.s).list(user_id, limit=limit, before=None, filters=filters):
            texts = [chat.title or ""] + [m.content for m in FakeMessages(self.s).owned(user_id, chat.id)]
            found = next((t for t in reversed(texts) if all(w in t.lower() for w in words)), None)
            if found is not None:
                hits.append(SearchHit(chat, found))
        return hits


class FakeCustomizations:
    def __init__(self, s: FakeStore) -> None:
        self.s = s

    def _clash(self, row: PromptCustomization) -> bool:
        return any(
            (c.user_id, c.agent_name, c.customization_type)
            == (row.user_id, row.agent_name, row.customization_type)
            and c.id != row.id
            for c in self.s.customizations.values()
        )

    async def add(self, customization: PromptCustomization) -> None:
        if self._clash(customization):
            raise Conflict("customization of this type exists")
        self.s.customizations[customization.id] = customization
        self._changed(customization.user_id)

    def _changed(self, user_id: str) -> None:
        self.s.versions[f"user:{user_id}"] = uuid.uuid4().hex

    async def get(self, user_id: str, customization_id: str) -> PromptCustomization | None:
        row = self.s.customizations.get(customization_id)
        return row if row and row.user_id == user_id else None

    async def find(
        self, user_id: str, agent_name: str, customization_type: str
    ) -> PromptCustomization | None:
        return next(
            (
                c
                for c in self.s.customizations.values()
                if (c.user_id, c.agent_name, c.customization_type)
                == (user_id, agent_name, customization_type)
            ),
            None,
        )

    async def list_active(self, user_id: str, agent_name: str) -> list[PromptCustomization]:
        return await self.list_for_agent(user_id, agent_name, include_inactive=False)

    async def list_for_agent(
        self, user_id: str, agent_name: str, *, include_inactive: bool
    ) -> list[PromptCustomization]:
        rows = [
            c
            for c in self.s.customizations.values()
            if c.user_id == user_id and c.agent_name == agent_name and (c.is_active or include_inactive)
        ]
        return sorted(rows, key=lambda c: (c.priority, c.created_at))

    async def update(self, customization: PromptCustomization) -> bool:
        if await self.get(customization.user_id, customization.id) is None:
            return False
        if self._clash(customization):
            raise Conflict("customization of this type exists")
        self.s.customizations[customization.id] = customization
        self._changed(customization.user_id)
        return True

    async def delete(self, user_id: str, customization_id: str) -> bool:
        if await self.get(user_id, customization_id) is None:
            return False
        del self.s.customizations[customization_id]
        self._changed(user_id)
        return True


class FakeSessions:
    def __init__(self, s: FakeStore) -> None:
        self.s = s

    async def add(self, session: SessionInstance) -> None:
        self.s.sessions[session.id] = session

    async def get(self, user_id: str, session_id: str) -> SessionInstance | None:
        row = self.s.sessions.get(session_id)
        return row if row and row.user_id == user_id else None

    async def list(
        self, user_id: str, *, agent_name: str | None, active: bool | None
    ) -> list[SessionInstance]:
        return [
            r
            for r in self.s.sessions.values()
            if r.user_id == user_id and agent_name in (None, r.agent_name) and active in (None, r.is_active)
        ]

    async def _set(
        self, user_id: str, session_id: str, *, active: bool, now: datetime
    ) -> SessionInstance | None:
        row = await self.get(user_id, session_id)
        if row is None:
            return None
        beat = now if active else row.last_heartbeat_at
        row = replace(row, is_active=active, last_heartbeat_at=beat, updated_at=now)
        self.s.sessions[session_id] = row
        return row

    async def heartbeat(self, user_id: str, session_id: str, *, now: datetime) -> SessionInstance | None:
        return await self._set(user_id, session_id, active=True, now=now)

    async def end(self, user_id: str, session_id: str, *, now: datetime) -> SessionInstance | None:
        return await self._set(user_id, session_id, active=False, now=now)

    async def deactivate_stale(self, *, cutoff: datetime, now: datetime) -> list[SessionInstance]:
        stale = [r for r in self.s.sessions.values() if r.is_active and r.last_heartbeat_at < cutoff]
        for row in stale:
            self.s.sessions[row.id] = replace(row, is_active=False, updated_at=now)
        return [self.s.sessions[r.id] for r in stale]

    async def active_pairs(self) -> set[tuple[str, str]]:
        return {(r.user_id, r.agent_name) for r in self.s.sessions.values() if r.is_active}

    async def count_active(self) -> int:
        return sum(1 for r in self.s.sessions.values() if r.is_active)


class FakeEvents:
    def __init__(self, s: FakeStore) -> None:
        self.s = s

    async def add(self, event: NewEvent, *, now: datetime) -> None:
        self.s.events.append(
            AuditEvent(
                len(self.s.events) + 1,
                event.type,
                event.user_id,
                event.agent_name,
                event.chat_id,
                dict(event.data),
                now,
            )
        )

    async def list(
        self, *, type: str | None, user_id: str | None, limit: int, before: int | None
    ) -> list[AuditEvent]:
        rows = [
            e
            for e in reversed(self.s.events)
            if type in (None, e.type) and user_id in (None, e.user_id) and (before is None or e.id < before)
        ]
        return rows[:limit]

    async def list_after(self, event_id: int, *, limit: int) -> list[AuditEvent]:
        return [e for e in self.s.events if e.id > event_id][:limit]


class FakeMemories:
    def __init__(self, s: FakeStore) -> None:
        self.s = s

    async def add(self, user_id: str, agent_name: str, content: str, *, now: datetime) -> Memory:
        next_id = max((m.id for m in self.s.memories), default=0) + 1
        memory = Memory(next_id, user_id, agent_name, content, now)
        self.s.memories.append(memory)
        return memory

    async def count(self, user_id: str, agent_name: str) -> int:
        return sum(1 for m in self.s.memories if (m.user_id, m.agent_name) == (user_id, agent_name))

    async def search(
        self, user_id: str, agent_name: str, *, keywords: Sequence[str], limit: int
    ) -> list[Memory]:
        rows = [
            m
            for m in reversed(self.s.memories)
            if (m.user_id, m.agent_name) == (user_id, agent_name)
            and (not keywords or any(k.lower() in m.content.lower() for k in keywords))
        ]
        return rows[:limit]

    async def list(
        self,
        user_id: str,
        *,
        agent_name: str | None,
        limit: int,
        before: int | None = None,
        words: Sequence[str] = (),
    ) -> list[Memory]:
        mine = (m for m in reversed(self.s.memories) if m.user_id == user_id)
        rows = [
            m
            for m in mine
            if agent_name in (None, m.agent_name)
            and (before is None or m.id < before)
            and all(w.lower() in m.content.lower() for w in words)
        ]
        return rows[:limit]

    async def delete(self, user_id: str, memory_id: int) -> Memory | None:
        found = next((m for m in self.s.memories if m.id == memory_id and m.user_id == user_id), None)
        if found is not None:
            self.s.memories.remove(found)
        return found

    async def delete_all(self, user_id: str, agent_name: str) -> int:
        kept = [m for m in self.s.memories if (m.user_id, m.agent_name) != (user_id, agent_name)]
        deleted = len(self.s.memories) - len(kept)
        self.s.memories = kept
        return deleted


ACTIVE = ("queued", "running", "requires_action")
HOLDING = ("running", "requires_action")
"""A run waiting for the user's approval holds its chat as a running one does."""


class FakeRuns:
    """``RunRepository`` on the fake store: one running run per chat, the oldest queued starts next."""

    def __init__(self, s: FakeStore) -> None:
        self.s = s

    async def add(self, run: Run, *, owner: str | None = None, lease_until: datetime | None = None) -> bool:
        key = run.idempotency_key
        if key is not None and any(
            r.user_id == run.user_id and r.idempotency_key == key for r in self.s.runs.values()
        ):
            return False
        self.s.runs[run.id] = run
        if owner is not None and lease_until is not None:
            self.s.leases[run.id] = (owner, lease_until)
        return True

    async def set_branch(
        self, user_id: str, run_id: str, *, edit_of: int | None, regenerate: int | None
    ) -> None:
        run = self.s.runs.get(run_id)
        if run is not None and run.user_id == user_id:
            self.s.runs[run_id] = replace(run, edit_of=edit_of, regenerate=regenerate)

    async def add_stateless(
        self, run: Run, *, owner: str, lease_until: datetime
    ) -> tuple[bool, ConfigVersions | None]:
        if not await self.add(run, owner=owner, lease_until=lease_until):
            return False, None
        return True, await FakeAgents(self.s).versions(run.agent_name, run.user_id)

    async def get(self, user_id: str, run_id: str) -> Run | None:
        run = self.s.runs.get(run_id)
        return run if run is not None and run.user_id == user_id else None

    async def by_idempotency_key(self, user_id: str, key: str) -> Run | None:
        return next(
            (r for r in self.s.runs.values() if r.user_id == user_id and r.idempotency_key == key), None
        )

    async def delete_ended(self, user_id: str, run_id: str) -> bool:
        run = await self.get(user_id, run_id)
        if run is None or not run.ended:
            return False
        del self.s.runs[run_id]
        return True

    async def forget_idempotency_key(self, user_id: str, key: str) -> None:
        run = await self.by_idempotency_key(user_id, key)
        if run is not None:
            self.s.runs[run.id] = replace(run, idempotency_key=None)

    async def list(
        self,
        user_id: str,
        chat_id: str,
        *,
        status: str | None,
        limit: int,
        before: tuple[datetime, str] | None,
    ) -> list[Run]:
        rows = [
            r
            for r in self.s.runs.values()
            if r.user_id == user_id
            and r.chat_id == chat_id
            and (status is None or r.status == status)
            and (before is None or (r.created_at, r.id) < before)
        ]
        return sorted(rows, key=lambda r: (r.created_at, r.id), reverse=True)[:limit]

    async def of_turns(
        self, user_id: str, chat_id: str, *, turns: Sequence[int], answering: Sequence[int]
    ) -> list[TurnRun]:
        return [
            TurnRun(self.s.run_turns.get(r.id), replace(r, result=None))
            for r in self.s.runs.values()
            if (r.user_id, r.chat_id) == (user_id, chat_id)
            and (self.s.run_turns.get(r.id) in turns or r.regenerate in answering)
        ]

    async def active(self, user_id: str, chat_id: str) -> list[Run]:
        rows = [
            r
            for r in self.s.runs.values()
            if r.user_id == user_id and r.chat_id == chat_id and r.status in ACTIVE
        ]
        return sorted(rows, key=lambda r: (r.created_at, r.id))

    async def count_active(self, user_id: str) -> int:
        return sum(1 for r in self.s.runs.values() if r.user_id == user_id and r.status in ACTIVE)

    async def claim_next(
        self, user_id: str, chat_id: str, *, owner: str, now: datetime, lease_until: datetime
    ) -> Run | None:
        active = await self.active(user_id, chat_id)
        if not active or any(r.status in HOLDING for r in active):
            return None
        claimed = replace(active[0], status="running", started_at=now)
        self.s.runs[claimed.id] = claimed
        self.s.leases[claimed.id] = (owner, lease_until)
        return claimed

    async def steering(self, user_id: str, run_id: str) -> list[Run]:
        rows = [
            r
            for r in self.s.runs.values()
            if r.user_id == user_id and r.steers == run_id and r.status == "queued"
        ]
        return sorted(rows, key=lambda r: (r.created_at, r.id))

    async def request_cancel(self, user_id: str, run_id: str) -> None:
        run = await self.get(user_id, run_id)
        if run is not None and run.status == "running":
            self.s.cancel_requested.add(run_id)

    async def finish(self, user_id: str, outcome: RunOutcome, *, now: datetime, fenced: bool = True) -> bool:
        run = await self.get(user_id, outcome.run_id)
        if run is None:
            return False
        held = run.status == "running" and self.s.leases.get(run.id, ("", now))[0] == outcome.owner
        if not (held if fenced else run.status in ("queued", "requires_action")):
            return False
        self.s.runs[run.id] = replace(
            run,
            status=outcome.status,
            finished_at=now,
            model=outcome.model,
            usage=outcome.usage,
            error=outcome.error,
            result=outcome.result,
        )
        self.s.leases.pop(run.id, None)
        return True

    async def renew(
        self, owner: str, run_ids: Sequence[str], *, lease_until: datetime
    ) -> list[tuple[str, bool]]:
        held = []
        for run_id in run_ids:
            run = self.s.runs.get(run_id)
            if run is not None and run.status == "running" and self.s.leases.get(run_id, ("",))[0] == owner:
                self.s.leases[run_id] = (owner, lease_until)
                held.append((run_id, run_id in self.s.cancel_requested))
        return held

    async def expire(self, *, now: datetime, limit: int = 100) -> list[Run]:
        ended = []
        for run_id, (_owner, until) in list(self.s.leases.items()):
            run = self.s.runs[run_id]
            if run.status == "running" and until < now and len(ended) < limit:
                error = RunError("server_restarted", "the server running this run stopped before it ended")
                self.s.runs[run_id] = replace(run, status="interrupted", finished_at=now, error=error)
                del self.s.leases[run_id]
                ended.append(self.s.runs[run_id])
        return ended

    async def startable(self, *, limit: int = 100) -> list[tuple[str, str]]:
        running = {(r.user_id, r.chat_id) for r in self.s.runs.values() if r.status in HOLDING}
        queued = {
            (r.user_id, r.chat_id)
            for r in self.s.runs.values()
            if r.status == "queued" and r.chat_id is not None and (r.user_id, r.chat_id) not in running
        }
        return sorted(queued)[:limit]


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


class FakeUserData:
    """Rows as their dataclasses' fields, JSON values like the SQL repository's."""

    def __init__(self, s: FakeStore) -> None:
        self.s = s

    def _section(self, section: str) -> Sequence[Any]:
        s = self.s
        rows: dict[str, Sequence[Any]] = {
            "chats": list(s.chats.values()),
            "messages": s.messages,
            "memories": s.memories,
            "customizations": list(s.customizations.values()),
            "sessions": list(s.sessions.values()),
            "runs": list(s.runs.values()),
            "events": s.events,
            "usage": s.metering.ledger,
        }
        return rows[section]

    def _owner(self, row: Any) -> str | None:
        # A message names no owner here: its chat's.
        if isinstance(row, Message):
            return self.s.message_owners.get(row.id)
        return str(row.user_id) if row.user_id is not None else None

    async def export_page(
        self, user_id: str, section: str, *, after: Any | None, limit: int, chat_id: str | None = None
    ) -> list[dict[str, Any]]:
        rows = [
            {key: _jsonable(value) for key, value in asdict(row).items()}
            for row in self._section(section)
            if self._owner(row) == user_id and (chat_id is None or row.chat_id == chat_id)
        ]
        rows = sorted((row for row in rows if after is None or row["id"] > after), key=lambda row: row["id"])
        return rows[:limit]

    async def active_run_ids(self, user_id: str) -> list[str]:
        runs = self.s.runs.values()
        return sorted(r.id for r in runs if r.user_id == user_id and r.status in ("queued", "running"))

    async def erase(self, user_id: str) -> dict[str, int]:
        s, mine = self.s, (lambda row: self._owner(row) == user_id)
        counts = {
            "chats": sum(chat.user_id == user_id for chat in s.chats.values()),
            "messages": sum(map(mine, s.messages)),
            "memories": sum(map(mine, s.memories)),
            "customizations": sum(map(mine, s.customizations.values())),
            "sessions": sum(map(mine, s.sessions.values())),
            "runs": sum(map(mine, s.runs.values())),
            "api_keys": sum(key.user_id == user_id for key, _ in s.keys.values()),
            "events": sum(e.user_id == user_id for e in s.events),
            "usage": sum(row.user_id == user_id for row in s.metering.ledger),
            "budgets": sum(b.user_id == user_id for b in s.metering.budgets.values()),
        }
        s.metering.ledger = [row for row in s.metering.ledger if row.user_id != user_id]
        own = {b.id for b in s.metering.budgets.values() if b.user_id == user_id}
        s.metering.budgets = {k: b for k, b in s.metering.budgets.items() if k not in own}
        s.metering.counters = {
            k: spent for k, spent in s.metering.counters.items() if k[0] not in own and k[1] != user_id
        }
        s.messages = [m for m in s.messages if not mine(m)]
        s.memories = [m for m in s.memories if not mine(m)]
        s.events = [e for e in s.events if e.user_id != user_id]
        for table in (s.chats, s.customizations, s.sessions, s.runs):
            for key in [k for k, row in table.items() if row.user_id == user_id]:
                del table[key]
        s.keys = {k: v for k, v in s.keys.items() if v[0].user_id != user_id}
        s.users.pop(user_id, None)
        return counts


def _before(value: datetime | None, cutoff: datetime | None) -> bool:
    return cutoff is not None and value is not None and value < cutoff


class FakeRetention:
    """The SQL purge's order and rules, over the store: a chat goes once nothing is left under it."""

    def __init__(self, s: FakeStore) -> None:
        self.s = s

    async def purge(self, cutoffs: RetentionCutoffs, *, limit: int) -> dict[str, int]:
        s = self.s
        expired = {c for c, chat in s.chats.items() if _before(chat.updated_at, cutoffs.chats)}
        budget = [limit]

        def take(ids: list[Any]) -> set[Any]:
            chosen = set(ids[: max(budget[0], 0)])
            budget[0] -= len(chosen)
            return chosen

        messages = take([m.id for m in s.messages if (s.message_owners[m.id], m.chat_id) in expired])
        s.messages = [m for m in s.messages if m.id not in messages]
        runs = take(
            [
                r.id
                for r in s.runs.values()
                if r.ended and ((r.user_id, r.chat_id) in expired or _before(r.finished_at, cutoffs.runs))
            ]
        )
        sessions = take(
            [
                i.id
                for i in s.sessions.values()
                if not i.is_active
                and ((i.user_id, i.chat_id) in expired or _before(i.updated_at, cutoffs.sessions))
            ]
        )
        for table, chosen in ((s.runs, runs), (s.sessions, sessions)):
            for key in chosen:
                del table[key]
        held = {(s.message_owners[m.id], m.chat_id) for m in s.messages}
        held |= {(r.user_id, r.chat_id) for r in s.runs.values()}
        held |= {(i.user_id, i.chat_id) for i in s.sessions.values()}
        chats = take([c for c in expired if c not in held])
        for key in chats:
            del s.chats[key]
        events = take([e.id for e in s.events if _before(e.created_at, cutoffs.events)])
        s.events = [e for e in s.events if e.id not in events]
        return {
            "messages": len(messages),
            "runs": len(runs),
            "sessions": len(sessions),
            "chats": len(chats),
            "events": len(events),
        }


class FakeSteps:
    """``StepRepository`` on the fake store (steps are the store's own, never shared)."""

    def __init__(self, s: FakeStore) -> None:
        self.s = s

    async def add(self, user_id: str, steps: Sequence[RunStep]) -> None:
        self.s.steps.extend(steps)

    async def finish(
        self, user_id: str, run_id: str, seq: int, *, status: str, payload: Any, now: datetime | None
    ) -> None:
        self._put(run_id, seq, status=status, payload=payload, finished_at=now)

    async def list(self, user_id: str, run_id: str) -> list[RunStep]:
        return sorted((x for x in self.s.steps if x.run_id == run_id), key=lambda x: x.seq)

    async def decide(
        self,
        user_id: str,
        run_id: str,
        tool_call_id: str,
        *,
        status: str,
        args: Any,
        reason: str | None,
        now: datetime,
    ) -> bool:
        for x in self.s.steps:
            if x.run_id == run_id and x.tool_call_id == tool_call_id and x.status == "pending":
                changes: dict[str, Any] = {"status": status, "reason": reason, "decided_at": now}
                if args is not None:
                    changes["args"] = args
                self._put(run_id, x.seq, **changes)
                return True
        return False

    async def overdue(self, *, before: datetime, limit: int = 100) -> list[tuple[str, str]]:
        paused = {r.id for r in self.s.runs.values() if r.status == "requires_action"}
        runs = {x.run_id for x in self.s.steps if x.status == "pending" and x.started_at < before} & paused
        return [(self.s.runs[r].user_id, r) for r in sorted(runs)][:limit]

    def _put(self, run_id: str, seq: int, **changes: Any) -> None:
        self.s.steps = [
            replace(x, **changes) if (x.run_id, x.seq) == (run_id, seq) else x for x in self.s.steps
        ]


class FakePauses:
    def __init__(self, s: FakeStore) -> None:
        self.s = s

    async def pause(self, user_id: str, run_id: str, *, owner: str, result: dict[str, Any]) -> bool:
        run = self.s.runs.get(run_id)
        if run is None or run.status != "running" or self.s.leases.get(run_id, ("",))[0] != owner:
            return False
        self.s.runs[run_id] = replace(run, status="requires_action", result=result)
        self.s.leases.pop(run_id, None)
        return True

    async def take_up(
        self, user_id: str, run_id: str, *, status: str, owner: str, lease_until: datetime
    ) -> Run | None:
        run = self.s.runs.get(run_id)
        if run is None or run.status != status:
            return None
        taken = replace(run, status="running", result=None, error=None, finished_at=None)
        self.s.runs[run_id] = taken
        self.s.leases[run_id] = (owner, lease_until)
        return taken


class FakeUnitOfWork:
    """Works on a copy of the store and publishes it on commit, so rollback is real."""

    def __init__(self, store: FakeStore) -> None:
        self._store = store

    async def __aenter__(self) -> Self:
        self._work = replace(
            self._store,
            users=dict(self._store.users),
            keys=dict(self._store.keys),
            agents=dict(self._store.agents),
            chats=dict(self._store.chats),
            messages=list(self._store.messages),
            message_owners=dict(self._store.message_owners),
            customizations=dict(self._store.customizations),
            sessions=dict(self._store.sessions),
            events=list(self._store.events),
            memories=list(self._store.memories),
            runs=dict(self._store.runs),
            leases=dict(self._store.leases),
            cancel_requested=set(self._store.cancel_requested),
            versions=dict(self._store.versions),
            metering=self._store.metering.copy(),
            steps=list(self._store.steps),
        )
        w = self._work
        self.users, self.api_keys, self.agents = FakeUsers(w), FakeApiKeys(w), FakeAgents(w)
        self.chats, self.messages = FakeChats(w), FakeMessages(w)
        self.customizations, self.sessions, self.events = (
            FakeCustomizations(w),
            FakeSessions(w),
            FakeEvents(w),
        )
        self.memories = FakeMemories(w)
        self.runs = FakeRuns(w)
        self.search = FakeSearch(w)
        self.user_data = FakeUserData(w)
        self.retention = FakeRetention(w)
        self.usage, self.budgets = FakeUsage(w), FakeBudgets(w)
        self.steps, self.pauses = FakeSteps(w), FakePauses(w)
        self.turns = ComposedTurnRepository(
            self.chats, self.messages, self.events, self.runs, self.agents, self.usage
        )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    async def commit(self) -> None:
        names = (
            "users",
            "keys",
            "agents",
            "chats",
            "messages",
            "message_owners",
            "customizations",
            "sessions",
        )
        names = (*names, "events")
        for name in (
            *names,
            "memories",
            "runs",
            "leases",
            "cancel_requested",
            "versions",
            "metering",
            "steps",
        ):
            setattr(self._store, name, getattr(self._work, name))
        self._store.commits += 1


class FakeUnitOfWorkFactory:
    def __init__(self, store: FakeStore | None = None) -> None:
        self.store = store or FakeStore()
        self.user_ids: list[str | None] = []

    def __call__(self, *, user_id: str | None = None) -> FakeUnitOfWork:
        self.user_ids.append(user_id)
        return FakeUnitOfWork(self.store)


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        from datetime import timedelta

        self.current += timedelta(seconds=seconds)


class FakeMaintenanceGate:
    """The SQL gate's contract on the fakes: a job never overlaps itself and runs once per ``min_gap``."""

    def __init__(self, uow: FakeUnitOfWorkFactory) -> None:
        self._uow = uow
        self._running: set[str] = set()

    async def run_exclusive(
        self, job: str, work: MaintenanceWork, *, now: datetime, min_gap: timedelta
    ) -> dict[str, Any] | None:
        if job in self._running:
            return None
        self._running.add(job)
        try:
            async with self._uow() as uow:
                last = await uow.events.list(type=f"{job}.completed", user_id=None, limit=1, before=None)
                if last and now - last[0].created_at < min_gap:
                    return None
                data = await work(uow)
                await uow.events.add(NewEvent(f"{job}.completed", data=data), now=now)
                await uow.commit()
            return data
        finally:
            self._running.discard(job)


class FakeSleeper:
    """Sleeps on a ``FakeClock``: ``advance`` moves the clock and wakes each sleeper at its time."""

    MAX_WAKES = 1000

    def __init__(self, clock: FakeClock, *, settle_seconds: float = 5.0) -> None:
        self.clock = clock
        self.settle_seconds = settle_seconds
        self.sleeping: list[tuple[datetime, asyncio.Future[None]]] = []
        self._changed = asyncio.Condition()

    async def sleep(self, seconds: float) -> None:
        entry = (self.clock.now() + timedelta(seconds=seconds), asyncio.get_running_loop().create_future())
        self.sleeping.append(entry)
        async with self._changed:
            self._changed.notify_all()
        try:
            await entry[1]
        finally:
            if entry in self.sleeping:
                self.sleeping.remove(entry)

    async def settle(self, count: int) -> None:
        """Wait (in real time, bounded) until ``count`` sleepers are asleep."""
        async with asyncio.timeout(self.settle_seconds), self._changed:
            await self._changed.wait_for(lambda: len(self.sleeping) >= count)

    async def advance(self, seconds: float, *, settle: bool = True) -> None:
        """Move the clock, waking due sleepers in time order; after each wake, wait until they sleep
        again. ``settle=False`` wakes the first due sleepers only and returns at once (the clock
        stays at their time): for a cycle that will not finish soon."""
        target = self.clock.now() + timedelta(seconds=seconds)
        for _ in range(self.MAX_WAKES):
            due = [when for when, _ in self.sleeping if when <= target]
            if not due:
                self.clock.current = max(self.clock.current, target)
                return
            moment = min(due)
            self.clock.current = max(self.clock.current, moment)
            asleep = len(self.sleeping)
            for entry in [e for e in self.sleeping if e[0] <= moment]:
                self.sleeping.remove(entry)
                entry[1].set_result(None)
            if not settle:
                return
            await self.settle(asleep)
        raise AssertionError(f"sleepers still due after {self.MAX_WAKES} wakes")
