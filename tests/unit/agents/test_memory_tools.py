"""Long-term memory: the remember / recall_memories tools and the MemoryService behind them (fakes)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chatserver.agents.factory import AgentFactory
from chatserver.agents.types import TurnDeps
from chatserver.errors import InvalidInput, NotFound
from chatserver.services.memories import (
    MAX_NOTE_CHARS,
    MAX_NOTES_PER_AGENT,
    RECALL_LIMIT,
    MemoryService,
    keywords_of,
)
from tests.unit.agents.helpers import Conversation, agent_config, build
from tests.unit.fakes import FakeClock, FakeUnitOfWorkFactory

MEMORY_TOOLS = ("remember", "recall_memories")


@pytest.fixture
def uow() -> FakeUnitOfWorkFactory:
    return FakeUnitOfWorkFactory()


@pytest.fixture
def memories(uow: FakeUnitOfWorkFactory) -> MemoryService:
    return MemoryService(uow, FakeClock(datetime(2026, 1, 1, tzinfo=UTC)))


def conversation(
    factory: AgentFactory, memories: MemoryService | None, user: str = "alice", agent: str = "helper"
) -> Conversation:
    built = build(factory, agent_config(agent, tools=MEMORY_TOOLS))
    return Conversation(built, TurnDeps(user, agent, "chat-1", memory=memories))


class TestTheTools:
    async def test_a_remembered_note_is_recalled_in_a_later_conversation(
        self, factory: AgentFactory, memories: MemoryService
    ) -> None:
        saved = await conversation(factory, memories).say('/tool remember {"note": "Likes green tea"}')
        found = await conversation(factory, memories).say('/tool recall_memories {"query": "TEA"}')
        assert saved.output.startswith("tool remember returned: remembered (note ")
        assert found.output == 'tool recall_memories returned: ["Likes green tea"]'

    async def test_notes_are_kept_for_the_user_of_the_run_and_the_agent(
        self, factory: AgentFactory, memories: MemoryService, uow: FakeUnitOfWorkFactory
    ) -> None:
        await conversation(factory, memories, user="alice").say('/tool remember {"note": "alice fact"}')
        bob = await conversation(factory, memories, user="bob").say("/tool recall_memories {}")
        other_agent = await conversation(factory, memories, agent="other").say("/tool recall_memories {}")
        assert [(m.user_id, m.agent_name) for m in uow.store.memories] == [("alice", "helper")]
        assert bob.output == "tool recall_memories returned: no notes found"
        assert other_agent.output == "tool recall_memories returned: no notes found"

    async def test_a_rule_the_service_enforces_is_told_to_the_model(
        self, factory: AgentFactory, memories: MemoryService
    ) -> None:
        result = await conversation(factory, memories).say('/tool remember {"note": "   "}')
        assert result.output == "tool remember returned: error: the note is empty"

    async def test_without_a_memory_backend_the_tools_say_so(self, factory: AgentFactory) -> None:
        result = await conversation(factory, None).say('/tool remember {"note": "x"}')
        assert result.output == "tool remember returned: error: memories are not available here " + (
            "(no memory backend for this run)"
        )

    def test_the_backend_may_come_as_the_tool_backend(self, memories: MemoryService) -> None:
        deps = TurnDeps("alice", "helper", None, backend=None, memory=None)
        assert deps.memory_backend() is None
        assert TurnDeps("alice", "helper", None, memory=memories).memory_backend() is memories


class TestRecallSearch:
    async def test_recall_matches_any_keyword_case_insensitively_newest_first(
        self, memories: MemoryService
    ) -> None:
        for note in ("Birthday is 3 May", "Has a cat", "Favourite food: ramen", "The cat is named Tom"):
            await memories.remember("alice", "helper", note)
        assert await memories.recall("alice", "helper", "CAT birthday") == [
            "The cat is named Tom",
            "Has a cat",
            "Birthday is 3 May",
        ]

    async def test_an_empty_query_lists_the_newest_notes_bounded(self, memories: MemoryService) -> None:
        for n in range(RECALL_LIMIT + 5):
            await memories.remember("alice", "helper", f"note {n}")
        recalled = await memories.recall("alice", "helper", "")
        assert recalled == [f"note {n}" for n in reversed(range(5, RECALL_LIMIT + 5))]

    def test_keywords_are_distinct_lowercase_and_bounded(self) -> None:
        assert keywords_of("Tea tea  COFFEE") == ["tea", "coffee"]
        assert len(keywords_of(" ".join(f"w{n}" for n in range(50)))) == 8
        assert keywords_of("   ") == []


class TestRules:
    async def test_notes_are_trimmed_and_bounded_in_length(self, memories: MemoryService) -> None:
        await memories.remember("alice", "helper", "  spaced  ")
        with pytest.raises(InvalidInput):
            await memories.remember("alice", "helper", "x" * (MAX_NOTE_CHARS + 1))
        assert await memories.recall("alice", "helper", "") == ["spaced"]

    async def test_a_full_memory_refuses_new_notes(
        self, memories: MemoryService, uow: FakeUnitOfWorkFactory
    ) -> None:
        from chatserver.domain import Memory

        now = datetime(2026, 1, 1, tzinfo=UTC)
        uow.store.memories = [Memory(n, "alice", "helper", f"n{n}", now) for n in range(MAX_NOTES_PER_AGENT)]
        with pytest.raises(InvalidInput, match="memory is full"):
            await memories.remember("alice", "helper", "one more")
        await memories.remember("alice", "other", "another agent still has room")


class TestTheUsersControl:
    async def test_listing_is_the_callers_newest_first_optionally_per_agent(
        self, memories: MemoryService
    ) -> None:
        await memories.remember("alice", "helper", "a1")
        await memories.remember("alice", "other", "a2")
        await memories.remember("bob", "helper", "b1")
        assert [m.content for m in await memories.list("alice", None)] == ["a2", "a1"]
        assert [m.content for m in await memories.list("alice", "helper")] == ["a1"]
        with pytest.raises(InvalidInput):
            await memories.list("alice", None, limit=0)

    async def test_erasing_deletes_only_the_callers_notes_of_that_agent_and_is_audited(
        self, memories: MemoryService, uow: FakeUnitOfWorkFactory
    ) -> None:
        await memories.remember("alice", "helper", "a1")
        await memories.remember("alice", "helper", "a2")
        await memories.remember("alice", "other", "a3")
        await memories.remember("bob", "helper", "b1")
        assert await memories.erase("alice", "helper") == 2
        assert sorted(m.content for m in uow.store.memories) == ["a3", "b1"]
        assert [(e.type, e.user_id, e.data) for e in uow.store.events] == [
            ("memories.deleted", "alice", {"deleted": 2})
        ]

    async def test_deleting_someone_elses_note_is_not_found(
        self, memories: MemoryService, uow: FakeUnitOfWorkFactory
    ) -> None:
        await memories.remember("bob", "helper", "b1")
        bobs = uow.store.memories[0].id
        with pytest.raises(NotFound):
            await memories.delete("alice", bobs)
        await memories.delete("bob", bobs)
        assert uow.store.memories == []
