"""Tracing off (no OTLP endpoint) costs nothing: the server's app and container load and install none
of OpenTelemetry's SDK or instrumentation; on, they load when the app is built, not at import."""

from __future__ import annotations

from tests.unit.agents.test_lazy_providers import modules_loaded_after

OTEL_MODULES = (
    "opentelemetry.sdk.trace",
    "opentelemetry.exporter.otlp.proto.http",
    "opentelemetry.instrumentation.fastapi",
    "opentelemetry.instrumentation.sqlalchemy",
)

BUILD_APP = (
    "from chatserver.api.app import create_app\n"
    "from chatserver.config import Settings\n"
    "app = create_app(Settings(database_url='sqlite+aiosqlite:///:memory:'))\n"
    "assert not getattr(app, '_is_instrumented_by_opentelemetry', False)\n"
)
WITH_ENDPOINT = "import os\nos.environ['OTEL_EXPORTER_OTLP_ENDPOINT'] = 'http://127.0.0.1:9'\n"


def test_building_the_app_without_an_endpoint_loads_no_tracing_module() -> None:
    assert modules_loaded_after(BUILD_APP, OTEL_MODULES) == set()


def test_importing_the_server_loads_no_tracing_module_even_with_an_endpoint() -> None:
    code = f"{WITH_ENDPOINT}import chatserver.api.app"
    assert modules_loaded_after(code, OTEL_MODULES) == set()


def test_with_an_endpoint_the_app_is_built_instrumented() -> None:
    code = WITH_ENDPOINT + BUILD_APP.replace("assert not", "assert")
    loaded = modules_loaded_after(code, OTEL_MODULES)
    assert {"opentelemetry.sdk.trace", "opentelemetry.instrumentation.fastapi"} <= loaded
