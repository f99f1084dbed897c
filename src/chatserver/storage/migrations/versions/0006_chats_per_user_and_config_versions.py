"""Chat ids per user, and configuration versions every turn reads.

Revision ID: 0006
Revises: 0005
Create Date: 2025-01-06

A chat is named by (user_id, id): its primary key, and the foreign key of every row under it
(messages, sessions, runs), so two users may both have a chat ``my-first-chat`` and neither learns
of the other's. The indexes that served one chat's rows lead with the owner, so one user's chat
never reads another's rows of the same name.

``agents.config_version`` and ``users.customizations_version`` change (a fresh random stamp) with
every write of an agent and of a user's customizations. ``chatserver_open_turn`` returns both with
the chat, so a replica compares them with those its cached agent was built at, in the statement it
runs anyway: a change reaches every replica's next turn even when a cache invalidation was lost.

``chatserver_start_run`` looks up the chat's runs by owner too (the partial unique index of the
running run is per (user_id, chat_id) now). ``chatserver_close_run`` and the row-level security
policies already named the owner in every chat lookup (the policies compare each row's user_id
only) and are unchanged.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SET_CONTEXT = "set_config('app.user_id', p_user_id, true), set_config('app.system', 'off', true)"

_CHILDREN = ("chat_messages", "chat_session_instances", "runs")
"""Every table naming a chat by a foreign key."""

# (table, old name, new name, new columns, partial): the indexes that find one chat's rows.
_INDEXES: list[tuple[str, str, str, list[str], bool]] = [
    ("chat_messages", "ix_chat_messages_chat_id_turn_id", "ix_chat_messages_user_id_chat_id_turn_id",
     ["user_id", "chat_id", "turn", "id"], False),
    ("chat_messages", "ix_chat_messages_chat_id_id", "ix_chat_messages_user_id_chat_id_id",
     ["user_id", "chat_id", "id"], False),
    ("runs", "ix_runs_running_chat", "ix_runs_running_chat", ["user_id", "chat_id"], True),
    ("runs", "ix_runs_chat_id_status_created_at", "ix_runs_user_id_chat_id_status_created_at",
     ["user_id", "chat_id", "status", "created_at"], False),
]  # fmt: skip

_OPEN_TURN_SIGNATURE = "text, text, text, text, timestamptz, text, integer, integer"
_START_RUN_SIGNATURE = "text, text, text, text, text, timestamptz, text, text, text, text, timestamptz"

# As in 0004, with the two versions on every row (constant: one lookup by primary key each).
_OPEN_TURN = f"""
CREATE FUNCTION chatserver_open_turn(
    p_chat_id text, p_user_id text, p_agent_name text, p_title text, p_now timestamptz,
    p_message text, p_turns integer, p_limit integer
) RETURNS TABLE (
    chat_agent_name text, chat_title text, chat_turn_count integer, chat_created_at timestamptz,
    chat_updated_at timestamptz, message_id bigint, message_turn integer, message_role text,
    message_content text, message_tool_calls jsonb, message_tool_call_id text, message_tool_name text,
    message_created_at timestamptz, agent_version text, customizations_version text
) LANGUAGE plpgsql VOLATILE AS $body$
#variable_conflict use_column
BEGIN
PERFORM {_SET_CONTEXT};
RETURN QUERY
WITH claimed AS (
    UPDATE chats
    SET turn_count = chats.turn_count + 1, title = coalesce(chats.title, p_title), updated_at = p_now
    WHERE chats.user_id = p_user_id AND chats.id = p_chat_id AND chats.agent_name = p_agent_name
    RETURNING chats.agent_name, chats.title, chats.turn_count, chats.created_at, chats.updated_at,
              chats.turn_count - p_turns AS first_turn
), added AS (
    INSERT INTO chat_messages (chat_id, user_id, turn, role, content, created_at)
    SELECT p_chat_id, p_user_id, claimed.turn_count, 'user', p_message, p_now FROM claimed
), versions AS (
    SELECT (SELECT a.config_version FROM agents AS a WHERE a.name = p_agent_name)::text AS agent,
           (SELECT u.customizations_version FROM users AS u WHERE u.id = p_user_id)::text AS mine
)
SELECT c.agent_name::text, c.title::text, c.turn_count, c.created_at, c.updated_at,
       w.id, w.turn, w.role::text, w.content, w.tool_calls, w.tool_call_id::text, w.tool_name::text,
       w.created_at, v.agent, v.mine
FROM claimed AS c
CROSS JOIN versions AS v
LEFT JOIN LATERAL (
    SELECT m.id, m.turn, m.role, m.content, m.tool_calls, m.tool_call_id, m.tool_name, m.created_at
    FROM chat_messages AS m
    WHERE m.user_id = p_user_id AND m.chat_id = p_chat_id
      AND m.turn >= c.first_turn AND m.turn < c.turn_count
    ORDER BY m.turn DESC, m.id DESC
    LIMIT p_limit
) AS w ON true
UNION ALL
SELECT o.agent_name::text, o.title::text, o.turn_count, o.created_at, o.updated_at,
       NULL::bigint, NULL::integer, NULL::text, NULL::text, NULL::jsonb, NULL::text, NULL::text,
       NULL::timestamptz, NULL::text, NULL::text
FROM chats AS o
WHERE o.user_id = p_user_id AND o.id = p_chat_id AND o.agent_name <> p_agent_name;
END
$body$
"""


def _start_run(scoped: bool) -> str:
    """``chatserver_start_run`` of 0005; ``scoped``: the chat's runs are found by owner and id."""
    mine = "r.user_id = p_user_id AND " if scoped else ""
    queued = "q.user_id = p_user_id AND " if scoped else ""
    return f"""
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
    SELECT r.id INTO v_running FROM runs AS r
    WHERE {mine}r.chat_id = p_chat_id AND r.status = 'running';
    v_active := v_running IS NOT NULL OR EXISTS (
        SELECT 1 FROM runs AS r WHERE {mine}r.chat_id = p_chat_id AND r.status = 'queued');
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
        WHERE id = (SELECT q.id FROM runs AS q WHERE {queued}q.chat_id = p_chat_id AND q.status = 'queued'
                    ORDER BY q.created_at, q.id LIMIT 1)
          AND status = 'queued'
          AND NOT EXISTS (SELECT 1 FROM runs AS r WHERE {mine}r.chat_id = p_chat_id AND r.status = 'running')
        RETURNING id INTO v_claimed;
    EXCEPTION WHEN unique_violation THEN
        v_claimed := NULL;
    END;
    RETURN QUERY SELECT 'accepted'::text, v_claimed, v_running, NULL::text;
END
$body$
"""


def _is_postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _as_system() -> None:
    """Row-level security is forced on the schema's owner too: the data fixes below see every row."""
    if _is_postgresql():
        op.execute("SELECT set_config('app.system', 'on', true)")


def _drop_strays() -> None:
    """Rows naming a chat their owner does not have (no path wrote them, but the new keys would
    refuse them): nobody could reach them, so they go."""
    for table in _CHILDREN:
        op.execute(
            f"DELETE FROM {table} WHERE chat_id IS NOT NULL AND NOT EXISTS ("
            f"SELECT 1 FROM chats WHERE chats.id = {table}.chat_id AND chats.user_id = {table}.user_id)"
        )


def _rekey_chats(*, per_user: bool) -> None:
    """The chats' primary key becomes (user_id, id) (``per_user``) or back (id), and so does every
    child's foreign key. PostgreSQL refuses to drop a key others refer to: theirs go first."""
    old, new = ("chat_id", "user_id") if per_user else ("user_id", "chat_id")
    key = ["user_id", "id"] if per_user else ["id"]
    columns = ["user_id", "chat_id"] if per_user else ["chat_id"]
    if _is_postgresql():
        for table in _CHILDREN:
            op.drop_constraint(f"fk_{table}_{old}_chats", table, type_="foreignkey")
    with op.batch_alter_table("chats") as batch:
        batch.drop_constraint("pk_chats", type_="primary")
        batch.create_primary_key("pk_chats", key)
    for table in _CHILDREN:
        with op.batch_alter_table(table) as batch:
            if not _is_postgresql():
                batch.drop_constraint(f"fk_{table}_{old}_chats", type_="foreignkey")
            batch.create_foreign_key(f"fk_{table}_{new}_chats", "chats", columns, key, ondelete="CASCADE")


def _drop_indexes(*, forward: bool) -> None:
    """Before the tables are rebuilt (SQLite): a rebuild may not keep a partial index's condition."""
    for table, old, new, _columns, _partial in _INDEXES:
        op.drop_index(old if forward else new, table_name=table)


def _create_indexes(*, forward: bool) -> None:
    running = sa.text("status = 'running'")
    for table, old, new, columns, partial in _INDEXES:
        where = running if partial else None
        name, indexed = (new, columns) if forward else (old, columns[1:])
        op.create_index(name, table, indexed, unique=partial, postgresql_where=where, sqlite_where=where)


def _add_versions() -> None:
    for table, column in (("agents", "config_version"), ("users", "customizations_version")):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column(column, sa.String(32), nullable=False, server_default=sa.text("'0'")))


def upgrade() -> None:
    _as_system()
    _drop_strays()
    _drop_indexes(forward=True)
    _rekey_chats(per_user=True)
    _create_indexes(forward=True)
    _add_versions()
    if _is_postgresql():
        op.execute(f"DROP FUNCTION chatserver_open_turn({_OPEN_TURN_SIGNATURE})")
        op.execute(_OPEN_TURN)
        op.execute(f"DROP FUNCTION chatserver_start_run({_START_RUN_SIGNATURE})")
        op.execute(_start_run(scoped=True))


def downgrade() -> None:
    """Back to global chat ids: fails when two users have chats of the same id (nothing to pick)."""
    if _is_postgresql():
        op.execute(f"DROP FUNCTION chatserver_start_run({_START_RUN_SIGNATURE})")
        op.execute(_start_run(scoped=False))
        op.execute(f"DROP FUNCTION chatserver_open_turn({_OPEN_TURN_SIGNATURE})")
        op.execute(_revision_0004()._OPEN_TURN)
    for table, column in (("users", "customizations_version"), ("agents", "config_version")):
        with op.batch_alter_table(table) as batch:
            batch.drop_column(column)
    _drop_indexes(forward=False)
    _rekey_chats(per_user=False)
    _create_indexes(forward=False)


def _revision_0004() -> ModuleType:
    """Revision files are not a package: 0004's function text is loaded from its file."""
    path = Path(__file__).with_name("0004_turn_functions.py")
    spec = importlib.util.spec_from_file_location("chatserver_revision_0004", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
