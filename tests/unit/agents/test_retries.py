"""RetryingTransport: what a provider request retries, how long it waits, and what it never retries.

The remote end is httpx2's MockTransport (a process edge); the retry logic and tenacity are real.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import httpx2
import pytest

from chatserver.agents.retries import RetryingTransport, RetryPolicy, turn_deadline

URL = "http://provider.test/v1/chat/completions"
FAST = RetryPolicy(retries=2, backoff_seconds=0.01)


class Broken(httpx2.AsyncByteStream):
    """A body that is cut after its first bytes."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b'{"partial": '
        raise httpx2.ReadError("connection reset by peer")


class Remote:
    """Answers each request with the next scripted response (the last one repeats)."""

    def __init__(self, *answers: Callable[[], httpx2.Response]) -> None:
        self.answers = list(answers)
        self.calls: list[float] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.calls.append(time.monotonic())
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return answer()


def status(code: int, **headers: str) -> Callable[[], httpx2.Response]:
    return lambda: httpx2.Response(code, json={"error": {"message": f"status {code}"}}, headers=headers)


def ok(content_type: str = "application/json") -> Callable[[], httpx2.Response]:
    return lambda: httpx2.Response(200, content=b'{"ok": true}', headers={"content-type": content_type})


def cut(content_type: str) -> Callable[[], httpx2.Response]:
    return lambda: httpx2.Response(200, stream=Broken(), headers={"content-type": content_type})


def refused() -> httpx2.Response:
    raise httpx2.ConnectError("connection refused")


async def send(remote: Remote, policy: RetryPolicy = FAST) -> httpx2.Response:
    async with httpx2.AsyncClient(
        transport=RetryingTransport(policy, httpx2.MockTransport(remote))
    ) as client:
        response = await client.post(URL, json={"model": "m"})
        await response.aread()
        return response


@pytest.mark.parametrize("code", [408, 409, 429, 500, 502, 503, 504])
async def test_a_retryable_status_is_retried_until_an_answer(code: int) -> None:
    remote = Remote(status(code), ok())
    response = await send(remote)
    assert response.status_code == 200 and response.json() == {"ok": True}
    assert len(remote.calls) == 2


@pytest.mark.parametrize("code", [400, 401, 403, 404, 422])
async def test_a_client_error_is_never_retried(code: int) -> None:
    remote = Remote(status(code), ok())
    response = await send(remote)
    assert response.status_code == code
    assert len(remote.calls) == 1


async def test_out_of_retries_the_providers_last_answer_is_given_back_whole() -> None:
    remote = Remote(status(503))
    response = await send(remote)
    assert response.status_code == 503
    assert response.json() == {"error": {"message": "status 503"}}, "the SDK reads the provider's error"
    assert len(remote.calls) == 1 + FAST.retries


async def test_the_waits_grow_from_the_backoff_base() -> None:
    remote = Remote(status(500))
    await send(remote, RetryPolicy(retries=2, backoff_seconds=0.05))
    first, second = remote.calls[1] - remote.calls[0], remote.calls[2] - remote.calls[1]
    assert first >= 0.05 and second >= 0.1


async def test_retry_after_is_obeyed_instead_of_the_backoff() -> None:
    remote = Remote(status(429, **{"retry-after-ms": "200"}), ok())
    response = await send(remote, RetryPolicy(retries=1, backoff_seconds=0.001))
    assert response.status_code == 200
    assert remote.calls[1] - remote.calls[0] >= 0.2


async def test_a_wait_that_would_outlast_the_turn_is_not_started() -> None:
    remote = Remote(status(429, **{"retry-after": "30"}), ok())
    started = time.monotonic()
    with turn_deadline(2.0):
        response = await send(remote)
    assert response.status_code == 429
    assert len(remote.calls) == 1 and time.monotonic() - started < 1.0


async def test_a_refused_connection_is_retried() -> None:
    remote = Remote(refused, ok())
    assert (await send(remote)).status_code == 200
    assert len(remote.calls) == 2


async def test_a_refused_connection_fails_once_out_of_retries() -> None:
    with pytest.raises(httpx2.ConnectError):
        await send(Remote(refused))


async def test_a_body_cut_mid_read_is_retried_since_nobody_saw_any_of_it() -> None:
    remote = Remote(cut("application/json"), ok())
    response = await send(remote)
    assert response.json() == {"ok": True}
    assert len(remote.calls) == 2


class CutAfterFirstEvent(httpx2.AsyncByteStream):
    """A stream whose first event arrives (in two pieces), then whose connection is cut."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b'data: {"role": '
        yield b'"assistant"}\n\ndata: {"content": "Hel'
        raise httpx2.ReadError("connection reset by peer")


class Unended(httpx2.AsyncByteStream):
    """A stream that delivers its first event and then waits, as a model thinking does."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b"data: first\n\n"
        await asyncio.Event().wait()
        yield b"never"  # pragma: no cover


def streamed(body: httpx2.AsyncByteStream) -> Callable[[], httpx2.Response]:
    return lambda: httpx2.Response(200, stream=body, headers={"content-type": "text/event-stream"})


async def test_a_stream_cut_after_its_first_event_is_not_retried_and_keeps_what_was_sent() -> None:
    remote = Remote(streamed(CutAfterFirstEvent()), ok())
    received = b""
    transport = RetryingTransport(FAST, httpx2.MockTransport(remote))
    async with (
        httpx2.AsyncClient(transport=transport) as client,
        client.stream("POST", URL, json={"model": "m"}) as response,
    ):
        with pytest.raises(httpx2.ReadError):
            async for chunk in response.aiter_raw():
                received += chunk
    assert received == b'data: {"role": "assistant"}\n\ndata: {"content": "Hel'
    assert len(remote.calls) == 1


async def test_a_stream_cut_before_its_first_event_is_whole_is_retried() -> None:
    remote = Remote(cut("text/event-stream; charset=utf-8"), ok("text/event-stream"))
    response = await send(remote)
    assert response.content == b'{"ok": true}'
    assert len(remote.calls) == 2


async def test_a_stream_is_handed_over_after_its_first_event_without_waiting_for_the_rest() -> None:
    remote = Remote(streamed(Unended()))
    transport = RetryingTransport(FAST, httpx2.MockTransport(remote))
    async with (
        httpx2.AsyncClient(transport=transport) as client,
        asyncio.timeout(2),
        client.stream("POST", URL, json={"model": "m"}) as response,
    ):
        first = await anext(response.aiter_raw())
    assert first == b"data: first\n\n"
