"""The request middleware: X-Request-Id, the id on every log line, metrics by route template."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from chatserver.observability.http import RequestContext
from chatserver.observability.logs import QUIET_LOGGERS, configure_logging
from chatserver.observability.metrics import Metrics
from tests.unit.observability.test_metrics import value


@dataclass
class Settling:
    calls: int = 0

    async def settle(self) -> None:
        self.calls += 1


@dataclass
class FakeContainer:
    metrics: Metrics = field(default_factory=Metrics)
    before_response: Settling = field(default_factory=Settling)


def make_app() -> FastAPI:
    app = FastAPI()
    log = logging.getLogger("chatserver.test.route")

    @app.get("/items/{item_id}")
    async def item(item_id: str) -> dict[str, str]:
        log.info("reading an item")
        return {"id": item_id}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            for part in (b"a", b"b", b"c"):
                log.info("sending a part")
                yield part

        return StreamingResponse(body(), media_type="text/plain")

    app.add_middleware(RequestContext)
    app.state.container = FakeContainer()
    return app


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    out = io.StringIO()
    configure_logging("DEBUG", json=True, stream=out)
    try:
        yield out
    finally:
        root.handlers[:], root.level = saved
        logging.captureWarnings(False)
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.NOTSET)


def records(out: io.StringIO) -> list[dict[str, Any]]:
    """chatserver's lines (asyncio may log its selector at DEBUG when a loop starts)."""
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    return [line for line in lines if line["logger"].startswith("chatserver")]


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_each_response_carries_a_new_request_id_and_every_log_line_has_it(logs: io.StringIO) -> None:
    app = make_app()
    async with client(app) as http:
        first = await http.get("/items/1")
        second = await http.get("/items/2")
    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert ids[0] != ids[1] and all(len(i) == 32 for i in ids)
    lines = records(logs)
    assert [line["event"] for line in lines] == ["reading an item", "http request"] * 2
    assert [line["request_id"] for line in lines] == [ids[0], ids[0], ids[1], ids[1]]


async def test_a_plain_client_request_id_is_kept_and_a_strange_one_replaced(logs: io.StringIO) -> None:
    async with client(make_app()) as http:
        kept = await http.get("/items/1", headers={"X-Request-Id": "lb-7f3a.01"})
        replaced = await http.get("/items/1", headers={"X-Request-Id": 'x" forged=1'})
        too_long = await http.get("/items/1", headers={"X-Request-Id": "a" * 65})
    assert kept.headers["x-request-id"] == "lb-7f3a.01"
    assert replaced.headers["x-request-id"] not in ('x" forged=1',)
    assert len(replaced.headers["x-request-id"]) == len(too_long.headers["x-request-id"]) == 32


async def test_requests_are_counted_by_route_template_not_by_path(logs: io.StringIO) -> None:
    app = make_app()
    async with client(app) as http:
        for item in ("a", "b", "c"):
            assert (await http.get(f"/items/{item}")).status_code == 200
        assert (await http.get("/nothing/here")).status_code == 404
    metrics = app.state.container.metrics
    assert (
        value(metrics, "chatserver_http_requests_total", method="GET", route="/items/{item_id}", status="200")
        == 3
    )
    assert (
        value(metrics, "chatserver_http_requests_total", method="GET", route="<unmatched>", status="404") == 1
    )
    assert b"/items/a" not in metrics.render()


async def test_a_streamed_response_is_logged_and_measured_once_at_its_end(logs: io.StringIO) -> None:
    app = make_app()
    async with client(app) as http:
        response = await http.get("/stream")
    assert response.text == "abc"
    lines = records(logs)
    assert [line["event"] for line in lines] == ["sending a part"] * 3 + ["http request"]
    assert {line["request_id"] for line in lines} == {response.headers["x-request-id"]}
    metrics = app.state.container.metrics
    assert (
        value(metrics, "chatserver_http_request_duration_seconds_count", method="GET", route="/stream") == 1
    )


async def test_the_access_line_names_the_path_without_its_query_string(logs: io.StringIO) -> None:
    async with client(make_app()) as http:
        await http.get("/items/1?api_key=query-secret-value&token=abc")
    [_, access] = records(logs)
    assert (access["path"], access["route"], access["status"], access["method"]) == (
        "/items/1",
        "/items/{item_id}",
        200,
        "GET",
    )
    assert "query-secret-value" not in logs.getvalue()


async def test_pending_work_is_settled_before_each_response_starts(logs: io.StringIO) -> None:
    app = make_app()
    async with client(app) as http:
        await http.get("/items/1")
        await http.get("/stream")
    assert app.state.container.before_response.calls == 2
