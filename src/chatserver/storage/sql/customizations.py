"""Per-user prompt customizations of an agent.

Every write changes the user's ``customizations_version`` in the same transaction: a replica's next
turn compares it with the one its cached agent was built at (``storage.protocols.ClaimedTurn``).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, RowMapping, delete, select, true, update
from sqlalchemy.ext.asyncio import AsyncConnection

from chatserver.domain import PromptCustomization
from chatserver.storage.sql.agents import new_version
from chatserver.storage.sql.statements import execute_or_conflict, insert_or_conflict
from chatserver.storage.sql.tables import prompt_customizations as pc
from chatserver.storage.sql.tables import users


def _customization(row: RowMapping) -> PromptCustomization:
    return PromptCustomization(
        id=row["id"],
        user_id=row["user_id"],
        agent_name=row["agent_name"],
        customization_type=row["customization_type"],
        content=row["content"],
        is_active=row["is_active"],
        priority=row["priority"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _duplicate(c: PromptCustomization) -> str:
    return f"a {c.customization_type!r} customization of agent {c.agent_name!r} already exists"


class SqlCustomizationRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, customization: PromptCustomization) -> None:
        values = {
            "id": customization.id,
            "user_id": customization.user_id,
            "agent_name": customization.agent_name,
            "customization_type": customization.customization_type,
            "content": customization.content,
            "is_active": customization.is_active,
            "priority": customization.priority,
            "created_at": customization.created_at,
            "updated_at": customization.updated_at,
        }
        await insert_or_conflict(self._conn, pc, values, conflict=_duplicate(customization))
        await self._changed(customization.user_id)

    async def get(self, user_id: str, customization_id: str) -> PromptCustomization | None:
        return await self._one(pc.c.user_id == user_id, pc.c.id == customization_id)

    async def find(
        self, user_id: str, agent_name: str, customization_type: str
    ) -> PromptCustomization | None:
        return await self._one(
            pc.c.user_id == user_id,
            pc.c.agent_name == agent_name,
            pc.c.customization_type == customization_type,
        )

    async def list_active(self, user_id: str, agent_name: str) -> list[PromptCustomization]:
        return await self.list_for_agent(user_id, agent_name, include_inactive=False)

    async def list_for_agent(
        self, user_id: str, agent_name: str, *, include_inactive: bool
    ) -> list[PromptCustomization]:
        conditions = [pc.c.user_id == user_id, pc.c.agent_name == agent_name]
        if not include_inactive:
            conditions.append(pc.c.is_active == true())
        statement = select(pc).where(*conditions).order_by(pc.c.priority, pc.c.created_at, pc.c.id)
        return [_customization(row) for row in (await self._conn.execute(statement)).mappings()]

    async def update(self, customization: PromptCustomization) -> bool:
        """Replaces every field except the id, the owner and the creation time."""
        statement = (
            update(pc)
            .where(pc.c.id == customization.id, pc.c.user_id == customization.user_id)
            .values(
                agent_name=customization.agent_name,
                customization_type=customization.customization_type,
                content=customization.content,
                is_active=customization.is_active,
                priority=customization.priority,
                updated_at=customization.updated_at,
            )
        )
        result = await execute_or_conflict(self._conn, statement, conflict=_duplicate(customization))
        return await self._changed(customization.user_id) if result.rowcount > 0 else False

    async def delete(self, user_id: str, customization_id: str) -> bool:
        statement = delete(pc).where(pc.c.user_id == user_id, pc.c.id == customization_id)
        deleted = (await self._conn.execute(statement)).rowcount > 0
        return await self._changed(user_id) if deleted else False

    async def _changed(self, user_id: str) -> bool:
        statement = update(users).where(users.c.id == user_id).values(customizations_version=new_version())
        await self._conn.execute(statement)
        return True

    async def _one(self, *conditions: ColumnElement[bool]) -> PromptCustomization | None:
        row = (await self._conn.execute(select(pc).where(*conditions))).mappings().first()
        return _customization(row) if row else None
