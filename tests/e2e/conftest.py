"""A live server per test module and database kind (SQLite and PostgreSQL), over real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from chatserver.bootstrap import prepare
from tests.e2e.harness import LiveServer, e2e_settings, serve_in_thread
from tests.support.databases import DatabaseKind, throwaway_database

DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@contextmanager
def prepared_database(kind: DatabaseKind, directory: Path, **overrides: Any) -> Iterator[Any]:
    """Create, migrate and seed a database on a private event loop; drop it afterwards."""
    with asyncio.Runner() as runner:
        database = throwaway_database(kind, directory)
        url = runner.run(database.__aenter__())
        try:
            settings = e2e_settings(url, **overrides)
            runner.run(prepare(settings))
            yield settings
        finally:
            runner.run(database.__aexit__(None, None, None))


@contextmanager
def live_server(kind: DatabaseKind, directory: Path, **overrides: Any) -> Iterator[LiveServer]:
    with prepared_database(kind, directory, **overrides) as settings, serve_in_thread(settings) as server:
        yield server


@pytest.fixture(scope="module", params=DATABASES)
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(request.param, tmp_path_factory.mktemp("e2e")) as server:
        yield server
