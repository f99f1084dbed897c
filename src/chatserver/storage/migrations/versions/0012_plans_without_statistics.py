"""A turn's lookups find their rows by an index made for them, whatever the planner knows.

On tables the planner has no fresh statistics for (a new server's, growing, with autovacuum off or
behind), every condition ``user_id = ...`` is estimated to match a row or two, so any index leading
with the owner looks as good as the one a lookup was written for, and the planner took them:

* The window's walk named the owner beside each parent's id, and read all the owner's messages at
  every step, so a turn's cost grew with the chat (12 ms at 300 turns, 27 ms at 500). Each step is
  now ``id = parent_id`` alone; the rows carry their owner and chat, checked on the walk's own rows
  (a walk that reached another chat's message would stop there and return nothing of it), and carry
  the message's columns, so no join back to the table follows.
* Lookups of runs by the owner took the idempotency keys' unique index, which holds every run of
  the owner, mostly without a key: four per turn, each reading all the owner's runs. That index now
  holds only the runs with a key (a partial unique index: the same constraint, as NULLs never
  collided). The count of the owner's active runs and the look for a chat's running or waiting
  run have partial indexes of their own (else the chat's index, read on its first columns, reads
  all the chat's runs), and the turn function finds its run by id alone, checking the owner on the
  row it found.

The functions' signatures and results are unchanged.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import op
from alembic.operations import BatchOperations

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WINDOW = """    LEFT JOIN LATERAL (
        WITH RECURSIVE branch (
            id, parent_id, turn, role, content, tool_calls, tool_call_id, tool_name, created_at,
            owner_id, of_chat, turns, depth
        ) AS (
            SELECT s.id, s.parent_id, s.turn, s.role, s.content, s.tool_calls, s.tool_call_id,
                   s.tool_name, s.created_at, s.user_id, s.chat_id, 1, 1
            FROM chat_messages AS s
            WHERE s.id = v_from AND p_turns > 0
            UNION ALL
            SELECT p.id, p.parent_id, p.turn, p.role, p.content, p.tool_calls, p.tool_call_id,
                   p.tool_name, p.created_at, p.user_id, p.chat_id,
                   b.turns + (p.turn <> b.turn)::integer, b.depth + 1
            FROM branch AS b JOIN chat_messages AS p ON p.id = b.parent_id
            WHERE b.owner_id = p_user_id AND b.of_chat = p_chat_id
              AND b.turns + (p.turn <> b.turn)::integer <= p_turns AND b.depth < p_limit
        )
        SELECT b.id, b.turn, b.role, b.content, b.tool_calls, b.tool_call_id, b.tool_name,
               b.created_at, b.parent_id
        FROM branch AS b
        WHERE b.owner_id = p_user_id AND b.of_chat = p_chat_id
        ORDER BY b.id DESC
    ) AS w ON true;
END
$body$
"""


def _earlier(file_name: str, name: str) -> str:
    """A statement text of an earlier revision, as that revision ran it."""
    path = Path(__file__).with_name(file_name)
    spec = importlib.util.spec_from_file_location(f"chatserver_revision_{file_name[:4]}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text: str = getattr(module, name)
    return text


def _revision_0010_open_turn() -> str:
    return _earlier("0010_conversation_trees.py", "_OPEN_TURN").replace(
        "CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1
    )


_RUN_BY_OWNER = """    SELECT r.edit_of, r.regenerate INTO v_edit_of, v_regenerate FROM runs AS r
    WHERE r.id = p_run_id AND r.user_id = p_user_id;"""
_RUN_BY_ID = """    SELECT r.edit_of, r.regenerate, r.user_id INTO v_edit_of, v_regenerate, v_run_owner
    FROM runs AS r WHERE r.id = p_run_id;
    IF v_run_owner IS DISTINCT FROM p_user_id THEN
        v_edit_of := NULL;
        v_regenerate := NULL;
    END IF;"""

_KEYED = "idempotency_key IS NOT NULL"
_ACTIVE = "status IN ('queued', 'running')"
_BUSY = "status IN ('running', 'requires_action')"


def _open_turn() -> str:
    """Revision 0010's function with the run found by id and the walk above; the rest is the same."""
    earlier = _revision_0010_open_turn()
    earlier = earlier.replace(_RUN_BY_OWNER, _RUN_BY_ID, 1).replace(
        "    v_mine text;\n", "    v_mine text;\n    v_run_owner text;\n", 1
    )
    return earlier[: earlier.index("    LEFT JOIN LATERAL (")] + _WINDOW


@contextmanager
def _runs_rebuilt() -> Iterator[BatchOperations]:
    """``runs`` altered; SQLite rebuilds the table, which a trigger naming it (0011's) would refuse."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        op.execute("DROP TRIGGER chats_run_turn")
    with op.batch_alter_table("runs") as batch:
        yield batch
    if sqlite:
        op.execute(_earlier("0011_run_turns.py", "_SQLITE_TURN"))


def _keyed_runs_only() -> None:
    with _runs_rebuilt() as batch:
        batch.drop_constraint("uq_runs_user_id_idempotency_key", type_="unique")
        batch.create_index(
            "uq_runs_user_id_idempotency_key",
            ["user_id", "idempotency_key"],
            unique=True,
            postgresql_where=sa.text(_KEYED),
            sqlite_where=sa.text(_KEYED),
        )
        batch.create_index(
            "ix_runs_active_user",
            ["user_id"],
            postgresql_where=sa.text(_ACTIVE),
            sqlite_where=sa.text(_ACTIVE),
        )
        batch.create_index(
            "ix_runs_busy_chat",
            ["user_id", "chat_id"],
            postgresql_where=sa.text(_BUSY),
            sqlite_where=sa.text(_BUSY),
        )


def upgrade() -> None:
    _keyed_runs_only()
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_open_turn())


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_revision_0010_open_turn())
    with _runs_rebuilt() as batch:
        batch.drop_index("ix_runs_busy_chat")
        batch.drop_index("ix_runs_active_user")
        batch.drop_index("uq_runs_user_id_idempotency_key")
        batch.create_unique_constraint("uq_runs_user_id_idempotency_key", ["user_id", "idempotency_key"])
