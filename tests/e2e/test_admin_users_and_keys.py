"""Admins list users, issue and revoke API keys, and read budgets over real HTTP, on both databases."""

from __future__ import annotations

import uuid

import httpx

from tests.e2e.harness import LiveServer


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class TestUsersAndKeys:
    async def test_an_issued_key_is_shown_once_works_and_stops_working_once_revoked(
        self, live: LiveServer
    ) -> None:
        name = unique("keyed")
        async with live.client("root", admin=True) as admin, live.raw_client() as anyone:
            issued = await admin.post("/api/admin/keys", json={"user": name})
            body = issued.json()
            works = await anyone.get("/api/me", headers=bearer(body["key"]))
            listed = (await admin.get("/api/admin/users")).json()
            shown = (await admin.get(f"/api/admin/users/{body['user']['id']}")).json()
            revoked = await admin.delete(f"/api/admin/keys/{body['id']}")
            refused = await anyone.get("/api/me", headers=bearer(body["key"]))
            again = await admin.delete(f"/api/admin/keys/{body['id']}")
            after = (await admin.get(f"/api/admin/users/{name}")).json()
        assert issued.status_code == 201 and body["key"].startswith(body["prefix"])
        assert (
            body["user"]["name"] == name and body["user"]["is_admin"] is False and body["promoted"] is False
        )
        assert works.status_code == 200 and works.json()["id"] == body["user"]["id"]
        [row] = [user for user in listed if user["name"] == name]
        assert row == {**body["user"], "active_keys": 1}
        assert [(key["id"], key["prefix"], key["revoked_at"]) for key in shown["keys"]] == [
            (body["id"], body["prefix"], None)
        ]
        assert "key" not in shown["keys"][0]
        assert revoked.status_code == 204 and refused.status_code == 401
        assert again.status_code == 404 and again.json()["code"] == "not_found"
        assert after["active_keys"] == 0 and after["keys"][0]["revoked_at"] is not None

    async def test_a_second_key_with_admin_promotes_the_existing_user(self, live: LiveServer) -> None:
        name = unique("promoted")
        async with live.client("root", admin=True) as admin, live.raw_client() as anyone:
            await admin.post("/api/admin/keys", json={"user": name})
            second = (await admin.post("/api/admin/keys", json={"user": name, "admin": True})).json()
            admin_route = await anyone.get("/api/admin/users", headers=bearer(second["key"]))
        assert second["promoted"] is True
        assert second["user"]["is_admin"] is True and second["user"]["active_keys"] == 2
        assert admin_route.status_code == 200

    async def test_issuing_and_revoking_are_audited_under_the_keys_owner(self, live: LiveServer) -> None:
        name = unique("audited")
        async with live.client("auditor", admin=True) as admin:
            issued = (await admin.post("/api/admin/keys", json={"user": name})).json()
            await admin.delete(f"/api/admin/keys/{issued['prefix']}")
            page = await admin.get("/api/admin/events", params={"user_id": issued["user"]["id"]})
        events = {event["type"]: event["data"] for event in page.json()["items"]}
        expected = {"key_id": issued["id"], "prefix": issued["prefix"], "by": "auditor"}
        assert events["api_key.created"] == {**expected, "promoted": False}
        assert events["api_key.revoked"] == expected

    async def test_unknown_users_and_keys_are_404_and_bad_bodies_422(self, live: LiveServer) -> None:
        async with live.client("root", admin=True) as admin:
            user = await admin.get("/api/admin/users/no-such-user")
            key = await admin.delete("/api/admin/keys/no-such-key")
            bodies = [
                {},
                {"user": ""},
                {"user": "x", "admin": "yes"},
                {"user": "x", "extra": 1},
                {"user": "a\x00"},
            ]
            answers = [await admin.post("/api/admin/keys", json=body) for body in bodies]
        assert (user.status_code, key.status_code) == (404, 404)
        assert all(isinstance(r.json()["detail"], str) for r in (user, key))
        assert [r.status_code for r in answers] == [422] * len(bodies)
        assert all(r.json()["code"] == "validation_error" for r in answers)

    async def test_someone_who_is_not_an_admin_is_refused_and_nothing_changes(self, live: LiveServer) -> None:
        name = unique("bystander")
        async with live.client(name) as user, live.client("root", admin=True) as admin:
            issued = (await admin.post("/api/admin/keys", json={"user": unique("target")})).json()
            answers = [
                await user.get("/api/admin/users"),
                await user.get(f"/api/admin/users/{issued['user']['id']}"),
                await user.post("/api/admin/keys", json={"user": name, "admin": True}),
                await user.delete(f"/api/admin/keys/{issued['id']}"),
            ]
            still = (await admin.get(f"/api/admin/users/{issued['user']['id']}")).json()
            names = [row["name"] for row in (await admin.get("/api/admin/users")).json()]
        assert [r.status_code for r in answers] == [403] * 4
        assert all(r.json()["code"] == "forbidden" for r in answers)
        assert still["active_keys"] == 1 and name not in names


class TestTheLastAdminKey:
    async def test_an_admin_cannot_revoke_their_own_last_admin_key_but_can_once_another_exists(
        self, live: LiveServer
    ) -> None:
        mine = (await live.issue_key(unique("sole-admin"), admin=True)).key
        async with httpx.AsyncClient(base_url=live.url, headers=bearer(mine), timeout=30) as me:
            await _revoke_every_other_admin_key(me, mine)
            own = await _own_key_id(me, mine)
            refused = await me.delete(f"/api/admin/keys/{own}")
            still_in = await me.get("/api/admin/users")
            other = (
                await me.post("/api/admin/keys", json={"user": unique("second-admin"), "admin": True})
            ).json()
            allowed = await me.delete(f"/api/admin/keys/{own}")
            locked_out = await me.get("/api/admin/users")
        async with httpx.AsyncClient(base_url=live.url, headers=bearer(other["key"]), timeout=30) as second:
            others_own = await second.delete(f"/api/admin/keys/{other['id']}")
        assert refused.status_code == 409 and refused.json()["code"] == "conflict"
        assert "lock you out" in refused.json()["detail"]
        assert still_in.status_code == 200
        assert allowed.status_code == 204 and locked_out.status_code == 401
        assert others_own.status_code == 409


async def _own_key_id(client: httpx.AsyncClient, key: str) -> str:
    me = (await client.get("/api/me")).json()
    shown = (await client.get(f"/api/admin/users/{me['id']}")).json()
    [own] = [
        row["id"] for row in shown["keys"] if key.startswith(row["prefix"]) and row["revoked_at"] is None
    ]
    return str(own)


async def _revoke_every_other_admin_key(client: httpx.AsyncClient, key: str) -> None:
    """The module's server is shared: earlier tests may have left admin keys behind."""
    for user in (await client.get("/api/admin/users")).json():
        if not user["is_admin"]:
            continue
        for row in (await client.get(f"/api/admin/users/{user['id']}")).json()["keys"]:
            if row["revoked_at"] is None and not key.startswith(row["prefix"]):
                assert (await client.delete(f"/api/admin/keys/{row['id']}")).status_code == 204


class TestBudgetOverview:
    async def test_the_budget_list_shows_what_each_budget_used_and_has_left(self, live: LiveServer) -> None:
        agent, user = unique("metered"), unique("spender")
        await live.create_agent(agent)
        async with live.client(user) as client, live.client("root", admin=True) as admin:
            me = (await client.get("/api/me")).json()
            mine = await admin.post(
                "/api/admin/budgets", json={"user_id": me["id"], "period": "day", "max_requests": 5}
            )
            default = await admin.post("/api/admin/budgets", json={"period": "month", "max_tokens": 10**9})
            chat = {"agent_name": agent, "message": "hi", "session_id": unique("chat")}
            assert (await client.post("/api/chat", json=chat)).status_code == 200
            listed = {row["id"]: row for row in (await admin.get("/api/admin/budgets")).json()}
            for made in (mine, default):
                assert (await admin.delete(f"/api/admin/budgets/{made.json()['id']}")).status_code == 204
        own, every = listed[mine.json()["id"]], listed[default.json()["id"]]
        assert own["used"]["requests"] == 1 and own["remaining"] == {
            "tokens": None,
            "requests": 4,
            "cost_usd": None,
        }
        assert own["resets_at"] is not None
        assert (every["used"], every["remaining"], every["resets_at"]) == (None, None, None)
