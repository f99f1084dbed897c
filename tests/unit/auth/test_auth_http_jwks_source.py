"""HttpJwksSource over httpx.MockTransport: caching, refetch throttling, coalescing, failures."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from chatserver.auth import HttpJwksSource, JwksUnavailable, JwtVerifier
from chatserver.config import Settings
from chatserver.domain.models import Principal
from chatserver.errors import Unauthorized

JWKS_URL = "https://idp.example.com/.well-known/jwks.json"
Claims = dict[str, Any]


class FakeIdp:
    """Serves a JWKS document; counts requests; can fail, serve junk, or hold requests until released."""

    def __init__(self, *jwks: dict[str, Any]) -> None:
        self.keys = list(jwks)
        self.requests = 0
        self.status = 200
        self.body: bytes | None = None
        self.gate: asyncio.Event | None = None

    async def handler(self, request: httpx.Request) -> httpx.Response:
        assert str(request.url) == JWKS_URL
        self.requests += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.body is not None:
            return httpx.Response(self.status, content=self.body)
        return httpx.Response(self.status, json={"keys": self.keys})


@pytest.fixture
def idp(rsa_jwk: dict[str, Any], ec_jwk: dict[str, Any]) -> FakeIdp:
    return FakeIdp(rsa_jwk, ec_jwk)


@pytest.fixture
async def http(idp: FakeIdp) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(idp.handler)) as client:
        yield client


@pytest.fixture
def source(http: httpx.AsyncClient, clock: Any) -> HttpJwksSource:
    return HttpJwksSource(JWKS_URL, http, clock)


@pytest.fixture
def verifier(settings_factory: Callable[..., Settings], source: HttpJwksSource) -> JwtVerifier:
    return JwtVerifier(settings_factory(jwks_url=JWKS_URL), jwks=source)


async def test_rs256_and_es256_tokens_verify_against_keys_fetched_over_http(
    verifier: JwtVerifier,
    idp: FakeIdp,
    claims: Callable[..., Claims],
    rsa_key: rsa.RSAPrivateKey,
    ec_key: ec.EllipticCurvePrivateKey,
) -> None:
    rs = jwt.encode(claims(sub="rs", role="admin"), rsa_key, algorithm="RS256", headers={"kid": "rsa-1"})
    es = jwt.encode(claims(sub="es"), ec_key, algorithm="ES256", headers={"kid": "ec-1"})

    assert await verifier.verify(rs) == Principal(user_id="rs", is_admin=True)
    assert await verifier.verify(es) == Principal(user_id="es", is_admin=False)
    assert idp.requests == 1


async def test_keys_are_cached_until_cache_seconds_pass(
    source: HttpJwksSource, idp: FakeIdp, clock: Any
) -> None:
    assert await source.get_key("rsa-1") is not None
    clock.advance(299)
    assert await source.get_key("rsa-1") is not None
    assert idp.requests == 1

    clock.advance(2)
    assert await source.get_key("rsa-1") is not None
    assert idp.requests == 2


async def test_a_flood_of_unknown_kids_causes_at_most_one_refetch_per_window(
    source: HttpJwksSource, idp: FakeIdp, clock: Any
) -> None:
    await source.get_key("rsa-1")
    clock.advance(31)

    for i in range(200):
        assert await source.get_key(f"bogus-{i}") is None
        clock.advance(0.1)  # 20 seconds in all: still inside one 30-second window
    assert idp.requests == 2

    clock.advance(11)
    assert await source.get_key("bogus-again") is None
    assert idp.requests == 3


async def test_an_unknown_kid_right_after_a_fetch_does_not_refetch(
    source: HttpJwksSource, idp: FakeIdp
) -> None:
    assert await source.get_key("rsa-1") is not None
    assert await source.get_key("bogus") is None
    assert idp.requests == 1


async def test_a_flood_of_unknown_kid_tokens_through_the_verifier_is_throttled_too(
    verifier: JwtVerifier, idp: FakeIdp, claims: Callable[..., Claims], rsa_key: rsa.RSAPrivateKey
) -> None:
    for i in range(50):
        token = jwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": f"bogus-{i}"})
        with pytest.raises(Unauthorized) as caught:
            await verifier.verify(token)
        assert caught.value.detail == "unknown signing key"
    assert idp.requests == 1


async def test_a_rotated_key_is_found_by_refetching_on_its_unknown_kid(
    verifier: JwtVerifier,
    idp: FakeIdp,
    clock: Any,
    claims: Callable[..., Claims],
    other_rsa_key: rsa.RSAPrivateKey,
    jwk_of: Any,
) -> None:
    token = jwt.encode(claims(sub="rotated"), other_rsa_key, algorithm="RS256", headers={"kid": "rsa-2"})
    with pytest.raises(Unauthorized):
        await verifier.verify(token)

    idp.keys.append(jwk_of(other_rsa_key, "rsa-2"))
    clock.advance(31)

    assert (await verifier.verify(token)).user_id == "rotated"
    assert idp.requests == 2


async def test_concurrent_cold_fetches_share_one_request(source: HttpJwksSource, idp: FakeIdp) -> None:
    idp.gate = asyncio.Event()
    lookups = [asyncio.create_task(source.get_key(kid)) for kid in ["rsa-1", "ec-1", "bogus"] * 10]
    await asyncio.sleep(0.01)
    assert idp.requests == 1

    idp.gate.set()
    found = await asyncio.gather(*lookups)

    assert [key is not None for key in found] == [True, True, False] * 10
    assert idp.requests == 1


async def test_a_cancelled_caller_does_not_cancel_the_shared_fetch(
    source: HttpJwksSource, idp: FakeIdp
) -> None:
    idp.gate = asyncio.Event()
    first = asyncio.create_task(source.get_key("rsa-1"))
    second = asyncio.create_task(source.get_key("rsa-1"))
    await asyncio.sleep(0.01)

    first.cancel()
    idp.gate.set()

    assert await second is not None
    assert first.cancelled()
    assert idp.requests == 1


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, None),
        (404, None),
        (302, None),
        (200, b"<html>not json</html>"),
        (200, b"[]"),
        (200, b'{"keys": []}'),
        (200, b'{"keys": [{"kty": "nope"}]}'),
    ],
)
async def test_no_usable_keys_on_the_first_fetch_means_unavailable(
    source: HttpJwksSource,
    verifier: JwtVerifier,
    idp: FakeIdp,
    status: int,
    body: bytes | None,
    claims: Callable[..., Claims],
    rsa_key: rsa.RSAPrivateKey,
    caplog: pytest.LogCaptureFixture,
) -> None:
    idp.status, idp.body = status, body

    with pytest.raises(JwksUnavailable):
        await source.get_key("rsa-1")
    token = jwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": "rsa-1"})
    with pytest.raises(Unauthorized) as caught:
        await verifier.verify(token)
    assert caught.value.detail == "signing keys unavailable"
    assert "JWKS fetch failed" in caplog.text


async def test_a_failed_fetch_is_not_retried_within_the_window(
    source: HttpJwksSource, idp: FakeIdp, clock: Any
) -> None:
    idp.status = 503
    for _ in range(20):
        with pytest.raises(JwksUnavailable):
            await source.get_key("rsa-1")
    assert idp.requests == 1

    idp.status = 200
    clock.advance(30)
    assert await source.get_key("rsa-1") is not None
    assert idp.requests == 2


async def test_stale_keys_are_served_while_the_idp_is_down(
    source: HttpJwksSource, idp: FakeIdp, clock: Any
) -> None:
    assert await source.get_key("rsa-1") is not None

    idp.status = 500
    clock.advance(301)
    assert await source.get_key("rsa-1") is not None
    assert await source.get_key("rsa-1") is not None
    assert idp.requests == 2

    idp.status = 200
    clock.advance(31)
    assert await source.get_key("rsa-1") is not None
    assert idp.requests == 3


async def test_a_network_error_is_a_failed_fetch(clock: Any, caplog: pytest.LogCaptureFixture) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as client:
        source = HttpJwksSource(JWKS_URL, client, clock)
        with caplog.at_level(logging.WARNING), pytest.raises(JwksUnavailable):
            await source.get_key("rsa-1")
    assert "ConnectError" in caplog.text


async def test_the_jwks_document_may_carry_keys_pyjwt_cannot_use(
    source: HttpJwksSource, idp: FakeIdp
) -> None:
    idp.body = json.dumps({"keys": [{"kty": "nope", "kid": "x"}, "junk", *idp.keys]}).encode()

    assert await source.get_key("rsa-1") is not None
    assert await source.get_key("x") is None
