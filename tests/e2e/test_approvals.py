"""Tool approvals over real HTTP: a run pauses before a call that needs the user's approval, and
goes on after the user's decision; the tool's side effect (a stored note) happens once at most."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from typing import Any

import httpx
import pytest

from tests.e2e.harness import LiveServer
from tests.e2e.streams import stream_turn
from tests.e2e.test_operations import metric_samples, sample
from tests.e2e.test_runs import wait_for_status

AGENT = "careful"


@pytest.fixture
async def careful(live: LiveServer) -> str:
    """An agent whose ``remember`` tool waits for the user's approval."""
    body = {
        "name": AGENT,
        "model": "echo",
        "system_prompt": "",
        "tools": ["remember", "recall_memories"],
        "tools_requiring_approval": ["remember"],
    }
    async with live.client("e2e-admin", admin=True) as admin:
        response = await admin.post("/api/admin/agents", json=body)
    assert response.status_code in (201, 409), response.text
    return AGENT


async def ask(client: httpx.AsyncClient, note: str) -> dict[str, Any]:
    body = {
        "agent_name": AGENT,
        "message": f'/tool remember {{"note": "{note}"}}',
        "session_id": str(uuid.uuid4()),
    }
    response = await client.post("/api/chat", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def notes(client: httpx.AsyncClient) -> list[str]:
    response = await client.get("/api/memories", params={"agent_name": AGENT})
    return [item["content"] for item in response.json()["items"]]


async def decide(client: httpx.AsyncClient, run_id: str, *decisions: dict[str, Any]) -> httpx.Response:
    return await client.post(f"/api/runs/{run_id}/approvals", json={"decisions": list(decisions)})


async def answer(client: httpx.AsyncClient, paused: dict[str, Any]) -> str:
    await wait_for_status(client, paused["run_id"], "completed")
    page = await client.get(f"/api/chats/{paused['session_id']}/messages")
    return str(page.json()["items"][-1]["content"])


class TestAnAgentAsksFirst:
    async def test_a_call_that_needs_approval_pauses_the_run_and_runs_nothing(
        self, live: LiveServer, careful: str
    ) -> None:
        async with live.client("ada") as ada:
            paused = await ask(ada, "ada likes tea")
            run = (await ada.get(f"/api/runs/{paused['run_id']}")).json()
            stored = await notes(ada)
        assert paused["status"] == "requires_action" and paused["response"] is None
        [pending] = paused["pending_approvals"]
        assert pending["tool_name"] == "remember" and pending["args"] == {"note": "ada likes tea"}
        assert run["status"] == "requires_action"
        assert stored == []

    async def test_an_approved_call_runs_once_and_the_run_completes(
        self, live: LiveServer, careful: str
    ) -> None:
        async with live.client("bo") as bo:
            paused = await ask(bo, "bo rides bikes")
            [pending] = paused["pending_approvals"]
            decided = await decide(bo, paused["run_id"], {"id": pending["id"], "approve": True})
            text = await answer(bo, paused)
            again = await decide(bo, paused["run_id"], {"id": pending["id"], "approve": True})
            stored = await notes(bo)
            steps = (await bo.get(f"/api/runs/{paused['run_id']}/steps")).json()
            usage = (await bo.get("/api/usage", params={"group_by": "agent"})).json()
        assert decided.status_code == 200, decided.text
        assert text.startswith("tool remember returned: remembered")
        assert stored == ["bo rides bikes"]
        assert again.status_code == 409
        assert [(s["kind"], s["status"]) for s in steps] == [
            ("model", "completed"),
            ("tool", "completed"),
            ("model", "completed"),
        ]
        # Both model requests are in the usage ledger: the one before the pause and the one after.
        assert [(i["key"], i["requests"], i["runs"]) for i in usage["items"]] == [(AGENT, 2, 1)]

    async def test_edited_arguments_are_the_ones_the_tool_runs_with(
        self, live: LiveServer, careful: str
    ) -> None:
        async with live.client("cy") as cy:
            paused = await ask(cy, "cy has a cat")
            [pending] = paused["pending_approvals"]
            bad = await decide(
                cy, paused["run_id"], {"id": pending["id"], "approve": True, "args": {"note": 3}}
            )
            edited = {"id": pending["id"], "approve": True, "args": {"note": "cy has two cats"}}
            good = await decide(cy, paused["run_id"], edited)
            await answer(cy, paused)
            stored = await notes(cy)
        assert bad.status_code == 422 and "decisions.0.args" in bad.text
        assert good.status_code == 200, good.text
        assert stored == ["cy has two cats"]

    async def test_a_denied_call_tells_the_model_why_and_runs_nothing(
        self, live: LiveServer, careful: str
    ) -> None:
        async with live.client("di") as di:
            paused = await ask(di, "di is secret")
            [pending] = paused["pending_approvals"]
            deny = {"id": pending["id"], "approve": False, "reason": "not this one"}
            denied = await decide(di, paused["run_id"], deny)
            text = await answer(di, paused)
            stored = await notes(di)
        assert denied.status_code == 200, denied.text
        assert "denied by the user: not this one" in text
        assert stored == []

    async def test_another_users_run_is_not_found(self, live: LiveServer, careful: str) -> None:
        async with live.client("ed") as ed, live.client("fay") as fay:
            paused = await ask(ed, "ed's note")
            [pending] = paused["pending_approvals"]
            theirs = await decide(fay, paused["run_id"], {"id": pending["id"], "approve": True})
            steps = await fay.get(f"/api/runs/{paused['run_id']}/steps")
            await decide(ed, paused["run_id"], {"id": pending["id"], "approve": False})
        assert theirs.status_code == 404 and steps.status_code == 404

    async def test_a_chat_that_waits_for_a_decision_stays_busy(self, live: LiveServer, careful: str) -> None:
        async with live.client("gus") as gus:
            paused = await ask(gus, "gus waits")
            body = {
                "agent_name": AGENT,
                "message": "hi",
                "session_id": paused["session_id"],
                "busy_policy": "reject",
            }
            busy = await gus.post("/api/chat", json=body)
            [pending] = paused["pending_approvals"]
            await decide(gus, paused["run_id"], {"id": pending["id"], "approve": False})
        assert busy.status_code == 409, busy.text

    async def test_a_tool_to_approve_must_be_one_of_the_agents(self, live: LiveServer) -> None:
        body = {
            "name": "odd",
            "model": "echo",
            "system_prompt": "",
            "tools": [],
            "tools_requiring_approval": ["remember"],
        }
        async with live.client("e2e-admin", admin=True) as admin:
            response = await admin.post("/api/admin/agents", json=body)
        assert response.status_code == 422 and "tools_requiring_approval" in response.text


class TestWhatAnApprovalLeavesBehind:
    async def test_a_streamed_turn_ends_with_the_approval_it_waits_for(
        self, live: LiveServer, careful: str
    ) -> None:
        body = {
            "agent_name": AGENT,
            "message": '/tool remember {"note": "hal"}',
            "session_id": str(uuid.uuid4()),
        }
        async with live.client("hal") as hal:
            response, events = await stream_turn(hal, body)
            last = events[-1]
            follow = await hal.get(f"/api/runs/{last.data['run_id']}/events")
            [pending] = last.data["approvals"]
            await decide(hal, last.data["run_id"], {"id": pending["id"], "approve": False})
        assert response.status_code == 200
        assert [e.name for e in events] == ["run", "approval_required"]
        assert pending["tool_name"] == "remember" and pending["args"] == {"note": "hal"}
        assert follow.status_code == 200 and "event: approval_required" in follow.text

    async def test_each_request_and_decision_is_audited_and_counted_without_ids_in_labels(
        self, live: LiveServer, careful: str
    ) -> None:
        user = f"ida-{uuid.uuid4().hex}"
        async with live.client(user) as ida:
            granted, denied = await ask(ida, "one"), await ask(ida, "two")
            for paused, approve in ((granted, True), (denied, False)):
                [pending] = paused["pending_approvals"]
                assert (
                    await decide(ida, paused["run_id"], {"id": pending["id"], "approve": approve})
                ).status_code == 200
        async with live.client("e2e-admin", admin=True) as admin:
            page = (await admin.get("/api/admin/events", params={"user_id": user, "limit": 100})).json()
        async with live.raw_client() as raw:
            text = (await raw.get("/metrics")).text
        kinds = sorted(e["type"] for e in page["items"] if e["type"].startswith("approval."))
        samples = metric_samples(text)
        assert kinds == ["approval.denied", "approval.granted", "approval.requested", "approval.requested"]
        assert sample(samples, "chatserver_approvals_requested_total") >= 2
        assert sample(samples, "chatserver_approvals_decided_total", decision="granted") >= 1
        assert sample(samples, "chatserver_approval_decision_seconds_count", decision="denied") >= 1
        assert user not in text


class TestARunThatCannotWait:
    async def test_a_stateless_openai_turn_gets_the_call_denied_and_nothing_runs(
        self, live: LiveServer, careful: str
    ) -> None:
        body = {"model": AGENT, "messages": [{"role": "user", "content": '/tool remember {"note": "jo"}'}]}
        async with live.client("jo") as jo:
            response = await jo.post("/v1/chat/completions", json=body)
            stored = await notes(jo)
        assert response.status_code == 200, response.text
        content = response.json()["choices"][0]["message"]["content"]
        assert content.startswith("tool remember returned: denied: this tool needs the user's approval")
        assert stored == []


class TestTheCommandLine:
    async def test_agents_create_takes_tools_to_approve_and_refuses_one_the_agent_lacks(
        self, live: LiveServer
    ) -> None:
        base = ("--model", "echo", "--tool", "remember")
        made = await asyncio.to_thread(
            live.cli, "agents", "create", "cli-careful", *base, "--approve", "remember"
        )
        with pytest.raises(subprocess.CalledProcessError) as refused:
            await asyncio.to_thread(live.cli, "agents", "create", "cli-odd", *base, "--approve", "send_mail")
        async with live.client("e2e-admin", admin=True) as admin:
            shown = (await admin.get("/api/admin/agents/cli-careful")).json()
        assert made.returncode == 0, made.stderr
        assert shown["tools_requiring_approval"] == ["remember"]
        assert refused.value.returncode == 1 and "send_mail" in refused.value.stderr
