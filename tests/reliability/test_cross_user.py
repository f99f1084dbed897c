"""Every route that takes the id of something a user owns, tried by someone else: 404, nothing changed.

The owner has a chat (with messages), a prompt customization, a session instance and a memory. An
intruder (a plain user, and an admin: admins get no back door into users' data) reads, updates and
deletes each by its id; each attempt is a 404 ``not_found``, the lists show the intruder nothing,
and the owner's view is the same after as before, to the timestamp. A chat id is the user's own
name for a chat: a turn or a session on the owner's chat id (``/api`` and ``/v1``) starts the
intruder's own chat of that id, which holds nothing of the owner's.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.e2e.harness import LiveServer
from tests.reliability.turns import turn

AGENT = "notes"


@dataclass(frozen=True)
class Owned:
    chat_id: str
    customization_id: str
    session_id: str
    memory_id: int


async def set_up_owner(live: LiveServer, owner: httpx.AsyncClient) -> Owned:
    async with live.client("matrix-admin", admin=True) as admin:
        agent = {
            "name": AGENT,
            "model": "echo",
            "system_prompt": "",
            "tools": ["remember", "recall_memories"],
        }
        created = await admin.post("/api/admin/agents", json=agent)
        assert created.status_code in (201, 409), created.text
    chat_id = str(uuid.uuid4())
    assert (await turn(owner, "secret plans", chat_id, AGENT)).status_code == 200
    assert (await turn(owner, '/tool remember {"note": "keeps bees"}', chat_id, AGENT)).status_code == 200
    customization = {"agent_name": AGENT, "content": {"instructions": ["whisper"]}}
    made = await owner.post("/api/agent/prompt_customizations/", json=customization)
    opened = await owner.post("/api/chat_sessions", json={"agent_name": AGENT, "chat_id": chat_id})
    [memory] = (await owner.get("/api/memories", params={"agent_name": AGENT})).json()["items"]
    assert made.status_code == 201 and opened.status_code == 201, (made.text, opened.text)
    return Owned(chat_id, made.json()["id"], opened.json()["id"], memory["id"])


async def view(client: httpx.AsyncClient, chat_id: str) -> dict[str, Any]:
    """Everything a user sees of their own data."""
    return {
        "chats": (await client.get("/api/chats")).json(),
        "messages": (await client.get(f"/api/chats/{chat_id}/messages")).json(),
        "customizations": (await client.get(f"/api/agent/prompt_customizations/{AGENT}")).json(),
        "sessions": (await client.get("/api/chat_sessions")).json(),
        "memories": (await client.get("/api/memories")).json(),
    }


def attempts(owned: Owned) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(what, method, path, request kwargs) for each read, update and delete by id."""
    chat, custom, session = owned.chat_id, owned.customization_id, owned.session_id
    customization = {"agent_name": AGENT, "content": {"instructions": ["shout"]}}
    return [
        ("read chat messages", "GET", f"/api/chats/{chat}/messages", {}),
        ("read chat messages, paged", "GET", f"/api/chats/{chat}/messages", {"params": {"limit": 1}}),
        ("delete the chat", "DELETE", f"/api/chats/{chat}", {}),
        ("read the customization", "GET", f"/api/agent/prompt_customizations/{custom}", {}),
        (
            "update the customization",
            "PUT",
            f"/api/agent/prompt_customizations/{custom}",
            {"json": customization},
        ),
        ("delete the customization", "DELETE", f"/api/agent/prompt_customizations/{custom}", {}),
        ("heartbeat the session", "POST", f"/api/chat_sessions/{session}/heartbeat", {}),
        ("end the session", "DELETE", f"/api/chat_sessions/{session}", {}),
        ("delete the memory", "DELETE", f"/api/memories/{owned.memory_id}", {}),
    ]


def _turn(chat_id: str) -> dict[str, str]:
    return {"agent_name": AGENT, "message": "/recall", "session_id": chat_id}


async def own_chat_on_the_same_id(intruder: httpx.AsyncClient, chat_id: str) -> dict[str, Any]:
    """Turns (plain, streamed, ``/v1``) and a session of the intruder's on the owner's chat id."""
    plain = await intruder.post("/api/chat", json=_turn(chat_id))
    stream = await intruder.post("/api/chat/stream", json=_turn(chat_id))
    openai = await intruder.post(
        "/v1/chat/completions",
        json={"model": AGENT, "messages": [{"role": "user", "content": "/recall"}]},
        headers={"X-Chat-Id": chat_id},
    )
    session = await intruder.post("/api/chat_sessions", json={"agent_name": AGENT, "chat_id": chat_id})
    messages = (await intruder.get(f"/api/chats/{chat_id}/messages")).json()["items"]
    return {
        "turn": (plain.status_code, plain.json().get("response")),
        "stream": stream.status_code,
        "openai": (openai.status_code, openai.json()["choices"][0]["message"]["content"]),
        "session": session.status_code,
        "messages": [m["content"] for m in messages],
    }


@pytest.mark.parametrize("admin", [False, True], ids=["user", "admin"])
async def test_another_users_ids_are_not_found_for_every_read_update_and_delete(
    live: LiveServer, admin: bool
) -> None:
    intruder_name = f"intruder-{uuid.uuid4().hex[:8]}"
    async with (
        live.client(f"owner-{uuid.uuid4().hex[:8]}") as owner,
        live.client(intruder_name, admin=admin) as intruder,
    ):
        owned = await set_up_owner(live, owner)
        before = await view(owner, owned.chat_id)
        answers = {
            what: await intruder.request(method, path, **kw) for what, method, path, kw in attempts(owned)
        }
        theirs = await view(intruder, owned.chat_id)
        own_chat = await own_chat_on_the_same_id(intruder, owned.chat_id)
        erased = await intruder.delete("/api/memories", params={"agent_name": AGENT})
        recalled = await turn(intruder, '/tool recall_memories {"query": "bees"}', str(uuid.uuid4()), AGENT)
        after = await view(owner, owned.chat_id)
    wrong = {
        what: (r.status_code, r.text)
        for what, r in answers.items()
        if (r.status_code, r.json().get("code")) != (404, "not_found")
    }
    assert wrong == {}
    assert owned.chat_id not in {chat["id"] for chat in theirs["chats"]["items"]}
    assert theirs["messages"]["code"] == "not_found"
    assert theirs["customizations"] == theirs["sessions"] == theirs["memories"]["items"] == []
    assert erased.json() == {"deleted": 0}
    assert recalled.json()["response"] == "tool recall_memories returned: no notes found"
    assert own_chat == {
        "turn": (200, "recall: "),
        "stream": 200,
        "openai": (200, "recall: /recall | /recall"),
        "session": 201,
        "messages": [
            "/recall",
            "recall: ",
            "/recall",
            "recall: /recall",
            "/recall",
            "recall: /recall | /recall",
        ],
    }
    assert after == before
    assert [m["content"] for m in after["messages"]["items"]][:2] == ["secret plans", "echo: secret plans"]
