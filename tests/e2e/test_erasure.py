"""Erasure over real HTTP: by the user (confirmed with their own id) and by admins."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import DATABASES, live_server
from tests.e2e.harness import LiveServer
from tests.e2e.streams import events_of, turn
from tests.e2e.test_user_data import chat_once
from tests.support.fake_openai import fake_openai_server


@pytest.fixture(scope="module", params=DATABASES)
def wordy(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A model that streams a word every 300 ms: a run is still going when its user is erased."""
    with fake_openai_server() as fake:
        fake.word_seconds = 0.3
        directory = tmp_path_factory.mktemp("erasure")
        with live_server(
            request.param,
            directory,
            openai_base_url=fake.url,
            openai_api_key="sk-test",
            model_timeout_seconds=60.0,
        ) as server:
            yield server


async def test_a_user_erases_themselves_by_repeating_their_id(live: LiveServer) -> None:
    async with live.client("leaver") as leaver, live.client("e2e-admin", admin=True) as admin:
        await chat_once(live, leaver, "forget me")
        missing = await leaver.request("DELETE", "/api/me", json={})
        wrong = await leaver.request("DELETE", "/api/me", json={"confirm": "someone-else"})
        erased = await leaver.request("DELETE", "/api/me", json={"confirm": "leaver"})
        theirs = await admin.get("/api/admin/events", params={"user_id": "leaver"})
        receipts = await admin.get("/api/admin/events", params={"type": "user.erased"})
    assert (missing.status_code, wrong.status_code) == (422, 422)
    assert wrong.json()["code"] == "validation_error"
    assert erased.status_code == 200, erased.text
    counts = erased.json()["erased"]
    assert (counts["chats"], counts["messages"], counts["runs"], counts["api_keys"]) == (1, 2, 1, 0)
    assert theirs.json()["items"] == []
    receipt = receipts.json()["items"][0]
    assert receipt["user_id"] is None and receipt["data"]["erased"] == counts
    assert "leaver" not in receipt["data"]["subject"]


async def test_admins_erase_users_and_nobody_else_may(live: LiveServer) -> None:
    async with live.client("erased-by-admin") as user, live.client("e2e-admin", admin=True) as admin:
        await chat_once(live, user, "hello")
        refused = await user.delete("/api/admin/users/erased-by-admin")
        erased = await admin.delete("/api/admin/users/erased-by-admin")
        again = await admin.delete("/api/admin/users/erased-by-admin")
        await chat_once(live, user, "hello again")  # signed up anew, as a new user
        fresh = (await user.get("/api/me/export")).json()
    assert refused.status_code == 403
    assert (erased.status_code, erased.json()["erased"]["chats"]) == (200, 1)
    assert (again.status_code, again.json()["code"]) == (404, "not_found")
    assert fresh["chats"][0]["messages"][0]["content"] == "hello again"


async def test_erasing_a_user_with_a_run_in_flight_stops_it_first(wordy: LiveServer) -> None:
    await wordy.create_agent("wordy", model="openai:gpt-4.1-mini")
    words = " ".join(f"word{n}" for n in range(40))
    async with wordy.client("busy-user") as user, wordy.client("e2e-admin", admin=True) as admin:
        body = turn(words, str(uuid.uuid4()), agent="wordy")
        async with user.stream("POST", "/api/chat/stream", json=body) as response:
            events = events_of(response)
            await anext(events)
            assert (await anext(events)).name == "token"
            started = time.monotonic()
            erased = await admin.delete("/api/admin/users/busy-user")
            elapsed = time.monotonic() - started
            rest = [event.name async for event in events]
        exported = (await user.get("/api/me/export")).json()
    assert erased.status_code == 200, erased.text
    assert elapsed < 5, "the erasure waited for the whole answer instead of cancelling it"
    assert erased.json()["erased"]["runs"] == 1
    assert erased.json()["erased"]["messages"] == 2  # the question and the partial answer
    assert rest[-1] == "cancelled"
    assert (exported["chats"], exported["runs"]) == ([], [])
