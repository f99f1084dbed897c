"""The reliability and security suite: real servers on loopback, faults injected at process edges.

``live`` is a server per test module and database kind (SQLite and PostgreSQL), as in tests/e2e.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.conftest import DATABASES, live_server
from tests.e2e.harness import LiveServer


@pytest.fixture(scope="module", params=DATABASES)
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(request.param, tmp_path_factory.mktemp("reliability")) as server:
        yield server
