"""One shared BuiltAgent, many concurrent runs: each run sees only its own conversation."""

from __future__ import annotations

import asyncio

from chatserver.agents.factory import AgentFactory
from chatserver.agents.history import to_model_messages
from chatserver.agents.registry import ModelRegistry
from chatserver.agents.runner import stream_turn
from chatserver.agents.tools import ToolRegistry
from chatserver.agents.types import BuiltAgent, DoneEvent
from chatserver.config import Settings
from tests.unit.agents.helpers import Conversation, agent_config, deps, stored


def shared_agent(latency_ms: int = 10) -> BuiltAgent:
    settings = Settings(database_url="sqlite+aiosqlite:///:memory:", echo_latency_ms=latency_ms)
    return AgentFactory(ModelRegistry(settings), ToolRegistry()).build(agent_config(), [])


class TestSharedAgentIsolation:
    async def test_two_overlapping_conversations_never_see_each_others_messages(self) -> None:
        built = shared_agent()
        alice = Conversation(built, deps("alice"))
        bob = Conversation(built, deps("bob"))
        await asyncio.gather(alice.say("a1"), bob.say("b1"))
        await asyncio.gather(alice.say("/sleep 40 a2"), bob.say("/sleep 10 b2"))
        alice_recall, bob_recall = await asyncio.gather(alice.say("/recall"), bob.say("/recall"))
        assert alice_recall.output == "recall: a1 | /sleep 40 a2"
        assert bob_recall.output == "recall: b1 | /sleep 10 b2"

    async def test_a_recall_during_another_runs_sleep_sees_only_its_own_history(self) -> None:
        built = shared_agent(latency_ms=0)
        sleeper = Conversation(built, deps("alice"))
        await sleeper.say("secret of alice")
        recaller = Conversation(built, deps("bob"))
        await recaller.say("bob's note")
        sleeping = asyncio.create_task(sleeper.say("/sleep 50 done"))
        await asyncio.sleep(0.01)
        assert (await recaller.say("/recall")).output == "recall: bob's note"
        assert (await sleeping).output == "echo: done"
        assert (await sleeper.say("/recall")).output == "recall: secret of alice | /sleep 50 done"

    async def test_many_concurrent_conversations_each_recall_their_own_messages(self) -> None:
        built = shared_agent(latency_ms=5)
        chats = [Conversation(built, deps(f"user-{n}")) for n in range(20)]
        await asyncio.gather(*(chat.say(f"m{n}-first") for n, chat in enumerate(chats)))
        await asyncio.gather(*(chat.say(f"/sleep {n % 7} m{n}-second") for n, chat in enumerate(chats)))
        recalls = await asyncio.gather(*(chat.say("/recall") for chat in chats))
        for n, result in enumerate(recalls):
            assert result.output == f"recall: m{n}-first | /sleep {n % 7} m{n}-second"

    async def test_concurrent_streams_on_one_agent_are_isolated_too(self) -> None:
        built = shared_agent()
        alice = Conversation(built, deps("alice"))
        bob = Conversation(built, deps("bob"))
        await alice.say("only alice")
        await bob.say("only bob")
        histories = {"alice": alice.messages, "bob": bob.messages}

        async def stream(name: str) -> str:
            async for event in stream_turn(
                built,
                "/recall",
                history=to_model_messages(stored(histories[name])),
                deps=deps(name),
                timeout_seconds=5,
                max_requests=5,
            ):
                if isinstance(event, DoneEvent):
                    return event.result.output
            raise AssertionError("no done event")

        outputs = await asyncio.gather(stream("alice"), stream("bob"))
        assert list(outputs) == ["recall: only alice", "recall: only bob"]
