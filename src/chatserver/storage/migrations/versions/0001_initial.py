"""Initial schema: users, API keys, agents, chats, messages, customizations, sessions, audit events.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Written by hand and self-contained: plain SQLAlchemy types only, so later changes to the
application's tables or column types never rewrite history.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _bigid() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _owner(table: str) -> list[sa.schema.SchemaItem]:
    return [
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=f"fk_{table}_user_id_users", ondelete="CASCADE"
        ),
    ]


def _create_users_and_keys() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("name", name="uq_users_name"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(36), nullable=False),
        *_owner("api_keys"),
        sa.Column("prefix", sa.String(32), nullable=False),
        sa.Column("key_hash", sa.String(128), nullable=False),
        _timestamp("created_at"),
        _timestamp("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    )
    op.create_index("ix_api_keys_prefix", "api_keys", ["prefix"])


def _create_agents() -> None:
    op.create_table(
        "agents",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("system_prompt", sa.Text(), nullable=False),
        sa.Column("tools", _json(), nullable=False),
        sa.Column("history_window", sa.Integer(), nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("name", name="pk_agents"),
    )


def _create_chats() -> None:
    op.create_table(
        "chats",
        sa.Column("id", sa.String(128), nullable=False),
        *_owner("chats"),
        sa.Column("agent_name", sa.String(64), nullable=False),
        sa.Column("title", sa.String(200), nullable=True),
        sa.Column("turn_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_chats"),
    )
    op.create_index("ix_chats_user_id_updated_at_id", "chats", ["user_id", "updated_at", "id"])


def _create_messages() -> None:
    op.create_table(
        "chat_messages",
        sa.Column("id", _bigid(), autoincrement=True, nullable=False),
        sa.Column("chat_id", sa.String(128), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("turn", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("tool_calls", _json(), nullable=True),
        sa.Column("tool_call_id", sa.String(255), nullable=True),
        sa.Column("tool_name", sa.String(255), nullable=True),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_chat_messages"),
        sa.ForeignKeyConstraint(
            ["chat_id"], ["chats.id"], name="fk_chat_messages_chat_id_chats", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_chat_messages_chat_id_turn_id", "chat_messages", ["chat_id", "turn", "id"])
    op.create_index("ix_chat_messages_chat_id_id", "chat_messages", ["chat_id", "id"])


def _create_customizations() -> None:
    op.create_table(
        "prompt_customizations",
        sa.Column("id", sa.String(36), nullable=False),
        *_owner("prompt_customizations"),
        sa.Column("agent_name", sa.String(64), nullable=False),
        sa.Column("customization_type", sa.String(64), nullable=False),
        sa.Column("content", _json(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_prompt_customizations"),
        sa.UniqueConstraint(
            "user_id",
            "agent_name",
            "customization_type",
            name="uq_prompt_customizations_user_id_agent_name_customization_type",
        ),
    )
    op.create_index(
        "ix_prompt_customizations_user_id_agent_name_priority",
        "prompt_customizations",
        ["user_id", "agent_name", "priority"],
    )


def _create_sessions() -> None:
    op.create_table(
        "chat_session_instances",
        sa.Column("id", sa.String(36), nullable=False),
        *_owner("chat_session_instances"),
        sa.Column("chat_id", sa.String(128), nullable=False),
        sa.Column("agent_name", sa.String(64), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        _timestamp("last_heartbeat_at"),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_chat_session_instances"),
        sa.ForeignKeyConstraint(
            ["chat_id"], ["chats.id"], name="fk_chat_session_instances_chat_id_chats", ondelete="CASCADE"
        ),
    )
    op.create_index(
        "ix_chat_session_instances_is_active_last_heartbeat_at",
        "chat_session_instances",
        ["is_active", "last_heartbeat_at"],
    )
    op.create_index(
        "ix_chat_session_instances_user_id_agent_name", "chat_session_instances", ["user_id", "agent_name"]
    )


def _create_audit_events() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", _bigid(), autoincrement=True, nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=True),
        sa.Column("agent_name", sa.String(64), nullable=True),
        sa.Column("chat_id", sa.String(128), nullable=True),
        sa.Column("data", _json(), nullable=False),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_audit_events"),
    )
    op.create_index("ix_audit_events_type_id", "audit_events", ["type", "id"])
    op.create_index("ix_audit_events_user_id_id", "audit_events", ["user_id", "id"])


def upgrade() -> None:
    _create_users_and_keys()
    _create_agents()
    _create_chats()
    _create_messages()
    _create_customizations()
    _create_sessions()
    _create_audit_events()


def downgrade() -> None:
    for table in (
        "audit_events",
        "chat_session_instances",
        "prompt_customizations",
        "chat_messages",
        "chats",
        "agents",
        "api_keys",
        "users",
    ):
        op.drop_table(table)
