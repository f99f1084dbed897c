"""OpenTelemetry tracing: on only when an OTLP endpoint is configured (``OTEL_EXPORTER_OTLP_ENDPOINT``).

Off, this module imports nothing of OpenTelemetry's and ``start_tracing`` returns ``None``: no
tracer provider exists and no instrumentation is installed, so requests, runs and statements cost
what they did before. On, one tracer provider of the process's own (never the global one) feeds:

* HTTP server spans (FastAPI's instrumentation; the probes ``/healthz``, ``/readyz`` and
  ``/metrics`` are left out),
* the run span (``observability/spans.py``), parent of pydantic-ai's agent, model request and tool
  spans (GenAI semantic conventions; ``InstrumentedModel`` wraps each agent's model),
* one span per database statement: SQLAlchemy's instrumentation, and on PostgreSQL, for the turn
  statements sent to asyncpg directly (``storage/sql/turns.py``), asyncpg's own query logger.
  (opentelemetry-instrumentation-asyncpg would see both, but its newest release needs an older
  OpenTelemetry API than the MCP client does.)

Statement parameters (message text, key hashes) are never recorded; prompts, answers and tool
arguments and results only with ``CHATSERVER_OTEL_CAPTURE_CONTENT=true``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any

from chatserver.config import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Tracer
    from pydantic_ai.models.instrumented import InstrumentationSettings
    from sqlalchemy.ext.asyncio import AsyncEngine

UNTRACED_URLS = "/healthz,/readyz,/metrics"
"""Probes and scrapes: a span each would drown the requests worth reading."""


class Tracing:
    """The tracer provider and what was instrumented with it; ``shutdown()`` undoes both."""

    def __init__(self, provider: TracerProvider, *, capture_content: bool) -> None:
        self.provider = provider
        self.capture_content = capture_content
        self._undo: list[Callable[[], None]] = []

    @cached_property
    def tracer(self) -> Tracer:
        return self.provider.get_tracer("chatserver")

    @cached_property
    def model_instrumentation(self) -> InstrumentationSettings:
        """pydantic-ai's settings for ``InstrumentedModel``: GenAI spans for requests and tools."""
        from pydantic_ai.models.instrumented import InstrumentationSettings

        return InstrumentationSettings(
            tracer_provider=self.provider,
            include_content=self.capture_content,
            include_binary_content=self.capture_content,
        )

    def instrument_app(self, app: FastAPI) -> None:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        # No spans for each ASGI receive and send: a streamed answer would make one per token.
        FastAPIInstrumentor.instrument_app(
            app, tracer_provider=self.provider, excluded_urls=UNTRACED_URLS, exclude_spans=["receive", "send"]
        )
        self._undo.append(lambda: FastAPIInstrumentor.uninstrument_app(app))

    def instrument_database(self, engine: AsyncEngine) -> None:
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        sqlalchemy = SQLAlchemyInstrumentor()
        # Its newest release still declares SQLAlchemy < 2.1; the engine events it listens to are
        # the same in 2.1 (the tests check its spans on both databases).
        sqlalchemy.instrument(
            engine=engine.sync_engine,
            tracer_provider=self.provider,
            enable_commenter=False,
            skip_dep_check=True,
        )
        self._undo.append(sqlalchemy.uninstrument)
        if engine.dialect.name == "postgresql":
            self._trace_direct_statements(engine)

    def _trace_direct_statements(self, engine: AsyncEngine) -> None:
        from sqlalchemy import event

        log = partial(_direct_statement_span, self.provider.get_tracer("chatserver.storage"))

        def on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.driver_connection.add_query_logger(log)

        event.listen(engine.sync_engine, "connect", on_connect)
        self._undo.append(lambda: event.remove(engine.sync_engine, "connect", on_connect))

    def shutdown(self) -> None:
        """Remove the instrumentation, then export what is buffered and stop the provider."""
        while self._undo:
            self._undo.pop()()
        self.provider.shutdown()


def _direct_statement_span(tracer: Tracer, record: Any) -> None:
    """A span for one of the statements SQLAlchemy did not send, from asyncpg's record of it (the
    logger runs in the context of the query's task, so the span has the right parent)."""
    from opentelemetry.trace import SpanKind, StatusCode

    from chatserver.storage.sql.turns import DIRECT_STATEMENTS

    function = DIRECT_STATEMENTS.get(record.query)
    if function is None:
        return
    end = time.time_ns()
    attributes = {"db.system.name": "postgresql", "db.system": "postgresql", "db.query.text": record.query}
    span = tracer.start_span(
        f"SELECT {function}",
        kind=SpanKind.CLIENT,
        start_time=end - int(record.elapsed * 1e9),
        attributes=attributes,
    )
    if record.exception is not None:
        span.record_exception(record.exception)
        span.set_status(StatusCode.ERROR, type(record.exception).__name__)
    span.end(end_time=end)


def start_tracing(settings: Settings, *, exporter: SpanExporter | None = None) -> Tracing | None:
    """Tracing to ``settings.otel_traces_endpoint`` (batched), or to ``exporter`` (each span as it
    ends: tests); ``None`` when neither is given."""
    endpoint = settings.otel_traces_endpoint
    if exporter is None and endpoint is None:
        return None
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: settings.otel_service_name}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    return Tracing(provider, capture_content=settings.otel_capture_content)
