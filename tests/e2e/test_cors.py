"""Browser clients on other origins: CORS from CHATSERVER_CORS_ORIGINS, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import live_server
from tests.e2e.harness import LiveServer, mint_token

APP = "https://app.example.com"
ELSEWHERE = "https://evil.example.net"
REQUEST_HEADERS = "authorization, content-type, idempotency-key, last-event-id, x-chat-id"


@pytest.fixture(scope="module")
def listed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    origins = (APP, "http://localhost:5173")
    with live_server("sqlite", tmp_path_factory.mktemp("cors"), cors_origins=origins) as server:
        yield server


@pytest.fixture(scope="module")
def anyone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server("sqlite", tmp_path_factory.mktemp("cors-any"), cors_origins=("*",)) as server:
        yield server


async def preflight(server: LiveServer, path: str, origin: str, method: str = "POST") -> httpx.Response:
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": REQUEST_HEADERS,
    }
    async with server.raw_client() as client:
        return await client.options(path, headers=headers)


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.lower().startswith("access-control-")}


class TestPreflight:
    @pytest.mark.parametrize(
        ("path", "method"),
        [
            ("/v1/chat/completions", "POST"),
            ("/v1/models", "GET"),
            ("/api/chat", "POST"),
            ("/api/runs/some-run/events", "GET"),
            ("/api/chats/some-chat", "DELETE"),
        ],
    )
    async def test_a_preflight_from_a_listed_origin_is_answered_on_every_route(
        self, listed: LiveServer, path: str, method: str
    ) -> None:
        response = await preflight(listed, path, APP, method)
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == APP
        assert response.headers["access-control-allow-credentials"] == "true"
        assert method in response.headers["access-control-allow-methods"]
        allowed = {h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")}
        assert {h.strip() for h in REQUEST_HEADERS.split(",")} <= allowed

    async def test_a_preflight_from_another_origin_is_not_allowed(self, listed: LiveServer) -> None:
        response = await preflight(listed, "/v1/chat/completions", ELSEWHERE)
        assert "access-control-allow-origin" not in response.headers

    async def test_a_preflight_asking_for_another_header_is_not_allowed(self, listed: LiveServer) -> None:
        headers = {
            "Origin": APP,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-something-else",
        }
        async with listed.raw_client() as client:
            response = await client.options("/api/chat", headers=headers)
        assert response.status_code == 400

    async def test_any_origin_is_allowed_with_a_star_but_never_with_credentials(
        self, anyone: LiveServer
    ) -> None:
        response = await preflight(anyone, "/v1/chat/completions", ELSEWHERE)
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in response.headers
        async with anyone.raw_client() as client:
            answer = await client.get("/v1/models", headers={"Origin": ELSEWHERE})
        assert answer.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in answer.headers


class TestCrossOriginRequests:
    async def test_an_error_response_carries_the_cors_headers(self, listed: LiveServer) -> None:
        async with listed.raw_client() as client:
            unauthorized = await client.get("/v1/models", headers={"Origin": APP})
            invalid = await client.post(
                "/v1/chat/completions",
                json={"messages": []},
                headers={"Origin": APP, "Authorization": f"Bearer {mint_token('cora')}"},
            )
            too_large = await client.post(
                "/api/chat", content=b"x" * (listed.settings.max_body_bytes + 1), headers={"Origin": APP}
            )
        assert [r.status_code for r in (unauthorized, invalid, too_large)] == [401, 422, 413]
        for response in (unauthorized, invalid, too_large):
            assert response.headers["access-control-allow-origin"] == APP
            assert response.headers["access-control-allow-credentials"] == "true"

    async def test_a_browser_can_read_the_chat_id_header(self, listed: LiveServer) -> None:
        body = {"model": "assistant", "messages": [{"role": "user", "content": "hi"}]}
        headers = {"Origin": APP, "X-Chat-Id": "cors-chat"}
        async with listed.client("cora") as client:
            response = await client.post("/v1/chat/completions", json=body, headers=headers)
        assert response.status_code == 200 and response.headers["x-chat-id"] == "cors-chat"
        assert response.headers["access-control-allow-origin"] == APP
        exposed = {h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")}
        assert {"location", "x-chat-id"} <= exposed

    async def test_a_request_from_another_origin_is_not_allowed(self, listed: LiveServer) -> None:
        async with listed.client("cora") as client:
            response = await client.get("/v1/models", headers={"Origin": ELSEWHERE})
        # Answered as to any client, but without allow-origin a browser keeps it from the page.
        assert response.status_code == 200
        assert "access-control-allow-origin" not in response.headers


class TestWithoutCors:
    async def test_no_origins_configured_means_no_cors_headers_at_all(self, live: LiveServer) -> None:
        assert live.settings.cors_origins == ()
        preflighted = await preflight(live, "/v1/chat/completions", APP)
        async with live.client("cora") as client:
            response = await client.get("/v1/models", headers={"Origin": APP})
        assert preflighted.status_code == 405
        assert cors_headers(preflighted) == {} and cors_headers(response) == {}
