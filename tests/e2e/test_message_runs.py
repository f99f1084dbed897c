"""A chat's messages over real HTTP name their runs: each answer its model and tokens, each user
message left without an answer how its turn ended, the last turn's and an earlier one's."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from tests.e2e.harness import LiveServer


def new_chat_id() -> str:
    return str(uuid.uuid4())


async def _say(client: httpx.AsyncClient, chat_id: str, message: str = "", **extra: Any) -> httpx.Response:
    body = {"agent_name": "assistant", "message": message, "session_id": chat_id, **extra}
    return await client.post("/api/chat", json=body)


async def _listed(client: httpx.AsyncClient, chat_id: str, **params: Any) -> list[dict[str, Any]]:
    response = await client.get(f"/api/chats/{chat_id}/messages", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def _ended(client: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    for _ in range(100):
        run: dict[str, Any] = (await client.get(f"/api/runs/{run_id}")).json()
        if run["finished_at"] is not None:
            return run
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} did not end")


async def test_each_answer_names_the_model_and_tokens_of_its_run(live: LiveServer) -> None:
    async with live.client("mona") as client:
        chat_id = new_chat_id()
        said = [(await _say(client, chat_id, text)).json() for text in ("one", "two three four")]
        items = await _listed(client, chat_id)
    answers = [m for m in items if m["role"] == "assistant"]
    assert [a["run"]["id"] for a in answers] == [s["run_id"] for s in said]
    assert [(a["run"]["model"], a["run"]["status"]) for a in answers] == [("echo", "completed")] * 2
    assert [a["run"]["usage"] for a in answers] == [s["usage"] for s in said]
    assert [m["run"] for m in items if m["role"] == "user"] == [None, None]


async def test_a_failed_turn_reloads_as_failed_with_its_error_now_and_after_the_chat_goes_on(
    live: LiveServer,
) -> None:
    async with live.client("nils") as client:
        chat_id = new_chat_id()
        failed = await _say(client, chat_id, "/fail")
        last = (await _listed(client, chat_id))[-1]
        await _say(client, chat_id, "and then")
        earlier = (await _listed(client, chat_id))[0]
    assert failed.status_code >= 500
    for message in (last, earlier):
        assert (message["role"], message["content"]) == ("user", "/fail")
        assert message["run"]["status"] == "failed"
        assert message["run"]["error"]["code"] == "model_error"


async def test_a_stopped_turn_reloads_as_cancelled_under_its_user_message(live: LiveServer) -> None:
    async with live.client("olga") as client:
        chat_id = new_chat_id()
        body = {"agent_name": "assistant", "message": "/sleep 3000 never"}
        started = (await client.post(f"/api/chats/{chat_id}/runs", json=body)).json()
        await asyncio.sleep(0.3)
        await client.post(f"/api/runs/{started['id']}/cancel")
        await _ended(client, started["id"])
        items = await _listed(client, chat_id)
    assert [(m["role"], m["run"]["status"], m["run"]["id"]) for m in items] == [
        ("user", "cancelled", started["id"])
    ]


async def test_another_users_runs_never_show_in_a_chat_of_the_same_id(live: LiveServer) -> None:
    chat_id = new_chat_id()
    async with live.client("pia") as pia:
        await _say(pia, chat_id, "/fail")
    async with live.client("quin") as quin:
        await _say(quin, chat_id, "mine")
        items = await _listed(quin, chat_id)
    assert [(m["content"], m["run"] and m["run"]["status"]) for m in items] == [
        ("mine", None),
        ("echo: mine", "completed"),
    ]
