"""Prometheus metrics in a registry owned by one container (no module-level collectors).

Label sets stay bounded: HTTP routes are templates (``/api/chats/{chat_id}``), methods outside the
standard set become ``OTHER``, agents are the admin-defined agent names; never user or chat ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from chatserver.agents.types import TurnResult
from chatserver.domain.usage import ModelUsage

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
UNMATCHED_ROUTE = "<unmatched>"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class CacheStats(Protocol):
    """What the agent cache and loader expose (plain ints, read at scrape time)."""

    hits: int
    misses: int
    evictions: int
    invalidations: int

    def __len__(self) -> int: ...


class BuildStats(Protocol):
    @property
    def builds(self) -> int: ...
    @property
    def stale_builds(self) -> int: ...


class _AgentCacheCollector(Collector):
    def __init__(self, cache: CacheStats, loader: BuildStats) -> None:
        self._cache = cache
        self._loader = loader

    def collect(self) -> Iterable[Metric]:
        return self._families()

    def _families(self) -> Iterator[Metric]:
        cache = self._cache
        counters = {
            "hits": ("Agent cache lookups that found a built agent", cache.hits),
            "misses": ("Agent cache lookups that found nothing", cache.misses),
            "builds": (
                "Agents built (cache misses that loaded config and customizations)",
                self._loader.builds,
            ),
            "stale": (
                "Cached agents a turn found built before a change (its invalidation came late or never)",
                self._loader.stale_builds,
            ),
            "evictions": ("Cached agents dropped for size, age or no active session", cache.evictions),
            "invalidations": ("Cached agents dropped because their inputs changed", cache.invalidations),
        }
        for name, (doc, value) in counters.items():
            yield CounterMetricFamily(f"chatserver_agent_cache_{name}", doc, value=value)
        yield GaugeMetricFamily("chatserver_agent_cache_entries", "Agents in the cache now", value=len(cache))


class Metrics:
    """Every collector of the process; also the ``TurnListener`` of the chat service."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "chatserver_http_requests", "HTTP requests answered", ["method", "route", "status"], registry=r
        )
        self.http_latency = Histogram(
            "chatserver_http_request_duration_seconds",
            "Time from request to the end of the response (streams included)",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.turns = Counter(
            "chatserver_chat_turns", "Chat turns by outcome", ["agent", "outcome"], registry=r
        )
        self.model_latency = Histogram(
            "chatserver_model_latency_seconds",
            "Time a turn spent in the model run, tool calls included",
            ["agent", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "chatserver_tokens", "Model tokens by direction", ["agent", "direction"], registry=r
        )
        # By agent and model, never by user: labels must stay few.
        self.model_tokens = Counter(
            "chatserver_model_tokens", "Tokens by model", ["agent", "model", "direction"], registry=r
        )
        self.model_requests = Counter(
            "chatserver_model_requests", "Model requests by model", ["agent", "model"], registry=r
        )
        self.model_cost = Counter(
            "chatserver_model_cost_usd", "Model cost in USD, where priced", ["agent", "model"], registry=r
        )
        self.active_sessions = Gauge(
            "chatserver_active_sessions", "Active session instances (all replicas)", registry=r
        )
        self.task_runs = Counter(
            "chatserver_background_task_runs", "Background task cycles", ["task", "outcome"], registry=r
        )
        self.rate_limited = Counter(
            "chatserver_rate_limited_requests", "Requests refused with 429 by the rate limiter", registry=r
        )
        self.redis_circuit_open = Gauge(
            "chatserver_redis_circuit_open",
            "1 while requests skip Redis (it failed or stalled)",
            registry=r,
        )
        self.redis_skipped = Counter(
            "chatserver_redis_calls_skipped", "Redis calls skipped while the circuit was open", registry=r
        )
        self.events_published = Counter(
            "chatserver_audit_events_published", "Audit events added to the Redis stream", registry=r
        )
        self.invalidations_sent = Counter(
            "chatserver_cache_invalidations_published",
            "Agent-cache invalidations sent to other replicas",
            registry=r,
        )
        self.invalidations_received = Counter(
            "chatserver_cache_invalidations_received",
            "Agent-cache invalidations received from other replicas",
            registry=r,
        )

        # Pending approvals are requested minus decided, summed over replicas (a decision may be
        # taken on another replica than its request).
        self.approvals_requested = Counter(
            "chatserver_approvals_requested", "Tool calls that waited for the user's decision", registry=r
        )
        self.approvals_decided = Counter(
            "chatserver_approvals_decided", "Approval decisions", ["decision"], registry=r
        )
        self.approval_latency = Histogram(
            "chatserver_approval_decision_seconds",
            "Time from an approval's request to its decision",
            ["decision"],
            buckets=(1, 5, 15, 60, 300, 900, 3600, 14400, 86400, 172800),
            registry=r,
        )

    def approvals_pending(self, count: int) -> None:
        self.approvals_requested.inc(count)

    def approval_decided(self, decision: str, seconds: float) -> None:
        """``decision``: granted, denied or expired."""
        self.approvals_decided.labels(decision).inc()
        self.approval_latency.labels(decision).observe(max(seconds, 0.0))

    def watch_agent_cache(self, cache: CacheStats, loader: BuildStats) -> None:
        self.registry.register(_AgentCacheCollector(cache, loader))

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in HTTP_METHODS else "OTHER"
        self.http_requests.labels(method, route, str(status)).inc()
        self.http_latency.labels(method, route).observe(seconds)

    def turn_completed(self, agent_name: str, result: TurnResult, seconds: float) -> None:
        self.turns.labels(agent_name, "completed").inc()
        self.model_latency.labels(agent_name, "completed").observe(seconds)
        self.tokens.labels(agent_name, "input").inc(result.usage.input_tokens)
        self.tokens.labels(agent_name, "output").inc(result.usage.output_tokens)

    def turn_failed(self, agent_name: str, code: str, seconds: float) -> None:
        self.turns.labels(agent_name, code).inc()
        self.model_latency.labels(agent_name, code).observe(seconds)

    def usage_recorded(self, agent_name: str, rows: Sequence[ModelUsage]) -> None:
        for row in rows:
            self.model_tokens.labels(agent_name, row.model, "input").inc(row.input_tokens)
            self.model_tokens.labels(agent_name, row.model, "output").inc(row.output_tokens)
            self.model_requests.labels(agent_name, row.model).inc(row.requests)
            if row.cost_usd:
                self.model_cost.labels(agent_name, row.model).inc(row.cost_usd)

    def task_run(self, task: str, *, ok: bool) -> None:
        """A background task finished one cycle (``task`` is a fixed name, never an id)."""
        self.task_runs.labels(task, "ok" if ok else "failed").inc()
