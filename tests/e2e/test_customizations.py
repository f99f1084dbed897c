"""Prompt customizations over real HTTP: seed-compatible shapes, isolation, the next turn, bad input."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from tests.e2e.harness import LiveServer

ROUTE = "/api/agent/prompt_customizations"
ROW_KEYS = {
    "id",
    "user_id",
    "agent_name",
    "customization_type",
    "content",
    "is_active",
    "priority",
    "created_at",
    "updated_at",
}
BASE = "You are a test agent."


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def new_agent(live: LiveServer, *, tools: list[str] | None = None) -> str:
    name = unique("cz")
    await live.create_agent(name, system_prompt=BASE, tools=tools or [])
    return name


async def system_prompt(client: httpx.AsyncClient, agent: str, chat: str | None = None) -> str:
    body = {"agent_name": agent, "message": "/system", "session_id": chat or str(uuid.uuid4())}
    response = await client.post("/api/chat", json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["response"])


async def create(client: httpx.AsyncClient, agent: str, **fields: Any) -> dict[str, Any]:
    body = {"agent_name": agent, "content": {"instructions": ["Be brief"]}, **fields}
    response = await client.post(f"{ROUTE}/", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_create_list_update_and_delete_use_the_seed_shapes(live: LiveServer) -> None:
    agent = await new_agent(live)
    async with live.client(unique("user")) as client:
        created = await client.post(
            f"{ROUTE}/", json={"agent_name": agent, "content": {"instructions": ["A"]}}
        )
        row = created.json()
        listed = await client.get(f"{ROUTE}/{agent}")
        body = {
            "agent_name": agent,
            "content": {"tone": "dry"},
            "priority": 3,
            "customization_type": "persona",
        }
        updated = await client.put(f"{ROUTE}/{row['id']}", json=body)
        deleted = await client.delete(f"{ROUTE}/{row['id']}")
        after = await client.get(f"{ROUTE}/{agent}")
    assert created.status_code == 201 and set(row) == ROW_KEYS
    assert (row["customization_type"], row["is_active"], row["priority"]) == ("instruction_set", True, 0)
    assert row["content"] == {"instructions": ["A"]} and row["agent_name"] == agent
    assert listed.status_code == 200 and listed.json() == [row]
    assert updated.status_code == 200 and set(updated.json()) == ROW_KEYS
    changed = updated.json()
    assert (changed["id"], changed["created_at"], changed["user_id"]) == (
        row["id"],
        row["created_at"],
        row["user_id"],
    )
    assert (changed["customization_type"], changed["content"], changed["priority"]) == (
        "persona",
        {"tone": "dry"},
        3,
    )
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert after.json() == []


async def test_the_list_holds_the_callers_active_ones_for_that_agent_by_priority(live: LiveServer) -> None:
    agent, other_agent = await new_agent(live), await new_agent(live)
    async with live.client(unique("user")) as client, live.client(unique("other")) as other:
        late = await create(client, agent, customization_type="late", priority=1000)
        early = await create(client, agent, customization_type="early", priority=-1000)
        middle = await create(client, agent, customization_type="middle")
        await create(client, agent, customization_type="off", is_active=False)
        await create(client, other_agent)
        await create(other, agent, customization_type="theirs", priority=5)
        listed = await client.get(f"{ROUTE}/{agent}")
        unknown = await client.get(f"{ROUTE}/no-such-agent")
        nul = await client.get(f"{ROUTE}/bad%00name")
    assert [r["id"] for r in listed.json()] == [early["id"], middle["id"], late["id"]]
    assert (unknown.status_code, unknown.json()) == (200, [])
    assert (nul.status_code, nul.json()) == (200, [])


async def test_a_deactivated_one_is_listed_on_request_and_can_be_activated_again(live: LiveServer) -> None:
    agent = await new_agent(live)
    async with live.client(unique("user")) as client, live.client(unique("other")) as other:
        row = await create(client, agent)
        await create(other, agent, is_active=False)
        body = {"agent_name": agent, "content": row["content"], "is_active": False}
        off = (await client.put(f"{ROUTE}/{row['id']}", json=body)).json()
        default = await client.get(f"{ROUTE}/{agent}")
        every = await client.get(f"{ROUTE}/{agent}", params={"include_inactive": "true"})
        prompt_off = await system_prompt(client, agent)
        back_on = await client.put(f"{ROUTE}/{row['id']}", json={**body, "is_active": True})
        prompt_on = await system_prompt(client, agent)
    assert (default.status_code, default.json()) == (200, [])
    assert (every.status_code, every.json()) == (200, [off]) and off["is_active"] is False
    assert back_on.json()["is_active"] is True
    assert (prompt_off, prompt_on) == (BASE, f"{BASE}\n\n## instruction_set\n- Be brief")


async def test_create_and_list_answer_with_and_without_the_trailing_slash(live: LiveServer) -> None:
    agent = await new_agent(live)
    async with live.client(unique("user")) as client:
        plain = await client.post(ROUTE, json={"agent_name": agent, "content": {"a": 1}})
        slashed = await client.post(
            f"{ROUTE}/", json={"agent_name": agent, "customization_type": "b", "content": {"b": 2}}
        )
        lists = [
            await client.get(f"{ROUTE}/{agent}"),
            await client.get(f"{ROUTE}/{agent}/"),
            await client.get(ROUTE, params={"agent_name": agent}),
            await client.get(f"{ROUTE}/", params={"agent_name": agent}),
        ]
        no_agent = await client.get(ROUTE)
    assert (plain.status_code, slashed.status_code) == (201, 201)
    for listed in lists:
        assert (listed.status_code, listed.json()) == (200, [plain.json(), slashed.json()])
    assert (no_agent.status_code, no_agent.json()["detail"][0]["loc"]) == (422, ["query", "agent_name"])


async def test_one_customization_is_read_by_its_id_and_nobody_elses_is_found(live: LiveServer) -> None:
    agent = await new_agent(live)
    async with live.client(unique("alice")) as alice, live.client(unique("bob")) as bob:
        hers = await create(alice, agent, is_active=False)
        by_id = await alice.get(f"{ROUTE}/{hers['id']}")
        upper = await alice.get(f"{ROUTE}/{hers['id'].upper()}/")
        bobs_try = await bob.get(f"{ROUTE}/{hers['id']}")
        unknown = await alice.get(f"{ROUTE}/{uuid.uuid4()}")
        by_name = await alice.get(f"{ROUTE}/{agent}", params={"include_inactive": "true"})
    assert (by_id.status_code, by_id.json()) == (200, hers)
    assert (upper.status_code, upper.json()) == (200, hers)
    for response in (bobs_try, unknown):
        assert (response.status_code, response.json()["code"]) == (404, "not_found"), response.text
    assert by_name.json() == [hers]


async def test_the_same_type_twice_is_a_conflict_by_create_and_by_update(live: LiveServer) -> None:
    agent = await new_agent(live)
    async with live.client(unique("user")) as client, live.client(unique("other")) as other:
        first = await create(client, agent)
        again = await client.post(f"{ROUTE}/", json={"agent_name": agent, "content": {"x": 1}})
        persona = await create(client, agent, customization_type="persona")
        into_taken = await client.put(
            f"{ROUTE}/{persona['id']}", json={"agent_name": agent, "content": {"x": 1}}
        )
        someone_else = await other.post(f"{ROUTE}/", json={"agent_name": agent, "content": {"x": 1}})
        listed = await client.get(f"{ROUTE}/{agent}")
    assert (again.status_code, again.json()["code"]) == (409, "conflict")
    assert (into_taken.status_code, into_taken.json()["code"]) == (409, "conflict")
    assert someone_else.status_code == 201
    assert listed.json() == [first, persona]


async def test_an_unknown_agent_is_not_found_on_create_and_on_update(live: LiveServer) -> None:
    agent = await new_agent(live)
    async with live.client(unique("user")) as client:
        mine = await create(client, agent)
        created = await client.post(f"{ROUTE}/", json={"agent_name": "no-such-agent", "content": {}})
        moved = await client.put(f"{ROUTE}/{mine['id']}", json={"agent_name": "no-such-agent", "content": {}})
        absent = await client.put(f"{ROUTE}/{uuid.uuid4()}", json={"agent_name": agent, "content": {}})
        absent_delete = await client.delete(f"{ROUTE}/{uuid.uuid4()}")
        nul_id = await client.delete(f"{ROUTE}/bad%00id")
        listed = await client.get(f"{ROUTE}/{agent}")
    for response in (created, moved, absent, absent_delete, nul_id):
        assert (response.status_code, response.json()["code"]) == (404, "not_found"), response.text
    assert listed.json() == [mine]


async def test_another_user_can_neither_list_update_delete_nor_feel_a_customization(live: LiveServer) -> None:
    agent = await new_agent(live)
    async with live.client(unique("alice")) as alice, live.client(unique("bob")) as bob:
        hers = await create(alice, agent, content={"instructions": ["Alice's secret rule"]})
        bobs_list = await bob.get(f"{ROUTE}/{agent}")
        put = await bob.put(
            f"{ROUTE}/{hers['id']}", json={"agent_name": agent, "content": {"hijacked": True}}
        )
        delete = await bob.delete(f"{ROUTE}/{hers['id']}")
        bobs_prompt = await system_prompt(bob, agent)
        bobs_own = await create(bob, agent, content={"instructions": ["Bob's rule"]})
        bobs_prompt_after = await system_prompt(bob, agent)
        hers_after = await alice.get(f"{ROUTE}/{agent}")
        alices_prompt = await system_prompt(alice, agent)
    assert (bobs_list.status_code, bobs_list.json()) == (200, [])
    assert [(put.status_code, put.json()["code"]), (delete.status_code, delete.json()["code"])] == [
        (404, "not_found"),
        (404, "not_found"),
    ]
    assert bobs_prompt == BASE
    assert bobs_prompt_after == f"{BASE}\n\n## instruction_set\n- Bob's rule"
    assert hers_after.json() == [hers] and bobs_own["user_id"] != hers["user_id"]
    assert alices_prompt == f"{BASE}\n\n## instruction_set\n- Alice's secret rule"


async def test_the_very_next_turn_uses_the_new_prompt_after_each_change(live: LiveServer) -> None:
    agent = await new_agent(live)
    chat = str(uuid.uuid4())
    async with live.client(unique("user")) as client, live.client(unique("bystander")) as bystander:
        bystander_chat = str(uuid.uuid4())
        seen = [
            await system_prompt(client, agent, chat),
            await system_prompt(bystander, agent, bystander_chat),
        ]
        row = await create(client, agent, content={"instructions": ["One"], "tone": "warm"})
        seen.append(await system_prompt(client, agent, chat))
        body = {"agent_name": agent, "content": {"instructions": ["Two", "Three"]}, "priority": 1}
        assert (await client.put(f"{ROUTE}/{row['id']}", json=body)).status_code == 200
        seen.append(await system_prompt(client, agent, chat))
        second = await create(
            client, agent, customization_type="persona", content={"name": "Ada"}, priority=-1
        )
        seen.append(await system_prompt(client, agent, chat))
        assert (await client.delete(f"{ROUTE}/{row['id']}")).status_code == 204
        seen.append(await system_prompt(client, agent, chat))
        assert (await client.delete(f"{ROUTE}/{second['id']}")).status_code == 204
        seen.append(await system_prompt(client, agent, chat))
        seen.append(await system_prompt(bystander, agent, bystander_chat))
    assert seen == [
        BASE,
        BASE,
        f"{BASE}\n\n## instruction_set\n- One\ntone: warm",
        f"{BASE}\n\n## instruction_set\n- Two\n- Three",
        f"{BASE}\n\n## persona\nname: Ada\n\n## instruction_set\n- Two\n- Three",
        f"{BASE}\n\n## persona\nname: Ada",
        BASE,
        BASE,
    ]


async def test_concurrent_updates_of_one_customization_end_consistent(live: LiveServer) -> None:
    agent = await new_agent(live)
    async with live.client(unique("user")) as client:
        row = await create(client, agent)
        for round_ in range(5):
            bodies = [
                {
                    "agent_name": agent,
                    "content": {"instructions": [f"round {round_} writer {w}"]},
                    "priority": w,
                }
                for w in range(2)
            ]
            responses = await asyncio.gather(*(client.put(f"{ROUTE}/{row['id']}", json=b) for b in bodies))
            assert [r.status_code for r in responses] == [200, 200], [r.text for r in responses]
            [stored] = (await client.get(f"{ROUTE}/{agent}")).json()
            assert (stored["content"], stored["priority"]) in [(b["content"], b["priority"]) for b in bodies]
            assert stored["id"] == row["id"] and stored["created_at"] == row["created_at"]
            prompt = await system_prompt(client, agent)
            assert prompt == f"{BASE}\n\n## instruction_set\n- {stored['content']['instructions'][0]}"


async def test_two_racing_creates_of_one_type_make_one_row_and_one_conflict(live: LiveServer) -> None:
    agent = await new_agent(live)
    async with live.client(unique("user")) as client:
        bodies = [{"agent_name": agent, "content": {"instructions": [f"writer {w}"]}} for w in range(2)]
        responses = await asyncio.gather(*(client.post(f"{ROUTE}/", json=b) for b in bodies))
        listed = (await client.get(f"{ROUTE}/{agent}")).json()
    assert sorted(r.status_code for r in responses) == [201, 409]
    [winner] = [r.json() for r in responses if r.status_code == 201]
    assert listed == [winner]


def deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"k": value}
    return value


BAD_BODIES: list[tuple[str, dict[str, Any] | str, str]] = [
    ("content missing", {}, "content"),
    ("content a list", {"content": ["a"]}, "content"),
    ("content a string", {"content": "be brief"}, "content"),
    ("content null", {"content": None}, "content"),
    ("content over 16 KiB", {"content": {"k": "x" * (16 * 1024)}}, "content"),
    ("content nested too deep", {"content": deep(17)}, "content"),
    ("content with NaN", '{"agent_name": "AGENT", "content": {"ratio": NaN}}', "content"),
    ("content with Infinity", '{"agent_name": "AGENT", "content": {"big": Infinity}}', "content"),
    ("content with NUL", {"content": {"rule": "a\u0000b"}}, "content"),
    ("type empty", {"customization_type": ""}, "customization_type"),
    ("type with capitals", {"customization_type": "Persona"}, "customization_type"),
    ("type with a dash", {"customization_type": "my-type"}, "customization_type"),
    ("type too long", {"customization_type": "x" * 65}, "customization_type"),
    ("type not a string", {"customization_type": 5}, "customization_type"),
    ("priority above the range", {"priority": 1001}, "priority"),
    ("priority below the range", {"priority": -1001}, "priority"),
    ("priority a string", {"priority": "5"}, "priority"),
    ("priority a fraction", {"priority": 1.5}, "priority"),
    ("priority a boolean", {"priority": True}, "priority"),
    ("is_active a string", {"is_active": "yes"}, "is_active"),
    ("agent_name empty", {"agent_name": ""}, "agent_name"),
    ("agent_name too long", {"agent_name": "a" * 65}, "agent_name"),
    ("agent_name missing", {"agent_name": None}, "agent_name"),
    ("an unknown field", {"user_id": "someone-else"}, "user_id"),
]


def bad_request(agent: str, bad: dict[str, Any] | str) -> dict[str, Any]:
    """Keyword arguments for httpx: a valid body with ``bad`` merged in, or ``bad`` as raw JSON text."""
    if isinstance(bad, str):
        return {"content": bad.replace("AGENT", agent), "headers": {"content-type": "application/json"}}
    body: dict[str, Any] = {"agent_name": agent, "content": {"instructions": ["ok"]}}
    if bad == {}:
        del body["content"]
    for key, value in bad.items():
        if value is None and key == "agent_name":
            del body[key]
        else:
            body[key] = value
    return {"json": body}


@pytest.mark.parametrize(("case", "bad", "field"), BAD_BODIES, ids=[case for case, _, _ in BAD_BODIES])
async def test_every_bad_input_is_a_422_naming_the_field_on_create_and_update(
    live: LiveServer, case: str, bad: dict[str, Any] | str, field: str
) -> None:
    agent = await new_agent(live)
    async with live.client(unique("validator")) as client:
        existing = await create(client, agent)
        created = await client.post(f"{ROUTE}/", **bad_request(agent, bad))
        updated = await client.put(f"{ROUTE}/{existing['id']}", **bad_request(agent, bad))
        listed = await client.get(f"{ROUTE}/{agent}")
    for response in (created, updated):
        assert response.status_code == 422, (case, response.text)
        payload = response.json()
        assert payload["code"] == "validation_error"
        assert any(error["loc"][:1] == ["body"] and field in error["loc"] for error in payload["detail"]), (
            payload
        )
    assert listed.json() == [existing]


async def test_a_body_that_is_not_json_is_a_422(live: LiveServer) -> None:
    async with live.client(unique("validator")) as client:
        response = await client.post(
            f"{ROUTE}/", content=b"{not json", headers={"content-type": "application/json"}
        )
    assert (response.status_code, response.json()["code"]) == (422, "validation_error")


async def test_the_update_instructions_tool_edits_the_callers_instruction_set(live: LiveServer) -> None:
    agent = await new_agent(live, tools=["update_instructions"])
    without_tool = await new_agent(live)
    call = '/tool update_instructions {"instructions": ["Speak like a pirate", "Be brief"]}'
    chat, other_chat = str(uuid.uuid4()), str(uuid.uuid4())
    async with live.client(unique("user")) as client, live.client(unique("other")) as other:
        first = await client.post(
            "/api/chat", json={"agent_name": agent, "message": call, "session_id": chat}
        )
        prompt = await system_prompt(client, agent)
        replace_call = '/tool update_instructions {"instructions": ["Only this"]}'
        second = await client.post(
            "/api/chat", json={"agent_name": agent, "message": replace_call, "session_id": chat}
        )
        listed = (await client.get(f"{ROUTE}/{agent}")).json()
        others_prompt = await system_prompt(other, agent)
        refused = await client.post(
            "/api/chat", json={"agent_name": without_tool, "message": call, "session_id": other_chat}
        )
        refused_list = (await client.get(f"{ROUTE}/{without_tool}")).json()
    reply = first.json()
    assert reply["response"] == "tool update_instructions returned: saved 2 instructions"
    assert reply["tool_calls"][0]["name"] == "update_instructions"
    assert prompt == f"{BASE}\n\n## instruction_set\n- Speak like a pirate\n- Be brief"
    assert (
        second.json()["response"]
        == "tool update_instructions returned: replaced instructions with 1 instructions"
    )
    assert [(r["customization_type"], r["content"]) for r in listed] == [
        ("instruction_set", {"instructions": ["Only this"]})
    ]
    assert others_prompt == BASE
    assert refused.json()["response"] == "unknown tool: update_instructions"
    assert refused_list == []
