"""ErasureService on fakes: a confirmation of one's own id, every (user, agent) evicted everywhere."""

from __future__ import annotations

from typing import Any

import pytest

from chatserver.agents.cache import AgentCache
from chatserver.errors import InvalidInput, NotFound
from chatserver.services.agent_loader import AgentLoader
from chatserver.services.erasure import ErasureService
from tests.support.builders import NOW, user
from tests.unit.fakes import FakeClock, FakeUnitOfWorkFactory


class Bus:
    def __init__(self) -> None:
        self.published: list[tuple[str | None, str]] = []

    def publish(self, user_id: str | None, agent_name: str) -> None:
        self.published.append((user_id, agent_name))


class Forgotten:
    def __init__(self) -> None:
        self.users: list[str] = []

    def forget(self, user_id: str) -> None:
        self.users.append(user_id)


class Cancellations:
    def __init__(self) -> None:
        self.runs: list[str] = []

    async def cancel(self, user_id: str, run_id: str) -> object:
        self.runs.append(run_id)
        return None


def service(uow: FakeUnitOfWorkFactory, loader: Any = None) -> ErasureService:
    loader = loader or AgentLoader(uow, None, AgentCache(10, 900, FakeClock(NOW)))  # type: ignore[arg-type]
    return ErasureService(uow, Cancellations(), loader, Forgotten(), FakeClock(NOW), salt=b"salt")


async def test_erasing_oneself_needs_ones_own_id_and_erases_nothing_otherwise() -> None:
    uow = FakeUnitOfWorkFactory()
    uow.store.users["ann"] = user("ann")
    with pytest.raises(InvalidInput) as refused:
        await service(uow).erase_self("ann", confirm="bob")
    assert refused.value.field == "confirm"
    assert "ann" in uow.store.users


async def test_erasing_an_unknown_user_is_not_found() -> None:
    with pytest.raises(NotFound):
        await service(FakeUnitOfWorkFactory()).erase("nobody")


def test_evicting_a_user_drops_their_cached_agents_here_and_tells_every_replica() -> None:
    cache, bus = AgentCache(10, 900, FakeClock(NOW)), Bus()
    for key in (("ann", "held-here"), ("bob", "helper")):
        cache.put(key, object())  # type: ignore[arg-type]
    loader = AgentLoader(FakeUnitOfWorkFactory(), None, cache, bus=bus)  # type: ignore[arg-type]
    loader.invalidate_user("ann", {"helper", "coder"})
    assert cache.keys() == [("bob", "helper")]
    assert bus.published == [("ann", "coder"), ("ann", "held-here"), ("ann", "helper")]
