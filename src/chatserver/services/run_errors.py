"""How a run's failure is named in its record and events, and named back as a domain error."""

from __future__ import annotations

from chatserver.errors import (
    BudgetExceeded,
    ChatBusy,
    ChatServerError,
    Conflict,
    DatabaseUnavailable,
    InvalidInput,
    ModelError,
    ModelTimeout,
    NotFound,
    RunInterrupted,
)

_ERRORS: tuple[tuple[type[ChatServerError], str], ...] = (
    (BudgetExceeded, "budget_exceeded"),
    (ModelTimeout, "model_timeout"),
    (ModelError, "model_error"),
    (DatabaseUnavailable, "database_unavailable"),
    (NotFound, "not_found"),
    (ChatBusy, "chat_busy"),
    (Conflict, "conflict"),
    (InvalidInput, "validation_error"),
    (RunInterrupted, "server_restarted"),
)
"""Most specific first."""


def code_of(error: BaseException) -> str:
    for cls, code in _ERRORS:
        if isinstance(error, cls):
            return code
    return "internal_error"


def error_of(code: str, detail: str) -> ChatServerError:
    """The domain error a failed run's code stands for (unknown codes: a model error)."""
    for cls, known in _ERRORS:
        if known == code:
            return cls(detail)
    return ModelError(detail)
