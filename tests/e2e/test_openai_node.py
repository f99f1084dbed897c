"""The official Node `openai` package against a live server (tests/e2e/node: a pinned lock file).

Skipped, saying why, where Node or npm is absent; CHATSERVER_TEST_REQUIRE_ALL=1 makes that a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.harness import LiveServer, mint_token

HERE = Path(__file__).parent / "node"


@pytest.fixture(scope="module")
def node_client() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        if os.environ.get("CHATSERVER_TEST_REQUIRE_ALL") == "1":
            pytest.fail("Node.js and npm are needed for the Node client's test")
        pytest.skip("Node.js and npm are not installed: the Node openai client's test cannot run")
    if not (HERE / "node_modules" / "openai").is_dir():
        subprocess.run(
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=HERE, check=True, timeout=300
        )
    return HERE / "client.mjs"


@pytest.mark.parametrize("live", ["sqlite"], indirect=True)
def test_the_node_client_gets_answers_tool_calls_responses_and_models(
    live: LiveServer, node_client: Path
) -> None:
    env = {**os.environ, "CHATSERVER_URL": live.url, "CHATSERVER_TOKEN": mint_token("nora")}
    done = subprocess.run(
        ["node", str(node_client)], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["plain"] == "echo: hello from node"
    assert seen["called"]["finish"] == "tool_calls"
    assert [(c["name"], json.loads(c["arguments"])) for c in seen["called"]["calls"]] == [
        ("get_weather", {"city": "Paris"})
    ]
    assert seen["streamed"]["finish"] == "tool_calls"
    assert [json.loads(c["arguments"]) for c in seen["streamed"]["calls"]] == [{"city": "Oslo"}]
    assert (seen["response"], seen["chained"]) == ("echo: hello responses", "recall: hello responses")
    assert seen["model"] == "assistant"
    assert seen["unknownType"] == {"status": 422, "param": "tools.0.type"}
