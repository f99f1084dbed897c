"""Retries of model provider requests, with backoff, only where it is safe.

Every provider SDK here (openai, anthropic, google-genai) sends its requests through an
``httpx2.AsyncClient`` we give it, whose transport is ``RetryingTransport``; the SDKs' own retries
are turned off, so one policy (``CHATSERVER_MODEL_RETRIES``, ``CHATSERVER_MODEL_RETRY_BACKOFF_SECONDS``)
holds for all of them.

What is retried: a connection that fails or is cut before the response is complete, and the
statuses 408, 409, 429 and 5xx. Waits grow exponentially from the backoff base (with jitter, capped
at ``MAX_BACKOFF_SECONDS``); a ``Retry-After`` (or ``retry-after-ms``) header is obeyed instead,
through pydantic-ai's ``wait_retry_after``. A wait that would end past the turn's deadline
(``turn_deadline``) is not started: the provider's answer goes back at once (502, not a 504 later).

Why it is safe: a response is read whole inside its attempt, so a retry never follows output that
reached anyone, except for a successful event stream (a streamed completion): its tokens go to the
client as they arrive, so it is read only up to the end of its first event (which comes before any
token: the SDKs parse nothing sooner), then handed over and never retried. A stream cut after its
headers but before its first event is whole is retried like any other cut. A retried request is
sent again unchanged; earlier steps of the turn (tool calls) are not repeated.

pydantic-ai's ``AsyncHTTPX2TenacityTransport`` is not used as is: it closes the last failed response
before giving it back, so the SDK could no longer read the provider's status and error.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass

import httpx2
from pydantic_ai.models import create_async_httpx2_client
from pydantic_ai.retries import wait_retry_after
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential_jitter

MAX_BACKOFF_SECONDS = 8.0
RETRYABLE_STATUSES = frozenset({408, 409, 429})
EVENT_STREAM = "text/event-stream"
EVENT_ENDS = (b"\n\n", b"\r\n\r\n", b"\r\r")
"""What ends a server-sent event."""
POOL_LIMITS = httpx2.Limits(max_connections=1000, max_keepalive_connections=100)
"""As pydantic-ai's and the OpenAI SDK's own clients: a busy server has many turns in flight."""

_deadline: ContextVar[float | None] = ContextVar("chatserver_turn_deadline", default=None)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retries: int
    """Attempts after the first one."""
    backoff_seconds: float
    """The first wait; each later one doubles, up to ``MAX_BACKOFF_SECONDS``."""


@contextmanager
def turn_deadline(timeout_seconds: float) -> Iterator[None]:
    """Within the block, no retry wait may end more than ``timeout_seconds`` from now."""
    token = _deadline.set(time.monotonic() + timeout_seconds)
    try:
        yield
    finally:
        # A streamed turn may be closed from another task (a client gone): its context is not ours.
        with suppress(ValueError):
            _deadline.reset(token)


def seconds_left() -> float | None:
    """Time left before the current turn's deadline; None outside a turn."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUSES or status >= 500


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, httpx2.HTTPStatusError):
        return is_retryable_status(exc.response.status_code)
    return isinstance(exc, httpx2.TransportError)


def _stop_for(policy: RetryPolicy) -> Callable[[RetryCallState], bool]:
    """Stop after ``policy.retries`` retries, or when the next wait would outlast the turn.

    Tenacity computes the wait (``upcoming_sleep``) before it asks whether to stop.
    """

    def stop(state: RetryCallState) -> bool:
        if state.attempt_number > policy.retries:
            return True
        left = seconds_left()
        return left is not None and state.upcoming_sleep >= left

    return stop


class RetryingTransport(httpx2.AsyncBaseTransport):
    """An ``httpx2`` transport that retries what ``RetryPolicy`` allows (see the module docstring)."""

    def __init__(self, policy: RetryPolicy, wrapped: httpx2.AsyncBaseTransport | None = None) -> None:
        self._policy = policy
        self._wrapped = wrapped or httpx2.AsyncHTTPTransport(limits=POOL_LIMITS)
        backoff = wait_exponential_jitter(
            initial=policy.backoff_seconds, max=MAX_BACKOFF_SECONDS, jitter=policy.backoff_seconds / 4
        )
        self._wait = wait_retry_after(fallback_strategy=backoff, max_wait=float("inf"))

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        retrying = AsyncRetrying(
            stop=_stop_for(self._policy),
            wait=self._wait,
            retry=retry_if_exception(_retryable),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    response = await self._attempt(request)
                    if is_retryable_status(response.status_code):
                        raise httpx2.HTTPStatusError("retryable status", request=request, response=response)
        except httpx2.HTTPStatusError as exc:
            # Out of retries (or time): the provider's own answer, for the SDK to report.
            return exc.response
        return response

    async def _attempt(self, request: httpx2.Request) -> httpx2.Response:
        """One try, its body read whole (so a cut connection fails this try), but a successful stream."""
        response = await self._wrapped.handle_async_request(request)
        if response.is_stream_consumed:
            return response  # a body already in memory needs no reading
        response.request = request
        streamed = response.headers.get("content-type", "").startswith(EVENT_STREAM)
        if streamed and response.status_code < 400:
            return await _first_event_read(response)
        try:
            body = b"".join([chunk async for chunk in response.aiter_raw()])
        finally:
            await response.aclose()
        return _with_stream(response, httpx2.ByteStream(body))

    async def aclose(self) -> None:
        await self._wrapped.aclose()


class _ReadAhead(httpx2.AsyncByteStream):
    """What was read of a stream already, then the rest of it as it comes."""

    def __init__(self, head: bytes, rest: AsyncIterator[bytes], response: httpx2.Response) -> None:
        self._head = head
        self._rest = rest
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._head:
            yield self._head
        async for chunk in self._rest:
            yield chunk

    async def aclose(self) -> None:
        await self._response.aclose()


async def _first_event_read(response: httpx2.Response) -> httpx2.Response:
    """``response`` with its stream read up to the end of its first event (or of the stream).

    A cut before then raises here, inside the attempt, so it is retried: nothing of it was parsed.
    """
    raw = response.aiter_raw()
    head = b""
    try:
        while not any(end in head for end in EVENT_ENDS):
            chunk = await anext(raw, None)
            if chunk is None:
                break
            head += chunk
    except BaseException:
        await response.aclose()
        raise
    return _with_stream(response, _ReadAhead(head, raw, response))


def _with_stream(response: httpx2.Response, stream: httpx2.AsyncByteStream) -> httpx2.Response:
    return httpx2.Response(
        response.status_code,
        headers=response.headers,
        stream=stream,
        extensions=response.extensions,
        request=response.request,
    )


def retrying_client(policy: RetryPolicy) -> httpx2.AsyncClient:
    """The HTTP client for a provider SDK (with its own retries off). The caller closes it.

    pydantic-ai's defaults otherwise (600 s per request, 5 s to connect): the turn's own timeout
    (``CHATSERVER_MODEL_TIMEOUT_SECONDS``) ends a turn sooner.
    """
    return create_async_httpx2_client(transport=RetryingTransport(policy))
