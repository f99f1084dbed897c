"""Classify driver errors: which mean "the database is unreachable", which are unique violations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc as sa_exc

from chatserver.errors import ChatServerError, DatabaseUnavailable, InvalidInput

# SQLSTATEs that mean the server, not the statement, failed: class 08 (connection exception),
# 53300 (too many connections), 57P01-57P03 (shutdown, crash, cannot connect now).
_UNAVAILABLE_SQLSTATES = frozenset({"53300", "57P01", "57P02", "57P03"})
_UNIQUE_SQLSTATE = "23505"
_SQLITE_UNIQUE_ERRORS = frozenset({"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"})
# SQLite's writer lock still held by another connection after busy_timeout: the database is
# overloaded, not the statement wrong.
_SQLITE_BUSY_ERRORS = frozenset({"SQLITE_BUSY", "SQLITE_LOCKED"})
# SQLSTATE class 22 (data exception): a value the database refuses, not a broken server, e.g. 22021
# character_not_in_repertoire (NUL in text), 22P05 untranslatable_character (NUL in JSON text),
# 22003 numeric_value_out_of_range. Drivers refuse some values before sending them: text that is not
# valid UTF-8 (unpaired surrogates) raises UnicodeError, integers past 64 bits OverflowError.
_DATA_EXCEPTION_CLASS = "22"
_DRIVER_DATA_ERRORS = (UnicodeError, OverflowError)
INVALID_VALUE = (
    "a value cannot be stored: NUL characters or unpaired surrogates in text, or a number out of range"
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The error, the driver error SQLAlchemy wrapped, and their causes (bounded, cycle-safe)."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending and len(seen) < 16:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for nxt in (getattr(current, "orig", None), current.__cause__):
            if isinstance(nxt, BaseException):
                pending.append(nxt)


def _driver_interface_errors() -> tuple[type[BaseException], ...]:
    """asyncpg's "connection is closed" and kin, met unwrapped where a query goes to the driver.

    ``InternalClientError`` ("cannot switch to state 12; another operation is in progress") is what
    a connection whose backend was terminated between statements can raise on its next use: its
    protocol state is broken, so it is as lost as a closed one.
    """
    try:
        from asyncpg.exceptions import InterfaceError, InternalClientError
    except ImportError:  # pragma: no cover - asyncpg is a dependency
        return ()
    return (InterfaceError, InternalClientError)


_DRIVER_INTERFACE_ERRORS = _driver_interface_errors()


def _is_unavailable_one(exc: BaseException) -> bool:
    if isinstance(exc, (OSError, sa_exc.TimeoutError, sa_exc.InterfaceError, *_DRIVER_INTERFACE_ERRORS)):
        return True
    # A connection an earlier failure invalidated, used again before its rollback: it is lost too.
    if isinstance(exc, sa_exc.PendingRollbackError):
        return True
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    if getattr(exc, "sqlite_errorname", None) in _SQLITE_BUSY_ERRORS:
        return True
    sqlstate = getattr(exc, "sqlstate", None)
    return isinstance(sqlstate, str) and (sqlstate.startswith("08") or sqlstate in _UNAVAILABLE_SQLSTATES)


def is_connection_error(exc: BaseException) -> bool:
    """True for failures of the connection or server (never for integrity, data or programming errors).

    ``OSError`` covers ``ConnectionError`` and, on Python 3.11+, ``TimeoutError``.
    """
    if isinstance(exc, sa_exc.IntegrityError) or is_data_error(exc):
        return False
    return any(_is_unavailable_one(e) for e in _chain(exc))


def _is_data_error_one(exc: BaseException) -> bool:
    if isinstance(exc, (sa_exc.DataError, *_DRIVER_DATA_ERRORS)):
        return True
    sqlstate = getattr(exc, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate.startswith(_DATA_EXCEPTION_CLASS)


def is_data_error(exc: BaseException) -> bool:
    """True when the database (or its driver) refused a value the caller sent: a 4xx, never a 500."""
    return any(_is_data_error_one(e) for e in _chain(exc))


def is_unique_violation(exc: sa_exc.IntegrityError) -> bool:
    for error in _chain(exc):
        if getattr(error, "sqlstate", None) == _UNIQUE_SQLSTATE:
            return True
        if getattr(error, "sqlite_errorname", None) in _SQLITE_UNIQUE_ERRORS:
            return True
    return False


@contextmanager
def unavailable_on_connection_errors(*, connecting: bool = False) -> Iterator[None]:
    """Re-raise connection-level failures as ``DatabaseUnavailable``, chaining the cause.

    While ``connecting``, any driver error counts: a database that refuses the connection (missing,
    unreadable, wrong credentials) is unavailable to this process.
    """
    try:
        yield
    except DatabaseUnavailable:
        raise
    except Exception as exc:
        if is_connection_error(exc) or (connecting and isinstance(exc, sa_exc.DBAPIError)):
            raise DatabaseUnavailable("database unavailable") from exc
        raise


@contextmanager
def invalid_input_on_data_errors() -> Iterator[None]:
    """Re-raise values the database refuses (``is_data_error``) as ``InvalidInput``, chaining the cause.

    A safety net under the schemas, which refuse such text first: whatever slips past them is the
    caller's bad input (422), not a server failure (500).
    """
    try:
        yield
    except ChatServerError:
        raise
    except Exception as exc:
        if is_data_error(exc):
            raise InvalidInput(INVALID_VALUE) from exc
        raise
