"""Runs: a record per turn, leases that serialize a chat's turns, and partial answers.

Revision ID: 0005
Revises: 0004
Create Date: 2025-01-05

A chat runs one turn at a time because at most one of its runs is ``running`` (a partial unique
index), not because a connection holds a lock: a replica that loses its database connection keeps
its runs until their leases expire, and every write of a run is fenced by its lease holder.
``chatserver_start_run`` stores a new run of a chat and starts the chat's next one if it is free,
and ``chatserver_close_run`` replaces ``chatserver_close_turn``: it ends the run and, only when this
replica still holds it, stores the answer and the audit event; one round trip each.
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


# ``chatserver_start_run``: storage.protocols.TurnRepository.start in one statement. The chat is
# created if new; another user's chat is invisible under row-level security, so it reads as absent.
# Only the chat's oldest queued run may start, so racing replicas update the same row and the
# loser finds it no longer queued; should the partial unique index still refuse one, none starts.
_START_RUN = f"""
CREATE FUNCTION chatserver_start_run(
    p_run_id text, p_user_id text, p_chat_id text, p_agent_name text, p_message text, p_now timestamptz,
    p_idempotency_key text, p_request_hash text, p_policy text, p_owner text, p_lease_until timestamptz
) RETURNS TABLE (outcome text, claimed text, running text, chat_agent text)
LANGUAGE plpgsql VOLATILE AS $body$
DECLARE
    v_agent text;
    v_running text;
    v_active boolean;
    v_claimed text;
BEGIN
    PERFORM {_SET_CONTEXT};
    INSERT INTO chats (id, user_id, agent_name, title, turn_count, created_at, updated_at)
    VALUES (p_chat_id, p_user_id, p_agent_name, NULL, 0, p_now, p_now) ON CONFLICT DO NOTHING;
    SELECT c.agent_name INTO v_agent FROM chats AS c WHERE c.id = p_chat_id AND c.user_id = p_user_id;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'not_found'::text, NULL::text, NULL::text, NULL::text;
        RETURN;
    END IF;
    IF v_agent <> p_agent_name THEN
        RETURN QUERY SELECT 'other_agent'::text, NULL::text, NULL::text, v_agent;
        RETURN;
    END IF;
    SELECT r.id INTO v_running FROM runs AS r WHERE r.chat_id = p_chat_id AND r.status = 'running';
    v_active := v_running IS NOT NULL OR EXISTS (
        SELECT 1 FROM runs AS r WHERE r.chat_id = p_chat_id AND r.status = 'queued');
    IF v_active AND p_policy = 'reject' THEN
        RETURN QUERY SELECT 'busy'::text, NULL::text, NULL::text, NULL::text;
        RETURN;
    END IF;
    INSERT INTO runs (id, user_id, chat_id, agent_name, status, message, created_at, idempotency_key,
                      request_hash, steers)
    VALUES (p_run_id, p_user_id, p_chat_id, p_agent_name, 'queued', p_message, p_now, p_idempotency_key,
            p_request_hash, CASE WHEN p_policy = 'steer' THEN v_running END)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'key_taken'::text, NULL::text, NULL::text, NULL::text;
        RETURN;
    END IF;
    IF p_policy = 'interrupt' AND v_running IS NOT NULL THEN
        UPDATE runs SET cancel_requested = true WHERE id = v_running AND status = 'running';
    END IF;
    BEGIN
        UPDATE runs SET status = 'running', started_at = p_now, lease_owner = p_owner,
                        lease_expires_at = p_lease_until
        WHERE id = (SELECT q.id FROM runs AS q WHERE q.chat_id = p_chat_id AND q.status = 'queued'
                    ORDER BY q.created_at, q.id LIMIT 1)
          AND status = 'queued'
          AND NOT EXISTS (SELECT 1 FROM runs AS r WHERE r.chat_id = p_chat_id AND r.status = 'running')
        RETURNING id INTO v_claimed;
    EXCEPTION WHEN unique_violation THEN
        v_claimed := NULL;
    END;
    RETURN QUERY SELECT 'accepted'::text, v_claimed, v_running, NULL::text;
END
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
        op.execute(_START_RUN)


def downgrade() -> None:
    if _is_postgresql():
        op.execute(
            "DROP FUNCTION chatserver_close_run(text, text, integer, timestamptz, text[], text[], jsonb[], "
            "text[], text[], boolean[], text, text, text, text, jsonb, text, text, text, text, integer, "
            "integer, integer, text, text, jsonb)"
        )
        op.execute(
            "DROP FUNCTION chatserver_start_run(text, text, text, text, text, timestamptz, text, text, text, "
            "text, timestamptz)"
        )
        op.execute("DROP POLICY IF EXISTS runs_owner ON runs")
    op.drop_table("runs")
    with op.batch_alter_table("chat_messages") as batch:
        batch.drop_column("incomplete")
