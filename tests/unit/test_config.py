"""Settings read from the environment: CHATSERVER_CORS_ORIGINS."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from chatserver.config import Settings


def test_cors_origins_are_read_as_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATSERVER_CORS_ORIGINS", " https://App.example.com, http://localhost:5173 ,")
    assert Settings().cors_origins == ("https://app.example.com", "http://localhost:5173")


def test_no_cors_origins_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHATSERVER_CORS_ORIGINS", raising=False)
    assert Settings().cors_origins == ()


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("https://app.example.com/", "not an origin"),
        ("app.example.com", "not an origin"),
        ("https://app.example.com/path", "not an origin"),
        ("https://user@app.example.com", "not an origin"),
        ("*,https://app.example.com", "'*' allows every origin"),
    ],
)
def test_an_invalid_origin_stops_the_server_from_starting(
    monkeypatch: pytest.MonkeyPatch, value: str, complaint: str
) -> None:
    monkeypatch.setenv("CHATSERVER_CORS_ORIGINS", value)
    with pytest.raises(ValidationError, match=complaint):
        Settings()
