"""JWT bearer-token verification: HS256 with a shared secret, or RS*/PS*/ES* with keys from a JWKS.

Algorithm safety: the token header picks which *configured* verifier is consulted, never which
algorithm is applied to a given key.
- ``HS256`` tokens are verified only with ``jwt_secret`` and only with ``algorithms=["HS256"]``;
  without a secret they are rejected, even when a JWKS is configured. A JWKS key is never used as
  an HMAC secret (algorithm confusion).
- Every other accepted algorithm needs a JWKS key. The algorithms allowed for that key follow from
  the key object itself (RSA public key -> RS256/384/512, PS256/384/512; EC public key -> the one
  ES* matching its curve), never from the token. Symmetric (``oct``), private, encryption-only
  (``use: enc``) and other key types in a JWKS are ignored.
- ``alg: none`` and anything else are rejected before any key is looked at.

Claims: ``exp`` required, ``exp``/``nbf``/``iat`` numbers (not strings), checked with
``jwt_leeway_seconds`` against the system time; with ``jwt_max_age_seconds`` set, ``exp`` at most that
far past ``iat`` (or past now, without ``iat``); ``aud`` must contain ``jwt_audience``; ``iss`` must
equal ``jwt_issuer`` when that is set; ``sub`` must be a non-blank string of at most 255
characters, without NUL or unpaired surrogates. The caller is an admin when the claim named by
``admin_claim`` equals ``"admin"`` or is a list containing ``"admin"``.

Failures raise ``Unauthorized`` with a short detail; neither the token nor a secret is ever put in
a message or a log line.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final, TypeGuard

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import (
    SECP256R1,
    SECP384R1,
    SECP521R1,
    EllipticCurvePublicKey,
)
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from chatserver.auth.jwks import HttpJwksSource, JwksSource, JwksUnavailable
from chatserver.config import Settings
from chatserver.domain.models import Principal
from chatserver.errors import Unauthorized

__all__ = [
    "MAX_SUBJECT_LENGTH",
    "MAX_TOKEN_LENGTH",
    "HttpJwksSource",
    "JwksSource",
    "JwtVerifier",
]

logger = logging.getLogger(__name__)

MAX_TOKEN_LENGTH: Final = 16_384
MAX_SUBJECT_LENGTH: Final = 255

HMAC_ALGORITHMS: Final = ("HS256",)
RSA_ALGORITHMS: Final = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
EC_ALGORITHM_BY_CURVE: Final = {SECP256R1.name: "ES256", SECP384R1.name: "ES384", SECP521R1.name: "ES512"}
ASYMMETRIC_ALGORITHMS: Final = frozenset(RSA_ALGORITHMS) | frozenset(EC_ALGORITHM_BY_CURVE.values())

TIME_CLAIMS: Final = ("exp", "nbf", "iat")
NOT_CONFIGURED: Final = "JWT authentication is not configured"
INVALID: Final = "invalid token"
NOT_A_TOKEN: Final = "the token is not a valid API key (they start with 'cs_') or JWT"


def _numeric_date(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _allowed_algorithms(key: jwt.PyJWK) -> tuple[str, ...]:
    """The algorithms a JWKS key may verify, decided by the key's own type; () for unusable keys."""
    if key.public_key_use not in (None, "sig"):
        return ()
    material: Any = key.key
    if isinstance(material, RSAPublicKey):
        return RSA_ALGORITHMS
    if isinstance(material, EllipticCurvePublicKey):
        alg = EC_ALGORITHM_BY_CURVE.get(material.curve.name)
        return (alg,) if alg else ()
    return ()


def _is_admin(claims: Mapping[str, Any], admin_claim: str) -> bool:
    value = claims.get(admin_claim)
    if isinstance(value, list):
        return "admin" in value
    return value == "admin"


def _valid_subject(sub: object) -> TypeGuard[str]:
    """A non-blank string of at most 255 characters that a database can store and compare: no NUL,
    no unpaired surrogate (valid JSON, but not UTF-8)."""
    if not isinstance(sub, str) or not sub.strip() or len(sub) > MAX_SUBJECT_LENGTH or "\x00" in sub:
        return False
    try:
        sub.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _detail_for(exc: jwt.PyJWTError) -> str:
    match exc:
        case jwt.ExpiredSignatureError():
            return "token expired"
        case jwt.ImmatureSignatureError():
            return "token not yet valid"
        case jwt.InvalidAudienceError():
            return "invalid token audience"
        case jwt.InvalidIssuerError():
            return "invalid token issuer"
        case jwt.MissingRequiredClaimError(claim="aud"):
            return "invalid token audience"
        case jwt.MissingRequiredClaimError(claim="iss"):
            return "invalid token issuer"
        case jwt.MissingRequiredClaimError(claim="exp"):
            return "token has no expiry"
        case jwt.MissingRequiredClaimError(claim="sub"):
            return "invalid token subject"
        case _:
            return INVALID


class JwtVerifier:
    """Turns a bearer JWT into a ``Principal``; see the module docstring for the rules."""

    def __init__(self, settings: Settings, *, jwks: JwksSource | None = None) -> None:
        secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret is not None else ""
        if settings.jwks_url and jwks is None:
            raise ValueError("jwks_url is set: pass a JwksSource (e.g. HttpJwksSource) as jwks")
        # A blank secret counts as unset (HS256 disabled): it must never become a guessable key.
        self._secret: bytes | None = secret.encode() if secret.strip() else None
        self._jwks = jwks
        self._audience = settings.jwt_audience
        self._issuer = settings.jwt_issuer or None  # blank = not configured, like jwks_url
        self._leeway = settings.jwt_leeway_seconds
        self._admin_claim = settings.admin_claim
        self._max_age = settings.jwt_max_age_seconds
        # Short HMAC secrets only warn (PyJWT warns too): refusing them would lock out deployments.
        self._hmac_jwt = jwt.PyJWT(options={"require": ["exp", "sub"]})
        # IdP keys are never short: an RSA key under 2048 bits is refused outright.
        self._asymmetric_jwt = jwt.PyJWT(
            options={"require": ["exp", "sub"], "enforce_minimum_key_length": True}
        )
        if self._secret is not None and len(self._secret) < 32:
            logger.warning("jwt_secret is shorter than 32 bytes; use a longer random secret")

    @property
    def configured(self) -> bool:
        return self._secret is not None or self._jwks is not None

    async def verify(self, token: str) -> Principal:
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
            raise Unauthorized(INVALID)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            # Most often a mistyped or truncated API key: say so, not that JWTs are unconfigured.
            raise Unauthorized(NOT_A_TOKEN) from None
        except jwt.PyJWTError:
            raise Unauthorized(INVALID) from None
        if not self.configured:
            raise Unauthorized(NOT_CONFIGURED)
        alg = header.get("alg")
        if not isinstance(alg, str):
            raise Unauthorized(INVALID)
        if alg in HMAC_ALGORITHMS:
            claims = self._decode_hmac(token)
        elif alg in ASYMMETRIC_ALGORITHMS:
            claims = await self._decode_asymmetric(token, header.get("kid"))
        else:  # "none", HS384, EdDSA, anything unknown
            raise Unauthorized(INVALID)
        return self._principal(claims)

    def _decode_hmac(self, token: str) -> dict[str, Any]:
        if self._secret is None:
            raise Unauthorized(INVALID)
        return self._decode(self._hmac_jwt, token, self._secret, HMAC_ALGORITHMS)

    async def _decode_asymmetric(self, token: str, kid: Any) -> dict[str, Any]:
        if self._jwks is None or (kid is not None and not isinstance(kid, str)):
            raise Unauthorized(INVALID)
        try:
            key = await self._jwks.get_key(kid)
        except JwksUnavailable:
            raise Unauthorized("signing keys unavailable") from None
        if key is None:
            raise Unauthorized("unknown signing key")
        algorithms = _allowed_algorithms(key)
        if not algorithms:
            raise Unauthorized(INVALID)
        # The raw key object, not the PyJWK: ``algorithms`` (from the key type) is the allow-list.
        return self._decode(self._asymmetric_jwt, token, key.key, algorithms)

    def _decode(self, decoder: jwt.PyJWT, token: str, key: Any, algorithms: Sequence[str]) -> dict[str, Any]:
        try:
            return decoder.decode(
                token,
                key,
                algorithms=list(algorithms),
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
            )
        except jwt.PyJWTError as exc:
            logger.debug("JWT rejected: %s", type(exc).__name__)
            raise Unauthorized(_detail_for(exc)) from None
        except Exception as exc:  # a library edge case must still be a 401, not a 500
            logger.warning("JWT verification raised %s", type(exc).__name__)
            raise Unauthorized(INVALID) from None

    def _principal(self, claims: Mapping[str, Any]) -> Principal:
        self._check_times(claims)
        sub = claims.get("sub")
        if not _valid_subject(sub):
            raise Unauthorized("invalid token subject")
        return Principal(user_id=sub, is_admin=_is_admin(claims, self._admin_claim))

    def _check_times(self, claims: Mapping[str, Any]) -> None:
        """Times are NumericDates (RFC 7519): PyJWT also takes ``"exp": "9999999999"``; we do not.

        With ``jwt_max_age_seconds`` set, a token may live at most that long: from its ``iat``, or
        from now when it has none (a token minted to last a year is refused, not trusted a year).
        """
        times = {name: claims[name] for name in TIME_CLAIMS if name in claims}
        if not all(_numeric_date(value) for value in times.values()):
            raise Unauthorized("invalid token times")
        if self._max_age is None:
            return
        start = times.get("iat", time.time())
        if times["exp"] - start > self._max_age + self._leeway:
            raise Unauthorized(f"token lifetime exceeds {self._max_age} seconds")
