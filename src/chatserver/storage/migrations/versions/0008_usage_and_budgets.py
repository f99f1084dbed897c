"""The usage ledger, budgets and their counters, and agents' fallback models.

A run's usage is written by the statement that ends it: on PostgreSQL ``chatserver_end_metered_run``
ends the run as ``chatserver_end_run`` does and, only when that was written, stores one ledger row
per model the run used, so metering costs no round trip. Usage rows are the user's own (row-level
security); budgets and their counters are the administrators' (a counter may be an agent's total).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OWNER = "(user_id = current_setting('app.user_id', true) OR current_setting('app.system', true) = 'on')"

_END_ARGS = (
    "p_chat_id, p_user_id, p_turn, p_now, p_roles, p_contents, p_tool_calls, p_tool_call_ids, p_tool_names,"
    " p_incomplete, p_event_type, p_event_user_id, p_event_agent_name, p_event_chat_id, p_event_data,"
    " p_run_id, p_owner, p_status, p_model, p_input_tokens, p_output_tokens, p_requests, p_error_code,"
    " p_error_detail, p_result, p_hand_on, p_lease_until"
)

_END_METERED_RUN = f"""
CREATE FUNCTION chatserver_end_metered_run(
    p_chat_id text, p_user_id text, p_turn integer, p_now timestamptz,
    p_roles text[], p_contents text[], p_tool_calls jsonb[], p_tool_call_ids text[], p_tool_names text[],
    p_incomplete boolean[],
    p_event_type text, p_event_user_id text, p_event_agent_name text, p_event_chat_id text,
    p_event_data jsonb,
    p_run_id text, p_owner text, p_status text, p_model text, p_input_tokens integer,
    p_output_tokens integer, p_requests integer, p_error_code text, p_error_detail text, p_result jsonb,
    p_hand_on text, p_lease_until timestamptz, p_usage jsonb
) RETURNS TABLE (
    written bigint, next_id text, next_agent_name text, next_message text, next_created_at timestamptz,
    next_idempotency_key text, next_request_hash text, next_steers text
) LANGUAGE plpgsql VOLATILE AS $body$
DECLARE
    v_end record;
BEGIN
    SELECT * INTO v_end FROM chatserver_end_run({_END_ARGS});
    IF v_end.written > 0 AND p_usage IS NOT NULL THEN
        INSERT INTO usage_records (user_id, agent_name, model, run_id, created_at, input_tokens,
                                   output_tokens, requests, cost_usd)
        SELECT p_user_id, p_event_agent_name, u.model, p_run_id, p_now, u.input_tokens, u.output_tokens,
               u.requests, u.cost_usd
        FROM jsonb_to_recordset(p_usage)
             AS u(model text, input_tokens integer, output_tokens integer, requests integer,
                  cost_usd double precision);
    END IF;
    RETURN QUERY SELECT v_end.written, v_end.next_id, v_end.next_agent_name, v_end.next_message,
                        v_end.next_created_at, v_end.next_idempotency_key, v_end.next_request_hash,
                        v_end.next_steers;
END
$body$
"""

_END_METERED_SIGNATURE = (
    "text, text, integer, timestamptz, text[], text[], jsonb[], text[], text[], boolean[], text, text, text,"
    " text, jsonb, text, text, text, text, integer, integer, integer, text, text, jsonb, text, timestamptz,"
    " jsonb"
)


def _is_postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _usage_records() -> None:
    moment = sa.DateTime(timezone=True)
    op.create_table(
        "usage_records",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("agent_name", sa.String(64), nullable=False),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("created_at", moment, nullable=False),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_usage_records"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_usage_records_user_id_users", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_usage_records_user_id_created_at", "usage_records", ["user_id", "created_at"])
    op.create_index("ix_usage_records_created_at", "usage_records", ["created_at"])


def _budgets() -> None:
    op.create_table(
        "budgets",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=True),
        sa.Column("agent_name", sa.String(64), nullable=True),
        sa.Column("period", sa.String(8), nullable=False),
        sa.Column("max_tokens", sa.BigInteger(), nullable=True),
        sa.Column("max_requests", sa.BigInteger(), nullable=True),
        sa.Column("max_cost_usd", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_budgets"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_budgets_user_id_users", ondelete="CASCADE"
        ),
    )
    zero = sa.text("0")
    op.create_table(
        "budget_counters",
        sa.Column("budget_id", sa.String(36), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("tokens", sa.BigInteger(), nullable=False, server_default=zero),
        sa.Column("requests", sa.BigInteger(), nullable=False, server_default=zero),
        sa.Column("cost_usd", sa.Float(), nullable=False, server_default=zero),
        sa.PrimaryKeyConstraint("budget_id", "subject", "period_start", name="pk_budget_counters"),
        sa.ForeignKeyConstraint(
            ["budget_id"], ["budgets.id"], name="fk_budget_counters_budget_id_budgets", ondelete="CASCADE"
        ),
    )


def upgrade() -> None:
    json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    op.add_column("agents", sa.Column("fallback_models", json, nullable=True))
    _usage_records()
    _budgets()
    if _is_postgresql():
        op.execute("ALTER TABLE usage_records ENABLE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE usage_records FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY usage_records_owner ON usage_records USING {_OWNER} WITH CHECK {_OWNER}")
        op.execute(_END_METERED_RUN)


def downgrade() -> None:
    if _is_postgresql():
        op.execute(f"DROP FUNCTION chatserver_end_metered_run({_END_METERED_SIGNATURE})")
        op.execute("DROP POLICY IF EXISTS usage_records_owner ON usage_records")
    op.drop_table("budget_counters")
    op.drop_table("budgets")
    op.drop_table("usage_records")
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("fallback_models")
