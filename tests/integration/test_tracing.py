"""The spans of a turn, caught by the SDK's in-memory exporter, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from chatserver.api.app import create_app
from chatserver.bootstrap import prepare
from chatserver.config import Settings
from chatserver.container import build_container
from chatserver.observability.tracing import start_tracing
from tests.e2e.harness import JWT_SECRET, mint_token


def turn_settings(database_url: str, **overrides: Any) -> Settings:
    return Settings(database_url=database_url, jwt_secret=JWT_SECRET, background_tasks=False, **overrides)


@asynccontextmanager
async def traced_client(
    settings: Settings, exporter: InMemorySpanExporter
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app whose every span goes to ``exporter``; the seeded ``assistant`` has every tool."""
    await prepare(settings)
    container = build_container(settings, tracing=start_tracing(settings, exporter=exporter))
    app = create_app(container=container)
    headers = {"Authorization": f"Bearer {mint_token('tracy')}"}
    transport = httpx.ASGITransport(app=app)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://test", headers=headers) as client,
        ):
            yield client
    finally:
        await container.aclose()


async def one_turn(settings: Settings, message: str) -> tuple[dict[str, Any], Sequence[ReadableSpan]]:
    exporter = InMemorySpanExporter()
    async with traced_client(settings, exporter) as client:
        exporter.clear()  # the seeding's statements are not part of the turn
        reply = await client.post(
            "/api/chat", json={"agent_name": "assistant", "message": message, "session_id": "traced"}
        )
    assert reply.status_code == 200, reply.text
    return reply.json(), exporter.get_finished_spans()


def ancestors(span: ReadableSpan, spans: Sequence[ReadableSpan]) -> list[str]:
    by_id = {s.context.span_id: s for s in spans}
    names: list[str] = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        names.append(span.name)
    return names


def attribute_text(spans: Sequence[ReadableSpan]) -> str:
    values = [str(value) for span in spans for value in (span.attributes or {}).values()]
    values += [
        str(value) for span in spans for event in span.events for value in (event.attributes or {}).values()
    ]
    return "\n".join(values)


class TestOneTurnIsOneTrace:
    async def test_request_run_model_tool_and_statements_share_one_trace_with_the_run_id(
        self, database_url: str
    ) -> None:
        body, spans = await one_turn(turn_settings(database_url), "/tool current_time {}")
        [http] = [s for s in spans if s.kind == SpanKind.SERVER]
        [run] = [s for s in spans if s.name == "run assistant"]
        models = [s for s in spans if (s.attributes or {}).get("gen_ai.operation.name") == "chat"]
        tools = [s for s in spans if (s.attributes or {}).get("gen_ai.tool.name") == "current_time"]
        statements = [
            s
            for s in spans
            if "db.system" in (s.attributes or {}) or "db.system.name" in (s.attributes or {})
        ]
        assert http.name == "POST /api/chat"
        assert {s.context.trace_id for s in spans} == {http.context.trace_id}
        assert run.attributes is not None
        assert run.attributes["chatserver.run.id"] == body["run_id"]
        assert run.attributes["chatserver.chat.id"] == "traced"
        assert run.attributes["gen_ai.agent.name"] == "assistant"
        assert "POST /api/chat" in ancestors(run, spans)
        assert len(models) == 2 and all("run assistant" in ancestors(m, spans) for m in models)
        assert len(tools) == 1 and "run assistant" in ancestors(tools[0], spans)
        assert statements and any("run assistant" in ancestors(s, spans) for s in statements)

    async def test_the_turn_statements_sent_to_the_driver_directly_are_spans_too(
        self, postgres_url: str
    ) -> None:
        _, spans = await one_turn(turn_settings(postgres_url), "hello")
        direct = {s.name: s for s in spans if s.name.startswith("SELECT chatserver_")}
        names = ("start_run", "open_turn", "end_metered_run")
        assert set(direct) == {f"SELECT chatserver_{f}" for f in names}
        assert "POST /api/chat" in ancestors(direct["SELECT chatserver_start_run"], spans)
        assert "run assistant" in ancestors(direct["SELECT chatserver_open_turn"], spans)
        assert "run assistant" in ancestors(direct["SELECT chatserver_end_metered_run"], spans)
        assert all((s.attributes or {}).get("db.system.name") == "postgresql" for s in direct.values())

    async def test_statement_spans_carry_no_parameters(self, database_url: str) -> None:
        _, spans = await one_turn(turn_settings(database_url), "a-private-message-7f3a")
        statements = [s for s in spans if any(key.startswith("db.") for key in (s.attributes or {}))]
        assert statements
        assert "a-private-message-7f3a" not in attribute_text(statements)


class TestMessageContent:
    async def test_is_kept_out_of_every_span_unless_capture_is_on(self, database_url: str) -> None:
        _, spans = await one_turn(turn_settings(database_url), "a-private-message-7f3a")
        assert spans
        assert "a-private-message-7f3a" not in attribute_text(spans)

    async def test_is_in_the_model_spans_with_capture_on(self, database_url: str) -> None:
        settings = turn_settings(database_url, otel_capture_content=True)
        _, spans = await one_turn(settings, "a-private-message-7f3a")
        models = [s for s in spans if (s.attributes or {}).get("gen_ai.operation.name") == "chat"]
        assert "a-private-message-7f3a" in attribute_text(models)
        assert "echo: a-private-message-7f3a" in attribute_text(models)


def test_without_an_endpoint_there_is_no_tracing() -> None:
    settings = Settings(database_url="sqlite+aiosqlite:///:memory:")
    assert settings.otel_traces_endpoint is None
    assert start_tracing(settings) is None
    assert build_container(settings).tracing is None


def test_the_traces_path_is_added_to_the_base_endpoint_and_a_traces_endpoint_wins() -> None:
    base = Settings(otel_exporter_otlp_endpoint="http://collector:4318/")
    both = Settings(
        otel_exporter_otlp_endpoint="http://collector:4318",
        otel_exporter_otlp_traces_endpoint="http://other:4318/custom",
    )
    assert base.otel_traces_endpoint == "http://collector:4318/v1/traces"
    assert both.otel_traces_endpoint == "http://other:4318/custom"
