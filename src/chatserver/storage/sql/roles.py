"""PostgreSQL safe with no setup: a role that would bypass row-level security serves through one that
cannot.

A superuser (or a BYPASSRLS role) skips every policy, so the isolation they add silently vanishes.
Given such a role, chatserver creates (once, cluster-wide) a role that can do nothing but read and
write the schema's rows, and every pooled connection switches to it with ``SET ROLE`` when it is
opened: one statement per connection, none per request or turn. Migrations keep their own engine
and so run as the given role, which owns the schema.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger("chatserver")

_BYPASSES = text("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")

# Replicas starting together may race to create the role: the loser's error is harmless.
_CREATE_ROLE = """
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
        CREATE ROLE {role} NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$
"""

# Every startup: tables added by a later migration need the grant too.
_GRANT = """
DO $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO {role}', current_schema());
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO {role}',
                   current_schema());
    EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO {role}', current_schema());
    EXECUTE format('GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA %I TO {role}', current_schema());
END
$$
"""

IMPOSSIBLE = (
    "the database role bypasses row-level security and cannot hand requests to the role %r (%s): "
    "readiness stays failing. Connect as a superuser once, or as a role without SUPERUSER and "
    "BYPASSRLS (see README, Row-level security)"
)


async def adopt_unprivileged_role(engine: AsyncEngine, role: str) -> bool:
    """Make ``engine`` serve as ``role`` when its own role bypasses row-level security. True when it
    now does; False when there was nothing to do or it is impossible (logged)."""
    try:
        async with engine.connect() as conn:
            if not (await conn.execute(_BYPASSES)).scalar_one():
                return False
            await conn.execute(text(_CREATE_ROLE.format(role=role)))
            await conn.execute(text(f"GRANT {role} TO CURRENT_USER"))
            await conn.execute(text(_GRANT.format(role=role)))
            await conn.commit()
    except DBAPIError as error:
        log.error(IMPOSSIBLE, role, error.orig)
        return False
    # Connections opened so far act as the given role: they go, new ones switch on connect.
    await engine.dispose()
    event.listen(engine.sync_engine, "connect", _set_role(role))
    log.info("database role bypasses row-level security: serving requests as role %r", role)
    return True


def _set_role(role: str) -> Any:
    def set_role(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"SET ROLE {role}")
        cursor.close()
        # The driver opened a transaction for it: a rollback (the pool's reset) would undo the SET.
        dbapi_connection.commit()

    return set_role
