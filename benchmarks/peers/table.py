"""The side-by-side tables: one row per scenario and contender, ratios against the original's row
of the same run, and the medians of several runs."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, replace

BASELINE = "original"


@dataclass(frozen=True)
class Row:
    scenario: str
    contender: str
    turns_per_s: float
    p50_ms: float
    p99_ms: float
    cpu_ms_per_turn: float
    db_cpu_ms_per_turn: float
    """PostgreSQL's CPU over the measured turns, per turn (every contender's database is there)."""
    peak_rss_mb: float
    errors: int
    throughput_x: float | None = None
    """Turns/s over the original's in the same scenario and run (``None`` without the original)."""
    cpu_x: float | None = None
    """CPU per turn over the original's in the same scenario and run."""


def _ratio(value: float, base: float) -> float | None:
    return value / base if base > 0 else None


def with_ratios(rows: list[Row], baseline: str = BASELINE) -> list[Row]:
    """``rows`` (one run) with each row's ratios against the baseline's row of its scenario."""
    bases = {row.scenario: row for row in rows if row.contender == baseline}
    ratioed = []
    for row in rows:
        base = bases.get(row.scenario)
        if base is None:
            ratioed.append(row)
            continue
        ratioed.append(
            replace(
                row,
                throughput_x=_ratio(row.turns_per_s, base.turns_per_s),
                cpu_x=_ratio(row.cpu_ms_per_turn, base.cpu_ms_per_turn),
            )
        )
    return ratioed


def _median_or_none(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def median_rows(runs: list[list[Row]]) -> list[Row]:
    """One row per (scenario, contender), in first-seen order: the median of each figure over the
    runs, ratios the median of each run's own ratio, errors added up over the runs."""
    grouped: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for run in runs:
        for row in run:
            grouped[(row.scenario, row.contender)].append(row)
    return [
        Row(
            scenario,
            contender,
            statistics.median(r.turns_per_s for r in rows),
            statistics.median(r.p50_ms for r in rows),
            statistics.median(r.p99_ms for r in rows),
            statistics.median(r.cpu_ms_per_turn for r in rows),
            statistics.median(r.db_cpu_ms_per_turn for r in rows),
            statistics.median(r.peak_rss_mb for r in rows),
            sum(r.errors for r in rows),
            _median_or_none([r.throughput_x for r in rows]),
            _median_or_none([r.cpu_x for r in rows]),
        )
        for (scenario, contender), rows in grouped.items()
    ]


def _times(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}x"


def format_table(rows: list[Row], title: str) -> str:
    lines = [
        f"### {title}",
        "",
        "| scenario | contender | turns/s | p50 ms | p99 ms | CPU ms/turn | DB CPU ms/turn | peak RSS MB "
        "| errors | turns/s vs original | CPU vs original |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.scenario} | {r.contender} | {r.turns_per_s:.1f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} "
            f"| {r.cpu_ms_per_turn:.2f} | {r.db_cpu_ms_per_turn:.2f} | {r.peak_rss_mb:.0f} | {r.errors} "
            f"| {_times(r.throughput_x)} | {_times(r.cpu_x)} |"
        )
    return "\n".join(lines)
