"""A run's end hands its chat on in the same statement (``chatserver_end_run``), and a run's start
counts the user's runs in its own (``chatserver_start_run`` with ``p_max_active``).

Ending a run used to take two round trips and a transaction more: the end (``chatserver_close_run``),
then a claim of the chat's next queued run. ``chatserver_end_run`` does both: it ends the run as
``chatserver_close_run`` does and, only when that was written, starts the chat's oldest queued run
under the same replica's lease (if no other runs), returning it. A start that loses a race for that
run (the partial unique index) starts nothing; whoever won runs it.

``chatserver_start_run`` takes the user's limit of queued and running runs: it waits for the user's
advisory lock (transaction-scoped: released when the statement ends), then counts in a statement of
its own, whose snapshot is taken after the wait, and refuses past the limit (``too_many``), writing
nothing. It used to take a lock statement and a count statement of their own before it, in a
transaction: two round trips and a BEGIN and COMMIT more on every start.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

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


_START_RUN_SIGNATURE = "text, text, text, text, text, timestamptz, text, text, text, text, timestamptz"
_LIMITED_SIGNATURE = f"{_START_RUN_SIGNATURE}, integer, integer, integer"

_LIMIT = """
    IF p_max_active IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(p_lock_space, p_lock_key);
        IF (SELECT count(*) FROM runs AS a
            WHERE a.user_id = p_user_id AND a.status IN ('queued', 'running')) >= p_max_active THEN
            RETURN QUERY SELECT 'too_many'::text, NULL::text, NULL::text, NULL::text;
            RETURN;
        END IF;
    END IF;"""


def _limited_start_run() -> str:
    """0006's ``chatserver_start_run``, refusing a user's run past ``p_max_active`` first."""
    scoped: str = _revision_0006()._start_run(scoped=True)
    limit_params = "p_max_active integer, p_lock_space integer, p_lock_key integer"
    scoped = scoped.replace(
        "p_owner text, p_lease_until timestamptz\n)",
        f"p_owner text, p_lease_until timestamptz,\n    {limit_params}\n)",
    )
    context = "PERFORM set_config('app.user_id', p_user_id, true), set_config('app.system', 'off', true);"
    assert scoped.count(context) == 1 and "p_max_active integer" in scoped
    return scoped.replace(context, context + _LIMIT)


def _revision_0006() -> ModuleType:
    path = Path(__file__).with_name("0006_chats_per_user_and_config_versions.py")
    spec = importlib.util.spec_from_file_location("chatserver_revision_0006", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _is_postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    if _is_postgresql():
        op.execute(_END_RUN)
        op.execute(f"DROP FUNCTION chatserver_start_run({_START_RUN_SIGNATURE})")
        op.execute(_limited_start_run())


def downgrade() -> None:
    if _is_postgresql():
        op.execute(
            "DROP FUNCTION chatserver_end_run(text, text, integer, timestamptz, text[], text[], jsonb[], "
            "text[], text[], boolean[], text, text, text, text, jsonb, text, text, text, text, integer, "
            "integer, integer, text, text, jsonb, text, timestamptz)"
        )
        op.execute(f"DROP FUNCTION chatserver_start_run({_LIMITED_SIGNATURE})")
        op.execute(_revision_0006()._start_run(scoped=True))
