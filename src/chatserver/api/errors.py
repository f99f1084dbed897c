"""The one place where domain errors become HTTP responses.

Every error body is ``{"detail": ..., "code": ...}``; ``/v1`` routes use OpenAI's error shape.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from chatserver import errors
from chatserver.api.error_params import first_problem
from chatserver.api.json_bodies import JsonBodyRefused

log = logging.getLogger("chatserver.api")

# (status, code) per domain error; the most specific class wins (checked in MRO order).
ERROR_TABLE: dict[type[errors.ChatServerError], tuple[int, str]] = {
    errors.NotFound: (404, "not_found"),
    errors.ChatBusy: (409, "chat_busy"),
    errors.Conflict: (409, "conflict"),
    errors.Unauthorized: (401, "unauthorized"),
    errors.PermissionDenied: (403, "forbidden"),
    errors.InvalidInput: (422, "validation_error"),
    errors.PayloadTooLarge: (413, "payload_too_large"),
    errors.RateLimited: (429, "rate_limited"),
    errors.TooManyRuns: (429, "too_many_runs"),
    errors.BudgetExceeded: (429, "budget_exceeded"),
    errors.ModelTimeout: (504, "model_timeout"),
    errors.ModelError: (502, "model_error"),
    errors.DatabaseUnavailable: (503, "database_unavailable"),
    errors.RunInterrupted: (503, "server_restarted"),
}

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}

OPENAI_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


def status_and_code(error: errors.ChatServerError) -> tuple[int, str]:
    for cls in type(error).__mro__:
        if cls in ERROR_TABLE:
            return ERROR_TABLE[cls]
    return 500, "internal_error"


def error_body(request: Request, status: int, code: str, detail: Any, *, sent: Any = None) -> dict[str, Any]:
    """``sent``: the request body as parsed, if known; it tells a field from a union member in a loc."""
    if request.url.path.startswith("/v1/"):
        message, param = (detail, None) if isinstance(detail, str) else first_problem(detail, sent)
        kind = OPENAI_TYPES.get(status, "invalid_request_error" if status < 500 else "api_error")
        return {"error": {"message": message, "type": kind, "code": code, "param": param}}
    return {"detail": detail, "code": code}


def _domain_detail(error: errors.ChatServerError) -> Any:
    if isinstance(error, errors.InvalidInput):
        loc = ["body", error.field] if error.field else ["body"]
        return [{"loc": loc, "msg": error.detail, "type": "value_error"}]
    return error.detail


async def handle_domain_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, errors.ChatServerError)
    status, code = status_and_code(error)
    headers = {}
    if isinstance(error, errors.RateLimited) and error.retry_after_seconds > 0:
        headers["Retry-After"] = str(error.retry_after_seconds)
    if isinstance(error, errors.Unauthorized):
        headers["WWW-Authenticate"] = "Bearer"
    body = error_body(request, status, code, _domain_detail(error))
    return JSONResponse(body, status_code=status, headers=headers)


async def handle_validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    detail = [
        {"loc": list(item.get("loc", ())), "msg": item.get("msg", ""), "type": item.get("type", "")}
        for item in error.errors()
    ]
    body = error_body(request, 422, "validation_error", detail, sent=error.body)
    return JSONResponse(body, status_code=422)


async def handle_refused_json(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, JsonBodyRefused)
    return JSONResponse(error_body(request, 422, "validation_error", error.errors()), status_code=422)


async def handle_http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    code = HTTP_CODES.get(error.status_code, "error")
    body = error_body(request, error.status_code, code, error.detail)
    return JSONResponse(body, status_code=error.status_code, headers=error.headers)


async def handle_unexpected(request: Request, error: Exception) -> JSONResponse:
    log.exception("unhandled error", extra={"path": request.url.path})
    body = error_body(request, 500, "internal_error", "internal server error")
    return JSONResponse(body, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(errors.ChatServerError, handle_domain_error)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    app.add_exception_handler(JsonBodyRefused, handle_refused_json)
    app.add_exception_handler(StarletteHTTPException, handle_http_error)
    app.add_exception_handler(Exception, handle_unexpected)
