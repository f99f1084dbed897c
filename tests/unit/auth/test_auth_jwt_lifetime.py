"""JWT times: NumericDates only, and with ``jwt_max_age_seconds`` no token lives longer than that."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from chatserver.auth import JwtVerifier
from chatserver.config import Settings
from chatserver.domain.models import Principal
from chatserver.errors import Unauthorized

Claims = dict[str, Any]
HOUR = 3600


def verifier(settings_factory: Callable[..., Settings], secret: str, **overrides: Any) -> JwtVerifier:
    return JwtVerifier(settings_factory(jwt_secret=secret, **overrides))


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
async def test_a_time_given_as_a_string_is_refused(
    settings_factory: Callable[..., Settings], claims: Callable[..., Claims], secret: str, claim: str
) -> None:
    valid = claims(nbf=int(time.time()))
    token = jwt.encode({**valid, claim: str(valid[claim])}, secret, algorithm="HS256")
    with pytest.raises(Unauthorized, match="invalid token times"):
        await verifier(settings_factory, secret).verify(token)


@pytest.mark.parametrize(
    ("lifetime", "with_iat"),
    [(2 * HOUR, True), (2 * HOUR, False), (365 * 24 * HOUR, True)],
    ids=["two hours from iat", "two hours from now, no iat", "a year"],
)
async def test_a_token_that_lives_longer_than_the_maximum_is_refused(
    settings_factory: Callable[..., Settings],
    claims: Callable[..., Claims],
    secret: str,
    lifetime: int,
    with_iat: bool,
) -> None:
    now = int(time.time())
    token = jwt.encode(claims(exp=now + lifetime, iat=now if with_iat else None), secret, algorithm="HS256")
    with pytest.raises(Unauthorized, match=f"lifetime exceeds {HOUR} seconds"):
        await verifier(settings_factory, secret, jwt_max_age_seconds=HOUR).verify(token)


@pytest.mark.parametrize("with_iat", [True, False])
async def test_a_token_within_the_maximum_lifetime_is_accepted(
    settings_factory: Callable[..., Settings], claims: Callable[..., Claims], secret: str, with_iat: bool
) -> None:
    now = int(time.time())
    token = jwt.encode(claims(exp=now + HOUR, iat=now if with_iat else None), secret, algorithm="HS256")
    principal = await verifier(settings_factory, secret, jwt_max_age_seconds=HOUR).verify(token)
    assert principal == Principal(user_id="user-1")


async def test_without_a_maximum_a_long_lived_token_is_accepted(
    settings_factory: Callable[..., Settings], claims: Callable[..., Claims], secret: str
) -> None:
    now = int(time.time())
    token = jwt.encode(claims(exp=now + 365 * 24 * HOUR, iat=now), secret, algorithm="HS256")
    assert await verifier(settings_factory, secret).verify(token) == Principal(user_id="user-1")
