"""Conversations as trees: each message names its parent, each chat its active branch's leaf.

Every insert into ``chat_messages`` is chained by a trigger: the new message's parent is its chat's
``active_message_id`` and becomes it. Editing or regenerating moves that pointer first (to the edited
message's parent, or to the user message answered again), so every writer of messages, the turn
functions included, builds the tree without knowing of it. ``chatserver_open_turn`` now reads the
window by walking parents from the turn's anchor (one round trip still), and takes the run's id to
read its ``edit_of`` / ``regenerate``. Chats gain ``pinned`` and ``archived``. Message text is
indexed for search: on PostgreSQL a stored ``search_vector`` with a GIN index, on SQLite an FTS5
table kept by triggers. (Under row-level security PostgreSQL cannot use the GIN index, since ``@@``
is not leakproof: a search then reads the user's messages through their btree index and matches
their stored vectors, never computing one.)
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SET_CONTEXT = "set_config('app.user_id', p_user_id, true), set_config('app.system', 'off', true)"
_OLD_OPEN_SIGNATURE = "text, text, text, text, timestamptz, text, integer, integer"
_OPEN_SIGNATURE = f"{_OLD_OPEN_SIGNATURE}, text"

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_PG_CHAIN = """
CREATE FUNCTION chatserver_chain_message() RETURNS trigger LANGUAGE plpgsql VOLATILE AS $body$
BEGIN
    SELECT c.active_message_id INTO NEW.parent_id FROM chats AS c
    WHERE c.user_id = NEW.user_id AND c.id = NEW.chat_id;
    UPDATE chats SET active_message_id = NEW.id WHERE user_id = NEW.user_id AND id = NEW.chat_id;
    RETURN NEW;
END
$body$
"""

_SQLITE_TRIGGERS = (
    """CREATE TRIGGER chat_messages_chain AFTER INSERT ON chat_messages BEGIN
        UPDATE chat_messages SET parent_id = (
            SELECT c.active_message_id FROM chats AS c WHERE c.user_id = NEW.user_id AND c.id = NEW.chat_id
        ) WHERE id = NEW.id AND NEW.parent_id IS NULL;
        UPDATE chats SET active_message_id = NEW.id WHERE user_id = NEW.user_id AND id = NEW.chat_id;
        INSERT INTO chat_messages_fts (rowid, content) VALUES (NEW.id, NEW.content);
    END""",
    """CREATE TRIGGER chat_messages_fts_delete AFTER DELETE ON chat_messages BEGIN
        INSERT INTO chat_messages_fts (chat_messages_fts, rowid, content)
        VALUES ('delete', OLD.id, OLD.content);
    END""",
    """CREATE TRIGGER chat_messages_fts_update AFTER UPDATE OF content ON chat_messages BEGIN
        INSERT INTO chat_messages_fts (chat_messages_fts, rowid, content)
        VALUES ('delete', OLD.id, OLD.content);
        INSERT INTO chat_messages_fts (rowid, content) VALUES (NEW.id, NEW.content);
    END""",
)

# The window: parents from v_from, counting a turn at each change of turn, newest first.
_OPEN_TURN = f"""
CREATE FUNCTION chatserver_open_turn(
    p_chat_id text, p_user_id text, p_agent_name text, p_title text, p_now timestamptz,
    p_message text, p_turns integer, p_limit integer, p_run_id text
) RETURNS TABLE (
    chat_agent_name text, chat_title text, chat_turn_count integer, chat_created_at timestamptz,
    chat_updated_at timestamptz, message_id bigint, message_turn integer, message_role text,
    message_content text, message_tool_calls jsonb, message_tool_call_id text, message_tool_name text,
    message_created_at timestamptz, agent_version text, customizations_version text,
    message_parent_id bigint, window_from bigint
) LANGUAGE plpgsql VOLATILE AS $body$
#variable_conflict use_column
DECLARE
    v_chat record;
    v_edit_of bigint;
    v_regenerate bigint;
    v_anchor bigint;
    v_from bigint;
    v_agent text;
    v_mine text;
BEGIN
    PERFORM {_SET_CONTEXT};
    SELECT r.edit_of, r.regenerate INTO v_edit_of, v_regenerate FROM runs AS r
    WHERE r.id = p_run_id AND r.user_id = p_user_id;
    UPDATE chats
    SET turn_count = chats.turn_count + 1, title = coalesce(chats.title, p_title), updated_at = p_now
    WHERE chats.user_id = p_user_id AND chats.id = p_chat_id AND chats.agent_name = p_agent_name
    RETURNING chats.agent_name, chats.title, chats.turn_count, chats.created_at, chats.updated_at,
              chats.active_message_id
    INTO v_chat;
    IF NOT FOUND THEN
        RETURN QUERY
        SELECT o.agent_name::text, o.title::text, o.turn_count, o.created_at, o.updated_at,
               NULL::bigint, NULL::integer, NULL::text, NULL::text, NULL::jsonb, NULL::text, NULL::text,
               NULL::timestamptz, NULL::text, NULL::text, NULL::bigint, NULL::bigint
        FROM chats AS o
        WHERE o.user_id = p_user_id AND o.id = p_chat_id AND o.agent_name <> p_agent_name;
        RETURN;
    END IF;
    IF v_regenerate IS NOT NULL THEN
        v_anchor := v_regenerate;
        SELECT m.parent_id INTO v_from FROM chat_messages AS m
        WHERE m.id = v_regenerate AND m.user_id = p_user_id AND m.chat_id = p_chat_id;
    ELSIF v_edit_of IS NOT NULL THEN
        SELECT m.parent_id INTO v_anchor FROM chat_messages AS m
        WHERE m.id = v_edit_of AND m.user_id = p_user_id AND m.chat_id = p_chat_id;
        v_from := v_anchor;
    ELSE
        v_anchor := v_chat.active_message_id;
        v_from := v_anchor;
    END IF;
    IF v_regenerate IS NOT NULL OR v_edit_of IS NOT NULL THEN
        UPDATE chats SET active_message_id = v_anchor WHERE user_id = p_user_id AND id = p_chat_id;
    END IF;
    IF v_regenerate IS NULL THEN
        INSERT INTO chat_messages (chat_id, user_id, turn, role, content, created_at)
        VALUES (p_chat_id, p_user_id, v_chat.turn_count, 'user', p_message, p_now);
    END IF;
    v_agent := (SELECT a.config_version FROM agents AS a WHERE a.name = p_agent_name)::text;
    v_mine := (SELECT u.customizations_version FROM users AS u WHERE u.id = p_user_id)::text;
    RETURN QUERY
    SELECT v_chat.agent_name::text, v_chat.title::text, v_chat.turn_count, v_chat.created_at,
           v_chat.updated_at, w.id, w.turn, w.role::text, w.content, w.tool_calls, w.tool_call_id::text,
           w.tool_name::text, w.created_at, v_agent, v_mine, w.parent_id, v_from
    FROM (SELECT 1) AS one
    LEFT JOIN LATERAL (
        WITH RECURSIVE branch (id, parent_id, turn, turns, depth) AS (
            SELECT s.id, s.parent_id, s.turn, 1, 1 FROM chat_messages AS s
            WHERE s.id = v_from AND s.user_id = p_user_id AND s.chat_id = p_chat_id AND p_turns > 0
            UNION ALL
            SELECT p.id, p.parent_id, p.turn, b.turns + (p.turn <> b.turn)::integer, b.depth + 1
            FROM branch AS b JOIN chat_messages AS p ON p.id = b.parent_id
            WHERE p.user_id = p_user_id AND b.turns + (p.turn <> b.turn)::integer <= p_turns
              AND b.depth < p_limit
        )
        SELECT m.id, m.turn, m.role, m.content, m.tool_calls, m.tool_call_id, m.tool_name, m.created_at,
               m.parent_id
        FROM branch AS b JOIN chat_messages AS m ON m.id = b.id
        ORDER BY m.id DESC
    ) AS w ON true;
END
$body$
"""


def _is_postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _columns() -> None:
    false = sa.text("false")
    with op.batch_alter_table("chat_messages") as batch:
        batch.add_column(sa.Column("parent_id", _BigId, nullable=True))
        batch.create_index("ix_chat_messages_user_id_chat_id_parent_id", ["user_id", "chat_id", "parent_id"])
    with op.batch_alter_table("chats") as batch:
        batch.add_column(sa.Column("active_message_id", _BigId, nullable=True))
        batch.add_column(sa.Column("pinned", sa.Boolean(), nullable=False, server_default=false))
        batch.add_column(sa.Column("archived", sa.Boolean(), nullable=False, server_default=false))
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("edit_of", _BigId, nullable=True))
        batch.add_column(sa.Column("regenerate", _BigId, nullable=True))


def _backfill() -> None:
    """Messages stored before trees were one line each: each one's parent is the one before it."""
    op.execute(
        "UPDATE chat_messages SET parent_id = (SELECT max(p.id) FROM chat_messages AS p"
        " WHERE p.user_id = chat_messages.user_id AND p.chat_id = chat_messages.chat_id"
        " AND p.id < chat_messages.id)"
    )
    op.execute(
        "UPDATE chats SET active_message_id = (SELECT max(m.id) FROM chat_messages AS m"
        " WHERE m.user_id = chats.user_id AND m.chat_id = chats.id)"
    )


def upgrade() -> None:
    _columns()
    if _is_postgresql():
        op.execute("SET LOCAL app.system = 'on'")
        _backfill()
        op.execute(_PG_CHAIN)
        op.execute(
            "CREATE TRIGGER chat_messages_chain BEFORE INSERT ON chat_messages"
            " FOR EACH ROW EXECUTE FUNCTION chatserver_chain_message()"
        )
        op.execute(
            "ALTER TABLE chat_messages ADD COLUMN search_vector tsvector"
            " GENERATED ALWAYS AS (to_tsvector('simple', content)) STORED"
        )
        op.execute("CREATE INDEX ix_chat_messages_search ON chat_messages USING gin (search_vector)")
        op.execute(f"DROP FUNCTION chatserver_open_turn({_OLD_OPEN_SIGNATURE})")
        op.execute(_OPEN_TURN)
        return
    _backfill()
    op.execute(
        "CREATE VIRTUAL TABLE chat_messages_fts"
        " USING fts5(content, content='chat_messages', content_rowid='id')"
    )
    op.execute("INSERT INTO chat_messages_fts (chat_messages_fts) VALUES ('rebuild')")
    for trigger in _SQLITE_TRIGGERS:
        op.execute(trigger)


def downgrade() -> None:
    if _is_postgresql():
        op.execute(f"DROP FUNCTION chatserver_open_turn({_OPEN_SIGNATURE})")
        op.execute(_revision_0006_open_turn())
        op.execute("DROP INDEX ix_chat_messages_search")
        op.execute("ALTER TABLE chat_messages DROP COLUMN search_vector")
        op.execute("DROP TRIGGER chat_messages_chain ON chat_messages")
        op.execute("DROP FUNCTION chatserver_chain_message()")
    else:
        for name in ("chat_messages_chain", "chat_messages_fts_delete", "chat_messages_fts_update"):
            op.execute(f"DROP TRIGGER {name}")
        op.execute("DROP TABLE chat_messages_fts")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("regenerate")
        batch.drop_column("edit_of")
    with op.batch_alter_table("chats") as batch:
        for column in ("archived", "pinned", "active_message_id"):
            batch.drop_column(column)
    with op.batch_alter_table("chat_messages") as batch:
        batch.drop_index("ix_chat_messages_user_id_chat_id_parent_id")
        batch.drop_column("parent_id")


def _revision_0006_open_turn() -> str:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).with_name("0006_chats_per_user_and_config_versions.py")
    spec = importlib.util.spec_from_file_location("chatserver_revision_0006", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text: str = module._OPEN_TURN
    return text
