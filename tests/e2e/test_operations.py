"""Operating one server over real HTTP: health, readiness, metrics, request ids, audit events, rate limits."""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from tests.e2e.conftest import live_server, prepared_database
from tests.e2e.harness import JWT_SECRET, LiveServer, mint_token, serve_in_thread
from tests.e2e.processes import chatserver_serve, clean_env
from tests.support.drain import Drain
from tests.support.redis import redis_prefix
from tests.support.tcp_proxy import TcpProxy

# Labels of bounded sets only: a model is an agent's configured model string, never an id.
ALLOWED_LABELS = {"method", "route", "status", "agent", "model", "outcome", "direction", "task", "le"}
READY_WAIT_SECONDS = 30.0


def metric_samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def turn(client: httpx.AsyncClient, chat_id: str, message: str) -> httpx.Response:
    return await client.post(
        "/api/chat", json={"agent_name": "assistant", "message": message, "session_id": chat_id}
    )


async def until_ready(client: httpx.AsyncClient, status: int) -> dict[str, Any]:
    """Poll /readyz until it answers ``status`` (bounded); returns that body."""
    deadline = time.monotonic() + READY_WAIT_SECONDS
    while True:
        response = await client.get("/readyz")
        if response.status_code == status:
            return dict(response.json())
        assert time.monotonic() < deadline, f"/readyz stayed {response.status_code}: {response.text}"
        await asyncio.sleep(0.2)


class TestHealth:
    async def test_liveness_and_readiness_need_no_token(self, live: LiveServer) -> None:
        async with live.raw_client() as client:
            health = await client.get("/healthz")
            ready = await client.get("/readyz")
        assert (health.status_code, health.json()) == (200, {"status": "ok"})
        assert ready.status_code == 200
        assert ready.json() == {
            "status": "ready",
            "checks": {"database": "ok", "migrations": "ok"},
            "failing": [],
            "degraded": [],
        }


class TestMetrics:
    async def test_metrics_count_requests_turns_tokens_and_the_cache_without_ids_in_labels(
        self, live: LiveServer
    ) -> None:
        user, chat_id = f"metrics-user-{uuid.uuid4().hex}", f"metrics-chat-{uuid.uuid4().hex}"
        async with live.client(user) as client:
            for message in ("hello", "again", "/fail"):
                await turn(client, chat_id, message)
            assert (await client.get(f"/api/chats/{chat_id}/messages")).status_code == 200
            opened = await client.post("/api/chat_sessions", json={"agent_name": "assistant"})
            assert opened.status_code == 201
        async with live.raw_client() as raw:
            response = await raw.get("/metrics")
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
        text = response.text
        samples = metric_samples(text)
        ok = {"method": "POST", "route": "/api/chat", "status": "200"}
        assert sample(samples, "chatserver_http_requests_total", **ok) >= 2
        assert (
            sample(samples, "chatserver_http_requests_total", method="POST", route="/api/chat", status="502")
            >= 1
        )
        messages = {"method": "GET", "route": "/api/chats/{chat_id}/messages", "status": "200"}
        assert sample(samples, "chatserver_http_requests_total", **messages) >= 1
        assert (
            sample(
                samples, "chatserver_http_request_duration_seconds_count", method="POST", route="/api/chat"
            )
            >= 3
        )
        assert sample(samples, "chatserver_chat_turns_total", agent="assistant", outcome="completed") >= 2
        assert sample(samples, "chatserver_chat_turns_total", agent="assistant", outcome="model_error") >= 1
        assert (
            sample(samples, "chatserver_model_latency_seconds_count", agent="assistant", outcome="completed")
            >= 2
        )
        assert sample(samples, "chatserver_tokens_total", agent="assistant", direction="input") > 0
        assert sample(samples, "chatserver_tokens_total", agent="assistant", direction="output") > 0
        assert sample(samples, "chatserver_agent_cache_builds_total") >= 1
        assert sample(samples, "chatserver_agent_cache_hits_total") >= 1
        assert sample(samples, "chatserver_active_sessions") >= 1
        for name in ("misses", "evictions", "invalidations"):
            assert (f"chatserver_agent_cache_{name}_total", frozenset()) in samples
        labels = {label for (name, pairs) in samples if name.startswith("chatserver_") for label, _ in pairs}
        assert labels <= ALLOWED_LABELS
        assert user not in text and chat_id not in text

    async def test_every_response_carries_a_request_id(self, live: LiveServer) -> None:
        async with live.raw_client() as raw, live.client("rid-user") as client:
            responses = [
                await raw.get("/healthz"),
                await raw.get("/api/agents"),
                await raw.get("/no/such/route"),
                await client.post("/api/chat", json={"agent_name": "assistant"}),
                await client.get("/api/agents", headers={"X-Request-Id": "client-chosen-1"}),
            ]
        assert [r.status_code for r in responses] == [200, 401, 404, 422, 200]
        ids = [r.headers.get("x-request-id") for r in responses]
        assert all(ids) and len(set(ids)) == 5
        assert ids[-1] == "client-chosen-1"


class TestAuditEvents:
    async def test_an_admin_lists_a_users_events_newest_first_filtered_and_paged(
        self, live: LiveServer
    ) -> None:
        user = f"audited-{uuid.uuid4().hex[:12]}"
        async with live.client(user) as client:
            body = {"agent_name": "assistant", "content": {"instructions": ["be brief"]}}
            assert (await client.post("/api/agent/prompt_customizations/", json=body)).status_code == 201
            assert (await turn(client, "audit-chat-" + user, "private words")).status_code == 200
            assert (await turn(client, "audit-chat-" + user, "/fail")).status_code == 502
        async with live.client("auditor", admin=True) as admin:
            everything = (await admin.get("/api/admin/events", params={"user_id": user})).json()
            turns = (
                await admin.get("/api/admin/events", params={"user_id": user, "type": "turn.completed"})
            ).json()
            pages: list[dict[str, Any]] = []
            params: dict[str, Any] = {"user_id": user, "limit": 2}
            while True:
                page = (await admin.get("/api/admin/events", params=params)).json()
                pages.extend(page["items"])
                if page["next_before"] is None:
                    break
                params["before"] = page["next_before"]
        types = [event["type"] for event in everything["items"]]
        assert types == ["turn.failed", "turn.completed", "agent.built", "customization.created"]
        assert everything["next_before"] is None
        assert [e["id"] for e in everything["items"]] == sorted(
            (e["id"] for e in everything["items"]), reverse=True
        )
        [completed] = turns["items"]
        assert completed["chat_id"] == "audit-chat-" + user and completed["agent_name"] == "assistant"
        assert completed["data"]["input_tokens"] > 0 and completed["data"]["output_tokens"] > 0
        assert everything["items"][0]["data"]["code"] == "model_error"
        assert pages == everything["items"]
        assert "private words" not in str(everything) and "be brief" not in str(everything)

    async def test_the_event_list_is_for_admins_only_and_refuses_bad_input(self, live: LiveServer) -> None:
        async with (
            live.raw_client() as raw,
            live.client("not-admin") as user,
            live.client("adm", admin=True) as admin,
        ):
            anonymous = await raw.get("/api/admin/events")
            forbidden = await user.get("/api/admin/events")
            bad = [
                await admin.get("/api/admin/events", params={"before": "abc"}),
                await admin.get("/api/admin/events", params={"limit": 0}),
                await admin.get("/api/admin/events", params={"limit": 201}),
                await admin.get("/api/admin/events", params={"type": "t" * 65}),
                await admin.get("/api/admin/events", params={"before": "9" * 30}),
            ]
        assert (anonymous.status_code, anonymous.json()["code"]) == (401, "unauthorized")
        assert (forbidden.status_code, forbidden.json()["code"]) == (403, "forbidden")
        assert [(r.status_code, r.json()["code"]) for r in bad] == [(422, "validation_error")] * 5


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server("sqlite", tmp_path_factory.mktemp("limited"), rate_limit_per_minute=3) as server:
        yield server


class TestRateLimitInMemory:
    async def test_a_user_past_the_limit_gets_429_with_retry_after_and_others_do_not(
        self, limited: LiveServer
    ) -> None:
        async with (
            limited.client("busy") as busy,
            limited.client("calm") as calm,
            limited.raw_client() as raw,
        ):
            allowed = [await busy.get("/api/agents") for _ in range(3)]
            refused = await busy.get("/api/agents")
            openai_shape = await busy.get("/v1/models")
            other = await calm.get("/api/agents")
            health = await raw.get("/healthz")
            metrics = metric_samples((await raw.get("/metrics")).text)
        assert [r.status_code for r in allowed] == [200] * 3
        assert (refused.status_code, refused.json()["code"]) == (429, "rate_limited")
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert openai_shape.status_code == 429
        assert openai_shape.json()["error"]["code"] == "rate_limited"
        assert other.status_code == 200 and health.status_code == 200
        assert sample(metrics, "chatserver_rate_limited_requests_total") == 2


@pytest.fixture
def proxied_postgres(tmp_path: Path) -> Iterator[tuple[LiveServer, TcpProxy]]:
    with prepared_database("postgres", tmp_path, db_timeout_seconds=1.0) as settings:
        url = make_url(settings.database_url)
        with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
            proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
            with serve_in_thread(settings.model_copy(update={"database_url": proxied})) as server:
                yield server, proxy


@pytest.fixture
def proxied_redis(tmp_path: Path) -> Iterator[tuple[LiveServer, TcpProxy]]:
    with redis_prefix() as prefix, TcpProxy("127.0.0.1", 6379) as proxy:
        overrides = {
            "redis_url": f"redis://127.0.0.1:{proxy.port}/0",
            "redis_prefix": prefix,
            "redis_timeout_seconds": 1.0,
        }
        with live_server("sqlite", tmp_path, **overrides) as server:
            yield server, proxy


class TestReadiness:
    @pytest.mark.postgres
    async def test_readiness_fails_naming_the_database_while_it_is_unreachable_and_recovers(
        self, proxied_postgres: tuple[LiveServer, TcpProxy]
    ) -> None:
        server, proxy = proxied_postgres
        async with server.raw_client() as client, server.client("during-outage") as user:
            assert (await until_ready(client, 200))["failing"] == []
            assert (await turn(user, "outage-chat", "before")).status_code == 200
            proxy.cut()
            down = await until_ready(client, 503)
            during = await turn(user, "outage-chat", "during")
            alive = await client.get("/healthz")
            proxy.restore()
            up = await until_ready(client, 200)
            after = await turn(user, "outage-chat", "after")
        assert down["status"] == "unavailable" and "database" in down["failing"]
        assert down["checks"]["database"] == "failing"
        assert (during.status_code, during.json()["code"]) == (503, "database_unavailable")
        assert alive.status_code == 200
        assert up["checks"] == {"database": "ok", "migrations": "ok"}
        assert after.status_code == 200 and after.json()["response"] == "echo: after"

    @pytest.mark.redis
    async def test_readiness_stays_ready_naming_redis_degraded_while_it_is_unreachable(
        self, proxied_redis: tuple[LiveServer, TcpProxy]
    ) -> None:
        """Chat turns work without Redis, so an outage of it must not take every replica out."""
        server, proxy = proxied_redis
        async with server.raw_client() as client, server.client("redis-outage") as user:
            up = await until_ready(client, 200)
            proxy.cut()
            down = await client.get("/readyz")
            during = await turn(user, "redis-outage-chat", "still served")
            proxy.restore()
        assert up["checks"] == {"database": "ok", "migrations": "ok", "redis": "ok"}
        assert up["degraded"] == []
        assert down.status_code == 200, down.text
        assert down.json()["failing"] == [] and down.json()["degraded"] == ["redis"]
        assert down.json()["checks"]["redis"] == "degraded"
        assert during.status_code == 200, "a Redis outage does not stop chat turns"


def chatserver_cli(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "chatserver", *args],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def full_turns(url: str, api_key: str, jwt_token: str, private: dict[str, str]) -> dict[str, str]:
    """A user's whole day against the server; returns the request id the client chose for one call."""
    as_key = {"Authorization": f"Bearer {api_key}"}
    as_jwt = {"Authorization": f"Bearer {jwt_token}"}
    with httpx.Client(base_url=url, timeout=30) as http:

        def chat(headers: dict[str, str], message: str, path: str = "/api/chat") -> httpx.Response:
            body = {"agent_name": "assistant", "message": message, "session_id": "log-chat"}
            return http.post(path, json=body, headers=headers)

        assert chat(as_key, f"dear diary {private['message']}").status_code == 200
        customization = {"agent_name": "assistant", "content": {"instructions": [private["instruction"]]}}
        assert (
            http.post("/api/agent/prompt_customizations/", json=customization, headers=as_jwt).status_code
            == 201
        )
        system = http.post(
            "/api/chat",
            json={"agent_name": "assistant", "message": "/system", "session_id": "jwt-chat"},
            headers=as_jwt,
        )
        assert private["instruction"] in system.text
        assert private["streamed"] in chat(as_key, f"stream {private['streamed']}", "/api/chat/stream").text
        assert chat(as_key, "/tool current_time {}").status_code == 200
        assert chat(as_key, "/fail").status_code == 502
        assert (
            http.get("/api/agents", params={"api_key": private["query"]}, headers=as_key).status_code == 200
        )
        assert (
            http.get("/api/agents", headers={"Authorization": f"Bearer {private['forged_jwt']}"}).status_code
            == 401
        )
        traced = http.get("/api/agents", headers={**as_jwt, "X-Request-Id": "trace-me-123"})
        assert traced.headers["x-request-id"] == "trace-me-123"
    return {"traced": "trace-me-123"}


def test_the_logs_of_full_turns_hold_no_content_tokens_keys_or_secrets(tmp_path: Path) -> None:
    """The real ``chatserver serve`` at DEBUG: every line JSON, request ids bound, nothing private."""
    chatserver_cli(tmp_path, "migrate")
    api_key = chatserver_cli(tmp_path, "keys", "create", "--user", "alice").strip().splitlines()[-1]
    provider_keys = {
        "OPENAI_API_KEY": "sk-" + secrets.token_hex(20),
        "ANTHROPIC_API_KEY": "sk-ant-" + secrets.token_hex(20),
    }
    private = {
        "message": "message-" + secrets.token_hex(8),
        "instruction": "instruction-" + secrets.token_hex(8),
        "streamed": "streamed-" + secrets.token_hex(8),
        "query": "query-" + secrets.token_hex(8),
        "forged_jwt": mint_token("mallory", secret="not-the-server-secret-but-long-enough-1234"),
    }
    jwt_token = mint_token("bob")
    env = {"CHATSERVER_JWT_SECRET": JWT_SECRET, "CHATSERVER_LOG_LEVEL": "DEBUG", **provider_keys}
    with chatserver_serve(tmp_path, **env) as server:
        assert server.process.stdout is not None
        drain = Drain(server.process.stdout)
        server.wait_healthy(timeout=90)
        full_turns(server.url, api_key, jwt_token, private)
        exit_code = server.terminate()
        output = drain.finish()
    assert exit_code == 0
    printed = "\n".join(output)
    for name, secret in {
        **private,
        **provider_keys,
        "api_key": api_key,
        "jwt": jwt_token,
        "jwt_secret": JWT_SECRET,
    }.items():
        assert secret not in printed, f"{name} leaked into the logs"
    assert "dear diary" not in printed and "echo:" not in printed
    records = [json.loads(line) for line in output if line.startswith("{")]
    assert [line for line in output if not line.startswith("{")] == [
        "created agent 'assistant' with model echo",
        f"Server: {server.url}",
        "Need a key to sign in? Keys are shown once, when issued: "
        "chatserver keys create --user NAME --admin (without --admin for a regular user)",
    ]
    requests = [r for r in records if r["event"] == "http request"]
    assert {(r["method"], r["route"], r["status"]) for r in requests} >= {
        ("POST", "/api/chat", 200),
        ("POST", "/api/chat", 502),
        ("POST", "/api/chat/stream", 200),
        ("GET", "/api/agents", 401),
    }
    assert all(len(r["request_id"]) >= 8 for r in requests)
    assert any(r["request_id"] == "trace-me-123" and r["route"] == "/api/agents" for r in requests)
    [rejected] = [r for r in records if r["event"].startswith("JWT rejected")]
    assert rejected["level"] == "debug" and rejected["request_id"] in {r["request_id"] for r in requests}
    assert any(r["logger"].startswith("uvicorn") for r in records), "uvicorn's own lines are JSON too"
