"""Keys, claims and a movable clock for the auth tests. Tokens are minted with PyJWT in the tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from chatserver.config import Settings

SECRET = "test-secret-" + "0123456789abcdef" * 4  # long enough for HS512 too: no key-length warnings
AUDIENCE = "authenticated"

Claims = dict[str, Any]


class FakeClock:
    def __init__(self) -> None:
        self.current = datetime(2030, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


def make_settings(**overrides: Any) -> Settings:
    """Settings with every auth field explicit, so CHATSERVER_* variables of the shell don't leak in."""
    values: dict[str, Any] = {
        "jwt_secret": None,
        "jwks_url": None,
        "jwt_audience": AUDIENCE,
        "jwt_issuer": None,
        "jwt_leeway_seconds": 10,
        "admin_claim": "role",
    }
    values.update(overrides)
    return Settings(**values)


def public_jwk(private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, kid: str) -> dict[str, Any]:
    algorithm = RSAAlgorithm if isinstance(private_key, rsa.RSAPrivateKey) else ECAlgorithm
    jwk: dict[str, Any] = algorithm.to_jwk(private_key.public_key(), as_dict=True)
    jwk["kid"] = kid
    return jwk


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings_factory() -> Callable[..., Settings]:
    return make_settings


@pytest.fixture
def claims() -> Callable[..., Claims]:
    """Valid claims (exp in 5 minutes of real time: PyJWT checks exp/nbf against the system clock)."""

    def build(**overrides: Any) -> Claims:
        now = int(time.time())
        values: Claims = {"sub": "user-1", "aud": AUDIENCE, "iat": now, "exp": now + 300}
        values.update(overrides)
        return {key: value for key, value in values.items() if value is not None}

    return build


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def other_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def rsa_jwk(rsa_key: rsa.RSAPrivateKey) -> dict[str, Any]:
    return public_jwk(rsa_key, "rsa-1")


@pytest.fixture
def ec_jwk(ec_key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    return public_jwk(ec_key, "ec-1")


@pytest.fixture
def secret() -> str:
    return SECRET


@pytest.fixture
def jwk_of() -> Callable[[rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, str], dict[str, Any]]:
    return public_jwk
