"""Operators' commands for users and keys, against a live server's database."""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from tests.e2e.harness import LiveServer


async def admin_status(live: LiveServer, key: str) -> int:
    async with live.raw_client() as client:
        response = await client.get("/api/admin/agents", headers={"Authorization": f"Bearer {key}"})
    return response.status_code


async def cli(live: LiveServer, *args: str) -> str:
    return (await asyncio.to_thread(live.cli, *args)).stdout


async def user_id(live: LiveServer, name: str) -> str:
    shown = await cli(live, "users", "show", name)
    return next(line.split(" ", 1)[1] for line in shown.splitlines() if line.startswith("id "))


async def test_users_are_listed_and_shown_with_their_keys(live: LiveServer) -> None:
    issued = await live.issue_key("operator-ann")
    await live.revoke_key(issued.prefix)
    again = await live.issue_key("operator-ann")
    ann = await user_id(live, "operator-ann")
    listed = await cli(live, "users", "list")
    shown = await cli(live, "users", "show", "operator-ann")
    by_id = await cli(live, "users", "show", ann)
    keys = await cli(live, "keys", "list", "--user", "operator-ann")
    line = next(row for row in listed.splitlines() if "\toperator-ann\t" in row)
    assert line.startswith(ann) and line.endswith("1 key(s)") and "\t-\t" in line
    assert "admin no" in shown and shown == by_id
    assert f"{issued.prefix} revoked" in shown and f"{again.prefix} active" in shown
    assert [row.split("\t")[1] for row in keys.splitlines()] == [issued.prefix, again.prefix]
    assert [row.split("\t")[-1] == "active" for row in keys.splitlines()] == [False, True]


async def test_set_admin_and_unset_admin_change_what_every_key_of_the_user_may_do(live: LiveServer) -> None:
    first = await live.issue_key("operator-bo")
    second = await live.issue_key("operator-bo")
    assert await admin_status(live, first.key) == 403
    await cli(live, "users", "set-admin", "operator-bo")
    made = [await admin_status(live, first.key), await admin_status(live, second.key)]
    await cli(live, "users", "unset-admin", await user_id(live, "operator-bo"))
    unmade = await admin_status(live, second.key)
    assert made == [200, 200] and unmade == 403


async def test_an_admin_key_for_an_existing_user_says_that_it_promotes_them(live: LiveServer) -> None:
    plain = await live.issue_key("operator-cy")
    promoting = await cli(live, "keys", "create", "--user", "operator-cy", "--admin")
    again = await cli(live, "keys", "create", "--user", "operator-cy", "--admin")
    assert "is now an admin: every key of theirs acts as admin" in promoting
    assert await admin_status(live, plain.key) == 200
    assert "is now an admin" not in again


async def test_erasing_a_user_from_the_command_line_leaves_nothing_of_theirs(live: LiveServer) -> None:
    issued = await live.issue_key("operator-di")
    headers = {"Authorization": f"Bearer {issued.key}"}
    async with live.raw_client() as client:
        body = {"agent_name": "assistant", "message": "remember me", "session_id": "operator-di-chat"}
        assert (await client.post("/api/chat", json=body, headers=headers)).status_code == 200
    erased = await cli(live, "users", "erase", "operator-di", "--yes")
    async with live.raw_client() as client:
        refused = await client.get("/api/chats", headers=headers)
    assert "chats 1" in erased and "messages 2" in erased and "api_keys 1" in erased
    assert refused.status_code == 401
    assert "operator-di" not in await cli(live, "users", "list")
    with pytest.raises(subprocess.CalledProcessError) as unknown:
        await cli(live, "users", "show", "operator-di")
    assert "not found" in unknown.value.stderr + unknown.value.stdout
