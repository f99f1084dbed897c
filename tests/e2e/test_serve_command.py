"""The real ``chatserver`` command: first run in an empty folder, graceful stop, agent management."""

from __future__ import annotations

import os
import pty
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import httpx

from tests.e2e.processes import chatserver_serve, clean_env


def test_the_first_serve_in_an_empty_folder_prints_a_key_that_works(tmp_path: Path) -> None:
    with chatserver_serve(tmp_path) as server:
        lines = server.read_until("API key:")
        key = server.read_until("cs_")[-1].strip()
        server.wait_healthy()
        reply = httpx.post(
            f"{server.url}/api/chat",
            json={"agent_name": "assistant", "message": "hi", "session_id": str(uuid.uuid4())},
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
        admin = httpx.get(f"{server.url}/api/admin/agents", headers={"Authorization": f"Bearer {key}"})
        exit_code = server.terminate()
    assert (tmp_path / "chatserver.db").exists()
    assert any("curl" in line and "/api/chat" in line for line in lines)
    assert key.startswith("cs_") and " " not in key
    assert reply.status_code == 200 and reply.json()["response"] == "echo: hi"
    assert [agent["name"] for agent in admin.json()] == ["assistant"]
    assert exit_code == 0


def first_start(cwd: Path) -> None:
    """Serve in ``cwd`` until the first key is printed and the server is healthy, then stop it."""
    with chatserver_serve(cwd) as first:
        first.read_until("cs_")
        first.wait_healthy()
        assert first.terminate() == 0


def test_a_second_start_prints_no_new_key(tmp_path: Path) -> None:
    first_start(tmp_path)
    with chatserver_serve(tmp_path) as second:
        second.wait_healthy()
        assert second.terminate() == 0
        printed = "\n".join([*second.output, second.process.stdout.read() if second.process.stdout else ""])
    assert "API key" not in printed and "cs_" not in printed


def test_a_second_start_prints_the_url_and_how_to_issue_a_key(tmp_path: Path) -> None:
    first_start(tmp_path)
    with chatserver_serve(tmp_path) as second:
        hint = second.read_until("keys create")
        second.wait_healthy()
        assert second.terminate() == 0
    assert f"Server: {second.url}" in hint
    assert "chatserver keys create --user NAME --admin" in hint[-1]


def test_a_busy_port_is_named_with_a_port_hint_and_exit_3(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = chatserver(tmp_path, "serve", "--port", str(port))
    assert done.returncode == 3, done.stderr
    assert f"port {port} on 127.0.0.1 is in use" in done.stderr and "--port" in done.stderr
    assert not (tmp_path / "chatserver.db").exists()


def test_logs_are_text_on_a_terminal_and_json_otherwise_unless_configured(tmp_path: Path) -> None:
    assert first_log_line(tmp_path, terminal=True).startswith("20")
    assert first_log_line(tmp_path, terminal=False).startswith("{")
    assert first_log_line(tmp_path, terminal=True, CHATSERVER_LOG_JSON="true").startswith("{")
    assert first_log_line(tmp_path, terminal=False, CHATSERVER_LOG_JSON="false").startswith("20")


def first_log_line(cwd: Path, *, terminal: bool, **env: str) -> str:
    """The first line ``serve`` logs to stderr, a pseudo-terminal when ``terminal``, else a pipe."""
    reader, writer = pty.openpty() if terminal else os.pipe()
    with chatserver_serve(cwd, stderr=writer, **env) as server:
        os.close(writer)
        with os.fdopen(reader, "rb", buffering=0) as stream:
            line = stream.readline().decode()
            server.wait_healthy()
            assert server.terminate() == 0
    return line.strip()


def chatserver(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chatserver", *args],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_agents_are_created_listed_and_deleted_from_the_command_line(tmp_path: Path) -> None:
    assert chatserver(tmp_path, "migrate").returncode == 0
    created = chatserver(
        tmp_path,
        "agents",
        "create",
        "helper",
        "--model",
        "echo",
        "--system-prompt",
        "Be brief.",
        "--tool",
        "current_time",
    )
    duplicate = chatserver(tmp_path, "agents", "create", "helper", "--model", "echo")
    bad_tool = chatserver(tmp_path, "agents", "create", "other", "--model", "echo", "--tool", "nope")
    listed = chatserver(tmp_path, "agents", "list")
    deleted = chatserver(tmp_path, "agents", "delete", "helper")
    after = chatserver(tmp_path, "agents", "list")
    assert created.returncode == 0, created.stderr
    assert duplicate.returncode == 1 and "exists" in duplicate.stderr
    assert bad_tool.returncode == 1 and "nope" in bad_tool.stderr
    assert listed.stdout.startswith("helper\techo\tcurrent_time")
    assert deleted.returncode == 0
    assert "helper" not in after.stdout


def test_keys_are_issued_once_and_revoked_from_the_command_line(tmp_path: Path) -> None:
    assert chatserver(tmp_path, "migrate").returncode == 0
    issued = chatserver(tmp_path, "keys", "create", "--user", "alice")
    key = issued.stdout.strip().splitlines()[-1]
    revoked = chatserver(tmp_path, "keys", "revoke", key[:10])
    again = chatserver(tmp_path, "keys", "revoke", key[:10])
    assert issued.returncode == 0 and key.startswith("cs_")
    assert revoked.returncode == 0
    assert again.returncode == 1 and "no active API key" in again.stderr


def test_one_turn_from_the_command_line(tmp_path: Path) -> None:
    with chatserver_serve(tmp_path) as server:
        server.read_until("cs_")
        server.terminate()
    done = chatserver(tmp_path, "chat", "--user", "admin", "hello from the terminal")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "echo: hello from the terminal"
