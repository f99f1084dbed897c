"""Row-level security on every user-owned table (PostgreSQL only; SQLite has none).

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02

Defense in depth: the repositories already filter every query by owner; these policies make
PostgreSQL refuse another user's rows even to a query that forgets to. The unit of work sets, per
transaction, ``app.user_id`` to the caller and ``app.system`` to ``on`` only for system work (no
user). FORCE applies the policies to the tables' owner too, so the application may own its schema;
only a superuser or a role with BYPASSRLS escapes them, which is why the application's role must be
neither.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

USER_OWNED_TABLES = ("prompt_customizations", "chats", "chat_messages", "chat_session_instances")

_OWNER_OR_SYSTEM = (
    "user_id = current_setting('app.user_id', true) OR current_setting('app.system', true) = 'on'"
)


def _is_postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    if not _is_postgresql():
        return
    for table in USER_OWNED_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY {table}_owner ON {table} "
            f"USING ({_OWNER_OR_SYSTEM}) WITH CHECK ({_OWNER_OR_SYSTEM})"
        )


def downgrade() -> None:
    if not _is_postgresql():
        return
    for table in reversed(USER_OWNED_TABLES):
        op.execute(f"DROP POLICY IF EXISTS {table}_owner ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
