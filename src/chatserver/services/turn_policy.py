"""What every turn is bound by, and who hears how turns end."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from chatserver.agents.types import TurnResult
from chatserver.domain import BusyPolicy
from chatserver.domain.usage import ModelUsage
from chatserver.errors import NotFound


@dataclass(frozen=True, slots=True)
class TurnPolicy:
    history_window: int
    max_message_chars: int
    model_timeout_seconds: float
    max_model_requests: int
    busy_policy: BusyPolicy = "enqueue"
    lease_seconds: float = 30.0
    token_flush_seconds: float = 0.05
    idempotency_hours: float = 24.0
    max_runs_per_user: int = 64


class AgentNotFound(NotFound):
    """The requested agent does not exist (a 404 like any ``NotFound``; the OpenAI API names it)."""


class TurnListener(Protocol):
    """Observes finished turns (metrics); must not raise or block.

    A cancelled run is reported as failed with code ``cancelled``.
    """

    def turn_completed(self, agent_name: str, result: TurnResult, seconds: float) -> None: ...
    def turn_failed(self, agent_name: str, code: str, seconds: float) -> None: ...
    def usage_recorded(self, agent_name: str, rows: Sequence[ModelUsage]) -> None:
        """A run's usage by model, once stored (whatever its outcome)."""

    def approvals_pending(self, count: int) -> None:
        """A run paused for ``count`` decisions."""

    def approval_decided(self, decision: str, seconds: float) -> None:
        """``decision``: granted, denied or expired; ``seconds`` since it was requested."""


class NoTurnListener:
    def turn_completed(self, agent_name: str, result: TurnResult, seconds: float) -> None:
        pass

    def turn_failed(self, agent_name: str, code: str, seconds: float) -> None:
        pass

    def usage_recorded(self, agent_name: str, rows: Sequence[ModelUsage]) -> None:
        pass

    def approvals_pending(self, count: int) -> None:
        pass

    def approval_decided(self, decision: str, seconds: float) -> None:
        pass
