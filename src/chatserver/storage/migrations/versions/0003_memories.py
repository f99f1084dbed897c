"""Agent capabilities: long-term memories (row-level security), MCP servers and a context budget.

Revision ID: 0003
Revises: 0002
Create Date: 2025-01-03

Self-contained like 0001: plain SQLAlchemy types only. Row-level security follows the project's
convention (PostgreSQL only; SQLite has no RLS): the owner's rows, or every row for a system task.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OWNER = "(user_id = current_setting('app.user_id', true) OR current_setting('app.system', true) = 'on')"


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _bigid() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _is_postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    op.add_column("agents", sa.Column("mcp_servers", _json(), nullable=True))
    op.add_column("agents", sa.Column("context_tokens", sa.Integer(), nullable=True))
    op.create_table(
        "memories",
        sa.Column("id", _bigid(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("agent_name", sa.String(64), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_memories"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_memories_user_id_users", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_memories_user_id_agent_name_id", "memories", ["user_id", "agent_name", "id"])
    if _is_postgresql():
        op.execute("ALTER TABLE memories ENABLE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE memories FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY memories_owner ON memories USING {_OWNER} WITH CHECK {_OWNER}")


def downgrade() -> None:
    if _is_postgresql():
        op.execute("DROP POLICY IF EXISTS memories_owner ON memories")
        op.execute("ALTER TABLE memories NO FORCE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE memories DISABLE ROW LEVEL SECURITY")
    op.drop_index("ix_memories_user_id_agent_name_id", table_name="memories")
    op.drop_table("memories")
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("context_tokens")
        batch.drop_column("mcp_servers")
