"""``chatserver serve`` with ``OTEL_EXPORTER_OTLP_ENDPOINT`` exports its spans over OTLP/HTTP to a
real receiver on loopback, which decodes them as a collector would."""

from __future__ import annotations

import gzip
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from tests.e2e.processes import chatserver_serve


@dataclass
class Receiver:
    url: str
    requests: list[ExportTraceServiceRequest] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)

    def spans(self) -> list[tuple[dict[str, Any], Any]]:
        """Every span received, with its resource's attributes."""
        found = []
        for request in self.requests:
            for resource_spans in request.resource_spans:
                resource = attributes(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    found += [(resource, span) for span in scope_spans.spans]
        return found


def value(any_value: AnyValue) -> Any:
    return getattr(any_value, any_value.WhichOneof("value") or "string_value")


def attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: value(pair.value) for pair in pairs}


@contextmanager
def otlp_receiver() -> Iterator[Receiver]:
    """POST /v1/traces: protobuf ``ExportTraceServiceRequest`` bodies, answered as a collector does."""
    receiver = Receiver("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            receiver.paths.append(self.path)
            receiver.requests.append(ExportTraceServiceRequest.FromString(body))
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


def test_a_served_turn_reaches_the_collector_as_one_trace_with_the_run_id(tmp_path: Path) -> None:
    with otlp_receiver() as receiver:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_SERVICE_NAME": "chat-e2e"}
        with chatserver_serve(tmp_path, **env) as server:
            server.read_until("API key:")
            key = server.read_until("cs_")[-1].strip()
            server.wait_healthy()
            reply = httpx.post(
                f"{server.url}/api/chat",
                json={
                    "agent_name": "assistant",
                    "message": "/tool current_time {}",
                    "session_id": str(uuid.uuid4()),
                },
                headers={"Authorization": f"Bearer {key}"},
                timeout=30,
            )
            # The batch of spans still buffered is exported at shutdown.
            assert server.terminate() == 0
    assert reply.status_code == 200, reply.text
    run_id = reply.json()["run_id"]
    assert receiver.paths and set(receiver.paths) == {"/v1/traces"}
    received = receiver.spans()
    [run] = [span for _, span in received if attributes(span.attributes).get("chatserver.run.id") == run_id]
    turn = [span for _, span in received if span.trace_id == run.trace_id]
    names = {span.name for span in turn}
    assert "POST /api/chat" in names and "run assistant" in names
    assert sum(attributes(s.attributes).get("gen_ai.operation.name") == "chat" for s in turn) == 2
    assert any(attributes(s.attributes).get("gen_ai.tool.name") == "current_time" for s in turn)
    assert any(key.startswith("db.") for s in turn for key in attributes(s.attributes))
    assert {resource["service.name"] for resource, _ in received} == {"chat-e2e"}
