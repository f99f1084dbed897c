"""A run's ledger: each model response and tool call, stored as it finishes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

StepKind = Literal["model", "tool"]
StepStatus = Literal["started", "completed", "failed", "denied", "unknown", "pending", "approved"]
"""``pending``: a tool call that waits for the user's decision; ``approved``: decided, not yet run."""

UNKNOWN_OUTCOME = "interrupted: outcome unknown"


@dataclass(frozen=True, slots=True)
class RunStep:
    run_id: str
    seq: int
    kind: StepKind
    name: str
    status: StepStatus
    started_at: datetime
    finished_at: datetime | None = None
    tool_call_id: str | None = None
    args: dict[str, Any] | None = None
    payload: Any = None
    """A model step's response, a tool step's result part: the framework's messages as JSON."""
    decided_at: datetime | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """The user's answer to one pending tool call."""

    id: str
    approve: bool
    args: dict[str, Any] | None = None
    reason: str | None = None
