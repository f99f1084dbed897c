"""Two real ``chatserver serve`` processes on one database and no Redis at all: no invalidation
ever travels between them, yet a change acknowledged by one is in the other's very next turn.

Each replica caches agents; the version stamps a turn reads in the statement that opens it are
what makes the other replica rebuild (``chatserver_agent_cache_stale_total`` counts it).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.harness import JWT_SECRET
from tests.e2e.replicas import Replicas, metric, system_prompt, two_replicas
from tests.support.databases import throwaway_database

DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="module", params=DATABASES)
def replicas(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    with asyncio.Runner() as runner:
        database = throwaway_database(request.param, tmp_path_factory.mktemp("db"))
        url = runner.run(database.__aenter__())
        env = {
            "CHATSERVER_DATABASE_URL": url,
            "CHATSERVER_JWT_SECRET": JWT_SECRET,
            "CHATSERVER_LOG_LEVEL": "WARNING",
        }
        try:
            with two_replicas(
                (tmp_path_factory.mktemp("a"), tmp_path_factory.mktemp("b")), **env
            ) as replicas:
                yield replicas
        finally:
            runner.run(database.__aexit__(None, None, None))


async def stateless_system_prompt(client: httpx.AsyncClient, agent: str) -> str:
    """The same through ``/v1`` without a kept chat: the turn's only statement stores its run."""
    body = {"model": agent, "messages": [{"role": "user", "content": "/system"}]}
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["choices"][0]["message"]["content"])


async def test_an_admins_system_prompt_change_through_one_replica_is_in_the_others_next_turn(
    replicas: Replicas,
) -> None:
    agent = f"norelay-{uuid.uuid4().hex[:8]}"
    definition = {"name": agent, "model": "echo", "system_prompt": "Version one.", "tools": []}
    async with (
        replicas.client(replicas.a, "root", admin=True) as admin_a,
        replicas.client(replicas.b, "u1") as u1,
        replicas.client(replicas.b, "u2") as u2,
    ):
        assert (await admin_a.post("/api/admin/agents", json=definition)).status_code == 201
        assert await system_prompt(u1, agent) == await system_prompt(u2, agent) == "Version one."
        hits = await metric(replicas.b, "chatserver_agent_cache_hits_total")
        assert await system_prompt(u1, agent) == "Version one."
        assert await metric(replicas.b, "chatserver_agent_cache_hits_total") > hits, "b serves from its cache"
        stale = await metric(replicas.b, "chatserver_agent_cache_stale_total")
        for version in ("Version two.", "Version three."):
            updated = await admin_a.put(
                f"/api/admin/agents/{agent}", json={**definition, "system_prompt": version}
            )
            assert updated.status_code == 200
            assert await system_prompt(u1, agent) == await system_prompt(u2, agent) == version
            assert await stateless_system_prompt(u1, agent) == version
    assert await metric(replicas.b, "chatserver_agent_cache_stale_total") >= stale + 4
    assert await metric(replicas.b, "chatserver_cache_invalidations_received_total") == 0


async def test_a_customization_change_through_one_replica_is_in_the_others_next_turn(
    replicas: Replicas,
) -> None:
    user = f"carol-{uuid.uuid4().hex[:8]}"
    async with replicas.client(replicas.a, user) as on_a, replicas.client(replicas.b, user) as on_b:
        assert "pirate" not in await system_prompt(on_b, "assistant")
        body = {"agent_name": "assistant", "content": {"instructions": ["speak like a pirate"]}}
        created = await on_a.post("/api/agent/prompt_customizations/", json=body)
        assert created.status_code == 201
        assert "speak like a pirate" in await system_prompt(on_b, "assistant")
        deleted = await on_a.delete(f"/api/agent/prompt_customizations/{created.json()['id']}")
        assert deleted.status_code == 204
        assert "pirate" not in await system_prompt(on_b, "assistant")
