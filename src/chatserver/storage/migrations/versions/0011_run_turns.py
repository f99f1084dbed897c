"""Each run knows the turn of its chat it opened, so that a chat's messages show who answered them.

A turn's messages carry the turn's number; a run now does too: ``runs.turn``, set by a trigger when
the chat's ``turn_count`` goes up, on the chat's running run (at most one: ``ix_runs_running_chat``),
which is the run opening that turn. So every writer of turns, the turn functions included, records
it without knowing of it, and no statement of a turn changes. The listing of a chat's messages reads
its runs by turn: the model and tokens of each answer, and how a turn left without an answer ended.
Runs stored before this revision have no turn (their messages show no run).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PG_TURN = """
CREATE FUNCTION chatserver_run_turn() RETURNS trigger LANGUAGE plpgsql VOLATILE AS $body$
BEGIN
    UPDATE runs SET turn = NEW.turn_count
    WHERE user_id = NEW.user_id AND chat_id = NEW.id AND status = 'running';
    RETURN NULL;
END
$body$
"""

_SQLITE_TURN = """CREATE TRIGGER chats_run_turn AFTER UPDATE OF turn_count ON chats
    WHEN NEW.turn_count <> OLD.turn_count BEGIN
        UPDATE runs SET turn = NEW.turn_count
        WHERE user_id = NEW.user_id AND chat_id = NEW.id AND status = 'running';
    END"""

_REGENERATING = "regenerate IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("turn", sa.Integer(), nullable=True))
        batch.create_index("ix_runs_user_id_chat_id_turn", ["user_id", "chat_id", "turn"])
        batch.create_index(
            "ix_runs_regenerating",
            ["user_id", "chat_id", "regenerate"],
            postgresql_where=sa.text(_REGENERATING),
            sqlite_where=sa.text(_REGENERATING),
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_TURN)
        op.execute(
            "CREATE TRIGGER chats_run_turn AFTER UPDATE OF turn_count ON chats FOR EACH ROW"
            " WHEN (NEW.turn_count IS DISTINCT FROM OLD.turn_count) EXECUTE FUNCTION chatserver_run_turn()"
        )
    else:
        op.execute(_SQLITE_TURN)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER chats_run_turn ON chats")
        op.execute("DROP FUNCTION chatserver_run_turn()")
    else:
        op.execute("DROP TRIGGER chats_run_turn")
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_regenerating")
        batch.drop_index("ix_runs_user_id_chat_id_turn")
        batch.drop_column("turn")
