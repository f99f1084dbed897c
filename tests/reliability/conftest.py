"""The reliability and security suite: real servers on loopback, faults injected at process edges.

``live`` is a server per test module and database kind (SQLite and PostgreSQL), as in tests/e2e.
``model_server`` is a server (SQLite) whose agent ``AGENT`` asks the fake OpenAI-compatible
provider ``provider``; ``fake`` is that provider, answering normally again after each test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import DATABASES, live_server
from tests.e2e.harness import LiveServer
from tests.support.fake_openai import FakeOpenAI, fake_openai_server

AGENT = "gpt"
TIMEOUT = 3.0
BACKOFF = 0.1
RETRIES = 2


@pytest.fixture(scope="module", params=DATABASES)
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(request.param, tmp_path_factory.mktemp("reliability")) as server:
        yield server


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeOpenAI]:
    with fake_openai_server() as fake:
        yield fake


@pytest.fixture(scope="module")
def model_server(provider: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = {
        "openai_base_url": provider.url,
        # These tests count a turn's requests to the provider: no title request after it.
        "model_titles": False,
        "model_timeout_seconds": TIMEOUT,
        "model_retries": RETRIES,
        "model_retry_backoff_seconds": BACKOFF,
    }
    with live_server("sqlite", tmp_path_factory.mktemp("model-faults"), **settings) as live:
        asyncio.run(live.create_agent(AGENT, model="openai:fake-model", tools=[]))
        yield live


@pytest.fixture
def fake(provider: FakeOpenAI) -> Iterator[FakeOpenAI]:
    """The module's fake, answering normally again after each test."""
    yield provider
    provider.script.clear()
    provider.behaviour = "answer"
    provider.retry_after = "1"
    provider.malformed = FakeOpenAI.malformed
