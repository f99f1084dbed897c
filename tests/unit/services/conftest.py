"""Services wired to in-memory fakes: the real agent layer with the echo model, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from chatserver.agents.cache import AgentCache
from chatserver.agents.factory import AgentFactory
from chatserver.agents.registry import ModelRegistry
from chatserver.agents.tools import ToolRegistry
from chatserver.config import Settings
from chatserver.domain import AgentConfig
from chatserver.services.agent_loader import AgentLoader
from chatserver.services.agents import AgentService
from chatserver.services.prompt_customization import PromptCustomizationService
from chatserver.services.turn_policy import TurnPolicy
from tests.unit.fakes import FakeClock, FakeUnitOfWorkFactory
from tests.unit.services.runs import Runs, build_runs


@dataclass
class World:
    uow: FakeUnitOfWorkFactory
    clock: FakeClock
    cache: AgentCache
    chat: Runs
    agents: AgentService
    customizations: PromptCustomizationService


@pytest.fixture
def world() -> World:
    settings = Settings(database_url="sqlite+aiosqlite:///:memory:", model_timeout_seconds=1.0)
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    uow = FakeUnitOfWorkFactory()
    models = ModelRegistry(settings)
    cache = AgentCache(10, 900, clock)
    loader = AgentLoader(uow, AgentFactory(models, ToolRegistry(clock)), cache)
    customizations = PromptCustomizationService(uow, loader, clock)
    policy = TurnPolicy(
        history_window=50,
        max_message_chars=100,
        model_timeout_seconds=1.0,
        max_model_requests=5,
    )
    chat = build_runs(uow, loader, clock, policy, tool_backend=customizations)
    uow.store.agents["assistant"] = AgentConfig(
        "assistant", "echo", "Base prompt.", tools=("current_time", "update_instructions")
    )
    return World(uow, clock, cache, chat, AgentService(uow, models, loader, clock), customizations)
