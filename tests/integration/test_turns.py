"""A turn's two transactions (``uow.turns``): one statement each on PostgreSQL, composed on SQLite.

Both must write and read exactly what the chat and message repositories would, for the caller only.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncEngine

from chatserver.domain import Message, NewEvent, NewMessage, Run, RunOutcome, ToolCall, TurnUsage
from chatserver.services.ids import sortable_id
from chatserver.storage.protocols import ClosedRun, HandOn, StartedRun, UnitOfWork
from chatserver.storage.sql import SqlUnitOfWorkFactory, create_engine
from chatserver.storage.sql.chats import TITLE_MAX_CHARS
from chatserver.storage.sql.tables import chat_messages, runs
from chatserver.storage.sql.turns import _OPEN
from tests.support.builders import NOW, chat
from tests.support.databases import settings_for

LATER = NOW + timedelta(minutes=5)
CALL = ToolCall(id="call-1", name="current_time", args={"tz": "UTC", "nested": {"n": [1, 2]}})
ANSWER = [
    NewMessage("assistant", "", tool_calls=(CALL,)),
    NewMessage("tool", "12:00", tool_call_id="call-1", tool_name="current_time"),
    NewMessage("assistant", "It is noon."),
]


def _event(user_id: str = "alice", chat_id: str | None = "c1") -> NewEvent:
    return NewEvent("turn.completed", user_id=user_id, agent_name="helper", chat_id=chat_id, data={"turn": 1})


OWNER = "replica-1"


async def _running(uow: UnitOfWork, user_id: str, chat_id: str | None, run_id: str) -> RunOutcome:
    """A run of ``user_id`` held by ``OWNER``, and the outcome that ends it."""
    run = Run(run_id, user_id, chat_id, "helper", "running", "hi", NOW, started_at=NOW)
    assert await uow.runs.add(run, owner=OWNER, lease_until=LATER)
    return RunOutcome(run_id, OWNER, "completed", "echo", TurnUsage(3, 4, 1), result={"response": "ok"})


async def _turn(uow_factory: SqlUnitOfWorkFactory, n: int, answer: list[NewMessage]) -> None:
    async with uow_factory(user_id="alice") as uow:
        outcome = await _running(uow, "alice", "c1", f"run-{n}")
        claimed = await uow.turns.open(
            "alice", "c1", "helper", f"u{n}", title=f"u{n}", now=NOW, window_turns=50
        )
        assert claimed is not None
        turn = claimed.chat.turn_count
        assert (
            await uow.turns.close("alice", "c1", turn, answer, _event(), now=NOW, outcome=outcome)
        ).written
        await uow.commit()


def _shape(messages: list[Message]) -> list[tuple[object, ...]]:
    return [(m.turn, m.role, m.content, m.tool_calls, m.tool_call_id, m.tool_name) for m in messages]


@pytest.mark.usefixtures("alices_chat")
async def test_opening_a_turn_claims_it_stores_the_message_and_reads_the_turns_before_it(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    await _turn(uow_factory, 1, ANSWER)
    async with uow_factory(user_id="alice") as uow:
        claimed = await uow.turns.open(
            "alice", "c1", "helper", "u2", title="ignored", now=LATER, window_turns=50
        )
        await uow.commit()
    assert claimed is not None
    assert (claimed.chat.turn_count, claimed.chat.title, claimed.chat.agent_name) == (2, "u1", "helper")
    assert (claimed.chat.created_at, claimed.chat.updated_at) == (NOW, LATER)
    assert _shape(claimed.window) == [
        (1, "user", "u1", (), None, None),
        (1, "assistant", "", (CALL,), None, None),
        (1, "tool", "12:00", (), "call-1", "current_time"),
        (1, "assistant", "It is noon.", (), None, None),
    ]
    assert {(m.chat_id, m.created_at) for m in claimed.window} == {("c1", NOW)}
    async with uow_factory(user_id="alice") as uow:
        page = await uow.messages.page("alice", "c1", limit=10, before=None)
    assert page[:4] == claimed.window
    assert (page[-1].turn, page[-1].role, page[-1].content, page[-1].created_at) == (2, "user", "u2", LATER)


@pytest.mark.usefixtures("alices_chat")
async def test_the_window_holds_only_the_last_turns_asked_for(uow_factory: SqlUnitOfWorkFactory) -> None:
    for n in range(1, 6):
        await _turn(uow_factory, n, [NewMessage("assistant", f"a{n}")])
    async with uow_factory(user_id="alice") as uow:
        two = await uow.turns.open("alice", "c1", "helper", "u6", title="t", now=NOW, window_turns=2)
        none = await uow.turns.open("alice", "c1", "helper", "u7", title="t", now=NOW, window_turns=0)
    assert two is not None and none is not None
    assert [m.content for m in two.window] == ["u4", "a4", "u5", "a5"]
    assert none.window == []
    assert none.chat.turn_count == 7


@pytest.mark.usefixtures("alices_chat")
async def test_the_first_turn_has_an_empty_window_and_a_title_cut_to_size(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    async with uow_factory(user_id="alice") as uow:
        claimed = await uow.turns.open(
            "alice", "c1", "helper", "hi", title="x" * 500, now=NOW, window_turns=50
        )
    assert claimed is not None
    assert claimed.window == []
    assert claimed.chat.turn_count == 1
    assert claimed.chat.title == "x" * TITLE_MAX_CHARS


@pytest.mark.usefixtures("alices_chat")
async def test_another_users_chat_cannot_be_opened_and_is_left_untouched(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    await _turn(uow_factory, 1, [NewMessage("assistant", "a1")])
    async with uow_factory(user_id="bob") as uow:
        foreign = await uow.turns.open(
            "bob", "c1", "helper", "intrusion", title="mine", now=LATER, window_turns=50
        )
        missing = await uow.turns.open(
            "bob", "nope", "helper", "hello", title="t", now=LATER, window_turns=50
        )
        await uow.commit()
    assert foreign is None and missing is None
    async with uow_factory(user_id="alice") as uow:
        stored = await uow.chats.get("alice", "c1")
        page = await uow.messages.page("alice", "c1", limit=10, before=None)
    assert stored is not None and stored.turn_count == 1 and stored.title == "u1"
    assert [m.content for m in page] == ["u1", "a1"]


@pytest.mark.usefixtures("alices_chat")
async def test_a_chat_of_another_agent_comes_back_as_it_is_and_nothing_of_the_turn_is_kept(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    await _turn(uow_factory, 1, [NewMessage("assistant", "a1")])
    async with uow_factory(user_id="alice") as uow:
        other = await uow.turns.open("alice", "c1", "other", "hi", title="t", now=LATER, window_turns=50)
    assert other is not None
    assert (other.chat.agent_name, other.window) == ("helper", [])
    async with uow_factory(user_id="alice") as uow:
        stored = await uow.chats.get("alice", "c1")
        page = await uow.messages.page("alice", "c1", limit=10, before=None)
    assert stored is not None and (stored.turn_count, stored.updated_at) == (1, NOW)
    assert [m.content for m in page] == ["u1", "a1"]


@pytest.mark.usefixtures("alices_chat")
async def test_closing_a_turn_stores_the_answer_in_order_and_its_event(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    await _turn(uow_factory, 1, ANSWER)
    async with uow_factory(user_id="alice") as uow:
        page = await uow.messages.page("alice", "c1", limit=10, before=None)
    async with uow_factory() as uow:
        events = await uow.events.list(type="turn.completed", user_id="alice", limit=10, before=None)
    expected = [(1, m.role, m.content, m.tool_calls, m.tool_call_id, m.tool_name) for m in ANSWER]
    assert _shape(page[1:]) == expected
    assert [m.id for m in page] == sorted(m.id for m in page)
    assert [(e.chat_id, e.agent_name, e.data) for e in events] == [("c1", "helper", {"turn": 1})]


@pytest.mark.usefixtures("alices_chat")
async def test_closing_a_turn_ends_its_run_with_the_outcome(uow_factory: SqlUnitOfWorkFactory) -> None:
    await _turn(uow_factory, 1, ANSWER)
    async with uow_factory(user_id="alice") as uow:
        run = await uow.runs.get("alice", "run-1")
    assert run is not None
    assert (run.status, run.model, run.usage, run.result) == (
        "completed",
        "echo",
        TurnUsage(3, 4, 1),
        {"response": "ok"},
    )
    assert run.finished_at == NOW


@pytest.mark.usefixtures("alices_chat")
async def test_closing_a_turn_whose_run_is_not_held_writes_nothing(uow_factory: SqlUnitOfWorkFactory) -> None:
    async with uow_factory(user_id="alice") as uow:
        outcome = await _running(uow, "alice", "c1", "run-1")
        await uow.commit()
    taken = RunOutcome("run-1", "replica-2", "completed", "echo", TurnUsage())
    async with uow_factory(user_id="alice") as uow:
        assert not (await uow.turns.close("alice", "c1", 1, ANSWER, _event(), now=NOW, outcome=taken)).written
        await uow.commit()
    async with uow_factory(user_id="bob") as uow:
        assert not (
            await uow.turns.close("bob", "c1", 1, ANSWER, _event("bob"), now=NOW, outcome=outcome)
        ).written
        await uow.commit()
    async with uow_factory(user_id="alice") as uow:
        assert (await uow.turns.close("alice", "c1", 1, [], _event(), now=NOW, outcome=outcome)).written
        await uow.commit()
    async with uow_factory(user_id="alice") as uow:
        assert not (
            await uow.turns.close("alice", "c1", 1, ANSWER, _event(), now=NOW, outcome=outcome)
        ).written
        await uow.commit()
    async with uow_factory() as uow:
        events = await uow.events.list(type=None, user_id=None, limit=10, before=None)
    async with uow_factory(user_id="alice") as uow:
        page = await uow.messages.page("alice", "c1", limit=10, before=None)
    assert len(events) == 1 and page == []


@pytest.mark.usefixtures("alices_chat")
async def test_a_partial_answer_is_stored_as_incomplete(uow_factory: SqlUnitOfWorkFactory) -> None:
    await _turn(uow_factory, 1, [NewMessage("assistant", "half an ans", incomplete=True)])
    async with uow_factory(user_id="alice") as uow:
        page = await uow.messages.page("alice", "c1", limit=10, before=None)
    assert [(m.role, m.incomplete) for m in page] == [("user", False), ("assistant", True)]


async def test_a_stateless_turn_leaves_only_its_event(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    async with uow_factory(user_id="alice") as uow:
        outcome = await _running(uow, "alice", None, "run-1")
        assert (
            await uow.turns.close("alice", None, 0, [], _event(chat_id=None), now=NOW, outcome=outcome)
        ).written
        await uow.commit()
    async with uow_factory() as uow:
        events = await uow.events.list(type=None, user_id="alice", limit=10, before=None)
    assert [(e.type, e.chat_id) for e in events] == [("turn.completed", None)]


_ROWS_READ = (
    "SELECT pg_stat_get_xact_tuples_returned('chat_messages'::regclass)"
    " + pg_stat_get_xact_tuples_fetched('chat_messages'::regclass)"
)
"""The table's rows read in this transaction, by sequential and by any index scan."""


async def _runs_read(engine: AsyncEngine) -> int:
    """Rows of ``runs`` read by every transaction reported so far, by sequential and index scans."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT pg_stat_clear_snapshot()"))
        statement = text(
            "SELECT seq_tup_read + coalesce(idx_tup_fetch, 0) FROM pg_stat_user_tables WHERE relname = 'runs'"
        )
        read: int = (await conn.execute(statement)).scalar_one()
        return read


async def _long_chat(uow_factory: SqlUnitOfWorkFactory) -> None:
    """Alice's chat c1 with 400 turns, in a table that has no statistics yet, as a new server's."""
    async with uow_factory() as uow:
        await uow.users.ensure("alice", is_admin=False, now=NOW)
        await uow.commit()
    async with uow_factory(user_id="alice") as uow:
        await uow.chats.create_if_absent(chat("c1", "alice", turn_count=400))
        rows = [
            {"chat_id": "c1", "user_id": "alice", "turn": n, "role": r, "content": r, "created_at": NOW}
            for n in range(1, 401)
            for r in ("user", "assistant")
        ]
        await uow.connection.execute(insert(chat_messages), rows)
        await uow.commit()


@pytest.mark.postgres
async def test_on_postgres_opening_a_turn_reads_only_the_windows_rows_however_long_the_chat(
    postgres_url: str,
) -> None:
    """Row-level security is on (the app role): its policy is checked before any condition that
    could raise, so a window bound computed inside the scan's condition would not bound the index
    scan, and the scan would walk the whole chat. A walk that names the owner beside each parent's
    id is planned, on a table without statistics, on the owner's index, and reads all the owner's
    messages. The turn function's inner plan is not visible to EXPLAIN: the transaction's own table
    statistics count the rows it read."""
    engine = create_engine(settings_for(postgres_url))
    try:
        uow_factory = SqlUnitOfWorkFactory(engine)
        await _long_chat(uow_factory)
        async with uow_factory(user_id="alice") as uow:
            driver = (await uow.connection.get_raw_connection()).driver_connection
            assert driver is not None
            async with driver.transaction():
                window = await driver.fetch(_OPEN, "c1", "alice", "helper", "t", NOW, "hi", 5, 5 * 64, None)
                read = await driver.fetchval(_ROWS_READ)
    finally:
        await engine.dispose()
    assert len(window) == 10
    # The walk: one primary-key lookup per message of the window, and one for the parent it stops at.
    assert read <= len(window) + 1


@pytest.mark.postgres
async def test_on_postgres_a_branch_read_for_the_page_reads_only_its_rows(postgres_url: str) -> None:
    engine = create_engine(settings_for(postgres_url))
    try:
        uow_factory = SqlUnitOfWorkFactory(engine)
        await _long_chat(uow_factory)
        async with uow_factory(user_id="alice") as uow:
            chat_row = await uow.chats.get("alice", "c1")
            assert chat_row is not None
            before = (await uow.connection.execute(text(_ROWS_READ))).scalar_one()
            branch = await uow.messages.branch("alice", "c1", from_id=chat_row.active_message_id, limit=20)
            read = (await uow.connection.execute(text(_ROWS_READ))).scalar_one() - before
    finally:
        await engine.dispose()
    assert [m.turn for m in branch] == [n for n in range(391, 401) for _ in range(2)]
    assert read <= len(branch) + 1


@pytest.mark.postgres
async def test_on_postgres_a_whole_turn_reads_few_runs_however_many_the_user_has(postgres_url: str) -> None:
    """The user has 400 ended runs in the chat, in a table without statistics: every lookup of a
    turn (the user's active runs, the chat's running one, the run's branch, its end) must find its
    rows by an index made for it, not by the owner's every run."""
    engine = create_engine(settings_for(postgres_url))
    try:
        uow_factory = SqlUnitOfWorkFactory(engine)
        await _long_chat(uow_factory)
        async with uow_factory(user_id="alice") as uow:
            ended = [
                {
                    "id": f"old-{n:03}",
                    "user_id": "alice",
                    "chat_id": "c1",
                    "agent_name": "helper",
                    "status": "completed",
                    "message": "m",
                    "created_at": NOW,
                    "turn": n,
                }
                for n in range(1, 401)
            ]
            await uow.connection.execute(insert(runs), ended)
            await uow.commit()
        run = _new_run(n=500)
        before = await _runs_read(engine)
        async with uow_factory(user_id="alice") as uow:
            started = await uow.turns.start(
                run, policy="enqueue", owner=OWNER, lease_until=LATER, max_active=5
            )
            claimed = await uow.turns.open(
                "alice", "c1", "helper", run.message, title="t", now=NOW, window_turns=5, run_id=run.id
            )
            assert claimed is not None
            outcome = RunOutcome(
                run.id, OWNER, "completed", "echo", TurnUsage(3, 4, 1), result={"response": "ok"}
            )
            closed = await uow.turns.close(
                "alice",
                "c1",
                claimed.chat.turn_count,
                [NewMessage("assistant", "ok")],
                _event(),
                now=NOW,
                outcome=outcome,
            )
            # Counted once this backend has reported them, which it does as the commit returns.
            await uow.connection.execute(text("SELECT pg_stat_force_next_flush()"))
            await uow.commit()
        read = await _runs_read(engine) - before
    finally:
        await engine.dispose()
    assert started.claimed == run.id and closed.written
    assert read <= 10, read


def _new_run(user_id: str = "alice", *, key: str | None = None, agent: str = "helper", n: int = 0) -> Run:
    created = NOW + timedelta(seconds=n)
    return Run(sortable_id(created), user_id, "c1", agent, "queued", f"m{n}", created, idempotency_key=key)


async def _start(uow_factory: SqlUnitOfWorkFactory, run: Run, policy: str = "enqueue") -> StartedRun:
    async with uow_factory(user_id=run.user_id) as uow:
        started = await uow.turns.start(run, policy=policy, owner=OWNER, lease_until=LATER)
        await uow.commit()
    return started


async def test_starting_a_run_creates_the_chat_and_starts_the_run_when_the_chat_is_free(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    first, second = _new_run(n=0), _new_run(n=1)
    started = await _start(uow_factory, first)
    queued = await _start(uow_factory, second)
    async with uow_factory(user_id="alice") as uow:
        chat_row = await uow.chats.get("alice", "c1")
        stored = [await uow.runs.get("alice", r.id) for r in (first, second)]
    assert started == StartedRun("accepted", claimed=first.id)
    assert queued == StartedRun("accepted", running=first.id)
    assert chat_row is not None and chat_row.agent_name == "helper"
    assert [r.status for r in stored if r] == ["running", "queued"]


async def test_starting_a_run_refuses_what_it_must_and_writes_nothing_then(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    running = _new_run(key="k1")
    await _start(uow_factory, running)
    refused = [
        await _start(uow_factory, _new_run(n=1), policy="reject"),
        await _start(uow_factory, _new_run(agent="other", n=3)),
        await _start(uow_factory, _new_run(key="k1", n=4)),
    ]
    async with uow_factory(user_id="alice") as uow:
        runs = await uow.runs.list("alice", "c1", status=None, limit=10, before=None)
    assert [r.outcome for r in refused] == ["busy", "other_agent", "key_taken"]
    assert refused[1].chat_agent == "helper"
    assert [r.id for r in runs] == [running.id]


async def test_a_run_on_a_chat_id_another_user_has_starts_the_callers_own_chat_at_once(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    """Nothing of alice's chat shows: not its agent, not its running run (bob's starts beside it)."""
    alices, bobs = _new_run(key="k1"), _new_run("bob", key="k1", agent="other", n=1)
    await _start(uow_factory, alices)
    started = await _start(uow_factory, bobs, policy="reject")
    async with uow_factory(user_id="bob") as uow:
        bobs_chat = await uow.chats.get("bob", "c1")
        bobs_runs = await uow.runs.list("bob", "c1", status=None, limit=10, before=None)
    async with uow_factory(user_id="alice") as uow:
        alices_chat = await uow.chats.get("alice", "c1")
        alices_runs = await uow.runs.list("alice", "c1", status=None, limit=10, before=None)
    assert started == StartedRun("accepted", claimed=bobs.id)
    assert bobs_chat is not None and alices_chat is not None
    assert (bobs_chat.agent_name, alices_chat.agent_name) == ("other", "helper")
    assert [(r.id, r.status) for r in bobs_runs] == [(bobs.id, "running")]
    assert [(r.id, r.status) for r in alices_runs] == [(alices.id, "running")]


async def test_two_users_turns_on_one_chat_id_each_see_only_their_own_messages(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    for user in ("alice", "bob"):
        await _start(uow_factory, _new_run(user))
        for turn in (1, 2):
            async with uow_factory(user_id=user) as uow:
                claimed = await uow.turns.open(
                    user, "c1", "helper", f"{user} {turn}", title=f"{user}'s", now=NOW, window_turns=50
                )
                await uow.commit()
            assert claimed is not None and claimed.chat.user_id == user
            assert [m.content for m in claimed.window] == [f"{user} {n}" for n in range(1, turn)]
    for user in ("alice", "bob"):
        async with uow_factory(user_id=user) as uow:
            stored = await uow.chats.get(user, "c1")
            page = await uow.messages.page(user, "c1", limit=10, before=None)
        assert stored is not None and (stored.title, stored.turn_count) == (f"{user}'s", 2)
        assert [m.content for m in page] == [f"{user} 1", f"{user} 2"]


async def test_interrupt_flags_the_running_run_and_steer_points_at_it(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    running = _new_run(n=0)
    await _start(uow_factory, running)
    steering = _new_run(n=1)
    steered = await _start(uow_factory, steering, policy="steer")
    interrupting = await _start(uow_factory, _new_run(n=2), policy="interrupt")
    async with uow_factory(user_id="alice") as uow:
        pointing = await uow.runs.steering("alice", running.id)
    async with uow_factory() as uow:
        renewed = await uow.runs.renew(OWNER, [running.id], lease_until=LATER)
        await uow.commit()
    assert steered.running == interrupting.running == running.id
    assert [r.id for r in pointing] == [steering.id]
    assert renewed == [(running.id, True)]


def _ending(run: Run) -> RunOutcome:
    return RunOutcome(run.id, OWNER, "completed", "echo", TurnUsage(1, 1, 1))


async def test_ending_a_run_starts_the_chats_next_queued_run_in_the_same_statement(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    first, second, third = _new_run(n=0), _new_run(n=1, key="k2"), _new_run(n=2)
    for run in (first, second, third):
        await _start(uow_factory, run)
    hand_on = HandOn("c1", LATER)
    async with uow_factory(user_id="alice") as uow:
        closed = await uow.turns.close(
            "alice", None, 0, [], _event(), now=NOW, outcome=_ending(first), hand_on=hand_on
        )
        await uow.commit()
    async with uow_factory(user_id="alice") as uow:
        stored = [await uow.runs.get("alice", r.id) for r in (first, second, third)]
    assert closed.written and closed.started is not None
    started = closed.started
    assert (started.id, started.status, started.message) == (second.id, "running", "m1")
    assert started.idempotency_key == "k2"
    assert started == stored[1]
    assert [r.status for r in stored if r] == ["completed", "running", "queued"]


async def test_an_end_that_is_not_written_starts_nothing(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    first, second = _new_run(n=0), _new_run(n=1)
    for run in (first, second):
        await _start(uow_factory, run)
    taken = RunOutcome(first.id, "replica-2", "completed", "echo", TurnUsage())
    async with uow_factory(user_id="alice") as uow:
        closed = await uow.turns.close(
            "alice", "c1", 1, [], _event(), now=NOW, outcome=taken, hand_on=HandOn("c1", LATER)
        )
        await uow.commit()
    async with uow_factory(user_id="alice") as uow:
        waiting = await uow.runs.get("alice", second.id)
    assert closed == ClosedRun(written=False)
    assert waiting is not None and waiting.status == "queued"


async def test_an_end_with_nothing_queued_starts_nothing(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    only = _new_run(n=0)
    await _start(uow_factory, only)
    async with uow_factory(user_id="alice") as uow:
        closed = await uow.turns.close(
            "alice", "c1", 1, [], _event(), now=NOW, outcome=_ending(only), hand_on=HandOn("c1", LATER)
        )
        await uow.commit()
    assert closed == ClosedRun(written=True)


async def test_a_start_past_the_users_limit_of_active_runs_is_refused_and_writes_nothing(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    await _start(uow_factory, _new_run(n=0))
    async with uow_factory(user_id="alice") as uow:
        refused = await uow.turns.start(
            _new_run(n=1), policy="enqueue", owner=OWNER, lease_until=LATER, max_active=1
        )
        admitted = await uow.turns.start(
            _new_run(n=2), policy="enqueue", owner=OWNER, lease_until=LATER, max_active=2
        )
        await uow.commit()
    async with uow_factory(user_id="alice") as uow:
        runs = await uow.runs.list("alice", "c1", status=None, limit=10, before=None)
    assert refused == StartedRun("too_many")
    assert admitted.outcome == "accepted"
    assert [r.message for r in runs] == ["m2", "m0"]


class TestResumingATurnWithItsOpeningMessages:
    @pytest.mark.usefixtures("alices_chat")
    async def test_the_results_open_the_next_turn_and_the_window_is_of_the_turns_before(
        self, uow_factory: SqlUnitOfWorkFactory
    ) -> None:
        await _turn(uow_factory, 1, [NewMessage("assistant", "", tool_calls=(CALL,))])
        result = NewMessage("tool", "12:00", tool_call_id="call-1", tool_name="current_time")
        async with uow_factory(user_id="alice") as uow:
            claimed = await uow.turns.resume("alice", "c1", "helper", [result], now=LATER, window_turns=50)
            await uow.commit()
        assert claimed is not None and claimed.chat.turn_count == 2
        assert _shape(claimed.window) == [
            (1, "user", "u1", (), None, None),
            (1, "assistant", "", (CALL,), None, None),
        ]
        async with uow_factory(user_id="alice") as uow:
            page = await uow.messages.page("alice", "c1", limit=10, before=None)
        assert _shape(page)[-1] == (2, "tool", "12:00", (), "call-1", "current_time")

    async def test_a_new_chat_takes_its_title_from_the_first_user_message(
        self, uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
    ) -> None:
        async with uow_factory(user_id="alice") as uow:
            await uow.chats.create_if_absent(chat("c2", "alice", title=None))
            opening = [
                NewMessage("user", "first words"),
                NewMessage("assistant", "ok"),
                NewMessage("user", "more"),
            ]
            claimed = await uow.turns.resume("alice", "c2", "helper", opening, now=NOW, window_turns=50)
            await uow.commit()
        assert claimed is not None and claimed.window == [] and claimed.chat.title == "first words"
        async with uow_factory(user_id="alice") as uow:
            page = await uow.messages.page("alice", "c2", limit=10, before=None)
        assert [(m.turn, m.role, m.content) for m in page] == [
            (1, "user", "first words"),
            (1, "assistant", "ok"),
            (1, "user", "more"),
        ]

    @pytest.mark.usefixtures("alices_chat")
    async def test_another_users_chat_cannot_be_resumed(self, uow_factory: SqlUnitOfWorkFactory) -> None:
        await _turn(uow_factory, 1, [NewMessage("assistant", "a1")])
        async with uow_factory(user_id="bob") as uow:
            foreign = await uow.turns.resume(
                "bob", "c1", "helper", [NewMessage("user", "intrusion")], now=LATER, window_turns=50
            )
            await uow.commit()
        assert foreign is None
        async with uow_factory(user_id="alice") as uow:
            page = await uow.messages.page("alice", "c1", limit=10, before=None)
        assert [m.content for m in page] == ["u1", "a1"]
