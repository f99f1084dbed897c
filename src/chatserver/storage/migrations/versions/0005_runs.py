"""Runs: a record per turn, leases that serialize a chat's turns, and partial answers.

Revision ID: 0005
Revises: 0004
Create Date: 2025-01-05

A chat runs one turn at a time because at most one of its runs is ``running`` (a partial unique
index), not because a connection holds a lock: a replica that loses its database connection keeps
its runs until their leases expire, and every write of a run is fenced by its lease holder.
``chatserver_close_run`` replaces ``chatserver_close_turn``: it ends the run and, only when this
replica still holds it, stores the answer and the audit event, in one round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OWNER = "(user_id = current_setting('app.user_id', true) OR current_setting('app.system', true) = 'on')"
_SET_CONTEXT = "set_config('app.user_id', p_user_id, true), set_config('app.system', 'off', true)"

_CLOSE_RUN = f"""
CREATE FUNCTION chatserver_close_run(
    p_chat_id text, p_user_id text, p_turn integer, p_now timestamptz,
    p_roles text[], p_contents text[], p_tool_calls jsonb[], p_tool_call_ids text[], p_tool_names text[],
    p_incomplete boolean[],
    p_event_type text, p_event_user_id text, p_event_agent_name text, p_event_chat_id text,
    p_event_data jsonb,
    p_run_id text, p_owner text, p_status text, p_model text, p_input_tokens integer,
    p_output_tokens integer, p_requests integer, p_error_code text, p_error_detail text, p_result jsonb
) RETURNS bigint LANGUAGE sql VOLATILE AS $body$
SELECT {_SET_CONTEXT};
WITH fenced AS (
    UPDATE runs SET status = p_status, finished_at = p_now, model = p_model,
        input_tokens = p_input_tokens, output_tokens = p_output_tokens, requests = p_requests,
        error_code = p_error_code, error_detail = p_error_detail, result = p_result,
        lease_owner = NULL, lease_expires_at = NULL
    WHERE runs.id = p_run_id AND runs.user_id = p_user_id AND runs.status = 'running'
      AND runs.lease_owner = p_owner
    RETURNING runs.id
), owned AS (
    SELECT chats.id FROM chats, fenced WHERE chats.id = p_chat_id AND chats.user_id = p_user_id
), added AS (
    INSERT INTO chat_messages
        (chat_id, user_id, turn, role, content, tool_calls, tool_call_id, tool_name, incomplete, created_at)
    SELECT owned.id, p_user_id, p_turn, m.role, m.content, m.tool_calls, m.tool_call_id, m.tool_name,
           m.incomplete, p_now
    FROM owned,
         unnest(p_roles, p_contents, p_tool_calls, p_tool_call_ids, p_tool_names, p_incomplete)
             WITH ORDINALITY AS m(role, content, tool_calls, tool_call_id, tool_name, incomplete, position)
    ORDER BY m.position
), event AS (
    INSERT INTO audit_events (type, user_id, agent_name, chat_id, data, created_at)
    SELECT p_event_type, p_event_user_id, p_event_agent_name, p_event_chat_id, p_event_data, p_now
    FROM fenced
)
SELECT count(*) FROM fenced
$body$
"""


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def _is_postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _columns() -> list[sa.Column[Any]]:
    moment = sa.DateTime(timezone=True)

    def count(name: str) -> sa.Column[Any]:
        return sa.Column(name, sa.Integer(), nullable=False, server_default=sa.text("0"))

    return [
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("chat_id", sa.String(128), nullable=True),
        sa.Column("agent_name", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", moment, nullable=False),
        sa.Column("started_at", moment, nullable=True),
        sa.Column("finished_at", moment, nullable=True),
        sa.Column("model", sa.String(255), nullable=True),
        count("input_tokens"),
        count("output_tokens"),
        count("requests"),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("error_detail", sa.Text(), nullable=True),
        sa.Column("result", _json(), nullable=True),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.Column("request_hash", sa.String(64), nullable=True),
        sa.Column("lease_owner", sa.String(255), nullable=True),
        sa.Column("lease_expires_at", moment, nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False, server_default=sa.text("false")),
        sa.Column("steers", sa.String(36), nullable=True),
    ]


def upgrade() -> None:
    with op.batch_alter_table("chat_messages") as batch:
        batch.add_column(sa.Column("incomplete", sa.Boolean(), nullable=True))
    op.create_table(
        "runs",
        *_columns(),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_runs_user_id_users", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["chat_id"], ["chats.id"], name="fk_runs_chat_id_chats", ondelete="CASCADE"),
        sa.UniqueConstraint("user_id", "idempotency_key", name="uq_runs_user_id_idempotency_key"),
    )
    running = sa.text("status = 'running'")
    op.create_index(
        "ix_runs_running_chat",
        "runs",
        ["chat_id"],
        unique=True,
        postgresql_where=running,
        sqlite_where=running,
    )
    op.create_index("ix_runs_chat_id_status_created_at", "runs", ["chat_id", "status", "created_at"])
    op.create_index(
        "ix_runs_user_id_chat_id_created_at_id", "runs", ["user_id", "chat_id", "created_at", "id"]
    )
    op.create_index("ix_runs_status_lease_expires_at", "runs", ["status", "lease_expires_at"])
    if _is_postgresql():
        op.execute("ALTER TABLE runs ENABLE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE runs FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY runs_owner ON runs USING {_OWNER} WITH CHECK {_OWNER}")
        op.execute(_CLOSE_RUN)


def downgrade() -> None:
    if _is_postgresql():
        op.execute(
            "DROP FUNCTION chatserver_close_run(text, text, integer, timestamptz, text[], text[], jsonb[], "
            "text[], text[], boolean[], text, text, text, text, jsonb, text, text, text, text, integer, "
            "integer, integer, text, text, jsonb)"
        )
        op.execute("DROP POLICY IF EXISTS runs_owner ON runs")
    op.drop_table("runs")
    with op.batch_alter_table("chat_messages") as batch:
        batch.drop_column("incomplete")
