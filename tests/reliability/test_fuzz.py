"""Schemathesis over the whole OpenAPI schema, against a live server, as an admin: no 5xx, and every
answer is one the schema documents (status, content type, headers, body).

Each operation gets ``EXAMPLES`` generated requests that fit the schema and ``EXAMPLES`` that break
it; operations without parameters have nothing to break. Generation is derandomized (the examples
follow from the schema, so a run is repeatable and CI never fails by chance) and Hypothesis's example
database is off (the run leaves nothing behind); a failure prints a curl command that reproduces it.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import checks
from schemathesis.core.result import Ok
from schemathesis.generation import GenerationMode

from tests.e2e.harness import LiveServer, mint_token

EXAMPLES = 10
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]
REQUEST_TIMEOUT = 30


def fuzz(
    operation: schemathesis.APIOperation[Any, Any, Any, Any], mode: GenerationMode, headers: dict[str, str]
) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case[Any]) -> None:
        response = case.call(headers=headers, timeout=REQUEST_TIMEOUT)
        case.validate_response(response, checks=CHECKS, headers=headers)

    run()


def remove_budgets(url: str, headers: dict[str, str]) -> None:
    """The budgets the fuzzer set (a default of 0 tokens binds every user): later tests chat freely."""
    with httpx.Client(base_url=url, headers=headers, timeout=REQUEST_TIMEOUT) as client:
        for budget in client.get("/api/admin/budgets").json():
            assert client.delete(f"/api/admin/budgets/{budget['id']}").status_code == 204


@pytest.mark.timeout(300)
def test_every_operation_answers_generated_requests_without_5xx_and_as_documented(live: LiveServer) -> None:
    schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json")
    headers = {"Authorization": f"Bearer {mint_token('fuzzer', admin=True)}"}
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the schema cannot describe an operation: {result}"
        operations.append(result.ok())
    failures: dict[str, str] = {}
    started = time.monotonic()
    try:
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                try:
                    fuzz(operation, mode, headers)
                except Unsatisfiable:
                    assert mode is GenerationMode.NEGATIVE, operation.label  # nothing to break
                except Exception as failure:  # schemathesis's failure groups, with the reproduction
                    failures[f"{operation.label} ({mode})"] = str(failure)
    finally:
        remove_budgets(live.url, headers)
    assert failures == {}, "\n\n".join(f"{where}:\n{what}" for where, what in failures.items())
    labels = {operation.label for operation in operations}
    assert {"POST /api/chat", "POST /v1/chat/completions", "DELETE /api/memories/{memory_id}"} <= labels
    assert len(labels) >= 25, sorted(labels)
    assert time.monotonic() - started < 240


# Values the schema cannot rule out but no storage holds, as raw JSON text: unpaired surrogates,
# integers past 64 bits (and past Python's 4,300-digit limit), non-finite numbers, deep nesting.
HOSTILE_JSON = st.one_of(
    st.text(st.characters(categories=["Cs"]), min_size=1, max_size=3).map(
        lambda text: json.dumps(f"a{text}b", ensure_ascii=True)
    ),
    st.integers(min_value=20, max_value=6000).map(lambda digits: "9" * digits),
    st.integers(min_value=2**63, max_value=10**19).map(lambda n: f"-{n + 1}"),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999"]),
    st.integers(min_value=33, max_value=5000).map(lambda depth: "[" * depth + "]" * depth),
)
SLOT = "__slot__"
BODIES = [
    ("/api/agent/prompt_customizations/", {"agent_name": "assistant", "content": {"instructions": [SLOT]}}),
    ("/api/agent/prompt_customizations/", {"agent_name": "assistant", "content": {"k": {"k": SLOT}}}),
    ("/api/chat", {"agent_name": "assistant", "message": "hi", "session_id": "fz", "x": SLOT}),
    ("/api/chat/stream", {"agent_name": "assistant", "message": SLOT, "session_id": "fz"}),
    ("/api/admin/agents", {"name": "fz", "model": "echo", "system_prompt": "", "tools": [SLOT]}),
    ("/v1/chat/completions", {"model": "assistant", "messages": [{"role": "user", "content": SLOT}]}),
]
NON_ASCII_DIGITS = st.text(
    st.characters(categories=["Nd", "No"], exclude_characters="0123456789"), min_size=1, max_size=8
)
HOSTILE_SETTINGS = settings(
    max_examples=60, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
)


def client_for(live: LiveServer) -> httpx.Client:
    headers = {"Authorization": f"Bearer {mint_token('hostile', admin=True)}"}
    return httpx.Client(base_url=live.url, headers=headers, timeout=REQUEST_TIMEOUT)


def tool_arguments_body(raw: str) -> dict[str, Any]:
    call = {"id": "c1", "type": "function", "function": {"name": "current_time", "arguments": raw}}
    history = [{"role": "assistant", "tool_calls": [call]}, {"role": "tool", "tool_call_id": "c1"}]
    return {"model": "assistant", "messages": [*history, {"role": "user", "content": "now?"}]}


def test_hostile_values_anywhere_in_a_body_are_a_422_never_a_500(live: LiveServer) -> None:
    with client_for(live) as client:

        @HOSTILE_SETTINGS
        @given(body=st.sampled_from(BODIES), raw=HOSTILE_JSON, in_arguments=st.booleans())
        def run(body: tuple[str, dict[str, Any]], raw: str, in_arguments: bool) -> None:
            path, template = body
            if in_arguments:
                path, text = "/v1/chat/completions", json.dumps(tool_arguments_body('{"a": ' + raw + "}"))
            else:
                text = json.dumps(template).replace(json.dumps(SLOT), raw)
            response = client.post(path, content=text, headers={"content-type": "application/json"})
            assert response.status_code == 422, (path, text[:200], response.text[:300])

        run()


def test_hostile_cursors_and_echo_commands_are_never_a_500(live: LiveServer) -> None:
    with client_for(live) as client:

        @HOSTILE_SETTINGS
        @given(
            digits=NON_ASCII_DIGITS | st.integers(min_value=19, max_value=6000).map(lambda n: "9" * n),
            stamp=st.datetimes(timezones=st.none() | st.just(UTC)),
            chat_id=st.text(max_size=20),
        )
        def run(digits: str, stamp: datetime, chat_id: str) -> None:
            cursor = base64.urlsafe_b64encode(f"{stamp.isoformat()}|{chat_id}".encode()).decode()
            answers = [
                client.get("/api/chats", params={"before": cursor}),
                client.get("/api/chats/fz/messages", params={"before": digits}),
                client.get("/api/admin/events", params={"before": digits}),
            ]
            statuses = [answer.status_code for answer in answers]
            assert statuses[1] == 422 and {statuses[0], statuses[2]} <= {200, 422}, statuses
            body = {"agent_name": "assistant", "message": f"/sleep {digits} hi", "session_id": "fz"}
            echoed = client.post("/api/chat", json=body)
            assert echoed.status_code == 200 and echoed.json()["response"].startswith("usage: /sleep")

        run()
