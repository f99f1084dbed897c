"""The doctor's checks of settings, database and Redis. Read-only: nothing is created or changed."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from sqlalchemy.engine import make_url

from chatserver.config import Settings
from chatserver.doctor.report import Check, fail, ok, warn
from chatserver.redis_bus.connection import connect
from chatserver.storage.sql.diagnostics import autovacuum_on, role_facts, tables_without_forced_rls
from chatserver.storage.sql.engine import SqlDatabase

SLOW_REDIS_MS = 50.0
MIN_JWT_SECRET_CHARS = 32
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def configuration_checks(settings: Settings) -> list[Check]:
    """Settings loaded (the caller got this far); warnings for values that are risky in production."""
    checks = [ok("configuration", "settings loaded")]
    secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else None
    if secret is not None and len(secret) < MIN_JWT_SECRET_CHARS:
        checks.append(
            warn(
                "jwt secret",
                f"CHATSERVER_JWT_SECRET has {len(secret)} characters: short HS256 secrets can be guessed",
                f"use at least {MIN_JWT_SECRET_CHARS} random characters (python -c "
                "'import secrets; print(secrets.token_urlsafe(48))')",
            )
        )
    public = settings.host not in LOOPBACK_HOSTS
    if public and settings.rate_limit_per_minute == 0:
        checks.append(
            warn(
                "rate limit",
                f"listening on {settings.host} with no rate limit",
                "set CHATSERVER_RATE_LIMIT_PER_MINUTE (e.g. 120), or serve behind a proxy that limits",
            )
        )
    if "*" in settings.cors_origins:
        checks.append(
            warn("cors", "CHATSERVER_CORS_ORIGINS=* lets any web page call the API", "list the origins")
        )
    if settings.mcp_allow_stdio:
        checks.append(
            warn(
                "mcp stdio",
                "admins' agents may run commands on this machine (CHATSERVER_MCP_ALLOW_STDIO=true)",
                "unset it unless every admin may run programs here",
            )
        )
    if settings.otel_capture_content:
        checks.append(
            warn(
                "tracing content",
                "prompts and answers go to the trace collector (CHATSERVER_OTEL_CAPTURE_CONTENT=true)",
                "unset it unless the collector may hold users' messages",
            )
        )
    if settings.is_sqlite and settings.redis_url:
        checks.append(
            warn(
                "replicas",
                "Redis is set for several replicas, but SQLite serves one process",
                "use PostgreSQL for several replicas (CHATSERVER_DATABASE_URL=postgresql+asyncpg://...)",
            )
        )
    return checks


def _shown_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


async def database_checks(settings: Settings, database: SqlDatabase) -> list[Check]:
    """Reachable, migrated, and on PostgreSQL: the role and row-level security."""
    shown = _shown_url(settings.database_url)
    missing = _missing_sqlite_file(settings.database_url)
    if missing is not None:
        return [
            fail(
                "database",
                f"no SQLite database at {missing}",
                "start `chatserver serve` (it creates one) or run `chatserver migrate`, "
                "or point CHATSERVER_DATABASE_URL at the existing file",
            )
        ]
    try:
        async with asyncio.timeout(settings.db_timeout_seconds):
            await database.ping()
    except Exception as error:
        return [
            fail(
                "database",
                f"cannot reach {shown}: {_reason(error)}",
                "check CHATSERVER_DATABASE_URL (host, port, user, database name) and that the database "
                "server is running and accepts connections from here",
            )
        ]
    checks = [ok("database", f"{database.engine.dialect.name} reachable at {shown}")]
    if await database.migrations_current():
        checks.append(ok("migrations", "at head"))
    else:
        checks.append(fail("migrations", "not at head", "run `chatserver migrate` (serve applies them too)"))
    if database.engine.dialect.name == "postgresql":
        checks.append(await _role_check(database, settings.database_app_role))
        checks.append(await _rls_check(database))
        checks.append(await _statistics_check(database))
    return checks


def _missing_sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    if parsed.query.get("mode") == "memory":
        return None
    path = Path(parsed.database)
    return None if path.exists() else path


async def _role_check(database: SqlDatabase, app_role: str) -> Check:
    facts = await role_facts(database.engine, app_role)
    kind = "a superuser" if facts.superuser else "BYPASSRLS"
    if not facts.bypasses_rls:
        return ok("database role", f"{facts.name} is subject to row-level security")
    if facts.app_role_exists and not facts.app_role_bypasses_rls:
        return ok("database role", f"{facts.name} is {kind}; requests run as {app_role}")
    if facts.app_role_exists:
        return fail(
            "database role",
            f"{facts.name} is {kind} and the app role {app_role} bypasses row-level security too",
            f"ALTER ROLE {app_role} NOSUPERUSER NOBYPASSRLS, or set CHATSERVER_DATABASE_APP_ROLE",
        )
    if facts.creates_roles:
        return warn(
            "database role",
            f"{facts.name} is {kind}; serve creates the role {app_role} at start and serves through it",
            "nothing, or connect as a dedicated role without SUPERUSER and BYPASSRLS (README)",
        )
    return fail(
        "database role",
        f"{facts.name} is {kind} and may not create the role {app_role}: readiness will fail",
        "connect as a role without SUPERUSER and BYPASSRLS (README, Row-level security), "
        "or once as a superuser so the role is created",
    )


async def _rls_check(database: SqlDatabase) -> Check:
    unforced = await tables_without_forced_rls(database.engine)
    if not unforced:
        return ok("row-level security", "forced on every user-owned table")
    return fail(
        "row-level security",
        f"not forced on {', '.join(unforced)}",
        "run `chatserver migrate`; if it is at head, the tables were altered by hand: "
        "ALTER TABLE ... ENABLE ROW LEVEL SECURITY, ... FORCE ROW LEVEL SECURITY",
    )


async def _statistics_check(database: SqlDatabase) -> Check:
    if await autovacuum_on(database.engine):
        return ok("statistics", "autovacuum is on: table statistics follow the data")
    return warn(
        "statistics",
        "autovacuum is off: tables keep the statistics of their last ANALYZE (or none) as they grow, "
        "so queries are planned on figures that no longer hold (a turn's own lookups do not rely on them)",
        "set autovacuum = on (PostgreSQL's default), or run ANALYZE now and then (cron, pg_cron)",
    )


async def redis_check(settings: Settings) -> Check:
    if not settings.redis_url:
        return ok("redis", "not configured: one process, no replicas")
    shown = _shown_url(settings.redis_url)
    client = connect(settings.redis_url, timeout_seconds=settings.redis_timeout_seconds)
    try:
        started = time.perf_counter()
        async with asyncio.timeout(settings.redis_timeout_seconds * 2):
            await client.ping()
        elapsed_ms = (time.perf_counter() - started) * 1000
    except Exception as error:
        return fail(
            "redis",
            f"cannot reach {shown}: {_reason(error)}",
            "check CHATSERVER_REDIS_URL and that Redis runs; or unset it to serve one process without Redis",
        )
    finally:
        await client.aclose()
    if elapsed_ms > SLOW_REDIS_MS:
        return warn(
            "redis",
            f"{shown} answered a ping in {elapsed_ms:.0f} ms",
            f"requests wait on Redis (up to CHATSERVER_REDIS_TIMEOUT_SECONDS): keep it under "
            f"{SLOW_REDIS_MS:.0f} ms, near the servers",
        )
    return ok("redis", f"{shown} answered a ping in {elapsed_ms:.1f} ms")


def _reason(error: BaseException) -> str:
    """The error's kind and first line: enough to act on, never a whole driver dump. A domain error
    (``DatabaseUnavailable``) is told by the driver's error under it."""
    error = error.__cause__ or error
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if isinstance(error, TimeoutError):
        return "timed out"
    return f"{type(error).__name__}: {message[:200]}" if message else type(error).__name__
