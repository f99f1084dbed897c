"""Users and their API keys."""

from __future__ import annotations

import builtins
from datetime import datetime

from sqlalchemy import RowMapping, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from chatserver.domain import ApiKey, User
from chatserver.storage.sql.statements import insert_or_conflict, insert_unless_taken
from chatserver.storage.sql.tables import api_keys, users


def _user(row: RowMapping) -> User:
    return User(id=row["id"], name=row["name"], is_admin=row["is_admin"], created_at=row["created_at"])


def _api_key(row: RowMapping) -> ApiKey:
    return ApiKey(
        id=row["id"],
        user_id=row["user_id"],
        prefix=row["prefix"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


class SqlUserRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def get(self, user_id: str) -> User | None:
        row = (await self._conn.execute(select(users).where(users.c.id == user_id))).mappings().first()
        return _user(row) if row else None

    async def get_by_name(self, name: str) -> User | None:
        row = (await self._conn.execute(select(users).where(users.c.name == name))).mappings().first()
        return _user(row) if row else None

    async def add(self, user: User) -> None:
        values = {"id": user.id, "name": user.name, "is_admin": user.is_admin, "created_at": user.created_at}
        await insert_or_conflict(
            self._conn, users, values, conflict=f"user id {user.id!r} or name {user.name!r} is taken"
        )

    async def ensure(self, user_id: str, *, is_admin: bool, now: datetime) -> None:
        values = {"id": user_id, "name": None, "is_admin": is_admin, "created_at": now}
        if await insert_unless_taken(self._conn, users, values):
            return
        # Only write when the flag changed: ensure runs on every authenticated request.
        await self._conn.execute(
            update(users).where(users.c.id == user_id, users.c.is_admin != is_admin).values(is_admin=is_admin)
        )

    async def provision_subject(self, user_id: str, *, now: datetime) -> bool:
        values = {"id": user_id, "name": None, "is_admin": False, "created_at": now}
        if await insert_unless_taken(self._conn, users, values):
            return True
        name = (await self._conn.execute(select(users.c.name).where(users.c.id == user_id))).scalar()
        return name is None

    async def count(self) -> int:
        return (await self._conn.execute(select(func.count()).select_from(users))).scalar_one()

    async def list(self, *, limit: int) -> builtins.list[User]:
        statement = select(users).order_by(users.c.created_at, users.c.id).limit(limit)
        return [_user(row) for row in (await self._conn.execute(statement)).mappings()]

    async def set_admin(self, user_id: str, *, is_admin: bool) -> bool:
        statement = update(users).where(users.c.id == user_id).values(is_admin=is_admin)
        return (await self._conn.execute(statement)).rowcount > 0


class SqlApiKeyRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, key: ApiKey, *, key_hash: str) -> None:
        values = {
            "id": key.id,
            "user_id": key.user_id,
            "prefix": key.prefix,
            "key_hash": key_hash,
            "created_at": key.created_at,
            "revoked_at": key.revoked_at,
        }
        await insert_or_conflict(self._conn, api_keys, values, conflict="this API key id or hash exists")

    async def find_active(self, key_hash: str) -> tuple[ApiKey, User] | None:
        statement = (
            select(api_keys, users.c.name, users.c.is_admin, users.c.created_at.label("user_created_at"))
            .join(users, users.c.id == api_keys.c.user_id)
            .where(api_keys.c.key_hash == key_hash, api_keys.c.revoked_at.is_(None))
        )
        row = (await self._conn.execute(statement)).mappings().first()
        if row is None:
            return None
        user = User(row["user_id"], row["name"], row["is_admin"], created_at=row["user_created_at"])
        return _api_key(row), user

    async def list_for_user(self, user_id: str) -> list[ApiKey]:
        statement = (
            select(api_keys)
            .where(api_keys.c.user_id == user_id)
            .order_by(api_keys.c.created_at, api_keys.c.id)
        )
        return [_api_key(row) for row in (await self._conn.execute(statement)).mappings()]

    async def list_all(self, *, limit: int) -> list[ApiKey]:
        statement = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id).limit(limit)
        return [_api_key(row) for row in (await self._conn.execute(statement)).mappings()]

    async def get(self, key_id: str) -> ApiKey | None:
        statement = select(api_keys).where(or_(api_keys.c.id == key_id, api_keys.c.prefix == key_id))
        row = (
            (await self._conn.execute(statement.order_by(api_keys.c.revoked_at.is_not(None))))
            .mappings()
            .first()
        )
        return _api_key(row) if row else None

    async def count_active_of_admins(self) -> int:
        statement = (
            select(func.count())
            .select_from(api_keys.join(users, users.c.id == api_keys.c.user_id))
            .where(users.c.is_admin.is_(True), api_keys.c.revoked_at.is_(None))
        )
        return (await self._conn.execute(statement)).scalar_one()

    async def revoke(self, key_id: str, *, now: datetime) -> bool:
        statement = (
            update(api_keys)
            .where(or_(api_keys.c.id == key_id, api_keys.c.prefix == key_id), api_keys.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return (await self._conn.execute(statement)).rowcount > 0
