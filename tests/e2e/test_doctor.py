"""``chatserver doctor`` as an operator runs it: a process, against real databases, Redis and a fake
provider on loopback (never the internet)."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tests.e2e.processes import clean_env
from tests.support.databases import postgres_admin_url
from tests.support.fake_openai import fake_openai_server
from tests.support.redis import redis_url


def chatserver(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chatserver", *args],
        cwd=cwd,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )


ROW = re.compile(r"^(?P<name>\S.*?)\s{2,}(?P<status>OK|WARN|FAIL)\s{2,}(?P<detail>.*)$")


def rows(output: str) -> dict[str, tuple[str, str]]:
    """Each check's status and the rest of its report (detail and fix lines), up to the summary."""
    found: dict[str, tuple[str, str]] = {}
    current = ""
    for line in output.split("\n\n")[0].splitlines()[1:]:
        row = ROW.match(line)
        if row is not None:
            current = row["name"]
            found[current] = (row["status"], row["detail"])
        else:
            status, detail = found[current]
            found[current] = (status, f"{detail}\n{line.strip()}")
    return found


async def _autovacuum(url: str) -> str:
    """The server's own answer, asked apart from the doctor."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return str((await conn.execute(text("SHOW autovacuum"))).scalar_one())
    finally:
        await engine.dispose()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TestAHealthyDeployment:
    def test_on_sqlite_every_check_is_ok_and_the_exit_code_zero(self, tmp_path: Path) -> None:
        with fake_openai_server() as fake:
            env = {"CHATSERVER_OPENAI_BASE_URL": f"{fake.url}/v1"}
            assert chatserver(tmp_path, "migrate").returncode == 0
            assert chatserver(tmp_path, "agents", "create", "helper", "--model", "echo").returncode == 0
            created = chatserver(tmp_path, "agents", "create", "gpt", "--model", "openai:gpt-4.1-mini", **env)
            assert created.returncode == 0, created.stderr
            done = chatserver(tmp_path, "doctor", **env)
        report = rows(done.stdout)
        assert done.returncode == 0, done.stdout
        assert {name: status for name, (status, _) in report.items()} == {
            "configuration": "OK",
            "database": "OK",
            "migrations": "OK",
            "redis": "OK",
            "model echo": "OK",
            "model openai:gpt-4.1-mini": "OK",
        }
        assert "(agents: gpt)" in report["model openai:gpt-4.1-mini"][1]
        assert fake.requests == []  # reachability is probed, no model request is made

    async def test_on_postgresql_the_role_and_row_level_security_are_checked(
        self, tmp_path: Path, postgres_url: str
    ) -> None:
        done = chatserver(tmp_path, "doctor", CHATSERVER_DATABASE_URL=postgres_url)
        report = rows(done.stdout)
        assert done.returncode == 0, done.stdout
        assert report["database"][0] == report["migrations"][0] == "OK"
        assert report["database role"] == ("OK", "chatserver_app is subject to row-level security")
        assert report["row-level security"] == ("OK", "forced on every user-owned table")
        expected = "OK" if await _autovacuum(postgres_url) == "on" else "WARN"
        assert report["statistics"][0] == expected and "autovacuum is" in report["statistics"][1]

    async def test_a_superuser_url_is_named_as_such(self, tmp_path: Path, postgres_url: str) -> None:
        database = make_url(postgres_url).database
        superuser = make_url(postgres_admin_url()).set(database=database)
        url = superuser.render_as_string(hide_password=False)
        done = chatserver(tmp_path, "doctor", CHATSERVER_DATABASE_URL=url)
        status, detail = rows(done.stdout)["database role"]
        assert done.returncode == 0, done.stdout
        assert status in ("OK", "WARN") and "is a superuser" in detail and "chatserver_rls" in detail

    def test_a_reachable_redis_is_ok_with_its_latency(self, tmp_path: Path) -> None:
        assert chatserver(tmp_path, "migrate").returncode == 0
        done = chatserver(tmp_path, "doctor", CHATSERVER_REDIS_URL=redis_url())
        status, detail = rows(done.stdout)["redis"]
        assert done.returncode == 0, done.stdout
        assert status == "OK" and "answered a ping in" in detail


class TestWhatIsWrongIsNamedWithItsFix:
    def test_an_unreachable_database_fails_with_what_to_check(self, tmp_path: Path) -> None:
        url = f"postgresql+asyncpg://chatserver:secret@127.0.0.1:{closed_port()}/chatserver"
        done = chatserver(tmp_path, "doctor", CHATSERVER_DATABASE_URL=url, CHATSERVER_DB_TIMEOUT_SECONDS="2")
        status, detail = rows(done.stdout)["database"]
        assert done.returncode == 1
        assert (
            status == "FAIL" and "cannot reach" in detail and "fix: check CHATSERVER_DATABASE_URL" in detail
        )
        assert "secret" not in done.stdout

    def test_a_missing_sqlite_file_says_how_to_create_it(self, tmp_path: Path) -> None:
        done = chatserver(tmp_path, "doctor")
        status, detail = rows(done.stdout)["database"]
        assert done.returncode == 1
        assert status == "FAIL" and "chatserver migrate" in detail
        assert not (tmp_path / "chatserver.db").exists()

    def test_a_bad_redis_url_fails_with_what_to_check(self, tmp_path: Path) -> None:
        assert chatserver(tmp_path, "migrate").returncode == 0
        done = chatserver(tmp_path, "doctor", CHATSERVER_REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0")
        status, detail = rows(done.stdout)["redis"]
        assert done.returncode == 1
        assert status == "FAIL" and "cannot reach" in detail and "fix: check CHATSERVER_REDIS_URL" in detail

    def test_a_missing_api_key_and_an_unreachable_provider_fail_the_model(self, tmp_path: Path) -> None:
        unreachable = {"CHATSERVER_OPENAI_BASE_URL": f"http://127.0.0.1:{closed_port()}/v1"}
        assert chatserver(tmp_path, "migrate").returncode == 0
        assert (
            chatserver(
                tmp_path, "agents", "create", "gpt", "--model", "openai:gpt-4.1", **unreachable
            ).returncode
            == 0
        )
        no_key = chatserver(tmp_path, "doctor")
        down = chatserver(tmp_path, "doctor", **unreachable)
        keyless, unreached = (
            rows(no_key.stdout)["model openai:gpt-4.1"],
            rows(down.stdout)["model openai:gpt-4.1"],
        )
        assert no_key.returncode == down.returncode == 1
        assert keyless[0] == "FAIL" and "OPENAI_API_KEY is not set" in keyless[1]
        assert unreached[0] == "FAIL" and "unreachable" in unreached[1]
        assert "fix: check CHATSERVER_OPENAI_BASE_URL" in unreached[1]

    def test_a_setting_that_does_not_load_is_named_without_its_value(self, tmp_path: Path) -> None:
        done = chatserver(tmp_path, "doctor", CHATSERVER_PORT="eighty", CHATSERVER_JWT_SECRET="hunter2")
        status, detail = rows(done.stdout)["configuration"]
        assert done.returncode == 1
        assert status == "FAIL" and "CHATSERVER_PORT" in detail and "eighty" not in detail

    def test_risky_values_are_warnings_that_do_not_fail(self, tmp_path: Path) -> None:
        assert chatserver(tmp_path, "migrate").returncode == 0
        done = chatserver(
            tmp_path,
            "doctor",
            CHATSERVER_JWT_SECRET="tiny-secret",
            CHATSERVER_CORS_ORIGINS="*",
            CHATSERVER_HOST="0.0.0.0",
        )
        report = rows(done.stdout)
        assert done.returncode == 0, done.stdout
        assert report["jwt secret"][0] == report["cors"][0] == report["rate limit"][0] == "WARN"
        assert "tiny-secret" not in done.stdout
