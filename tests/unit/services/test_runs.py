"""Runs on fakes: they outlive their readers, can be followed from any event, cancelled, queued,
retried idempotently, and ended by the supervisor when their replica is gone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest
from pydantic_ai import Tool
from pydantic_ai.messages import ModelMessage, ModelRequest, ToolReturnPart, UserPromptPart
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, DeltaToolCalls, FunctionModel

from chatserver.agents.cache import AgentCache
from chatserver.agents.factory import AgentFactory, assemble
from chatserver.agents.registry import ModelRegistry
from chatserver.agents.tools import ToolRegistry
from chatserver.agents.types import TurnDeps
from chatserver.config import Settings
from chatserver.domain import AgentConfig, ConfigVersions, NewMessage, Run, RunEvent, StartRun
from chatserver.errors import ChatBusy, Conflict, DatabaseUnavailable, InvalidInput, NotFound
from chatserver.services.agent_loader import AgentLoader
from chatserver.services.runs import RunHandle
from chatserver.services.turn_policy import TurnPolicy
from tests.unit.fakes import FakeClock, FakeStore, FakeUnitOfWorkFactory
from tests.unit.services.runs import RecordingListener, Runs, build_runs

CANCEL_DEADLINE_SECONDS = 1.0


class HangingModel:
    """Streams one token, then waits until cancelled."""

    def __init__(self) -> None:
        self.waiting = asyncio.Event()
        self.cancelled = asyncio.Event()

    async def stream(self, messages: list[ModelMessage], info: AgentInfo) -> AsyncIterator[str]:
        yield "partial "
        self.waiting.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        yield "never sent"


@dataclass
class Rig:
    store: FakeStore
    clock: FakeClock
    cache: AgentCache
    runs: Runs
    listener: RecordingListener

    def hang(self, user_id: str = "u1", agent_name: str = "assistant") -> HangingModel:
        """Make the (user, agent) pair's cached agent a model that never finishes."""
        model = HangingModel()
        self.cache_agent(FunctionModel(stream_function=model.stream), user_id, agent_name)
        return model

    def cache_agent(
        self,
        model: FunctionModel,
        user_id: str = "u1",
        agent_name: str = "assistant",
        *,
        tools: Sequence[Tool[TurnDeps]] = (),
    ) -> None:
        """Cache an agent of ``model`` as built at the stored versions, as the loader would: turns keep it."""
        config, stamps = self.store.agents[agent_name], self.store.versions
        versions = ConfigVersions(stamps.get(f"agent:{agent_name}", "0"), stamps.get(f"user:{user_id}", "0"))
        built = assemble(config, config.system_prompt, model, tools)
        self.cache.put((user_id, agent_name), replace(built, versions=versions))

    def stored(self) -> list[tuple[str, str, bool]]:
        return [(m.role, m.content, m.incomplete) for m in self.store.messages]

    def audit(self) -> list[str]:
        return [e.type for e in self.store.events if e.type.startswith("turn.")]

    async def start(
        self, message: str, chat_id: str | None = "c1", user_id: str = "u1", **extra: object
    ) -> RunHandle:
        return await self.runs.service.start(
            StartRun(user_id, "assistant", message, chat_id=chat_id, **extra)
        )  # type: ignore[arg-type]


POLICY = TurnPolicy(history_window=50, max_message_chars=100, model_timeout_seconds=5.0, max_model_requests=5)


@pytest.fixture
def rig() -> Rig:
    return make_rig(POLICY)


def make_rig(policy: TurnPolicy) -> Rig:
    settings = Settings(database_url="sqlite+aiosqlite:///:memory:")
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    uow = FakeUnitOfWorkFactory()
    cache = AgentCache(10, 900, clock)
    loader = AgentLoader(uow, AgentFactory(ModelRegistry(settings), ToolRegistry(clock)), cache)
    listener = RecordingListener()
    uow.store.agents["assistant"] = AgentConfig("assistant", "echo", "Base prompt.", tools=("current_time",))
    return Rig(uow.store, clock, cache, build_runs(uow, loader, clock, policy, listener=listener), listener)


async def collect(handle: RunHandle, after: str | None = None) -> list[RunEvent]:
    return [event async for event in handle.events(after)]


async def settled(rig: Rig) -> None:
    """Every run task of the executor has ended (given 5 s to end by itself)."""
    await rig.runs.executor.aclose(5)
    assert rig.runs.executor.running() == []


class TestEvents:
    async def test_the_run_event_comes_first_and_the_tokens_concatenate_to_the_stored_answer(
        self, rig: Rig
    ) -> None:
        handle = await rig.start("one two three")
        events = await collect(handle)
        assert (events[0].kind, events[0].data) == (
            "run",
            {"run_id": handle.run.id, "chat_id": "c1", "status": "running"},
        )
        # Coalesced: the first token is written at once, the burst after it as one event.
        assert [(e.kind, e.data.get("delta")) for e in events[1:-1]] == [
            ("token", "echo: "),
            ("token", "one two three"),
        ]
        assert "".join(e.data["delta"] for e in events if e.kind == "token") == events[-1].data["response"]
        assert rig.stored() == [("user", "one two three", False), ("assistant", "echo: one two three", False)]
        assert [int(e.id) for e in events] == list(range(1, len(events) + 1))

    async def test_the_answer_is_stored_before_the_done_event_is_read(self, rig: Rig) -> None:
        async for event in (await rig.start("hi")).events():
            if event.kind == "done":
                assert rig.stored() == [("user", "hi", False), ("assistant", "echo: hi", False)]

    async def test_a_reader_that_leaves_does_not_stop_the_run(self, rig: Rig) -> None:
        handle = await rig.start("/sleep 30 still answered")
        reader = handle.events()
        assert (await anext(reader)).kind == "run"
        await reader.aclose()
        await settled(rig)
        assert rig.stored()[-1] == ("assistant", "echo: still answered", False)
        run = await rig.runs.service.get("u1", handle.run.id)
        assert (run.status, run.model, run.usage.requests) == ("completed", "echo", 1)

    async def test_following_from_any_event_gives_the_rest_exactly_once(self, rig: Rig) -> None:
        handle = await rig.start("/tool current_time {}")
        events = await collect(handle)
        for i, event in enumerate(events[:-1]):
            assert await collect(handle, event.id) == events[i + 1 :]

    async def test_a_run_followed_after_its_log_expired_ends_with_its_stored_outcome(self, rig: Rig) -> None:
        handle = await rig.start("remember me")
        events = await collect(handle)
        rig.runs.events._logs.clear()
        [final] = await collect(handle, events[1].id)
        assert (final.kind, final.data) == ("done", events[-1].data)

    async def test_a_bad_last_event_id_is_invalid_input(self, rig: Rig) -> None:
        handle = await rig.start("hi")
        await collect(handle)
        for bad in ("abc", "²", "-1", "1" * 13):
            with pytest.raises(InvalidInput):
                await rig.runs.service.attach("u1", handle.run.id, bad)


class TestOwnership:
    async def test_another_users_run_is_not_found_everywhere(self, rig: Rig) -> None:
        handle = await rig.start("mine")
        await collect(handle)
        with pytest.raises(NotFound):
            await rig.runs.service.get("u2", handle.run.id)
        with pytest.raises(NotFound):
            await rig.runs.service.cancel("u2", handle.run.id)
        with pytest.raises(NotFound):
            await rig.runs.service.attach("u2", handle.run.id, None)
        with pytest.raises(NotFound):
            await rig.runs.service.list("u2", "c1", status=None, limit=10, before=None)

    async def test_runs_of_a_chat_are_listed_newest_first(self, rig: Rig) -> None:
        first = await rig.start("one")
        await collect(first)
        rig.clock.advance(1)
        second = await rig.start("two")
        await collect(second)
        listed = await rig.runs.service.list("u1", "c1", status=None, limit=10, before=None)
        assert [r.id for r in listed] == [second.run.id, first.run.id]
        assert [r.status for r in listed] == ["completed", "completed"]


class TestCancel:
    async def test_cancelling_a_run_stops_its_model_within_a_second_and_keeps_the_partial_answer(
        self, rig: Rig
    ) -> None:
        model = rig.hang()
        handle = await rig.start("hello")
        await asyncio.wait_for(model.waiting.wait(), 5)
        started = asyncio.get_running_loop().time()
        run = await rig.runs.service.cancel("u1", handle.run.id)
        assert asyncio.get_running_loop().time() - started < CANCEL_DEADLINE_SECONDS
        assert model.cancelled.is_set() and run.status == "cancelled"
        assert rig.stored() == [("user", "hello", False), ("assistant", "partial ", True)]
        assert rig.audit() == ["turn.cancelled"] and rig.listener.failed == [("assistant", "cancelled")]
        assert (await collect(handle))[-1].kind == "cancelled"
        rig.cache.invalidate("u1", "assistant")
        follow_up = await collect(await rig.start("/recall"))
        assert follow_up[-1].data["response"] == "recall: hello"

    async def test_cancelling_an_ended_run_is_a_conflict(self, rig: Rig) -> None:
        handle = await rig.start("done already")
        await collect(handle)
        with pytest.raises(Conflict):
            await rig.runs.service.cancel("u1", handle.run.id)

    async def test_a_queued_run_cancelled_before_it_starts_never_runs(self, rig: Rig) -> None:
        rig.hang()
        running = await rig.start("first")
        queued = await rig.start("second")
        assert queued.run.status == "queued"
        assert (await rig.runs.service.cancel("u1", queued.run.id)).status == "cancelled"
        await rig.runs.service.cancel("u1", running.run.id)
        await settled(rig)
        # Cancelled before its model began: the user's message is kept, there is no partial answer.
        assert [m for _, m, _ in rig.stored()] == ["first"]
        assert [e.kind for e in await collect(queued)] == ["run", "cancelled"]


class TestBusyChats:
    async def test_enqueued_runs_run_one_at_a_time_in_arrival_order(self, rig: Rig) -> None:
        handles = [await rig.start(f"/sleep 2 m{i}") for i in range(10)]
        assert [h.run.status for h in handles] == ["running"] + ["queued"] * 9
        for handle in handles:
            assert (await handle.outcome()).kind == "done"
        words = [content for role, content, _ in rig.stored() if role == "assistant"]
        assert words == [f"echo: m{i}" for i in range(10)]
        assert [m.turn for m in rig.store.messages] == [t for t in range(1, 11) for _ in range(2)]

    async def test_the_reject_policy_refuses_a_busy_chat_and_stores_nothing(self, rig: Rig) -> None:
        rig.hang()
        running = await rig.start("first")
        with pytest.raises(ChatBusy):
            await rig.start("second", busy_policy="reject")
        assert len(rig.store.runs) == 1
        await rig.runs.service.cancel("u1", running.run.id)
        rig.cache.invalidate("u1", "assistant")
        assert (await (await rig.start("third", busy_policy="reject")).outcome()).kind == "done"

    async def test_the_interrupt_policy_cancels_the_running_run_and_then_starts(self, rig: Rig) -> None:
        model = rig.hang()
        running = await rig.start("first")
        await asyncio.wait_for(model.waiting.wait(), 5)
        rig.cache.invalidate("u1", "assistant")
        interrupting = await rig.start("second", busy_policy="interrupt")
        assert (await interrupting.outcome()).data["response"] == "echo: second"
        assert (await rig.runs.service.get("u1", running.run.id)).status == "cancelled"
        assert [m for _, m, _ in rig.stored()] == ["first", "partial ", "second", "echo: second"]

    async def test_a_chat_of_another_agent_is_refused_before_anything_is_stored(self, rig: Rig) -> None:
        await collect(await rig.start("mine"))
        rig.store.agents["other"] = AgentConfig("other", "echo", "x")
        with pytest.raises(Conflict):
            await rig.runs.service.start(StartRun("u1", "other", "hi", chat_id="c1"))
        assert len(rig.store.runs) == 1

    async def test_a_chat_id_another_user_has_starts_the_callers_own_chat(self, rig: Rig) -> None:
        await collect(await rig.start("mine"))
        theirs = await collect(await rig.start("theirs", user_id="u2"))
        assert theirs[-1].data["response"] == "echo: theirs"
        assert sorted(rig.store.chats) == [("u1", "c1"), ("u2", "c1")]
        assert [r.user_id for r in rig.store.runs.values()] == ["u1", "u2"]


class TestActiveRun:
    async def test_a_chats_active_run_is_the_one_running_then_the_next_then_none(self, rig: Rig) -> None:
        model = rig.hang()
        running = await rig.start("first")
        queued = await rig.start("second")
        assert (await rig.runs.service.active("u1", "c1")) == RunHandle(running.run, rig.runs.service)
        await asyncio.wait_for(model.waiting.wait(), 5)
        rig.cache.invalidate("u1", "assistant")
        await rig.runs.service.cancel("u1", running.run.id)
        next_up = await rig.runs.service.active("u1", "c1")
        assert next_up is not None and next_up.run.id == queued.run.id
        await queued.outcome()
        assert await rig.runs.service.active("u1", "c1") is None

    async def test_a_chat_the_caller_does_not_have_is_not_found(self, rig: Rig) -> None:
        await collect(await rig.start("mine"))
        with pytest.raises(NotFound):
            await rig.runs.service.active("u2", "c1")


class TestIdempotency:
    async def test_the_same_key_returns_the_same_run_and_stores_its_message_once(self, rig: Rig) -> None:
        handles = await asyncio.gather(
            *[rig.start("once", idempotency_key="k1", request_hash="h") for _ in range(5)],
            return_exceptions=True,
        )
        runs = {h.run.id for h in handles if isinstance(h, RunHandle)}
        assert len(runs) == 1
        for handle in handles:
            if isinstance(handle, RunHandle):
                assert (await handle.outcome()).data["response"] == "echo: once"
        assert [m for _, m, _ in rig.stored()] == ["once", "echo: once"]

    async def test_the_same_key_with_another_request_is_a_conflict(self, rig: Rig) -> None:
        await collect(await rig.start("once", idempotency_key="k1", request_hash="h1"))
        with pytest.raises(Conflict):
            await rig.start("twice", idempotency_key="k1", request_hash="h2")

    async def test_a_key_older_than_a_day_starts_a_new_run(self, rig: Rig) -> None:
        first = await rig.start("again", idempotency_key="k1", request_hash="h")
        await collect(first)
        rig.clock.advance(25 * 3600)
        second = await rig.start("again", idempotency_key="k1", request_hash="h")
        assert second.run.id != first.run.id
        await collect(second)
        assert [m for _, m, _ in rig.stored()].count("again") == 2


SHORT_LEASE = replace(POLICY, lease_seconds=0.3)


class Unreachable:
    """A unit of work factory for a database that cannot be reached."""

    def __call__(self, *, user_id: str | None = None) -> object:
        raise DatabaseUnavailable("database unavailable")


class TestLeases:
    def dead_run(self, rig: Rig, chat_id: str = "c1") -> Run:
        """A run that was running on a replica that died a minute ago."""
        run = Run(
            "dead",
            "u1",
            chat_id,
            "assistant",
            "running",
            "lost?",
            rig.clock.now(),
            started_at=rig.clock.now(),
        )
        rig.store.runs[run.id] = run
        rig.store.leases[run.id] = ("dead-replica", rig.clock.now() - timedelta(minutes=1))
        return run

    async def test_a_run_whose_replica_died_is_interrupted_and_the_next_queued_run_starts(
        self, rig: Rig
    ) -> None:
        await collect(await rig.start("before"))
        self.dead_run(rig)
        queued = await rig.start("next")
        assert queued.run.status == "queued"
        await rig.runs.supervisor.tick()
        dead = await rig.runs.service.get("u1", "dead")
        assert (dead.status, dead.error and dead.error.code) == ("interrupted", "server_restarted")
        assert (await queued.outcome()).data["response"] == "echo: next"

    async def test_a_replica_that_lost_its_lease_stops_its_run_and_writes_nothing(self, rig: Rig) -> None:
        rig.hang()
        handle = await rig.start("hello")
        await asyncio.sleep(0.01)
        _owner, until = rig.store.leases[handle.run.id]
        rig.store.leases[handle.run.id] = ("replica-2", until)
        await rig.runs.supervisor.renew()
        events = await asyncio.wait_for(collect(handle), 5)
        assert (events[-1].kind, events[-1].data["code"]) == ("error", "server_restarted")
        assert rig.stored() == [("user", "hello", False)]
        assert (await rig.runs.service.get("u1", handle.run.id)).status == "running"

    async def test_a_run_whose_lease_ran_out_while_renewals_failed_stops_and_writes_nothing(self) -> None:
        rig = make_rig(SHORT_LEASE)
        runs = rig.runs
        model = rig.hang()
        handle = await rig.start("hello")
        await asyncio.wait_for(model.waiting.wait(), 5)
        runs.supervisor._uow = Unreachable()  # type: ignore[assignment]
        with pytest.raises(DatabaseUnavailable):
            await runs.supervisor.renew()
        assert not model.cancelled.is_set()  # the lease still holds: the run goes on
        await asyncio.sleep(SHORT_LEASE.lease_seconds)
        with pytest.raises(DatabaseUnavailable):
            await runs.supervisor.renew()
        events = await asyncio.wait_for(collect(handle), 5)
        assert model.cancelled.is_set()
        assert (events[-1].kind, events[-1].data["code"]) == ("error", "server_restarted")
        assert rig.stored() == [("user", "hello", False)]
        assert rig.listener.failed == [("assistant", "lease_lost")]

    async def test_a_cancel_flagged_by_another_replica_stops_the_run_at_the_next_renewal(
        self, rig: Rig
    ) -> None:
        model = rig.hang()
        handle = await rig.start("hello")
        await asyncio.wait_for(model.waiting.wait(), 5)
        rig.store.cancel_requested.add(handle.run.id)
        await rig.runs.supervisor.renew()
        assert (await handle.outcome()).kind == "cancelled"


class TestStatelessRuns:
    async def test_the_callers_history_is_the_context_and_no_chat_is_stored(self, rig: Rig) -> None:
        history = (NewMessage("user", "first question"), NewMessage("assistant", "first answer"))
        handle = await rig.runs.service.start(StartRun("u1", "assistant", "/recall", history=history))
        assert (await handle.outcome()).data["response"] == "recall: first question"
        assert rig.store.chats == {} and rig.stored() == []
        assert [
            (e.type, e.chat_id, e.data["stateless"]) for e in rig.store.events if e.type.startswith("turn.")
        ] == [("turn.completed", None, True)]
        assert (await rig.runs.service.get("u1", handle.run.id)).chat_id is None

    async def test_instructions_are_appended_after_the_agents_prompt(self, rig: Rig) -> None:
        handle = await rig.runs.service.start(
            StartRun("u1", "assistant", "/system", instructions="Answer briefly.")
        )
        assert (await handle.outcome()).data["response"] == "Base prompt.\n\nAnswer briefly."

    async def test_a_stateless_run_can_be_cancelled(self, rig: Rig) -> None:
        model = rig.hang()
        handle = await rig.runs.service.start(StartRun("u1", "assistant", "hello"))
        await asyncio.wait_for(model.waiting.wait(), 5)
        await rig.runs.service.cancel("u1", handle.run.id)
        assert model.cancelled.is_set() and rig.stored() == []
        assert replace(await rig.runs.service.get("u1", handle.run.id)).status == "cancelled"


class SteerableModel:
    """First request: waits to be released, then calls ``noop``; second: says which user messages it saw."""

    def __init__(self) -> None:
        self.in_first_request = asyncio.Event()
        self.release = asyncio.Event()

    async def stream(
        self, messages: list[ModelMessage], info: AgentInfo
    ) -> AsyncIterator[str | DeltaToolCalls]:
        prompts = [
            part.content
            for message in messages
            if isinstance(message, ModelRequest)
            for part in message.parts
            if isinstance(part, UserPromptPart)
        ]
        if not any(isinstance(part, ToolReturnPart) for message in messages for part in message.parts):
            self.in_first_request.set()
            await self.release.wait()
            yield {0: DeltaToolCall(name="noop", json_args="{}", tool_call_id="call-1")}
            return
        yield "saw: " + " | ".join(str(prompt) for prompt in prompts)


def steerable(rig: Rig) -> SteerableModel:
    model = SteerableModel()

    def noop() -> str:
        return "nothing"

    rig.cache_agent(FunctionModel(stream_function=model.stream), tools=[Tool(noop)])
    return model


class TestSteering:
    async def test_a_steering_message_reaches_the_running_run_before_its_next_model_request(
        self, rig: Rig
    ) -> None:
        model = steerable(rig)
        running = await rig.start("first")
        await asyncio.wait_for(model.in_first_request.wait(), 5)
        steering = await rig.start("also this", busy_policy="steer")
        assert steering.run.status == "queued"
        model.release.set()
        answer = await running.outcome()
        assert answer.data["response"] == "saw: first | also this"
        assert (await steering.outcome()).data == answer.data
        assert [(role, content) for role, content, _ in rig.stored()] == [
            ("user", "first"),
            ("assistant", ""),
            ("tool", "nothing"),
            ("user", "also this"),
            ("assistant", "saw: first | also this"),
        ]
        steered = await rig.runs.service.get("u1", steering.run.id)
        assert steered.status == "completed" and steered.result == {
            "run_id": steering.run.id,
            "chat_id": "c1",
            "steered_into": running.run.id,
        }

    async def test_a_steering_message_that_comes_too_late_runs_after_the_run(self, rig: Rig) -> None:
        model = rig.hang()
        running = await rig.start("first")
        await asyncio.wait_for(model.waiting.wait(), 5)
        steering = await rig.start("later", busy_policy="steer")
        await rig.runs.service.cancel("u1", running.run.id)
        rig.cache.invalidate("u1", "assistant")
        assert (await steering.outcome()).data["response"] == "echo: later"
        assert [m for _, m, _ in rig.stored()] == ["first", "partial ", "later", "echo: later"]


class LostReply:
    """The next unit of work commits, then fails as if the database's answer were lost on the way."""

    def __init__(self, inner: FakeUnitOfWorkFactory) -> None:
        self.inner = inner
        self.armed = False

    def __call__(self, *, user_id: str | None = None) -> object:
        uow = self.inner(user_id=user_id)
        if not self.armed:
            return uow
        self.armed = False
        commit = uow.commit

        async def commit_then_fail() -> None:
            await commit()
            raise DatabaseUnavailable("database unavailable")

        uow.commit = commit_then_fail  # type: ignore[method-assign]
        return uow


class TestStartsWhoseAnswerWasLost:
    async def test_a_run_stored_by_a_start_that_failed_is_ended_and_its_chat_freed(self, rig: Rig) -> None:
        flaky = LostReply(rig.runs.executor._uow)  # type: ignore[arg-type]
        rig.runs.service._uow = flaky  # type: ignore[assignment]
        flaky.armed = True
        with pytest.raises(DatabaseUnavailable):
            await rig.start("lost")
        [orphan] = rig.store.runs.values()
        assert orphan.status == "running"  # stored and claimed, with nothing executing it
        async with asyncio.timeout(5):
            await asyncio.gather(*rig.runs.executor._abandoning)
        ended = await rig.runs.service.get("u1", orphan.id)
        assert (ended.status, ended.error and ended.error.code) == ("failed", "database_unavailable")
        assert (await (await rig.start("next")).outcome()).data["response"] == "echo: next"
