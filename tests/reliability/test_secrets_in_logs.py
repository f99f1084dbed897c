"""The logs of a server at DEBUG through failures hold no secret and no message content.

tests/e2e/test_operations.py reads the logs of turns that go well; here the real ``chatserver
serve`` meets every failure this suite injects (a provider answering 500 and 429, cutting a stream,
hanging; the database lost; bad input; forged tokens), since error paths are where exception
texts, URLs and request details get logged. The provider key is real to the SDK (the fake provider
receives it), the database URL carries a password, and every private text is unique.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.e2e.conftest import prepared_database
from tests.e2e.harness import JWT_SECRET, mint_token
from tests.e2e.processes import chatserver_serve, clean_env
from tests.support.drain import Drain
from tests.support.fake_openai import FakeOpenAI, fake_openai_server
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.postgres

STARTUP_SECONDS = 120.0
READY_WAIT_SECONDS = 30.0


@dataclass(frozen=True)
class Secrets:
    provider_key: str
    api_key: str
    user_jwt: str
    admin_jwt: str
    database_credentials: str
    private: dict[str, str]

    def all(self) -> dict[str, str]:
        return {
            "provider key": self.provider_key,
            "API key": self.api_key,
            "user JWT": self.user_jwt,
            "admin JWT": self.admin_jwt,
            "JWT secret": JWT_SECRET,
            "database credentials": self.database_credentials,
            **self.private,
        }


def private_text(name: str) -> str:
    return f"{name}-{secrets.token_hex(8)}"


@contextmanager
def proxied_database(directory: Path) -> Iterator[tuple[str, str, TcpProxy]]:
    """(URL through the proxy, the credentials part of it, the proxy)."""
    with prepared_database("postgres", directory) as settings:
        url = make_url(settings.database_url)
        with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
            through = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
            yield through, f"{url.username}:{url.password}@", proxy


def issue_key(database_url: str, cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "chatserver", "keys", "create", "--user", "alice"],
        cwd=cwd,
        env=clean_env(CHATSERVER_DATABASE_URL=database_url),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def until_ready(http: httpx.Client, status: int) -> None:
    for _ in range(int(READY_WAIT_SECONDS / 0.1)):
        if http.get("/readyz").status_code == status:
            return
        time.sleep(0.1)
    raise AssertionError(f"/readyz never answered {status}")


def every_failure(url: str, fake: FakeOpenAI, proxy: TcpProxy, known: Secrets) -> list[int]:
    """Drive the server through each failure; the statuses it answered, in order."""
    private = known.private
    as_user = {"Authorization": f"Bearer {known.api_key}"}
    with httpx.Client(base_url=url, timeout=60) as http:

        def chat(message: str, path: str = "/api/chat", chat_id: str = "log-chat") -> int:
            body = {"agent_name": "gpt", "message": message, "session_id": chat_id}
            return http.post(path, json=body, headers=as_user).status_code

        agent = {"name": "gpt", "model": "openai:fake-model", "system_prompt": private["prompt"], "tools": []}
        created = http.post(
            "/api/admin/agents", json=agent, headers={"Authorization": f"Bearer {known.admin_jwt}"}
        )
        statuses = [created.status_code, chat(private["message"])]
        fake.behaviour = "error_500"
        statuses.append(chat(private["failed"]))
        fake.behaviour, fake.script, fake.retry_after = "answer", ["rate_limited"], "1"
        statuses.append(chat(private["limited"]))
        fake.script = ["drop"]
        statuses.append(chat(private["streamed"], "/api/chat/stream"))
        fake.behaviour = "hang"
        statuses.append(chat(private["timed_out"]))
        fake.behaviour = "answer"
        statuses.append(chat(f"{private['nul']}\u0000"))
        statuses.append(
            http.get("/api/agents", headers={"Authorization": "Bearer " + private["forged"]}).status_code
        )
        proxy.cut()
        until_ready(http, 503)
        statuses.append(chat(private["outage"], chat_id="outage-chat"))
        proxy.restore()
        until_ready(http, 200)
        statuses.append(chat(private["after"], chat_id="outage-chat"))
        statuses.append(
            http.get("/api/agents", headers={"Authorization": f"Bearer {known.user_jwt}"}).status_code
        )
    return statuses


@pytest.mark.timeout(300)
def test_the_logs_of_every_failure_hold_no_secret_and_no_content(tmp_path: Path) -> None:
    private = {
        name: private_text(name)
        for name in (
            "prompt",
            "message",
            "failed",
            "limited",
            "streamed",
            "timed_out",
            "nul",
            "outage",
            "after",
        )
    }
    private["forged"] = mint_token("mallory", secret="not-the-server-secret-" + secrets.token_hex(16))
    with fake_openai_server() as fake, proxied_database(tmp_path) as (database_url, credentials, proxy):
        known = Secrets(
            provider_key="sk-" + secrets.token_hex(24),
            api_key=issue_key(database_url, tmp_path),
            user_jwt=mint_token("bob"),
            admin_jwt=mint_token("root", admin=True),
            database_credentials=credentials,
            private=private,
        )
        env = {
            "CHATSERVER_DATABASE_URL": database_url,
            "CHATSERVER_JWT_SECRET": JWT_SECRET,
            "CHATSERVER_LOG_LEVEL": "DEBUG",
            "CHATSERVER_OPENAI_BASE_URL": fake.url,
            "OPENAI_API_KEY": known.provider_key,
            "CHATSERVER_MODEL_TIMEOUT_SECONDS": "2",
            "CHATSERVER_MODEL_RETRY_BACKOFF_SECONDS": "0.05",
            "CHATSERVER_DB_TIMEOUT_SECONDS": "1",
        }
        with chatserver_serve(tmp_path, **env) as server:
            assert server.process.stdout is not None
            drain = Drain(server.process.stdout)
            server.wait_healthy(timeout=STARTUP_SECONDS)
            statuses = every_failure(server.url, fake, proxy, known)
            exit_code = server.terminate()
            output = drain.finish()
        sent_keys = set(fake.authorizations)
    assert statuses == [201, 200, 502, 200, 200, 504, 422, 401, 503, 200, 200]
    assert exit_code == 0
    assert sent_keys == {f"Bearer {known.provider_key}"}, "the provider client used the key"
    printed = "\n".join(output)
    leaked = {name for name, value in known.all().items() if value in printed}
    assert leaked == set(), f"leaked into the logs: {leaked}"
    assert "fake says" not in printed, "an answer leaked into the logs"
    records = [json.loads(line) for line in output if line.startswith("{")]
    logged = {(r.get("route"), r.get("status")) for r in records if r.get("event") == "http request"}
    assert {("/api/chat", 502), ("/api/chat", 504), ("/api/chat", 503), ("/api/chat", 422)} <= logged
    assert any(r.get("level") == "warning" for r in records), "the failures were logged"
