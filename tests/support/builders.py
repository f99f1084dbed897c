"""Domain objects with sensible defaults, so each test spells out only what it is about."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from chatserver.domain import ApiKey, Chat, PromptCustomization, SessionInstance, User

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """``NOW`` shifted by some seconds: tests move time by hand instead of sleeping."""
    return NOW + timedelta(seconds=seconds)


def new_id() -> str:
    return str(uuid.uuid4())


def user(user_id: str = "alice", *, name: str | None = None, is_admin: bool = False) -> User:
    return User(id=user_id, name=name, is_admin=is_admin, created_at=NOW)


def api_key(user_id: str = "alice", *, key_id: str | None = None, prefix: str = "cs_abc") -> ApiKey:
    return ApiKey(id=key_id or new_id(), user_id=user_id, prefix=prefix, created_at=NOW)


def chat(chat_id: str = "chat-1", user_id: str = "alice", *, updated_at: datetime = NOW, **kw: Any) -> Chat:
    fields: dict[str, Any] = {"agent_name": "helper", "title": None, "turn_count": 0, "created_at": NOW}
    return Chat(id=chat_id, user_id=user_id, updated_at=updated_at, **(fields | kw))


def customization(user_id: str = "alice", **kw: Any) -> PromptCustomization:
    fields: dict[str, Any] = {
        "id": new_id(),
        "agent_name": "helper",
        "customization_type": "instruction_set",
        "content": {"instructions": ["be brief"]},
        "is_active": True,
        "priority": 0,
        "created_at": NOW,
        "updated_at": NOW,
    }
    return PromptCustomization(user_id=user_id, **(fields | kw))


def session(user_id: str = "alice", chat_id: str = "chat-1", **kw: Any) -> SessionInstance:
    fields: dict[str, Any] = {
        "id": new_id(),
        "agent_name": "helper",
        "is_active": True,
        "last_heartbeat_at": NOW,
        "created_at": NOW,
        "updated_at": NOW,
    }
    return SessionInstance(user_id=user_id, chat_id=chat_id, **(fields | kw))
