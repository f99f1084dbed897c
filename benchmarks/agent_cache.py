"""Agent cache: what building an agent costs against a cache hit, and what 1,000 cached agents weigh."""

from __future__ import annotations

import asyncio
import time
import tracemalloc
from datetime import UTC, datetime

from chatserver.agents.cache import AgentCache
from chatserver.agents.factory import AgentFactory
from chatserver.agents.registry import ModelRegistry
from chatserver.agents.tools import ToolRegistry
from chatserver.clock import SystemClock
from chatserver.config import Settings
from chatserver.domain import AgentConfig, PromptCustomization

BUILDS = 1000


def _inputs(i: int) -> tuple[AgentConfig, list[PromptCustomization]]:
    config = AgentConfig("assistant", "echo", "You are a helpful assistant.", tools=("current_time",))
    now = datetime.now(UTC)
    custom = PromptCustomization(
        f"c{i}",
        f"user{i}",
        "assistant",
        "instruction_set",
        {"instructions": ["Be brief.", "Use metric units."]},
        True,
        0,
        now,
        now,
    )
    return config, [custom]


async def _measure() -> tuple[float, float, float]:
    factory = AgentFactory(ModelRegistry(Settings()), ToolRegistry(SystemClock()))
    cache = AgentCache(BUILDS, 900, SystemClock())
    inputs = [_inputs(i) for i in range(BUILDS)]
    factory.build(*inputs[0])  # the first build pays for imports and the model: not a cache miss's cost
    # Timed without tracemalloc, which slows every allocation several times over.
    started = time.perf_counter()
    built = [factory.build(config, customs) for config, customs in inputs]
    build_us = (time.perf_counter() - started) * 1e6 / BUILDS
    del built
    tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    for i, (config, customs) in enumerate(inputs):
        cache.put((f"user{i}", "assistant"), factory.build(config, customs))
    held_mb = (tracemalloc.get_traced_memory()[0] - baseline) / 2**20
    tracemalloc.stop()
    started = time.perf_counter()
    for i in range(BUILDS):
        await cache.get_or_build((f"user{i}", "assistant"), _never_built)
    hit_us = (time.perf_counter() - started) * 1e6 / BUILDS
    return build_us, hit_us, held_mb


async def _never_built():  # type: ignore[no-untyped-def]
    raise AssertionError("expected a cache hit")


def measure_agent_cache() -> None:
    build_us, hit_us, held_mb = asyncio.run(_measure())
    print("\n### agent cache\n")
    print("| build an agent (cache miss, CPU only) | cache hit | 1,000 cached agents |")
    print("|---:|---:|---:|")
    print(f"| {build_us:.0f} us | {hit_us:.2f} us | {held_mb:.1f} MB |")
