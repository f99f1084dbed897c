"""Schemathesis over the whole OpenAPI schema, against a live server, as an admin: no 5xx, and every
answer is one the schema documents (status, content type, headers, body).

Each operation gets ``EXAMPLES`` generated requests that fit the schema and ``EXAMPLES`` that break
it; operations without parameters have nothing to break. Generation is derandomized (the examples
follow from the schema, so a run is repeatable and CI never fails by chance) and Hypothesis's example
database is off (the run leaves nothing behind); a failure prints a curl command that reproduces it.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
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
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                fuzz(operation, mode, headers)
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE, operation.label  # nothing to break
            except Exception as failure:  # schemathesis's failure groups, with the reproduction
                failures[f"{operation.label} ({mode})"] = str(failure)
    assert failures == {}, "\n\n".join(f"{where}:\n{what}" for where, what in failures.items())
    labels = {operation.label for operation in operations}
    assert {"POST /api/chat", "POST /v1/chat/completions", "DELETE /api/memories/{memory_id}"} <= labels
    assert len(labels) >= 25, sorted(labels)
    assert time.monotonic() - started < 240
