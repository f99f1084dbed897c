"""`previous_response_id` naming an older response of a chat: the new turn's context is that
response's own chain, so it begins a branch there (a client retrying or rewinding a turn), with the
official `openai` package against a live server."""

from __future__ import annotations

import uuid
from typing import Any

import openai
import pytest
from openai import AsyncOpenAI
from openai.types.responses import Response

from tests.e2e.harness import LiveServer
from tests.e2e.test_openai_api import client_for, stored_chats


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def _active_branch(live: LiveServer, user: str) -> list[dict[str, Any]]:
    [chat_id] = await stored_chats(live, user)
    async with live.client(user) as client:
        response = await client.get(f"/api/chats/{chat_id}/messages")
    assert response.status_code == 200
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def _two_turns(client: AsyncOpenAI) -> tuple[Response, Response]:
    """alpha, then beta continuing it: the chat every fork here starts from."""
    first = await client.responses.create(model="assistant", input="alpha")
    second = await client.responses.create(model="assistant", input="beta", previous_response_id=first.id)
    return first, second


class TestForks:
    async def test_an_older_response_begins_a_branch_whose_context_is_its_own_chain(
        self, live: LiveServer
    ) -> None:
        user = _name("fork")
        async with client_for(live, user) as client:
            first, _ = await _two_turns(client)
            forked = await client.responses.create(
                model="assistant", input="/recall", previous_response_id=first.id
            )
        branch = await _active_branch(live, user)
        assert forked.output_text == "recall: alpha"
        assert forked.previous_response_id == first.id
        assert [m["content"] for m in branch] == ["alpha", "echo: alpha", "/recall", "recall: alpha"]
        assert branch[2]["branch"]["count"] == 2
        assert len(await stored_chats(live, user)) == 1

    async def test_the_first_branch_is_continued_by_naming_its_newest_response(
        self, live: LiveServer
    ) -> None:
        user = _name("back")
        async with client_for(live, user) as client:
            first, second = await _two_turns(client)
            await client.responses.create(model="assistant", input="gamma", previous_response_id=first.id)
            resumed = await client.responses.create(
                model="assistant", input="/recall", previous_response_id=second.id
            )
        branch = await _active_branch(live, user)
        assert resumed.output_text == "recall: alpha | beta"
        assert [m["content"] for m in branch][-2:] == ["/recall", "recall: alpha | beta"]

    async def test_the_newest_response_goes_on_without_a_branch(self, live: LiveServer) -> None:
        user = _name("line")
        async with client_for(live, user) as client:
            _, second = await _two_turns(client)
            await client.responses.create(model="assistant", input="gamma", previous_response_id=second.id)
        branch = await _active_branch(live, user)
        assert [m["content"] for m in branch[::2]] == ["alpha", "beta", "gamma"]
        assert {m["branch"]["count"] for m in branch} == {1}

    async def test_a_streamed_response_forks_as_a_plain_one_does(self, live: LiveServer) -> None:
        user = _name("stream")
        async with client_for(live, user) as client:
            first, _ = await _two_turns(client)
            stream = await client.responses.create(
                model="assistant", input="/recall", previous_response_id=first.id, stream=True
            )
            texts = [event.delta async for event in stream if event.type == "response.output_text.delta"]
        assert "".join(texts) == "recall: alpha"

    async def test_forking_while_another_response_runs_is_a_409_and_moves_nothing(
        self, live: LiveServer
    ) -> None:
        user = _name("busy")
        async with client_for(live, user) as client:
            first = await client.responses.create(model="assistant", input="alpha")
            running = await client.responses.create(
                model="assistant", input="/sleep 30000 slow", previous_response_id=first.id, background=True
            )
            second_try = client.responses.create(model="assistant", input="x", previous_response_id=first.id)
            with pytest.raises(openai.ConflictError) as raised:
                await second_try
            assert raised.value.code == "chat_busy"
            assert (await client.responses.cancel(running.id)).status == "cancelled"
            after = await client.responses.create(
                model="assistant", input="/recall", previous_response_id=running.id
            )
        assert after.output_text.startswith("recall: alpha | /sleep 30000 slow")
        assert all(m["content"] != "x" for m in await _active_branch(live, user))

    async def test_another_users_older_response_is_a_404_and_their_chat_is_untouched(
        self, live: LiveServer
    ) -> None:
        owner, other = _name("owner"), _name("other")
        async with client_for(live, owner) as mine, client_for(live, other) as theirs:
            first, _ = await _two_turns(mine)
            with pytest.raises(openai.NotFoundError):
                await theirs.responses.create(model="assistant", input="x", previous_response_id=first.id)
        assert [m["content"] for m in await _active_branch(live, owner)][::2] == ["alpha", "beta"]
        assert await stored_chats(live, other) == []
