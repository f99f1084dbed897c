"""The Redis client and the names of every key chatserver uses, all under one prefix."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff


@dataclass(frozen=True, slots=True)
class RedisKeys:
    """Key and channel names; ``prefix`` lets several deployments (or test runs) share one Redis."""

    prefix: str = "chatserver:"

    @property
    def invalidations(self) -> str:
        """Pub/sub channel of agent-cache invalidations."""
        return f"{self.prefix}agents:invalidate"

    @property
    def events(self) -> str:
        """Stream of audit events; entry ids are ``<event id>-0``."""
        return f"{self.prefix}events"

    @property
    def events_cursor(self) -> str:
        """The id of the last audit event added to the stream."""
        return f"{self.prefix}events:cursor"

    @property
    def run_signals(self) -> str:
        """Pub/sub channel of run cancels and steering messages, for the replica running the run."""
        return f"{self.prefix}runs:signals"

    def run_events(self, run_id: str) -> str:
        """Stream of one run's events."""
        return f"{self.prefix}run:{run_id}:events"

    def rate(self, subject: str) -> str:
        """Request counter of one user; hashed so any user id makes a short, plain key."""
        digest = hashlib.sha256(subject.encode()).hexdigest()[:32]
        return f"{self.prefix}ratelimit:{digest}"


def connect(url: str, *, timeout_seconds: float) -> Redis:
    """A client with bounded connect and command timeouts (no I/O until the first command).

    Two quick retries cover a pooled connection that died (Redis restarted); the library's default
    of ten, backing off up to a second, would hold each request for seconds while Redis is down.
    """
    return Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        health_check_interval=30,
        retry=Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.1), retries=2),
    )
