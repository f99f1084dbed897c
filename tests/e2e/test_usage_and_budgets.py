"""Usage and budgets over real HTTP, on both databases: the ledger, enforcement, reports, the CLI."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import DATABASES, live_server
from tests.e2e.harness import LiveServer


@pytest.fixture(scope="module", params=DATABASES)
def metered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(request.param, tmp_path_factory.mktemp("usage")) as server:
        yield server


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def signed_up(server: LiveServer, user: str) -> None:
    async with server.client(user) as client:
        assert (await client.get("/api/me")).status_code == 200


async def set_budget(server: LiveServer, **body: Any) -> dict[str, Any]:
    async with server.client("e2e-admin", admin=True) as admin:
        response = await admin.post("/api/admin/budgets", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def turn(
    client: httpx.AsyncClient, agent: str, message: str, chat: str | None = None
) -> httpx.Response:
    body = {"agent_name": agent, "message": message, "session_id": chat or unique("chat")}
    return await client.post("/api/chat", json=body)


class TestTheLedger:
    async def test_each_turn_is_in_its_users_usage_and_never_in_anothers(self, metered: LiveServer) -> None:
        agent, alice, bob = unique("ledger"), unique("alice"), unique("bob")
        await metered.create_agent(agent)
        async with metered.client(alice) as a, metered.client(bob) as b:
            for message in ("one", "two"):
                assert (await turn(a, agent, message)).status_code == 200
            assert (await turn(b, agent, "three")).status_code == 200
            mine = (await a.get("/api/usage", params={"group_by": "model"})).json()
            theirs = (await b.get("/api/usage", params={"group_by": "agent"})).json()
        async with metered.raw_client() as anyone:
            metrics = (await anyone.get("/metrics")).text
        [line] = mine["items"]
        assert line["key"] == "echo" and line["requests"] == 2 and line["runs"] == 2
        assert line["cost_usd"] == 0 and line["input_tokens"] > 0 and line["output_tokens"] > 0
        assert mine["totals"]["requests"] == 2
        assert theirs["items"] == [{**theirs["totals"], "key": agent}] and theirs["totals"]["runs"] == 1
        assert f'chatserver_model_requests_total{{agent="{agent}",model="echo"}} 3.0' in metrics
        assert alice not in metrics and bob not in metrics

    async def test_admins_see_everyones_usage_by_user_and_narrowed_to_one(self, metered: LiveServer) -> None:
        agent, carol = unique("report"), unique("carol")
        await metered.create_agent(agent)
        async with metered.client(carol) as client:
            assert (await turn(client, agent, "hello")).status_code == 200
        async with metered.client("e2e-admin", admin=True) as admin:
            everyone = (await admin.get("/api/admin/usage", params={"group_by": "user"})).json()
            narrowed = await admin.get(
                "/api/admin/usage", params={"group_by": "day", "user_id": carol, "agent_name": agent}
            )
        assert carol in [item["key"] for item in everyone["items"]]
        today = datetime.now(UTC).date().isoformat()
        assert [(i["key"], i["runs"]) for i in narrowed.json()["items"]] == [(today, 1)]

    async def test_a_day_range_excludes_other_days_and_bad_dates_are_422(self, metered: LiveServer) -> None:
        agent = unique("range")
        await metered.create_agent(agent)
        today = datetime.now(UTC).date().isoformat()
        tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
        async with metered.client(unique("dora")) as client:
            assert (await turn(client, agent, "x")).status_code == 200
            now = await client.get("/api/usage", params={"from": today, "to": today})
            later = await client.get("/api/usage", params={"from": tomorrow})
            bad = await client.get("/api/usage", params={"from": "yesterday"})
            backwards = await client.get("/api/usage", params={"from": tomorrow, "to": "2020-01-01"})
            user_view = await client.get("/api/admin/usage")
        assert [item["key"] for item in now.json()["items"]] == [today]
        assert later.status_code == 200 and later.json()["items"] == []
        assert bad.status_code == 422 and "detail" in bad.json()
        assert backwards.status_code == 422
        assert user_view.status_code == 403


class TestBudgets:
    async def test_eight_concurrent_turns_on_a_budget_of_five_requests_admit_five_and_store_nothing_else(
        self, metered: LiveServer
    ) -> None:
        agent, erin = unique("budget"), unique("erin")
        await metered.create_agent(agent)
        await signed_up(metered, erin)
        await set_budget(metered, user_id=erin, period="day", max_requests=5)
        async with metered.client(erin) as client:
            chats = [unique("chat") for _ in range(8)]
            replies = await asyncio.gather(*(turn(client, agent, "/sleep 300 hi", chat) for chat in chats))
            listed = (await client.get("/api/chats", params={"limit": 50})).json()["items"]
            budget = (await client.get("/api/budget")).json()
        answered = [chat for chat, reply in zip(chats, replies, strict=True) if reply.status_code == 200]
        refused = [reply for reply in replies if reply.status_code != 200]
        # Requests are counted by one conditional statement each: the limit is exact.
        assert len(answered) == 5, [r.text for r in replies]
        assert {r.status_code for r in refused} == {429}
        assert all(r.json()["code"] == "budget_exceeded" for r in refused)
        assert all(int(r.headers["Retry-After"]) > 0 for r in refused)
        assert sorted(chat["id"] for chat in listed) == sorted(answered)
        [status] = budget
        assert status["used"]["requests"] == 5 and status["remaining"]["requests"] == 0

    async def test_the_retry_after_of_a_refused_turn_is_the_time_until_the_period_resets(
        self, metered: LiveServer
    ) -> None:
        agent, fay = unique("reset"), unique("fay")
        await metered.create_agent(agent)
        await signed_up(metered, fay)
        await set_budget(metered, user_id=fay, agent_name=agent, period="day", max_requests=0)
        async with metered.client(fay) as client:
            refused = await turn(client, agent, "hi")
            streamed = await client.post(
                "/api/chat/stream", json={"agent_name": agent, "message": "hi", "session_id": unique("s")}
            )
            [status] = (await client.get("/api/budget")).json()
        midnight = datetime.combine(datetime.now(UTC).date() + timedelta(days=1), datetime.min.time(), UTC)
        left = (midnight - datetime.now(UTC)).total_seconds()
        assert refused.status_code == 429
        assert abs(int(refused.headers["Retry-After"]) - left) < 60
        assert streamed.status_code == 429 and streamed.json()["code"] == "budget_exceeded"
        assert datetime.fromisoformat(status["resets_at"]) == midnight

    async def test_a_tool_loop_that_runs_out_mid_run_fails_and_keeps_its_steps(
        self, metered: LiveServer
    ) -> None:
        agent, gus = unique("midrun"), unique("gus")
        await metered.create_agent(agent, tools=["current_time"])
        await signed_up(metered, gus)
        await set_budget(metered, user_id=gus, period="month", max_requests=1)
        chat = unique("chat")
        async with metered.client(gus) as client:
            failed = await turn(client, agent, "/tool current_time {}", chat)
            messages = (await client.get(f"/api/chats/{chat}/messages")).json()["items"]
            runs = (await client.get(f"/api/chats/{chat}/runs")).json()["items"]
            usage = (await client.get("/api/usage", params={"group_by": "agent"})).json()
        assert failed.status_code == 429 and failed.json()["code"] == "budget_exceeded"
        assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
        assert messages[1]["tool_calls"][0]["name"] == "current_time"
        [run] = runs
        assert run["status"] == "failed" and run["error"]["code"] == "budget_exceeded"
        assert run["usage"]["requests"] == 1
        assert usage["totals"]["requests"] == 1

    async def test_a_default_budget_binds_users_without_their_own_and_an_agents_total_binds_all(
        self, metered: LiveServer
    ) -> None:
        agent, capped = unique("shared"), unique("capped")
        await metered.create_agent(agent)
        await metered.create_agent(capped)
        hal, ivy = unique("hal"), unique("ivy")
        for user in (hal, ivy):
            await signed_up(metered, user)
        await set_budget(metered, agent_name=capped, period="day", max_requests=1)
        async with metered.client(hal) as h, metered.client(ivy) as i:
            assert (await turn(h, capped, "first")).status_code == 200
            assert (await turn(i, capped, "second")).status_code == 429  # the agent's total, all users
            assert (await turn(i, agent, "other agent")).status_code == 200
            budgets = (await i.get("/api/budget")).json()
        assert [(b["agent_name"], b["used"]["requests"]) for b in budgets] == [(capped, 1)]

    async def test_budget_bodies_that_make_no_sense_are_refused(self, metered: LiveServer) -> None:
        agent = unique("checked")
        await metered.create_agent(agent)
        bodies = [
            ({"period": "day", "max_requests": -1}, 422),
            ({"period": "day"}, 422),
            ({"period": "week", "max_tokens": 5}, 422),
            ({"period": "day", "max_tokens": 5, "unknown": 1}, 422),
            ({"period": "day", "max_tokens": 5, "agent_name": "no-such-agent"}, 404),
            ({"period": "day", "max_tokens": 5, "user_id": "no-such-user"}, 404),
        ]
        async with metered.client("e2e-admin", admin=True) as admin:
            answers = [await admin.post("/api/admin/budgets", json=body) for body, _ in bodies]
            missing = await admin.delete("/api/admin/budgets/no-such-budget")
        async with metered.client(unique("jo")) as user:
            forbidden = await user.post("/api/admin/budgets", json={"period": "day", "max_tokens": 1})
        assert [a.status_code for a in answers] == [status for _, status in bodies], [a.text for a in answers]
        assert all("detail" in a.json() for a in answers)
        assert missing.status_code == 404 and forbidden.status_code == 403

    async def test_the_cli_sets_lists_and_deletes_budgets_that_the_server_enforces(
        self, metered: LiveServer
    ) -> None:
        agent, kim = unique("cli"), unique("kim")
        await metered.create_agent(agent)
        await signed_up(metered, kim)
        done = await asyncio.to_thread(
            metered.cli, "budgets", "set", "--period", "day", "--user", kim, "--max-tokens", "0"
        )
        budget_id = done.stdout.split()[-1]
        listed = await asyncio.to_thread(metered.cli, "budgets", "list")
        assert f"{budget_id}\tday\t{kim}\t*\t0\t-\t-" in listed.stdout
        async with metered.client(kim) as client:
            refused = await _answered_once_with(client, agent, 429)
            await asyncio.to_thread(metered.cli, "budgets", "delete", budget_id)
            admitted = await _answered_once_with(client, agent, 200)
        assert refused and admitted


async def _answered_once_with(client: httpx.AsyncClient, agent: str, status: int) -> bool:
    """A budget set by the CLI binds the server within its refresh time (5 s by default)."""
    for _ in range(40):
        if (await turn(client, agent, "hi")).status_code == status:
            return True
        await asyncio.sleep(0.25)
    return False
