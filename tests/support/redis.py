"""The real Redis for tests: each test gets its own random key prefix, deleted afterwards.

``CHATSERVER_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``) names the server; CI starts it.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import redis
from redis.asyncio import Redis

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_url() -> str:
    return os.environ.get("CHATSERVER_TEST_REDIS_URL", DEFAULT_REDIS_URL)


def new_prefix() -> str:
    return f"cs_test_{secrets.token_hex(6)}:"


def delete_prefix(prefix: str) -> int:
    """Delete every key under ``prefix`` (synchronous: usable after any event loop has closed)."""
    client = redis.Redis.from_url(redis_url(), socket_timeout=5)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=500))
        return int(client.delete(*keys)) if keys else 0
    finally:
        client.close()


@contextmanager
def redis_prefix() -> Iterator[str]:
    prefix = new_prefix()
    try:
        yield prefix
    finally:
        delete_prefix(prefix)


@asynccontextmanager
async def redis_client() -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url(), decode_responses=True, socket_timeout=5)
    try:
        await client.ping()
        yield client
    finally:
        await client.aclose()
