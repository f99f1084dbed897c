"""Shared fixtures: a throwaway database per test, on SQLite and on PostgreSQL.

PostgreSQL policy: when no server answers at ``CHATSERVER_TEST_POSTGRES_URL`` the PostgreSQL tests
are deselected (and the summary says so), unless ``CHATSERVER_TEST_REQUIRE_POSTGRES=1``, which turns
an unreachable server into a usage error.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.databases import (
    DatabaseKind,
    postgres_address,
    postgres_admin_url,
    postgres_database,
    postgres_reachable,
    throwaway_database,
)

_DESELECTION_NOTE = pytest.StashKey[str]()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A migrated, empty database of each kind."""
    kind: DatabaseKind = request.param
    async with throwaway_database(kind, tmp_path) as url:
        yield url


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A migrated, empty PostgreSQL database, for PostgreSQL-only behaviour (marked automatically)."""
    async with postgres_database() as url:
        yield url


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "postgres_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)
    needs_postgres = [item for item in items if item.get_closest_marker("postgres")]
    if not needs_postgres:
        return
    admin_url = postgres_admin_url()
    if postgres_reachable(admin_url):
        return
    host, port = postgres_address(admin_url)
    if os.environ.get("CHATSERVER_TEST_REQUIRE_POSTGRES") == "1":
        raise pytest.UsageError(
            f"CHATSERVER_TEST_REQUIRE_POSTGRES=1 but no PostgreSQL server answers at {host}:{port} "
            "(set CHATSERVER_TEST_POSTGRES_URL)"
        )
    config.hook.pytest_deselected(items=needs_postgres)
    items[:] = [item for item in items if not item.get_closest_marker("postgres")]
    config.stash[_DESELECTION_NOTE] = (
        f"{len(needs_postgres)} PostgreSQL tests deselected: no server at {host}:{port} "
        "(set CHATSERVER_TEST_POSTGRES_URL, or CHATSERVER_TEST_REQUIRE_POSTGRES=1 to fail instead)"
    )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    note = config.stash.get(_DESELECTION_NOTE, None)
    if note:
        terminalreporter.write_line(note, yellow=True, bold=True)
