"""Two real ``chatserver serve`` processes on one PostgreSQL database and the real Redis.

A change through one replica invalidates the other's cached agents (pub/sub), the audit stream gets
the events of a turn exactly once, and one rate limit counts a user's requests on both.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.harness import JWT_SECRET
from tests.e2e.replicas import Replicas, metric, system_prompt, two_replicas
from tests.support.databases import throwaway_database
from tests.support.redis import redis_client, redis_prefix, redis_url

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

RATE_LIMIT = 40
WAIT_SECONDS = 20.0


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    with asyncio.Runner() as runner, redis_prefix() as prefix:
        database = throwaway_database("postgres", tmp_path_factory.mktemp("pg"))
        url = runner.run(database.__aenter__())
        env = {
            "CHATSERVER_DATABASE_URL": url,
            "CHATSERVER_REDIS_URL": redis_url(),
            "CHATSERVER_REDIS_PREFIX": prefix,
            "CHATSERVER_JWT_SECRET": JWT_SECRET,
            "CHATSERVER_RATE_LIMIT_PER_MINUTE": str(RATE_LIMIT),
            "CHATSERVER_EVENT_STREAM_INTERVAL_SECONDS": "0.2",
            "CHATSERVER_LOG_LEVEL": "WARNING",
        }
        try:
            folders = (tmp_path_factory.mktemp("a"), tmp_path_factory.mktemp("b"))
            with two_replicas(folders, prefix, **env) as replicas:
                yield replicas
        finally:
            runner.run(database.__aexit__(None, None, None))


async def test_a_customization_change_through_one_replica_shows_in_the_others_very_next_turn(
    replicas: Replicas,
) -> None:
    user = f"alice-{uuid.uuid4().hex[:8]}"
    async with replicas.client(replicas.a, user) as on_a, replicas.client(replicas.b, user) as on_b:
        assert "pirate" not in await system_prompt(on_b)
        hits = await metric(replicas.b, "chatserver_agent_cache_hits_total")
        assert "pirate" not in await system_prompt(on_b)
        assert await metric(replicas.b, "chatserver_agent_cache_hits_total") > hits, "b serves from its cache"

        body = {"agent_name": "assistant", "content": {"instructions": ["speak like a pirate"]}}
        created = await on_a.post("/api/agent/prompt_customizations/", json=body)
        assert created.status_code == 201
        assert "speak like a pirate" in await system_prompt(on_b)

        body["content"] = {"instructions": ["be terse"]}
        updated = await on_a.put(f"/api/agent/prompt_customizations/{created.json()['id']}", json=body)
        assert updated.status_code == 200
        after_update = await system_prompt(on_b)
        assert "be terse" in after_update and "pirate" not in after_update

        deleted = await on_a.delete(f"/api/agent/prompt_customizations/{created.json()['id']}")
        assert deleted.status_code == 204
        assert "be terse" not in await system_prompt(on_b)
    assert await metric(replicas.b, "chatserver_cache_invalidations_received_total") >= 3


async def test_an_admin_change_of_an_agent_reaches_every_users_copy_on_the_other_replica(
    replicas: Replicas,
) -> None:
    agent = f"shared-{uuid.uuid4().hex[:8]}"
    definition = {"name": agent, "model": "echo", "system_prompt": "Version one.", "tools": []}
    async with replicas.client(replicas.a, "root", admin=True) as admin_a:
        assert (await admin_a.post("/api/admin/agents", json=definition)).status_code == 201
        async with replicas.client(replicas.b, "u1") as u1, replicas.client(replicas.b, "u2") as u2:
            assert await system_prompt(u1, agent) == await system_prompt(u2, agent) == "Version one."
            updated = await admin_a.put(
                f"/api/admin/agents/{agent}", json={**definition, "system_prompt": "Version two."}
            )
            assert updated.status_code == 200
            assert await system_prompt(u1, agent) == await system_prompt(u2, agent) == "Version two."


async def test_the_stream_receives_the_events_of_a_turn_once_each(replicas: Replicas) -> None:
    user, chat = f"streamed-{uuid.uuid4().hex[:8]}", f"stream-chat-{uuid.uuid4().hex[:8]}"
    async with replicas.client(replicas.b, user) as on_b:
        body = {"agent_name": "assistant", "message": "hello stream", "session_id": chat}
        assert (await on_b.post("/api/chat", json=body)).status_code == 200
    async with replicas.client(replicas.a, "root", admin=True) as admin:
        stored = (await admin.get("/api/admin/events", params={"user_id": user})).json()["items"]
    assert [e["type"] for e in stored] == ["turn.completed", "agent.built"]
    wanted = {f"{e['id']}-0": e for e in stored}
    async with redis_client() as raw:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            entries = await raw.xrange(f"{replicas.prefix}events")
            if set(wanted) <= {entry_id for entry_id, _ in entries}:
                break
            assert time.monotonic() < deadline, "the turn's events never reached the stream"
            await asyncio.sleep(0.1)
    ids = [entry_id for entry_id, _ in entries]
    assert len(ids) == len(set(ids)) and ids == sorted(ids, key=lambda i: int(i.split("-")[0]))
    published = {entry_id: json.loads(fields["event"]) for entry_id, fields in entries if entry_id in wanted}
    for entry_id, event in published.items():
        assert {k: event[k] for k in ("id", "type", "user_id", "chat_id", "data")} == {
            k: wanted[entry_id][k] for k in ("id", "type", "user_id", "chat_id", "data")
        }
    assert "hello stream" not in json.dumps(list(published.values()))


async def test_one_rate_limit_counts_a_users_requests_on_both_replicas(replicas: Replicas) -> None:
    user = f"limited-{uuid.uuid4().hex[:8]}"
    async with replicas.client(replicas.a, user) as on_a, replicas.client(replicas.b, user) as on_b:
        statuses = [
            (await (on_a if i % 2 else on_b).get("/api/agents")).status_code for i in range(RATE_LIMIT)
        ]
        refused_a = await on_a.get("/api/agents")
        refused_b = await on_b.get("/api/agents")
    async with replicas.client(replicas.a, "someone-else") as other:
        unaffected = await other.get("/api/agents")
    assert statuses == [200] * RATE_LIMIT
    for refused in (refused_a, refused_b):
        assert (refused.status_code, refused.json()["code"]) == (429, "rate_limited")
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert unaffected.status_code == 200


def test_each_replica_reports_redis_ready(replicas: Replicas) -> None:
    for url in (replicas.a, replicas.b):
        body = httpx.get(f"{url}/readyz", timeout=10).json()
        assert body["checks"] == {"database": "ok", "migrations": "ok", "redis": "ok"}


def test_every_key_lives_under_the_deployments_prefix(replicas: Replicas) -> None:
    async def keys() -> list[str]:
        async with redis_client() as raw:
            return [key async for key in raw.scan_iter(match=f"{replicas.prefix}*")]

    found = asyncio.run(keys())
    assert f"{replicas.prefix}events" in found and f"{replicas.prefix}events:cursor" in found
