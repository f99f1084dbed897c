"""Agent configurations (global, not user-owned), and the removal of what was kept for an agent.

Deleting an agent deletes, for every user, its chats (their messages and sessions go with them),
sessions, memories and prompt customizations: nothing of it may come back when an agent of the same
name is created later. Creating an agent clears such leftovers too, for databases that were written
before deletion did this.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, RowMapping, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from chatserver.domain import AgentConfig, ConfigVersions, McpServer
from chatserver.storage.sql.statements import insert_or_conflict
from chatserver.storage.sql.tables import (
    agents,
    chat_session_instances,
    chats,
    memories,
    prompt_customizations,
    users,
)

KEPT_FOR_AN_AGENT = (chat_session_instances, chats, memories, prompt_customizations)
"""Every user's rows of one agent; a chat's messages are deleted by the foreign key's cascade."""


def _agent(row: RowMapping) -> AgentConfig:
    return AgentConfig(
        name=row["name"],
        model=row["model"],
        system_prompt=row["system_prompt"],
        description=row["description"],
        tools=tuple(row["tools"]),
        history_window=row["history_window"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        mcp_servers=tuple(_mcp_server(item) for item in row["mcp_servers"] or ()),
        context_tokens=row["context_tokens"],
        fallback_models=tuple(row["fallback_models"] or ()),
        tools_requiring_approval=tuple(row["tools_requiring_approval"] or ()),
    )


def _mcp_server(item: dict[str, Any]) -> McpServer:
    return McpServer(name=item["name"], command=tuple(item.get("command") or ()), url=item.get("url"))


def _mcp_json(servers: tuple[McpServer, ...]) -> list[dict[str, Any]] | None:
    if not servers:
        return None
    return [{"name": s.name, "command": list(s.command), "url": s.url} for s in servers]


def new_version() -> str:
    """A configuration stamp: random, so it never repeats one a cache holds (see tables.agents)."""
    return uuid.uuid4().hex


def _timestamp(value: Any) -> Any:
    """The given time, or the database's clock when the caller left it unset."""
    now: ColumnElement[Any] = func.current_timestamp()
    return now if value is None else value


def _editable(agent: AgentConfig) -> dict[str, Any]:
    return {
        "description": agent.description,
        "model": agent.model,
        "system_prompt": agent.system_prompt,
        "tools": list(agent.tools),
        "history_window": agent.history_window,
        "mcp_servers": _mcp_json(agent.mcp_servers),
        "context_tokens": agent.context_tokens,
        "fallback_models": list(agent.fallback_models) or None,
        "tools_requiring_approval": list(agent.tools_requiring_approval) or None,
        "updated_at": _timestamp(agent.updated_at),
        "config_version": new_version(),
    }


class SqlAgentRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def get(self, name: str) -> AgentConfig | None:
        row = (await self._conn.execute(select(agents).where(agents.c.name == name))).mappings().first()
        return _agent(row) if row else None

    async def versions(self, name: str, user_id: str) -> ConfigVersions | None:
        mine = select(users.c.customizations_version).where(users.c.id == user_id).scalar_subquery()
        statement = select(agents.c.config_version, mine).where(agents.c.name == name)
        row = (await self._conn.execute(statement)).first()
        return None if row is None else ConfigVersions(row[0], row[1] or "")

    async def list(self) -> list[AgentConfig]:
        rows = (await self._conn.execute(select(agents).order_by(agents.c.name))).mappings()
        return [_agent(row) for row in rows]

    async def add(self, agent: AgentConfig) -> None:
        values = {"name": agent.name, "created_at": _timestamp(agent.created_at), **_editable(agent)}
        await insert_or_conflict(self._conn, agents, values, conflict=f"agent {agent.name!r} already exists")
        # After the insert: a name that is taken raised above, so no live agent's rows are touched.
        await self._delete_kept_for(agent.name)

    async def update(self, agent: AgentConfig) -> bool:
        statement = update(agents).where(agents.c.name == agent.name).values(_editable(agent))
        return (await self._conn.execute(statement)).rowcount > 0

    async def delete(self, name: str) -> bool:
        deleted = (await self._conn.execute(delete(agents).where(agents.c.name == name))).rowcount > 0
        if deleted:
            await self._delete_kept_for(name)
        return deleted

    async def _delete_kept_for(self, name: str) -> None:
        """System work across users (the unit of work has no user), so no owner id here."""
        for table in KEPT_FOR_AN_AGENT:
            await self._conn.execute(delete(table).where(table.c.agent_name == name))
