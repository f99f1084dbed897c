"""Prometheus metrics: names, label sets (bounded: no user or chat ids), one registry per container."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families

from chatserver.agents.cache import AgentCache
from chatserver.agents.types import TurnResult
from chatserver.domain import TurnUsage
from chatserver.observability.metrics import Metrics
from tests.unit.fakes import FakeClock


def samples(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the text exposition, keyed by (name, labels)."""
    text = metrics.render().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(metrics: Metrics, name: str, **labels: str) -> float:
    return samples(metrics).get((name, frozenset(labels.items())), 0.0)


def label_names(metrics: Metrics, name: str) -> set[str]:
    return {label for (sample, labels) in samples(metrics) if sample == name for label, _ in labels}


class Builds:
    builds = 0
    stale_builds = 0


def test_http_requests_are_counted_by_method_route_template_and_status() -> None:
    metrics = Metrics()
    metrics.http_request("GET", "/api/chats/{chat_id}/messages", 200, 0.01)
    metrics.http_request("GET", "/api/chats/{chat_id}/messages", 200, 0.02)
    metrics.http_request("POST", "/api/chat", 429, 0.001)
    assert (
        value(
            metrics,
            "chatserver_http_requests_total",
            method="GET",
            route="/api/chats/{chat_id}/messages",
            status="200",
        )
        == 2
    )
    assert (
        value(metrics, "chatserver_http_requests_total", method="POST", route="/api/chat", status="429") == 1
    )
    assert (
        value(
            metrics,
            "chatserver_http_request_duration_seconds_count",
            method="GET",
            route="/api/chats/{chat_id}/messages",
        )
        == 2
    )
    assert label_names(metrics, "chatserver_http_requests_total") == {"method", "route", "status"}


def test_an_unusual_method_is_one_label_value_not_a_new_series_each() -> None:
    metrics = Metrics()
    for method in ("BREW", "PROPFIND", "X" * 50):
        metrics.http_request(method, "<unmatched>", 405, 0.001)
    assert (
        value(metrics, "chatserver_http_requests_total", method="OTHER", route="<unmatched>", status="405")
        == 3
    )


def test_turns_model_latency_and_tokens_are_labelled_by_agent_and_outcome_only() -> None:
    metrics = Metrics()
    result = TurnResult("echo: hi", [], [], TurnUsage(input_tokens=50, output_tokens=2, requests=1))
    metrics.turn_completed("assistant", result, 0.2)
    metrics.turn_completed("assistant", result, 0.4)
    metrics.turn_failed("assistant", "model_timeout", 5.0)
    assert value(metrics, "chatserver_chat_turns_total", agent="assistant", outcome="completed") == 2
    assert value(metrics, "chatserver_chat_turns_total", agent="assistant", outcome="model_timeout") == 1
    assert value(metrics, "chatserver_tokens_total", agent="assistant", direction="input") == 100
    assert value(metrics, "chatserver_tokens_total", agent="assistant", direction="output") == 4
    latency = value(metrics, "chatserver_model_latency_seconds_sum", agent="assistant", outcome="completed")
    assert latency == pytest.approx(0.6)
    assert label_names(metrics, "chatserver_chat_turns_total") == {"agent", "outcome"}
    assert label_names(metrics, "chatserver_tokens_total") == {"agent", "direction"}


def test_agent_cache_figures_are_read_from_the_cache_and_loader_at_scrape_time() -> None:
    metrics = Metrics()
    cache = AgentCache(10, 900, FakeClock(datetime(2026, 1, 1, tzinfo=UTC)))
    loader = Builds()
    metrics.watch_agent_cache(cache, loader)
    cache.hits, cache.misses, cache.evictions, cache.invalidations = 7, 3, 2, 1
    loader.builds, loader.stale_builds = 3, 2
    assert value(metrics, "chatserver_agent_cache_hits_total") == 7
    assert value(metrics, "chatserver_agent_cache_stale_total") == 2
    assert value(metrics, "chatserver_agent_cache_misses_total") == 3
    assert value(metrics, "chatserver_agent_cache_builds_total") == 3
    assert value(metrics, "chatserver_agent_cache_evictions_total") == 2
    assert value(metrics, "chatserver_agent_cache_invalidations_total") == 1
    assert value(metrics, "chatserver_agent_cache_entries") == 0
    cache.hits = 9
    assert value(metrics, "chatserver_agent_cache_hits_total") == 9


def test_background_tasks_sessions_and_rate_limits_have_their_series() -> None:
    metrics = Metrics()
    metrics.task_run("audit_event_publisher", ok=True)
    metrics.task_run("audit_event_publisher", ok=False)
    metrics.active_sessions.set(4)
    metrics.rate_limited.inc()
    assert (
        value(metrics, "chatserver_background_task_runs_total", task="audit_event_publisher", outcome="ok")
        == 1
    )
    assert (
        value(
            metrics, "chatserver_background_task_runs_total", task="audit_event_publisher", outcome="failed"
        )
        == 1
    )
    assert value(metrics, "chatserver_active_sessions") == 4
    assert value(metrics, "chatserver_rate_limited_requests_total") == 1


def test_each_metrics_object_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.http_request("GET", "/healthz", 200, 0.001)
    assert value(first, "chatserver_http_requests_total", method="GET", route="/healthz", status="200") == 1
    assert value(second, "chatserver_http_requests_total", method="GET", route="/healthz", status="200") == 0
