"""A failing model provider: retried with backoff where safe, then 502 or 504; the message is kept.

The provider client is real (pydantic-ai's OpenAI model, the ``openai`` SDK, our retrying transport);
only the remote end is the fake of ``tests/support/fake_openai.py``. The database does not matter
here (the stores are the same code as for any failed turn), so SQLite only.
"""

from __future__ import annotations

import asyncio
import time
from itertools import pairwise

import httpx
import pytest

from tests.e2e.conftest import live_server
from tests.e2e.harness import LiveServer
from tests.e2e.streams import stream_turn
from tests.reliability.conftest import AGENT, BACKOFF, RETRIES, TIMEOUT
from tests.reliability.turns import body, new_chat, stored, turn
from tests.support.fake_openai import FakeOpenAI


class TestPlainTurns:
    async def test_a_failing_provider_is_retried_with_growing_waits_then_502_and_the_message_is_kept(
        self, model_server: LiveServer, fake: FakeOpenAI
    ) -> None:
        chat = new_chat()
        fake.behaviour = "error_500"
        before = len(fake.requests)
        async with model_server.client("fay") as client:
            failed = await turn(client, "hello", chat, AGENT)
            attempts = fake.arrivals[before:]
            after_failure = await stored(client, chat)
            fake.behaviour = "answer"
            recovered = await turn(client, "again", chat, AGENT)
            after_recovery = await stored(client, chat)
        assert (failed.status_code, failed.json()["code"]) == (502, "model_error")
        assert "HTTP 500" in failed.json()["detail"] and "boom" not in failed.text
        assert len(attempts) == 1 + RETRIES
        first_wait, second_wait = (later - earlier for earlier, later in pairwise(attempts))
        assert first_wait >= BACKOFF * 0.9 and second_wait >= 2 * BACKOFF * 0.9
        assert after_failure == [("user", "hello")]
        assert recovered.status_code == 200 and recovered.json()["response"] == "fake says: again"
        assert after_recovery == [("user", "hello"), ("user", "again"), ("assistant", "fake says: again")]

    async def test_one_server_error_is_retried_and_the_turn_succeeds(
        self, model_server: LiveServer, fake: FakeOpenAI
    ) -> None:
        fake.script = ["error_500"]
        before = len(fake.requests)
        async with model_server.client("gus") as client:
            reply = await turn(client, "hi", new_chat(), AGENT)
        assert reply.status_code == 200 and reply.json()["response"] == "fake says: hi"
        assert len(fake.requests) - before == 2

    async def test_a_429_is_retried_once_its_retry_after_has_passed(
        self, model_server: LiveServer, fake: FakeOpenAI
    ) -> None:
        fake.script, fake.retry_after = ["rate_limited"], "1"
        before = len(fake.requests)
        async with model_server.client("hal") as client:
            reply = await turn(client, "patience", new_chat(), AGENT)
        arrivals = fake.arrivals[before:]
        assert reply.status_code == 200 and reply.json()["response"] == "fake says: patience"
        assert len(arrivals) == 2 and arrivals[1] - arrivals[0] >= 0.95

    async def test_a_retry_after_past_the_turn_timeout_is_not_waited_for(
        self, model_server: LiveServer, fake: FakeOpenAI
    ) -> None:
        chat = new_chat()
        fake.behaviour, fake.retry_after = "rate_limited", "60"
        before = len(fake.requests)
        async with model_server.client("ida") as client:
            started = time.monotonic()
            refused = await turn(client, "now please", chat, AGENT)
            took = time.monotonic() - started
            kept = await stored(client, chat)
        assert (refused.status_code, refused.json()["code"]) == (502, "model_error")
        assert "rate limited" in refused.json()["detail"]
        assert len(fake.requests) - before == 1
        assert took < TIMEOUT, "gave up at once instead of waiting into a 504"
        assert kept == [("user", "now please")]

    async def test_a_hanging_provider_is_a_504_at_the_turn_timeout_and_the_next_turn_works(
        self, model_server: LiveServer, fake: FakeOpenAI
    ) -> None:
        chat = new_chat()
        fake.behaviour = "hang"
        async with model_server.client("jan") as client:
            started = time.monotonic()
            timed_out = await turn(client, "anyone there?", chat, AGENT)
            took = time.monotonic() - started
            fake.behaviour = "answer"
            after = await turn(client, "hello?", chat, AGENT)
            kept = await stored(client, chat)
        assert (timed_out.status_code, timed_out.json()["code"]) == (504, "model_timeout")
        assert TIMEOUT * 0.9 <= took < TIMEOUT + 10
        assert after.status_code == 200
        assert kept == [("user", "anyone there?"), ("user", "hello?"), ("assistant", "fake says: hello?")]

    async def test_a_connection_cut_mid_answer_is_not_retried_since_its_tokens_were_published(
        self, model_server: LiveServer, fake: FakeOpenAI
    ) -> None:
        """A plain turn is a run too: its tokens are in its event log, readable by any client, so a
        retry could repeat them there, as for a stream."""
        fake.script = ["drop"]
        before = len(fake.requests)
        chat = new_chat()
        async with model_server.client("kim") as client:
            reply = await turn(client, "whole answer", chat, AGENT)
            kept = await stored(client, chat)
        assert (reply.status_code, reply.json()["code"]) == (502, "model_error")
        assert len(fake.requests) - before == 1
        assert kept == [("user", "whole answer")]

    def test_retries_follow_the_settings(
        self, fake: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
    ) -> None:
        """Sync: a second server is made on its own event loop, beside the test's."""

        async def one_turn(once: LiveServer) -> httpx.Response:
            await once.create_agent(AGENT, model="openai:fake-model", tools=[])
            async with once.client("lea") as client:
                return await turn(client, "once", new_chat(), AGENT)

        fake.behaviour = "error_500"
        before = len(fake.requests)
        directory = tmp_path_factory.mktemp("no-retries")
        with live_server("sqlite", directory, openai_base_url=fake.url, model_retries=0) as once:
            failed = asyncio.run(one_turn(once))
        assert (failed.status_code, failed.json()["code"]) == (502, "model_error")
        assert len(fake.requests) - before == 1


class TestStreamedTurns:
    async def test_a_stream_cut_after_its_first_tokens_is_not_retried_and_keeps_no_partial_answer(
        self, model_server: LiveServer, fake: FakeOpenAI
    ) -> None:
        chat = new_chat()
        fake.script = ["drop"]
        before = len(fake.requests)
        async with model_server.client("max") as client:
            response, events = await stream_turn(client, body("tell me more", chat, AGENT))
            attempts = len(fake.requests) - before
            kept = await stored(client, chat)
            _, next_events = await stream_turn(client, body("and now?", chat, AGENT))
        assert response.status_code == 200
        assert [event.name for event in events] == ["run", "token", "error"]
        assert events[1].data == {"delta": "fake "}
        assert events[-1].data["code"] == "model_error"
        assert attempts == 1, "tokens had reached the client: a retry could have repeated them"
        assert kept == [("user", "tell me more")]
        assert next_events[-1].name == "done" and next_events[-1].data["response"] == "fake says: and now?"
        sent = [(m["role"], m["content"]) for m in fake.requests[-1]["messages"] if m["role"] != "system"]
        assert sent == [("user", "tell me more"), ("user", "and now?")], "no partial answer in the history"

    async def test_a_stream_that_fails_before_its_first_token_is_retried(
        self, model_server: LiveServer, fake: FakeOpenAI
    ) -> None:
        fake.script = ["error_500"]
        before = len(fake.requests)
        async with model_server.client("ned") as client:
            response, events = await stream_turn(client, body("stream it", new_chat(), AGENT))
        assert response.status_code == 200
        assert "".join(e.data["delta"] for e in events if e.name == "token") == "fake says: stream it"
        assert events[-1].name == "done"
        assert len(fake.requests) - before == 2

    async def test_a_stream_cut_after_its_headers_before_any_event_is_retried(
        self, model_server: LiveServer, fake: FakeOpenAI
    ) -> None:
        fake.script = ["cut"]
        before = len(fake.requests)
        chat = new_chat()
        async with model_server.client("ora") as client:
            response, events = await stream_turn(client, body("say it once", chat, AGENT))
            plain_before = len(fake.requests)
            fake.script = ["cut"]
            reply = await turn(client, "and plainly", chat, AGENT)
            plain_attempts = len(fake.requests) - plain_before
        assert response.status_code == 200
        assert [event.name for event in events][-1] == "done"
        assert "".join(e.data["delta"] for e in events if e.name == "token") == "fake says: say it once"
        assert len(fake.requests) - before - plain_attempts == 2
        assert reply.status_code == 200 and reply.json()["response"] == "fake says: and plainly"
        assert plain_attempts == 2
