"""The error responses every route may give, as OpenAPI documents them.

The bodies are what ``api.errors`` sends: ``{"detail", "code"}`` on ``/api``, OpenAI's
``{"error": {...}}`` on ``/v1``. Documenting them lets clients (and schema-driven fuzzers) tell an
expected refusal from a broken contract; a 500 is never documented, since it never should happen.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorOut(BaseModel):
    detail: str | list[FieldError] = Field(description="A message, or for 422 the list of field errors")
    code: str = Field(description="validation_error, unauthorized, not_found, chat_busy, model_error, ...")


class OpenAIError(BaseModel):
    message: str
    type: str
    code: str
    param: str | None = None


class OpenAIErrorOut(BaseModel):
    error: OpenAIError


_MEANINGS = {
    400: "A body that cannot be read at all (not UTF-8)",
    401: "No valid credentials (a JWT or an API key)",
    403: "Admins only",
    404: "Not found, or another user's",
    409: "Conflict, or the chat is busy with another turn",
    413: "Request body or message too large",
    422: "Invalid input; detail names the fields",
    429: "Rate limited; see Retry-After",
    502: "The model provider failed",
    503: "The database is unavailable",
    504: "The model timed out",
}


def _documented(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": model, "description": meaning} for status, meaning in _MEANINGS.items()}


API_ERRORS = _documented(ErrorOut)
"""For every authenticated ``/api`` router."""

OPENAI_ERRORS = _documented(OpenAIErrorOut)
"""For the ``/v1`` router."""

READINESS_ERRORS: dict[int | str, dict[str, Any]] = {
    503: {"description": "Not ready: the failing checks are named"}
}
