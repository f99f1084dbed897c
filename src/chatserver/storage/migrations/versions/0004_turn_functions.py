"""A chat turn's two writes as SQL functions (PostgreSQL only): one round trip each.

Revision ID: 0004
Revises: 0003
Create Date: 2025-01-04

``chatserver_open_turn`` claims the next turn of the caller's chat, stores the user's message and
returns the chat with the window before the turn; ``chatserver_close_turn`` stores the answer and
the turn's audit event. Each runs as one statement, so outside a transaction it is its own: no
BEGIN, no separate statement for the row-level security context, no COMMIT. A function runs its
statements in order, so the context is set before the policies are checked; ``set_config(...,
true)`` ends with the statement's transaction, or with the caller's when there is one. The first is
PL/pgSQL: a set-returning SQL function is evaluated lazily, row by row, and PostgreSQL refuses the
foreign key triggers of its insert there ("AfterTriggerSaveEvent() called outside of query").

SECURITY INVOKER (the default): the policies apply to the caller's role as for any other query;
the function only sets the context the unit of work would have set for the same user.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SET_CONTEXT = "set_config('app.user_id', p_user_id, true), set_config('app.system', 'off', true)"

# The window's first turn is computed in the CTE: under row-level security PostgreSQL does not use
# a condition holding arithmetic (which may raise) as an index bound before the policy is checked,
# and the scan would walk the chat's whole history. A chat of another agent is returned unclaimed.
_OPEN_TURN = f"""
CREATE FUNCTION chatserver_open_turn(
    p_chat_id text, p_user_id text, p_agent_name text, p_title text, p_now timestamptz,
    p_message text, p_turns integer, p_limit integer
) RETURNS TABLE (
    chat_agent_name text, chat_title text, chat_turn_count integer, chat_created_at timestamptz,
    chat_updated_at timestamptz, message_id bigint, message_turn integer, message_role text,
    message_content text, message_tool_calls jsonb, message_tool_call_id text, message_tool_name text,
    message_created_at timestamptz
) LANGUAGE plpgsql VOLATILE AS $body$
#variable_conflict use_column
BEGIN
PERFORM {_SET_CONTEXT};
RETURN QUERY
WITH claimed AS (
    UPDATE chats
    SET turn_count = chats.turn_count + 1, title = coalesce(chats.title, p_title), updated_at = p_now
    WHERE chats.id = p_chat_id AND chats.user_id = p_user_id AND chats.agent_name = p_agent_name
    RETURNING chats.agent_name, chats.title, chats.turn_count, chats.created_at, chats.updated_at,
              chats.turn_count - p_turns AS first_turn
), added AS (
    INSERT INTO chat_messages (chat_id, user_id, turn, role, content, created_at)
    SELECT p_chat_id, p_user_id, claimed.turn_count, 'user', p_message, p_now FROM claimed
)
SELECT c.agent_name::text, c.title::text, c.turn_count, c.created_at, c.updated_at,
       w.id, w.turn, w.role::text, w.content, w.tool_calls, w.tool_call_id::text, w.tool_name::text,
       w.created_at
FROM claimed AS c
LEFT JOIN LATERAL (
    SELECT m.id, m.turn, m.role, m.content, m.tool_calls, m.tool_call_id, m.tool_name, m.created_at
    FROM chat_messages AS m
    WHERE m.chat_id = p_chat_id AND m.user_id = p_user_id
      AND m.turn >= c.first_turn AND m.turn < c.turn_count
    ORDER BY m.turn DESC, m.id DESC
    LIMIT p_limit
) AS w ON true
UNION ALL
SELECT o.agent_name::text, o.title::text, o.turn_count, o.created_at, o.updated_at,
       NULL::bigint, NULL::integer, NULL::text, NULL::text, NULL::jsonb, NULL::text, NULL::text,
       NULL::timestamptz
FROM chats AS o
WHERE o.id = p_chat_id AND o.user_id = p_user_id AND o.agent_name <> p_agent_name;
END
$body$
"""

_CLOSE_TURN = f"""
CREATE FUNCTION chatserver_close_turn(
    p_chat_id text, p_user_id text, p_turn integer, p_now timestamptz,
    p_roles text[], p_contents text[], p_tool_calls jsonb[], p_tool_call_ids text[], p_tool_names text[],
    p_event_type text, p_event_user_id text, p_event_agent_name text, p_event_chat_id text,
    p_event_data jsonb
) RETURNS bigint LANGUAGE sql VOLATILE AS $body$
SELECT {_SET_CONTEXT};
WITH owned AS (
    SELECT chats.id FROM chats WHERE chats.id = p_chat_id AND chats.user_id = p_user_id
), added AS (
    INSERT INTO chat_messages
        (chat_id, user_id, turn, role, content, tool_calls, tool_call_id, tool_name, created_at)
    SELECT owned.id, p_user_id, p_turn, m.role, m.content, m.tool_calls, m.tool_call_id, m.tool_name, p_now
    FROM owned,
         unnest(p_roles, p_contents, p_tool_calls, p_tool_call_ids, p_tool_names) WITH ORDINALITY
             AS m(role, content, tool_calls, tool_call_id, tool_name, position)
    ORDER BY m.position
), event AS (
    INSERT INTO audit_events (type, user_id, agent_name, chat_id, data, created_at)
    SELECT p_event_type, p_event_user_id, p_event_agent_name, p_event_chat_id, p_event_data, p_now
    FROM owned
)
SELECT count(*) FROM owned
$body$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_OPEN_TURN)
    op.execute(_CLOSE_TURN)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "DROP FUNCTION chatserver_open_turn(text, text, text, text, timestamptz, text, integer, integer)"
    )
    op.execute(
        "DROP FUNCTION chatserver_close_turn(text, text, integer, timestamptz, text[], text[], jsonb[], "
        "text[], text[], text, text, text, text, jsonb)"
    )
