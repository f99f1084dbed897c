"""The agent loader: builds are audited and counted; invalidations go to the bus as well."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from chatserver.agents.cache import AgentCache
from chatserver.agents.factory import AgentFactory
from chatserver.agents.registry import ModelRegistry
from chatserver.agents.tools import ToolRegistry
from chatserver.config import Settings
from chatserver.domain import AgentConfig
from chatserver.errors import NotFound
from chatserver.services.agent_loader import AgentLoader
from chatserver.services.agents import AgentService
from chatserver.services.prompt_customization import CustomizationInput, PromptCustomizationService
from tests.unit.fakes import FakeClock, FakeUnitOfWorkFactory

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class RecordingBus:
    sent: list[tuple[str | None, str]] = field(default_factory=list)

    def publish(self, user_id: str | None, agent_name: str) -> None:
        self.sent.append((user_id, agent_name))


@dataclass
class Rig:
    uow: FakeUnitOfWorkFactory
    cache: AgentCache
    loader: AgentLoader
    bus: RecordingBus
    agents: AgentService
    customizations: PromptCustomizationService


@pytest.fixture
def rig() -> Rig:
    clock = FakeClock(NOW)
    uow = FakeUnitOfWorkFactory()
    models = ModelRegistry(Settings(database_url="sqlite+aiosqlite:///:memory:"))
    cache = AgentCache(10, 900, clock)
    bus = RecordingBus()
    loader = AgentLoader(uow, AgentFactory(models, ToolRegistry(clock)), cache, clock=clock, bus=bus)
    for name in ("assistant", "helper"):
        uow.store.agents[name] = AgentConfig(name, "echo", f"{name} prompt.")
    return Rig(
        uow,
        cache,
        loader,
        bus,
        AgentService(uow, models, loader, clock),
        PromptCustomizationService(uow, loader, clock),
    )


async def test_a_build_is_audited_once_in_its_own_transaction_and_a_cache_hit_is_not(rig: Rig) -> None:
    first = await rig.loader.get("u1", "assistant")
    again = await rig.loader.get("u1", "assistant")
    assert first is again
    built = [(e.type, e.user_id, e.agent_name, e.data, e.created_at) for e in rig.uow.store.events]
    assert built == [("agent.built", "u1", "assistant", {"customizations": 0, "model": "echo"}, NOW)]
    assert rig.uow.store.commits == 1
    assert rig.loader.builds == 1
    assert (rig.cache.hits, rig.cache.misses) == (1, 1)


async def test_a_build_counts_the_users_active_customizations(rig: Rig) -> None:
    await rig.customizations.create("u1", CustomizationInput("assistant", "instruction_set", {"a": 1}))
    await rig.loader.get("u1", "assistant")
    [built] = [e for e in rig.uow.store.events if e.type == "agent.built"]
    assert built.data["customizations"] == 1


async def test_an_unknown_agent_builds_nothing_and_audits_nothing(rig: Rig) -> None:
    with pytest.raises(NotFound):
        await rig.loader.get("u1", "nope")
    assert rig.loader.builds == 0
    assert rig.uow.store.events == []


async def test_invalidations_drop_the_local_copy_and_are_published(rig: Rig) -> None:
    await rig.loader.get("u1", "assistant")
    await rig.loader.get("u2", "helper")
    rig.loader.invalidate("u1", "assistant")
    rig.loader.invalidate_agent("helper")
    assert rig.bus.sent == [("u1", "assistant"), (None, "helper")]
    assert rig.cache.keys() == []


async def test_customization_and_admin_changes_reach_the_bus_through_the_loader(rig: Rig) -> None:
    await rig.customizations.create("u1", CustomizationInput("assistant", "instruction_set", {"a": 1}))
    await rig.agents.update(AgentConfig("assistant", "echo", "New prompt."))
    await rig.agents.delete("helper")
    assert rig.bus.sent == [("u1", "assistant"), (None, "assistant"), (None, "helper")]
