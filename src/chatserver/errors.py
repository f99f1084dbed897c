"""Domain errors. They carry no HTTP status: ``api.errors`` maps each one to a response."""

from __future__ import annotations


class ChatServerError(Exception):
    """Base of every error the services raise on purpose."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(ChatServerError):
    pass


class Conflict(ChatServerError):
    pass


class ChatBusy(Conflict):
    pass


class Unauthorized(ChatServerError):
    pass


class PermissionDenied(ChatServerError):
    pass


class InvalidInput(ChatServerError):
    """Input that passed schema validation but breaks a domain rule; ``field`` names the culprit."""

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.field = field


class PayloadTooLarge(ChatServerError):
    pass


class RateLimited(ChatServerError):
    def __init__(self, detail: str, *, retry_after_seconds: int) -> None:
        super().__init__(detail)
        self.retry_after_seconds = retry_after_seconds


class TooManyRuns(RateLimited):
    """The user has as many runs queued or running as they may (``CHATSERVER_MAX_RUNS_PER_USER``)."""


class BudgetExceeded(RateLimited):
    """A budget that binds the turn is used up until its period resets, ``retry_after_seconds``
    from now (0: not known here, as for a run that ended so and is read back)."""

    def __init__(self, detail: str, *, retry_after_seconds: int = 0) -> None:
        super().__init__(detail, retry_after_seconds=retry_after_seconds)


class ModelError(ChatServerError):
    pass


class ModelTimeout(ModelError):
    pass


class DatabaseUnavailable(ChatServerError):
    pass


class RunInterrupted(ChatServerError):
    """The server running a run stopped before the run ended (``server_restarted``)."""
