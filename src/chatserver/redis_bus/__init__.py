"""Redis for several replicas: cache invalidation (pub/sub), shared rate limits, the audit stream."""

from chatserver.redis_bus.connection import RedisKeys, connect
from chatserver.redis_bus.events import AuditEventPublisher
from chatserver.redis_bus.invalidation import RedisInvalidationBus
from chatserver.redis_bus.rate_limit import MemoryRateLimiter, RateLimiter, RedisRateLimiter, Unlimited
from chatserver.redis_bus.runtime import RedisRuntime, build_replication

__all__ = [
    "AuditEventPublisher",
    "MemoryRateLimiter",
    "RateLimiter",
    "RedisInvalidationBus",
    "RedisKeys",
    "RedisRateLimiter",
    "RedisRuntime",
    "Unlimited",
    "build_replication",
    "connect",
]
