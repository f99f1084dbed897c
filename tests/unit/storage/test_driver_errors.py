"""Which driver failures mean "the database is unavailable" (503, connection discarded)."""

from __future__ import annotations

import pytest
from asyncpg.exceptions import (
    ConnectionDoesNotExistError,
    InternalClientError,
    UniqueViolationError,
)

from chatserver.errors import DatabaseUnavailable
from chatserver.storage.sql.driver_errors import is_connection_error, unavailable_on_connection_errors


def test_a_connection_whose_protocol_state_broke_counts_as_lost() -> None:
    broken = InternalClientError("cannot switch to state 12; another operation (2) is in progress")

    with pytest.raises(DatabaseUnavailable) as raised, unavailable_on_connection_errors():
        raise broken

    assert raised.value.__cause__ is broken


def test_a_closed_connection_met_at_the_driver_counts_as_lost() -> None:
    assert is_connection_error(ConnectionDoesNotExistError("connection was closed mid-operation"))


def test_a_unique_violation_is_the_statements_fault_not_the_servers() -> None:
    assert not is_connection_error(UniqueViolationError("duplicate key value violates unique constraint"))


def test_an_unrelated_error_passes_through_unchanged() -> None:
    with pytest.raises(KeyError), unavailable_on_connection_errors():
        raise KeyError("x")
