"""Which run a listed message names (``domain.chats.runs_of``): the cases the services' tests cannot
make with the echo model, such as a regeneration that fails after a first answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from chatserver.domain import Message, Run, RunError, RunStatus
from chatserver.domain.chats import TurnRun, runs_of

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def message(message_id: int, role: Literal["user", "assistant"], turn: int, parent: int | None) -> Message:
    return Message(message_id, "c1", turn, role, f"m{message_id}", T0, parent_id=parent)


def run(run_id: str, status: RunStatus, minutes: int, regenerate: int | None = None) -> Run:
    error = RunError("model_error", "boom") if status == "failed" else None
    at = T0 + timedelta(minutes=minutes)
    return Run(run_id, "u1", "c1", "assistant", status, "m1", at, error=error, regenerate=regenerate)


ASKED = message(1, "user", 1, None)
ANSWER = message(2, "assistant", 1, 1)


def test_a_user_message_whose_regeneration_failed_names_that_run_when_no_answer_follows_it() -> None:
    runs = [TurnRun(1, run("first", "completed", 0)), TurnRun(2, run("again", "failed", 1, regenerate=1))]
    found = runs_of([ASKED], runs, follower=None)
    assert [r.id if r else None for r in found] == ["again"]


def test_the_answer_shown_names_its_own_run_and_its_user_message_none() -> None:
    runs = [TurnRun(1, run("first", "completed", 0)), TurnRun(2, run("again", "failed", 1, regenerate=1))]
    found = runs_of([ASKED, ANSWER], runs, follower=None)
    assert [r.id if r else None for r in found] == [None, "first"]


def test_a_user_message_whose_newest_run_is_still_going_names_none() -> None:
    runs = [TurnRun(1, run("first", "failed", 0)), TurnRun(2, run("again", "running", 1, regenerate=1))]
    assert runs_of([ASKED], runs, follower=None) == [None]


def test_a_user_message_followed_on_the_next_page_by_its_answer_names_none() -> None:
    runs = [TurnRun(1, run("first", "failed", 0))]
    assert runs_of([ASKED], runs, follower=ANSWER) == [None]
    assert [r.id if r else None for r in runs_of([ASKED], runs, follower=message(3, "user", 2, 1))] == [
        "first"
    ]


def test_runs_stored_before_runs_knew_their_turn_name_nothing() -> None:
    assert runs_of([ASKED, ANSWER], [TurnRun(None, run("old", "completed", 0))], follower=None) == [
        None,
        None,
    ]
