"""Read-only questions ``chatserver doctor`` asks PostgreSQL about roles, row-level security and
the upkeep of table statistics."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncEngine

USER_OWNED_TABLES = (
    "prompt_customizations",
    "chats",
    "chat_messages",
    "chat_session_instances",
    "memories",
    "runs",
)
"""The tables whose rows belong to one user: the migrations enable and force row-level security on each."""

_ROLE = text(
    "SELECT current_user, rolsuper, rolbypassrls, rolsuper OR rolcreaterole"
    " FROM pg_roles WHERE rolname = current_user"
)
_APP_ROLE = text("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = :role")
_FORCED = text(
    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = current_schema() AND c.relname IN :tables"
    " AND c.relrowsecurity AND c.relforcerowsecurity"
).bindparams(bindparam("tables", expanding=True))


@dataclass(frozen=True, slots=True)
class RoleFacts:
    name: str
    superuser: bool
    bypasses_rls: bool
    creates_roles: bool
    app_role_exists: bool
    app_role_bypasses_rls: bool


async def role_facts(engine: AsyncEngine, app_role: str) -> RoleFacts:
    """The configured role, and whether ``app_role`` (which a bypassing role serves through) exists."""
    async with engine.connect() as conn:
        name, superuser, bypasses, creates = (await conn.execute(_ROLE)).one()
        app = (await conn.execute(_APP_ROLE, {"role": app_role})).scalar_one_or_none()
    return RoleFacts(
        name=name,
        superuser=superuser,
        bypasses_rls=superuser or bypasses,
        creates_roles=creates,
        app_role_exists=app is not None,
        app_role_bypasses_rls=bool(app),
    )


async def tables_without_forced_rls(engine: AsyncEngine) -> list[str]:
    """User-owned tables on which row-level security is missing, or not forced on their owner."""
    async with engine.connect() as conn:
        forced = set((await conn.execute(_FORCED, {"tables": list(USER_OWNED_TABLES)})).scalars())
    return [table for table in USER_OWNED_TABLES if table not in forced]


async def autovacuum_on(engine: AsyncEngine) -> bool:
    """Whether the server keeps table statistics up to date by itself (``autovacuum``)."""
    async with engine.connect() as conn:
        setting = (await conn.execute(text("SHOW autovacuum"))).scalar_one()
    return str(setting) == "on"
