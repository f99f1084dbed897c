"""RetryingTransport: what a provider request retries, how long it waits, and what it never retries.

The remote end is httpx2's MockTransport (a process edge); the retry logic and tenacity are real.
"""

from __future__ import annotations

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


async def test_a_streamed_answer_is_handed_over_unread_and_a_cut_in_it_is_not_retried() -> None:
    remote = Remote(cut("text/event-stream; charset=utf-8"), ok())
    with pytest.raises(httpx2.ReadError):
        await send(remote)
    assert len(remote.calls) == 1
