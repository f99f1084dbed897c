"""JwtVerifier: HS256 with a secret, RS*/PS*/ES* from an in-memory JWKS, and the attacks on both."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import RSAAlgorithm

from chatserver.auth import JwksUnavailable, JwtVerifier
from chatserver.auth.jwks import find_key
from chatserver.config import Settings
from chatserver.domain.models import Principal
from chatserver.errors import Unauthorized

Claims = dict[str, Any]
Reject = Callable[..., Awaitable[Unauthorized]]


class FakeJwks:
    """An in-memory JwksSource."""

    def __init__(self, *jwks: dict[str, Any]) -> None:
        self.key_set = jwt.PyJWKSet(list(jwks))
        self.lookups: list[str | None] = []

    async def get_key(self, kid: str | None) -> jwt.PyJWK | None:
        self.lookups.append(kid)
        return find_key(self.key_set, kid)


class UnavailableJwks:
    async def get_key(self, kid: str | None) -> jwt.PyJWK | None:
        raise JwksUnavailable("down")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(obj: Any) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def hs256_by_hand(header: dict[str, Any], payload: Claims, secret: bytes) -> str:
    """HS256 signing without PyJWT, which (rightly) refuses a PEM public key as an HMAC secret."""
    signing_input = f"{segment(header)}.{segment(payload)}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


@pytest.fixture
def hs_verifier(settings_factory: Callable[..., Settings], secret: str) -> JwtVerifier:
    return JwtVerifier(settings_factory(jwt_secret=secret))


@pytest.fixture
def jwks(rsa_jwk: dict[str, Any], ec_jwk: dict[str, Any]) -> FakeJwks:
    return FakeJwks(rsa_jwk, ec_jwk)


@pytest.fixture
def jwks_verifier(settings_factory: Callable[..., Settings], jwks: FakeJwks) -> JwtVerifier:
    return JwtVerifier(settings_factory(), jwks=jwks)


@pytest.fixture
def reject(caplog: pytest.LogCaptureFixture, secret: str) -> Reject:
    """Verify, expect Unauthorized, and check that neither the token nor the secret leaked."""

    async def run(verifier: JwtVerifier, token: str, detail: str | None = None) -> Unauthorized:
        caplog.set_level(logging.DEBUG, logger="chatserver")
        with pytest.raises(Unauthorized) as caught:
            await verifier.verify(token)
        error = caught.value
        if detail is not None:
            assert error.detail == detail
        shown = f"{error.detail} {error!s} {error!r} {caplog.text}"
        assert secret not in shown
        if len(token) > 8:
            assert token not in shown
            for part in token.split("."):
                if len(part) > 8:
                    assert part not in shown
        assert error.__cause__ is None
        return error

    return run


# --- HS256 ---------------------------------------------------------------------------------------


async def test_a_valid_hs256_token_yields_the_principal_of_its_subject(
    hs_verifier: JwtVerifier, claims: Callable[..., Claims], secret: str
) -> None:
    token = jwt.encode(claims(sub="alice"), secret, algorithm="HS256")

    assert await hs_verifier.verify(token) == Principal(user_id="alice", is_admin=False)


@pytest.mark.parametrize(
    ("role", "is_admin"),
    [
        ("admin", True),
        ("authenticated", False),
        (None, False),
        (["user", "admin"], True),
        (["user"], False),
        ("Admin", False),
        (True, False),
        ({"admin": True}, False),
    ],
)
async def test_the_admin_claim_makes_an_admin_only_when_it_is_admin_or_a_list_containing_admin(
    hs_verifier: JwtVerifier, claims: Callable[..., Claims], secret: str, role: Any, is_admin: bool
) -> None:
    token = jwt.encode(claims(role=role), secret, algorithm="HS256")

    assert (await hs_verifier.verify(token)).is_admin is is_admin


async def test_the_admin_claim_name_comes_from_the_settings(
    settings_factory: Callable[..., Settings], claims: Callable[..., Claims], secret: str
) -> None:
    verifier = JwtVerifier(settings_factory(jwt_secret=secret, admin_claim="app_role"))

    admin = jwt.encode(claims(app_role="admin", role="user"), secret, algorithm="HS256")
    not_admin = jwt.encode(claims(role="admin"), secret, algorithm="HS256")

    assert (await verifier.verify(admin)).is_admin is True
    assert (await verifier.verify(not_admin)).is_admin is False


async def test_a_token_signed_with_another_secret_is_rejected(
    hs_verifier: JwtVerifier, claims: Callable[..., Claims], reject: Reject
) -> None:
    token = jwt.encode(claims(), "another-secret-that-is-also-32-bytes-long", algorithm="HS256")

    await reject(hs_verifier, token, "invalid token")


async def test_a_tampered_payload_fails_the_signature_check(
    hs_verifier: JwtVerifier, claims: Callable[..., Claims], secret: str, reject: Reject
) -> None:
    header, _payload, signature = jwt.encode(claims(sub="alice"), secret, algorithm="HS256").split(".")
    forged = f"{header}.{segment(claims(sub='alice', role='admin'))}.{signature}"

    await reject(hs_verifier, forged, "invalid token")


async def test_a_tampered_rs256_payload_fails_the_signature_check(
    jwks_verifier: JwtVerifier, claims: Callable[..., Claims], rsa_key: rsa.RSAPrivateKey, reject: Reject
) -> None:
    token = jwt.encode(claims(sub="alice"), rsa_key, algorithm="RS256", headers={"kid": "rsa-1"})
    header, _payload, signature = token.split(".")

    await reject(jwks_verifier, f"{header}.{segment(claims(sub='mallory'))}.{signature}", "invalid token")


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
@pytest.mark.parametrize("signature", ["", "AAAA"])
async def test_an_unsigned_alg_none_token_is_rejected(
    hs_verifier: JwtVerifier,
    jwks_verifier: JwtVerifier,
    claims: Callable[..., Claims],
    reject: Reject,
    alg: str,
    signature: str,
) -> None:
    token = f"{segment({'alg': alg, 'typ': 'JWT'})}.{segment(claims(role='admin'))}.{signature}"

    await reject(hs_verifier, token, "invalid token")
    await reject(jwks_verifier, token, "invalid token")


async def test_hs384_and_hs512_are_not_accepted_even_with_the_right_secret(
    hs_verifier: JwtVerifier, claims: Callable[..., Claims], secret: str, reject: Reject
) -> None:
    for alg in ("HS384", "HS512"):
        await reject(hs_verifier, jwt.encode(claims(), secret, algorithm=alg), "invalid token")


# --- time claims -----------------------------------------------------------------------------------


async def test_a_token_expired_beyond_the_leeway_is_rejected(
    hs_verifier: JwtVerifier, claims: Callable[..., Claims], secret: str, reject: Reject
) -> None:
    now = int(time.time())
    token = jwt.encode(claims(iat=now - 600, exp=now - 60), secret, algorithm="HS256")

    await reject(hs_verifier, token, "token expired")


async def test_a_token_expired_within_the_leeway_is_still_accepted(
    hs_verifier: JwtVerifier, claims: Callable[..., Claims], secret: str
) -> None:
    now = int(time.time())
    token = jwt.encode(claims(iat=now - 600, exp=now - 3), secret, algorithm="HS256")

    assert (await hs_verifier.verify(token)).user_id == "user-1"


async def test_a_token_not_valid_before_a_future_time_is_rejected(
    hs_verifier: JwtVerifier, claims: Callable[..., Claims], secret: str, reject: Reject
) -> None:
    token = jwt.encode(claims(nbf=int(time.time()) + 60), secret, algorithm="HS256")

    await reject(hs_verifier, token, "token not yet valid")


async def test_a_not_before_time_within_the_leeway_is_accepted(
    hs_verifier: JwtVerifier, claims: Callable[..., Claims], secret: str
) -> None:
    token = jwt.encode(claims(nbf=int(time.time()) + 3), secret, algorithm="HS256")

    assert (await hs_verifier.verify(token)).user_id == "user-1"


async def test_a_token_without_exp_is_rejected(
    hs_verifier: JwtVerifier, claims: Callable[..., Claims], secret: str, reject: Reject
) -> None:
    token = jwt.encode(claims(exp=None), secret, algorithm="HS256")

    await reject(hs_verifier, token, "token has no expiry")


async def test_a_non_numeric_exp_is_rejected(
    hs_verifier: JwtVerifier, claims: Callable[..., Claims], secret: str, reject: Reject
) -> None:
    token = jwt.encode(claims(exp="tomorrow"), secret, algorithm="HS256")

    await reject(hs_verifier, token, "invalid token")


# --- audience, issuer, subject -----------------------------------------------------------------------


async def test_a_wrong_audience_is_rejected(
    hs_verifier: JwtVerifier, claims: Callable[..., Claims], secret: str, reject: Reject
) -> None:
    token = jwt.encode(claims(aud="someone-else"), secret, algorithm="HS256")

    await reject(hs_verifier, token, "invalid token audience")


async def test_a_missing_audience_is_rejected(
    hs_verifier: JwtVerifier, claims: Callable[..., Claims], secret: str, reject: Reject
) -> None:
    token = jwt.encode(claims(aud=None), secret, algorithm="HS256")

    await reject(hs_verifier, token, "invalid token audience")


async def test_an_audience_list_containing_the_configured_audience_is_accepted(
    hs_verifier: JwtVerifier, claims: Callable[..., Claims], secret: str
) -> None:
    token = jwt.encode(claims(aud=["other", "authenticated"]), secret, algorithm="HS256")

    assert (await hs_verifier.verify(token)).user_id == "user-1"


async def test_a_wrong_or_missing_issuer_is_rejected_when_an_issuer_is_configured(
    settings_factory: Callable[..., Settings], claims: Callable[..., Claims], secret: str, reject: Reject
) -> None:
    issuer = "https://idp.example.com/auth/v1"
    verifier = JwtVerifier(settings_factory(jwt_secret=secret, jwt_issuer=issuer))

    good = jwt.encode(claims(iss=issuer), secret, algorithm="HS256")
    assert (await verifier.verify(good)).user_id == "user-1"
    wrong = jwt.encode(claims(iss="https://evil.example.com"), secret, algorithm="HS256")
    await reject(verifier, wrong, "invalid token issuer")
    await reject(verifier, jwt.encode(claims(), secret, algorithm="HS256"), "invalid token issuer")


async def test_any_issuer_is_accepted_when_none_is_configured(
    hs_verifier: JwtVerifier, claims: Callable[..., Claims], secret: str
) -> None:
    token = jwt.encode(claims(iss="https://whoever.example.com"), secret, algorithm="HS256")

    assert (await hs_verifier.verify(token)).user_id == "user-1"


@pytest.mark.parametrize(
    ("sub", "detail"),
    [
        (None, "invalid token subject"),
        ("", "invalid token subject"),
        ("   ", "invalid token subject"),
        ("x" * 256, "invalid token subject"),
        (42, "invalid token"),
        (["alice"], "invalid token"),
    ],
)
async def test_a_missing_blank_overlong_or_non_string_subject_is_rejected(
    hs_verifier: JwtVerifier,
    claims: Callable[..., Claims],
    secret: str,
    reject: Reject,
    sub: Any,
    detail: str,
) -> None:
    token = jwt.encode(claims(sub=sub), secret, algorithm="HS256")

    await reject(hs_verifier, token, detail)


async def test_a_subject_of_255_characters_is_accepted(
    hs_verifier: JwtVerifier, claims: Callable[..., Claims], secret: str
) -> None:
    token = jwt.encode(claims(sub="x" * 255), secret, algorithm="HS256")

    assert (await hs_verifier.verify(token)).user_id == "x" * 255


# --- malformed input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        "",
        "eyJhbGciOiJIUzI1NiJ9..",
        f"{segment({'alg': ['HS256']})}.{segment({})}.",
        f"{segment({'typ': 'JWT'})}.{segment({'sub': 'a'})}.",
        f"{segment({'alg': 'HS256', 'kid': 7})}.{segment({'sub': 'a'})}.",
        f"{segment({'alg': 'HS256', 'crit': ['exp']})}.{segment({'sub': 'a'})}.",
        "x" * 20_000,
    ],
)
async def test_garbage_is_rejected_as_an_invalid_token(
    hs_verifier: JwtVerifier, jwks_verifier: JwtVerifier, reject: Reject, token: str
) -> None:
    await reject(hs_verifier, token, "invalid token")
    await reject(jwks_verifier, token, "invalid token")


NOT_A_TOKEN = "the token is not a valid API key (they start with 'cs_') or JWT"


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "a.b.c",
        "...",
        "eyJhbGciOiJIUzI1NiJ9",
        "!!!!.????.####",
        f"{b64url(b'not json')}.{b64url(b'{}')}.",
        f"{b64url(b'[1,2]')}.{b64url(b'{}')}.",
        "cs_notakeyatall",
        "sk_mistyped_key_without_the_cs_prefix",
    ],
)
async def test_a_token_shaped_like_no_jwt_is_called_neither_an_api_key_nor_a_jwt(
    hs_verifier: JwtVerifier,
    jwks_verifier: JwtVerifier,
    settings_factory: Callable[..., Settings],
    reject: Reject,
    token: str,
) -> None:
    unconfigured = JwtVerifier(settings_factory(jwt_secret=None))

    for verifier in (hs_verifier, jwks_verifier, unconfigured):
        await reject(verifier, token, NOT_A_TOKEN)


async def test_an_hs256_token_whose_payload_is_not_an_object_is_rejected(
    hs_verifier: JwtVerifier, secret: str, reject: Reject
) -> None:
    token = hs256_by_hand({"alg": "HS256", "typ": "JWT"}, ["sub"], secret.encode())  # type: ignore[arg-type]

    await reject(hs_verifier, token, "invalid token")


# --- configuration -----------------------------------------------------------------------------------


@pytest.mark.parametrize("blank", [None, "", "   "])
async def test_without_any_jwt_configuration_every_token_is_rejected(
    settings_factory: Callable[..., Settings],
    claims: Callable[..., Claims],
    reject: Reject,
    blank: str | None,
) -> None:
    verifier = JwtVerifier(settings_factory(jwt_secret=blank))
    token = jwt.encode(claims(), "some-secret-some-issuer-may-be-using-32b", algorithm="HS256")

    await reject(verifier, token, "JWT authentication is not configured")


def test_a_jwks_url_without_a_jwks_source_is_a_configuration_error(
    settings_factory: Callable[..., Settings],
) -> None:
    with pytest.raises(ValueError, match="JwksSource"):
        JwtVerifier(settings_factory(jwks_url="https://idp.example.com/.well-known/jwks.json"))


async def test_an_rs256_token_is_rejected_when_only_a_secret_is_configured(
    hs_verifier: JwtVerifier, claims: Callable[..., Claims], rsa_key: rsa.RSAPrivateKey, reject: Reject
) -> None:
    token = jwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": "rsa-1"})

    await reject(hs_verifier, token, "invalid token")


# --- JWKS (in-memory source) -------------------------------------------------------------------------


async def test_a_valid_rs256_token_is_verified_with_the_key_named_by_its_kid(
    jwks_verifier: JwtVerifier, jwks: FakeJwks, claims: Callable[..., Claims], rsa_key: rsa.RSAPrivateKey
) -> None:
    token = jwt.encode(claims(sub="bob", role="admin"), rsa_key, algorithm="RS256", headers={"kid": "rsa-1"})

    assert await jwks_verifier.verify(token) == Principal(user_id="bob", is_admin=True)
    assert jwks.lookups == ["rsa-1"]


async def test_a_valid_es256_token_is_verified_with_the_key_named_by_its_kid(
    jwks_verifier: JwtVerifier, claims: Callable[..., Claims], ec_key: ec.EllipticCurvePrivateKey
) -> None:
    token = jwt.encode(claims(sub="carol"), ec_key, algorithm="ES256", headers={"kid": "ec-1"})

    assert await jwks_verifier.verify(token) == Principal(user_id="carol", is_admin=False)


@pytest.mark.parametrize("alg", ["RS384", "RS512", "PS256", "PS512"])
async def test_an_rsa_key_also_verifies_the_other_rsa_algorithms(
    jwks_verifier: JwtVerifier, claims: Callable[..., Claims], rsa_key: rsa.RSAPrivateKey, alg: str
) -> None:
    token = jwt.encode(claims(), rsa_key, algorithm=alg, headers={"kid": "rsa-1"})

    assert (await jwks_verifier.verify(token)).user_id == "user-1"


async def test_an_es384_token_is_verified_with_a_p384_key(
    settings_factory: Callable[..., Settings], claims: Callable[..., Claims], jwk_of: Any
) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    verifier = JwtVerifier(settings_factory(), jwks=FakeJwks(jwk_of(key, "p384")))
    token = jwt.encode(claims(), key, algorithm="ES384", headers={"kid": "p384"})

    assert (await verifier.verify(token)).user_id == "user-1"


async def test_an_unknown_kid_is_rejected(
    jwks_verifier: JwtVerifier,
    claims: Callable[..., Claims],
    other_rsa_key: rsa.RSAPrivateKey,
    reject: Reject,
) -> None:
    token = jwt.encode(claims(), other_rsa_key, algorithm="RS256", headers={"kid": "nobody-knows"})

    await reject(jwks_verifier, token, "unknown signing key")


async def test_a_token_signed_by_another_key_under_a_known_kid_is_rejected(
    jwks_verifier: JwtVerifier,
    claims: Callable[..., Claims],
    other_rsa_key: rsa.RSAPrivateKey,
    reject: Reject,
) -> None:
    token = jwt.encode(claims(), other_rsa_key, algorithm="RS256", headers={"kid": "rsa-1"})

    await reject(jwks_verifier, token, "invalid token")


async def test_a_token_without_kid_uses_the_only_key_of_a_one_key_set_and_no_key_of_a_larger_one(
    settings_factory: Callable[..., Settings],
    jwks_verifier: JwtVerifier,
    claims: Callable[..., Claims],
    rsa_key: rsa.RSAPrivateKey,
    rsa_jwk: dict[str, Any],
    reject: Reject,
) -> None:
    token = jwt.encode(claims(), rsa_key, algorithm="RS256")
    single = JwtVerifier(settings_factory(), jwks=FakeJwks(rsa_jwk))

    assert (await single.verify(token)).user_id == "user-1"
    await reject(jwks_verifier, token, "unknown signing key")


async def test_an_algorithm_that_does_not_fit_the_key_type_is_rejected(
    jwks_verifier: JwtVerifier,
    claims: Callable[..., Claims],
    rsa_key: rsa.RSAPrivateKey,
    ec_key: ec.EllipticCurvePrivateKey,
    reject: Reject,
) -> None:
    # An RSA signature presented under the EC key's kid, and an ES256 one under the RSA key's kid.
    await reject(
        jwks_verifier,
        jwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": "ec-1"}),
        "invalid token",
    )
    await reject(
        jwks_verifier,
        jwt.encode(claims(), ec_key, algorithm="ES256", headers={"kid": "rsa-1"}),
        "invalid token",
    )


async def test_an_es256_token_is_rejected_for_a_p384_key(
    settings_factory: Callable[..., Settings], claims: Callable[..., Claims], jwk_of: Any, reject: Reject
) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    verifier = JwtVerifier(settings_factory(), jwks=FakeJwks(jwk_of(key, "p384")))
    es384 = jwt.encode(claims(), key, algorithm="ES384", headers={"kid": "p384"})
    _header, payload, signature = es384.split(".")
    token = f"{segment({'alg': 'ES256', 'kid': 'p384', 'typ': 'JWT'})}.{payload}.{signature}"

    await reject(verifier, token, "invalid token")


async def test_algorithm_confusion_with_the_rsa_public_key_as_hmac_secret_is_rejected(
    settings_factory: Callable[..., Settings],
    jwks: FakeJwks,
    claims: Callable[..., Claims],
    rsa_key: rsa.RSAPrivateKey,
    secret: str,
    reject: Reject,
) -> None:
    public = rsa_key.public_key()
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    jwk_json = RSAAlgorithm.to_jwk(public).encode()
    jwks_only = JwtVerifier(settings_factory(), jwks=jwks)
    jwks_and_secret = JwtVerifier(settings_factory(jwt_secret=secret), jwks=jwks)

    for material in (pem, pem.strip(), jwk_json):
        forged = hs256_by_hand({"alg": "HS256", "kid": "rsa-1", "typ": "JWT"}, claims(role="admin"), material)
        await reject(jwks_only, forged, "invalid token")
        await reject(jwks_and_secret, forged, "invalid token")
    assert jwks.lookups == [], "an HMAC token must never reach the JWKS"


async def test_hs256_is_accepted_beside_a_jwks_only_with_the_configured_secret(
    settings_factory: Callable[..., Settings],
    jwks: FakeJwks,
    claims: Callable[..., Claims],
    rsa_key: rsa.RSAPrivateKey,
    secret: str,
) -> None:
    verifier = JwtVerifier(settings_factory(jwt_secret=secret), jwks=jwks)

    hs = jwt.encode(claims(sub="hs-user"), secret, algorithm="HS256", headers={"kid": "rsa-1"})
    rs = jwt.encode(claims(sub="rs-user"), rsa_key, algorithm="RS256", headers={"kid": "rsa-1"})

    assert (await verifier.verify(hs)).user_id == "hs-user"
    assert (await verifier.verify(rs)).user_id == "rs-user"
    assert jwks.lookups == ["rsa-1"]


async def test_a_symmetric_key_published_in_the_jwks_is_never_used(
    settings_factory: Callable[..., Settings], claims: Callable[..., Claims], reject: Reject
) -> None:
    shared = b"a-symmetric-key-in-a-public-jwks-32b"
    oct_jwk = {"kty": "oct", "kid": "oct-1", "k": b64url(shared)}
    verifier = JwtVerifier(settings_factory(), jwks=FakeJwks(oct_jwk))

    await reject(
        verifier, jwt.encode(claims(), shared, algorithm="HS256", headers={"kid": "oct-1"}), "invalid token"
    )


async def test_private_and_encryption_keys_in_the_jwks_are_not_used_for_verification(
    settings_factory: Callable[..., Settings],
    claims: Callable[..., Claims],
    rsa_key: rsa.RSAPrivateKey,
    rsa_jwk: dict[str, Any],
    reject: Reject,
) -> None:
    private_jwk = {**RSAAlgorithm.to_jwk(rsa_key, as_dict=True), "kid": "private"}
    enc_jwk = {**rsa_jwk, "kid": "enc", "use": "enc"}
    verifier = JwtVerifier(settings_factory(), jwks=FakeJwks(private_jwk, enc_jwk))

    for kid in ("private", "enc"):
        token = jwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": kid})
        await reject(verifier, token, "invalid token")


@pytest.mark.filterwarnings("ignore::jwt.InsecureKeyLengthWarning")  # minting with the weak key warns
async def test_an_rsa_key_shorter_than_2048_bits_is_refused(
    settings_factory: Callable[..., Settings],
    claims: Callable[..., Claims],
    jwk_of: Any,
    reject: Reject,
    caplog: pytest.LogCaptureFixture,
) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    verifier = JwtVerifier(settings_factory(), jwks=FakeJwks(jwk_of(weak, "weak")))

    await reject(
        verifier, jwt.encode(claims(), weak, algorithm="RS256", headers={"kid": "weak"}), "invalid token"
    )
    assert "InvalidKeyError" in caplog.text


async def test_an_unreachable_jwks_is_an_unauthorized_error(
    settings_factory: Callable[..., Settings],
    claims: Callable[..., Claims],
    rsa_key: rsa.RSAPrivateKey,
    reject: Reject,
) -> None:
    verifier = JwtVerifier(settings_factory(), jwks=UnavailableJwks())
    token = jwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": "rsa-1"})

    await reject(verifier, token, "signing keys unavailable")


async def test_time_and_audience_rules_apply_to_jwks_tokens_too(
    jwks_verifier: JwtVerifier,
    claims: Callable[..., Claims],
    ec_key: ec.EllipticCurvePrivateKey,
    reject: Reject,
) -> None:
    now = int(time.time())

    def es256(**overrides: Any) -> str:
        return jwt.encode(claims(**overrides), ec_key, algorithm="ES256", headers={"kid": "ec-1"})

    await reject(jwks_verifier, es256(iat=now - 600, exp=now - 60), "token expired")
    await reject(jwks_verifier, es256(nbf=now + 60), "token not yet valid")
    await reject(jwks_verifier, es256(aud="other"), "invalid token audience")
    await reject(jwks_verifier, es256(exp=None), "token has no expiry")
    await reject(jwks_verifier, es256(sub=None), "invalid token subject")
