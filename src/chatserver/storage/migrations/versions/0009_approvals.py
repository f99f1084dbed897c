"""Tool approvals and a ledger of each run's steps.

``agents.tools_requiring_approval`` names the tools whose calls wait for the user. ``run_steps``
holds every finished model response and tool call of a run that calls tools, written as each one
finishes: what a paused run goes on from after a decision, and an interrupted one after a restart.
A plain one-request turn writes no step (its single step is read from the run's record).

A run that waits for the user (``requires_action``) holds its chat as a running one does:
``chatserver_start_run`` starts no queued run behind it, and says the chat is busy.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OWNER = "(user_id = current_setting('app.user_id', true) OR current_setting('app.system', true) = 'on')"


_HOLDING = "r.status IN ('running', 'requires_action')"


def _revision(name: str) -> ModuleType:
    path = Path(__file__).with_name(name)
    spec = importlib.util.spec_from_file_location(f"chatserver_revision_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _start_run(*, holding: bool) -> str:
    """0007's ``chatserver_start_run``; ``holding``: a paused run holds its chat too."""
    text: str = _revision("0007_end_run.py")._limited_start_run()
    text = text.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)
    if holding:
        held = "r.chat_id = p_chat_id AND r.status = 'running'"
        assert text.count(held) == 2
        text = text.replace(held, f"r.chat_id = p_chat_id AND {_HOLDING}")
    return text


def _is_postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _run_steps() -> None:
    moment = sa.DateTime(timezone=True)
    json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    op.create_table(
        "run_steps",
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("tool_call_id", sa.String(255), nullable=True),
        sa.Column("args", json, nullable=True),
        sa.Column("payload", json, nullable=True),
        sa.Column("started_at", moment, nullable=False),
        sa.Column("finished_at", moment, nullable=True),
        sa.Column("decided_at", moment, nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("run_id", "seq", name="pk_run_steps"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_run_steps_run_id_runs", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_run_steps_user_id_users", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_run_steps_user_id", "run_steps", ["user_id"])
    op.create_index(
        "ix_run_steps_pending",
        "run_steps",
        ["started_at"],
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    )


def upgrade() -> None:
    json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    op.add_column("agents", sa.Column("tools_requiring_approval", json, nullable=True))
    _run_steps()
    if _is_postgresql():
        op.execute("ALTER TABLE run_steps ENABLE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE run_steps FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY run_steps_owner ON run_steps USING {_OWNER} WITH CHECK {_OWNER}")
        op.execute(_start_run(holding=True))


def downgrade() -> None:
    if _is_postgresql():
        op.execute("DROP POLICY IF EXISTS run_steps_owner ON run_steps")
        op.execute(_start_run(holding=False))
    op.drop_table("run_steps")
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("tools_requiring_approval")
