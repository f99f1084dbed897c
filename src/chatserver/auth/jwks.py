"""Where asymmetric JWT verification keys come from: a JWKS document fetched over HTTP, cached.

The fetch is async (httpx), never a blocking call in the event loop. Keys are cached for
``cache_seconds``; a token whose ``kid`` is not in the cache triggers a refetch (keys rotate), but
at most one fetch attempt happens per ``min_refetch_seconds`` so a flood of bogus ``kid`` values
cannot hammer the identity provider. Concurrent callers that need a fetch share one request.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Protocol

import httpx
import jwt

from chatserver.clock import Clock

logger = logging.getLogger(__name__)


class JwksUnavailable(Exception):
    """The key set could not be fetched or parsed and no cached copy exists."""


class JwksSource(Protocol):
    async def get_key(self, kid: str | None) -> jwt.PyJWK | None:
        """The key with this ``kid``; with ``kid=None`` the only key of a one-key set.

        ``None`` when no such key is known. Raises ``JwksUnavailable`` when keys cannot be had.
        """
        ...


def find_key(key_set: jwt.PyJWKSet, kid: str | None) -> jwt.PyJWK | None:
    """Look ``kid`` up in ``key_set``. A token without ``kid`` matches only a set of exactly one key."""
    if kid is None:
        return key_set.keys[0] if len(key_set.keys) == 1 else None
    for key in key_set.keys:
        if key.key_id == kid:
            return key
    return None


class HttpJwksSource:
    """A ``JwksSource`` reading a JWKS URL through a shared ``httpx.AsyncClient``.

    Rules (times from ``clock``):
    - no keys yet, or the cached set is older than ``cache_seconds``: fetch;
    - a ``kid`` not in the cached set: refetch, then look again;
    - but never start a fetch within ``min_refetch_seconds`` of the previous attempt (success or
      failure), so neither unknown kids nor a down IdP turn every request into an outbound call;
    - a fetch already in flight is joined, not repeated;
    - a failed refresh keeps serving the previous keys; with none, ``JwksUnavailable``.
    """

    def __init__(
        self,
        url: str,
        http_client: httpx.AsyncClient,
        clock: Clock,
        cache_seconds: float = 300,
        *,
        min_refetch_seconds: float = 30,
        timeout_seconds: float = 5,
    ) -> None:
        self._url = url
        self._http = http_client
        self._clock = clock
        self._cache_for = timedelta(seconds=cache_seconds)
        self._min_refetch = timedelta(seconds=min_refetch_seconds)
        self._timeout = timeout_seconds
        self._keys: jwt.PyJWKSet | None = None
        self._fetched_at: datetime | None = None
        self._last_attempt: datetime | None = None
        self._inflight: asyncio.Task[jwt.PyJWKSet | None] | None = None

    async def get_key(self, kid: str | None) -> jwt.PyJWK | None:
        keys = self._keys
        if keys is None or self._is_stale():
            keys = await self._refresh()
            if keys is None:
                raise JwksUnavailable("signing keys unavailable")
        key = find_key(keys, kid)
        if key is None:
            # Maybe the IdP rotated keys; _refresh() is a no-op within the throttle window.
            refreshed = await self._refresh()
            if refreshed is not None and refreshed is not keys:
                key = find_key(refreshed, kid)
        return key

    def _is_stale(self) -> bool:
        return self._fetched_at is None or self._clock.now() - self._fetched_at >= self._cache_for

    def _may_fetch(self) -> bool:
        return self._last_attempt is None or self._clock.now() - self._last_attempt >= self._min_refetch

    async def _refresh(self) -> jwt.PyJWKSet | None:
        """Join the fetch in flight or start one if the throttle allows; return the best keys known."""
        task = self._inflight
        if task is None:
            if not self._may_fetch():
                return self._keys
            self._last_attempt = self._clock.now()
            task = asyncio.get_running_loop().create_task(self._fetch())
            self._inflight = task
        # shield: a caller cancelled mid-wait (client went away) must not cancel the shared fetch.
        return await asyncio.shield(task)

    async def _fetch(self) -> jwt.PyJWKSet | None:
        try:
            response = await self._http.get(self._url, timeout=self._timeout)
            response.raise_for_status()
            document = response.json()
            if not isinstance(document, dict):
                raise ValueError("JWKS document is not a JSON object")
            keys = jwt.PyJWKSet.from_dict(document)
        except Exception as exc:  # any failure means "no new keys", never a crash of the caller
            # The exception type only: messages may quote the document or the URL's query string.
            logger.warning(
                "JWKS fetch failed (%s); keeping %s",
                type(exc).__name__,
                "the cached keys" if self._keys is not None else "no keys",
            )
            return self._keys
        finally:
            self._inflight = None
        self._keys = keys
        self._fetched_at = self._clock.now()
        return keys
