"""Fixtures for the agent layer tests: no network, no database."""

from __future__ import annotations

import pytest

from chatserver.agents.factory import AgentFactory
from chatserver.agents.registry import ModelRegistry
from chatserver.agents.tools import ToolRegistry
from chatserver.config import Settings
from tests.unit.agents.helpers import KEY_VARIABLES, FakeClock


@pytest.fixture(autouse=True)
def _no_provider_keys_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings() -> Settings:
    return Settings(database_url="sqlite+aiosqlite:///:memory:")


@pytest.fixture
def factory(settings: Settings, clock: FakeClock) -> AgentFactory:
    return AgentFactory(ModelRegistry(settings), ToolRegistry(clock))
