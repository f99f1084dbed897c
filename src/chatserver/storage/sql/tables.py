"""The schema, in SQLAlchemy Core. Migrations under ``storage/migrations`` create exactly this."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from chatserver.storage.sql.types import UTCDateTime, json_type

# Explicit names, so later migrations can drop or alter constraints by name on both databases.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only autoincrements an INTEGER PRIMARY KEY, so the 64-bit ids are INTEGER there.
BigId = BigInteger().with_variant(Integer, "sqlite")

metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _owner() -> Column[str]:
    return Column("user_id", String(255), ForeignKey("users.id", ondelete="CASCADE"), nullable=False)


def _of_chat() -> ForeignKeyConstraint:
    """Migration 0006: a chat is named by its owner and its id, so a row names its chat by both."""
    return ForeignKeyConstraint(["user_id", "chat_id"], ["chats.user_id", "chats.id"], ondelete="CASCADE")


users = Table(
    "users",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("name", String(255), nullable=True, unique=True),
    Column("is_admin", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # Migration 0006: a fresh random stamp at every change of the user's customizations, read by
    # each turn so a replica never serves an agent built before the change (agents/versions.py).
    Column("customizations_version", String(32), nullable=False, server_default=text("'0'")),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    _owner(),
    Column("prefix", String(32), nullable=False, index=True),
    Column("key_hash", String(128), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
)

agents = Table(
    "agents",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("description", Text, nullable=False),
    Column("model", String(255), nullable=False),
    Column("system_prompt", Text, nullable=False),
    Column("tools", json_type(), nullable=False),
    Column("history_window", Integer, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # Added by migration 0003: [{name, command, url}] (null: none), and the context budget.
    Column("mcp_servers", json_type(none_as_null=True), nullable=True),
    Column("context_tokens", Integer, nullable=True),
    # Migration 0008: models tried in order when the agent's model fails (JSON list of model strings).
    Column("fallback_models", json_type(none_as_null=True), nullable=True),
    # Migration 0009: tools whose calls wait for the user's approval (JSON list of tool names).
    Column("tools_requiring_approval", json_type(none_as_null=True), nullable=True),
    # Migration 0006: a fresh random stamp at every write of the agent, like users' above; random,
    # not counted, so an agent deleted and created again never repeats a stamp a cache holds.
    Column("config_version", String(32), nullable=False, server_default=text("'0'")),
)

# Migration 0006: chat ids are the user's own names, so the key is (user_id, id): two users may
# both have a chat "my-first-chat", and neither can learn of or take the other's.
chats = Table(
    "chats",
    metadata,
    Column("id", String(128), nullable=False),
    _owner(),
    # No foreign key to agents: the agent repository deletes an agent's chats with it, for every user.
    Column("agent_name", String(64), nullable=False),
    Column("title", String(200), nullable=True),
    Column("turn_count", Integer, nullable=False, server_default=text("0")),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # Migration 0009: the leaf of the active branch; every message inserted becomes it (a trigger).
    Column("active_message_id", BigId, nullable=True),
    Column("pinned", Boolean, nullable=False, server_default=text("false")),
    Column("archived", Boolean, nullable=False, server_default=text("false")),
    PrimaryKeyConstraint("user_id", "id"),
    Index(None, "user_id", "updated_at", "id"),
)

chat_messages = Table(
    "chat_messages",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("chat_id", String(128), nullable=False),
    Column("user_id", String(255), nullable=False),
    Column("turn", Integer, nullable=False),
    Column("role", String(16), nullable=False),
    Column("content", Text, nullable=False),
    Column("tool_calls", json_type(none_as_null=True), nullable=True),
    Column("tool_call_id", String(255), nullable=True),
    Column("tool_name", String(255), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    # Migration 0005: a partial answer of a cancelled run (null: complete).
    Column("incomplete", Boolean, nullable=True),
    # Migration 0009: the message this one follows (null: the chat's first), set by a trigger from
    # the chat's active_message_id. Not a foreign key: a chat's messages go with it, all at once.
    Column("parent_id", BigId, nullable=True),
    _of_chat(),
    # Serves the history window: the chat's equality, turn range, newest first.
    Index(None, "user_id", "chat_id", "turn", "id"),
    Index(None, "user_id", "chat_id", "id"),
    # A message's siblings (branch arrows).
    Index(None, "user_id", "chat_id", "parent_id"),
)

SEARCH_INDEXES = frozenset({"ix_chat_messages_search", "search_vector"})
"""Migration 0009's full-text indexes, outside this metadata: on PostgreSQL a generated
``search_vector`` column with a GIN index, on SQLite an FTS5 table (``chat_messages_fts``, and its
shadow tables) kept by triggers."""


def is_search_index(name: str | None) -> bool:
    return name is not None and (name in SEARCH_INDEXES or name.startswith("chat_messages_fts"))


prompt_customizations = Table(
    "prompt_customizations",
    metadata,
    Column("id", String(36), primary_key=True),
    _owner(),
    Column("agent_name", String(64), nullable=False),
    Column("customization_type", String(64), nullable=False),
    Column("content", json_type(), nullable=False),
    Column("is_active", Boolean, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("user_id", "agent_name", "customization_type"),
    Index(None, "user_id", "agent_name", "priority"),
)

chat_session_instances = Table(
    "chat_session_instances",
    metadata,
    Column("id", String(36), primary_key=True),
    _owner(),
    Column("chat_id", String(128), nullable=False),
    Column("agent_name", String(64), nullable=False),
    Column("is_active", Boolean, nullable=False),
    Column("last_heartbeat_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    _of_chat(),
    Index(None, "is_active", "last_heartbeat_at"),
    Index(None, "user_id", "agent_name"),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("type", String(64), nullable=False),
    Column("user_id", String(255), nullable=True),
    Column("agent_name", String(64), nullable=True),
    Column("chat_id", String(128), nullable=True),
    Column("data", json_type(), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "type", "id"),
    Index(None, "user_id", "id"),
)

# Migration 0003. Long-term notes of a user's agent (the ``remember`` tool); row-level security.
memories = Table(
    "memories",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    _owner(),
    # No foreign key, like chats: deleted with the agent by the agent repository.
    Column("agent_name", String(64), nullable=False),
    Column("content", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # Serves recall and listing: one (user, agent), newest first.
    Index(None, "user_id", "agent_name", "id"),
)

# Migration 0005. Every turn is a run; a chat's turns are serialized by its runs' statuses: at most
# one runs at a time (the partial unique index), the next queued one starts when it ends.
runs = Table(
    "runs",
    metadata,
    Column("id", String(36), primary_key=True),
    _owner(),
    # Null for a stateless run: the foreign key checks no chat then.
    Column("chat_id", String(128), nullable=True),
    Column("agent_name", String(64), nullable=False),
    Column("status", String(20), nullable=False),
    Column("message", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime, nullable=True),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("model", String(255), nullable=True),
    Column("input_tokens", Integer, nullable=False, server_default=text("0")),
    Column("output_tokens", Integer, nullable=False, server_default=text("0")),
    Column("requests", Integer, nullable=False, server_default=text("0")),
    Column("error_code", String(64), nullable=True),
    Column("error_detail", Text, nullable=True),
    Column("result", json_type(none_as_null=True), nullable=True),
    Column("idempotency_key", String(255), nullable=True),
    Column("request_hash", String(64), nullable=True),
    Column("lease_owner", String(255), nullable=True),
    Column("lease_expires_at", UTCDateTime, nullable=True),
    Column("cancel_requested", Boolean, nullable=False, server_default=text("false")),
    # A message sent with the steer policy: the running run it is handed to (while that runs).
    Column("steers", String(36), nullable=True),
    # Migration 0009: the user message this run's message replaces, or the one it answers again.
    Column("edit_of", BigId, nullable=True),
    Column("regenerate", BigId, nullable=True),
    # Migration 0011: the turn of its chat the run opened, set by a trigger as the turn is claimed.
    Column("turn", Integer, nullable=True),
    _of_chat(),
    # Migration 0012: partial, so that no lookup by owner alone can take it (see that migration).
    Index(
        "uq_runs_user_id_idempotency_key",
        "user_id",
        "idempotency_key",
        unique=True,
        postgresql_where=text("idempotency_key IS NOT NULL"),
        sqlite_where=text("idempotency_key IS NOT NULL"),
    ),
    Index(
        "ix_runs_active_user",
        "user_id",
        postgresql_where=text("status IN ('queued', 'running')"),
        sqlite_where=text("status IN ('queued', 'running')"),
    ),
    Index(
        "ix_runs_busy_chat",
        "user_id",
        "chat_id",
        postgresql_where=text("status IN ('running', 'requires_action')"),
        sqlite_where=text("status IN ('running', 'requires_action')"),
    ),
    Index(
        "ix_runs_running_chat",
        "user_id",
        "chat_id",
        unique=True,
        postgresql_where=text("status = 'running'"),
        sqlite_where=text("status = 'running'"),
    ),
    Index(None, "user_id", "chat_id", "status", "created_at"),
    Index(None, "user_id", "chat_id", "created_at", "id"),
    Index(None, "status", "lease_expires_at"),
    # A chat's messages read the runs that wrote them by turn, and the runs that answered again.
    Index(None, "user_id", "chat_id", "turn"),
    Index(
        "ix_runs_regenerating",
        "user_id",
        "chat_id",
        "regenerate",
        postgresql_where=text("regenerate IS NOT NULL"),
        sqlite_where=text("regenerate IS NOT NULL"),
    ),
)

# Migration 0008. The usage ledger: what each model did in each run, written with the run's end.
usage_records = Table(
    "usage_records",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    _owner(),
    Column("agent_name", String(64), nullable=False),
    Column("model", String(255), nullable=False),
    Column("run_id", String(36), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("input_tokens", Integer, nullable=False),
    Column("output_tokens", Integer, nullable=False),
    Column("requests", Integer, nullable=False),
    # Null: no price known for the model.
    Column("cost_usd", Float, nullable=True),
    Index(None, "user_id", "created_at"),
    Index(None, "created_at"),
)

# Limits per period; a null user or agent means any (both null: every user's default).
budgets = Table(
    "budgets",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(255), ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
    Column("agent_name", String(64), nullable=True),
    Column("period", String(8), nullable=False),
    Column("max_tokens", BigInteger, nullable=True),
    Column("max_requests", BigInteger, nullable=True),
    Column("max_cost_usd", Float, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
)

# What a budget's subject (a user, or "" for an agent's total) spent in one period: checked and
# counted up by one statement per model request, so the limit holds across replicas.
budget_counters = Table(
    "budget_counters",
    metadata,
    Column("budget_id", String(36), ForeignKey("budgets.id", ondelete="CASCADE"), nullable=False),
    Column("subject", String(255), nullable=False),
    Column("period_start", Date, nullable=False),
    Column("tokens", BigInteger, nullable=False, server_default=text("0")),
    Column("requests", BigInteger, nullable=False, server_default=text("0")),
    Column("cost_usd", Float, nullable=False, server_default=text("0")),
    PrimaryKeyConstraint("budget_id", "subject", "period_start"),
)

# Migration 0009. A run's ledger: each model response and tool call of a run that calls tools,
# written as it finishes; a call that waits for the user's approval is a ``pending`` step.
run_steps = Table(
    "run_steps",
    metadata,
    Column("run_id", String(36), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    _owner(),
    Column("kind", String(8), nullable=False),
    Column("name", String(255), nullable=False),
    Column("status", String(16), nullable=False),
    Column("tool_call_id", String(255), nullable=True),
    Column("args", json_type(none_as_null=True), nullable=True),
    # A model step's response, a tool step's result, as the framework's messages serialize them.
    Column("payload", json_type(none_as_null=True), nullable=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("decided_at", UTCDateTime, nullable=True),
    Column("reason", Text, nullable=True),
    Index(None, "user_id"),
    Index(
        "ix_run_steps_pending",
        "started_at",
        postgresql_where=text("status = 'pending'"),
        sqlite_where=text("status = 'pending'"),
    ),
)
