"""A run's end hands its chat on in the same statement: ``chatserver_end_run``.

Ending a run used to take two round trips and a transaction more: the end (``chatserver_close_run``),
then a claim of the chat's next queued run. ``chatserver_end_run`` does both: it ends the run as
``chatserver_close_run`` does and, only when that was written, starts the chat's oldest queued run
under the same replica's lease (if no other runs), returning it. A start that loses a race for that
run (the partial unique index) starts nothing; whoever won runs it.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CLOSE_ARGS = (
    "p_chat_id, p_user_id, p_turn, p_now, p_roles, p_contents, p_tool_calls, p_tool_call_ids, p_tool_names,"
    " p_incomplete, p_event_type, p_event_user_id, p_event_agent_name, p_event_chat_id, p_event_data,"
    " p_run_id, p_owner, p_status, p_model, p_input_tokens, p_output_tokens, p_requests, p_error_code,"
    " p_error_detail, p_result"
)

_END_RUN = f"""
CREATE FUNCTION chatserver_end_run(
    p_chat_id text, p_user_id text, p_turn integer, p_now timestamptz,
    p_roles text[], p_contents text[], p_tool_calls jsonb[], p_tool_call_ids text[], p_tool_names text[],
    p_incomplete boolean[],
    p_event_type text, p_event_user_id text, p_event_agent_name text, p_event_chat_id text,
    p_event_data jsonb,
    p_run_id text, p_owner text, p_status text, p_model text, p_input_tokens integer,
    p_output_tokens integer, p_requests integer, p_error_code text, p_error_detail text, p_result jsonb,
    p_hand_on text, p_lease_until timestamptz
) RETURNS TABLE (
    written bigint, next_id text, next_agent_name text, next_message text, next_created_at timestamptz,
    next_idempotency_key text, next_request_hash text, next_steers text
) LANGUAGE plpgsql VOLATILE AS $body$
DECLARE
    v_written bigint;
BEGIN
    v_written := chatserver_close_run({_CLOSE_ARGS});
    IF v_written > 0 AND p_hand_on IS NOT NULL THEN
        BEGIN
            RETURN QUERY
            UPDATE runs SET status = 'running', started_at = p_now, lease_owner = p_owner,
                            lease_expires_at = p_lease_until
            WHERE runs.id = (SELECT q.id FROM runs AS q
                             WHERE q.chat_id = p_hand_on AND q.user_id = p_user_id AND q.status = 'queued'
                             ORDER BY q.created_at, q.id LIMIT 1)
              AND runs.status = 'queued'
              AND NOT EXISTS (SELECT 1 FROM runs AS r
                              WHERE r.chat_id = p_hand_on AND r.user_id = p_user_id AND r.status = 'running')
            RETURNING v_written, runs.id::text, runs.agent_name::text, runs.message, runs.created_at,
                      runs.idempotency_key::text, runs.request_hash::text, runs.steers::text;
            IF FOUND THEN
                RETURN;
            END IF;
        EXCEPTION WHEN unique_violation THEN
            NULL;
        END;
    END IF;
    RETURN QUERY SELECT v_written, NULL::text, NULL::text, NULL::text, NULL::timestamptz, NULL::text,
                        NULL::text, NULL::text;
END
$body$
"""


def _is_postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    if _is_postgresql():
        op.execute(_END_RUN)


def downgrade() -> None:
    if _is_postgresql():
        op.execute(
            "DROP FUNCTION chatserver_end_run(text, text, integer, timestamptz, text[], text[], jsonb[], "
            "text[], text[], boolean[], text, text, text, text, jsonb, text, text, text, text, integer, "
            "integer, integer, text, text, jsonb, text, timestamptz)"
        )
