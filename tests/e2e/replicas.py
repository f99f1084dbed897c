"""Two real ``chatserver serve`` processes on one database, started one after the other (the first
migrates and seeds it), and what the tests ask of them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.harness import mint_token
from tests.e2e.processes import chatserver_serve
from tests.support.drain import Drain


@dataclass(frozen=True)
class Replicas:
    a: str
    b: str
    prefix: str = ""
    """The Redis prefix they share ("" without Redis)."""

    def client(self, url: str, user: str, *, admin: bool = False) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {mint_token(user, admin=admin)}"}
        return httpx.AsyncClient(base_url=url, headers=headers, timeout=30)


@contextmanager
def two_replicas(folders: tuple[Path, Path], prefix: str = "", **env: str) -> Iterator[Replicas]:
    """Each must exit 0 when terminated; its output is shown when it does not."""
    with chatserver_serve(folders[0], **env) as a:
        assert a.process.stdout is not None
        drains = [Drain(a.process.stdout)]
        a.wait_healthy(timeout=90)
        with chatserver_serve(folders[1], **env) as b:
            assert b.process.stdout is not None
            drains.append(Drain(b.process.stdout))
            b.wait_healthy(timeout=90)
            yield Replicas(a.url, b.url, prefix)
            assert b.terminate() == 0, drains[1].finish()
        assert a.terminate() == 0, drains[0].finish()


async def system_prompt(client: httpx.AsyncClient, agent: str = "assistant") -> str:
    """What the model receives as system prompt, each call in a new chat of the caller's."""
    body = {"agent_name": agent, "message": "/system", "session_id": str(uuid.uuid4())}
    response = await client.post("/api/chat", json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["response"])


async def metric(url: str, name: str) -> float:
    async with httpx.AsyncClient(base_url=url, timeout=30) as raw:
        text = (await raw.get("/metrics")).text
    values = [s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name]
    return sum(values)
