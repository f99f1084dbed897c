"""Forged, stale and misdirected credentials over real HTTP: 401 on ``/api`` and ``/v1``; 403 for admin.

The server trusts HS256 tokens signed with its secret and RS256 tokens signed by a key of its JWKS
(served on loopback), with an issuer configured. The verifier's own unit tests go through every
rule; these prove the rules hold at the door, where a request carries the token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.e2e.conftest import DATABASES, live_server
from tests.e2e.harness import JWT_SECRET, LiveServer
from tests.reliability.loopback import json_document

ISSUER = "https://issuer.example.test/"
AUDIENCE = "authenticated"
KID = "signing-key-1"
ADMIN_ROUTES = [
    ("GET", "/api/admin/agents", None),
    ("POST", "/api/admin/agents", {"name": "sneaky", "model": "echo", "system_prompt": ""}),
    ("GET", "/api/admin/agents/assistant", None),
    ("PUT", "/api/admin/agents/assistant", {"name": "assistant", "model": "echo", "system_prompt": "pwned"}),
    ("DELETE", "/api/admin/agents/assistant", None),
    ("GET", "/api/admin/events", None),
    ("GET", "/api/admin/users", None),
    ("GET", "/api/admin/users/mallory", None),
    ("POST", "/api/admin/keys", {"user": "mallory", "admin": True}),
    ("DELETE", "/api/admin/keys/cs_someone", None),
]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: Any) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    values: dict[str, Any] = {"sub": "mallory", "aud": AUDIENCE, "iss": ISSUER, "exp": now + 600, "iat": now}
    values.update(overrides)
    return {key: value for key, value in values.items() if value is not None}


def hs256(payload: dict[str, Any], secret: str | bytes = JWT_SECRET, **header: Any) -> str:
    """HS256 by hand: PyJWT (rightly) refuses to use a PEM public key as an HMAC secret."""
    key = secret.encode() if isinstance(secret, str) else secret
    signing_input = f"{segment({'alg': 'HS256', 'typ': 'JWT', **header})}.{segment(payload)}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def tampered(token: str, **changes: Any) -> str:
    """The same header and signature over a payload with ``changes``."""
    header, payload, signature = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return f"{header}.{segment({**decoded, **changes})}.{signature}"


class Keys:
    def __init__(self) -> None:
        self.signing = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk: dict[str, Any] = RSAAlgorithm.to_jwk(self.signing.public_key(), as_dict=True)
        self.jwks = {"keys": [{**jwk, "kid": KID, "use": "sig", "alg": "RS256"}]}
        self.public_pem = self.signing.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def rs256(self, payload: dict[str, Any], key: rsa.RSAPrivateKey | None = None) -> str:
        return jwt.encode(payload, key or self.signing, algorithm="RS256", headers={"kid": KID})


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


@pytest.fixture(scope="module", params=DATABASES)
def guarded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, keys: Keys
) -> Iterator[LiveServer]:
    with json_document("/.well-known/jwks.json", keys.jwks) as jwks_url:
        directory = tmp_path_factory.mktemp("auth")
        with live_server(request.param, directory, jwks_url=jwks_url, jwt_issuer=ISSUER) as server:
            yield server


def ago(seconds: int) -> int:
    return int(time.time()) - seconds


ATTACKS: dict[str, Callable[[Keys], str]] = {
    "alg none": lambda k: f"{segment({'alg': 'none', 'typ': 'JWT'})}.{segment(claims())}.",
    "alg none, admin": lambda k: f"{segment({'alg': 'none'})}.{segment(claims(role='admin'))}.",
    "HS256 signed with the JWKS public key": lambda k: hs256(claims(), k.public_pem, kid=KID),
    "HS256 with another secret": lambda k: hs256(claims(), "not-the-server-secret-but-just-as-long!"),
    "RS256 signed by a key outside the JWKS": lambda k: k.rs256(claims(), k.stranger),
    "RS256 naming an unknown kid": lambda k: jwt.encode(
        claims(), k.signing, algorithm="RS256", headers={"kid": "other"}
    ),
    "expired": lambda k: hs256(claims(exp=ago(3600))),
    "expired RS256": lambda k: k.rs256(claims(exp=ago(3600))),
    "nbf in the future": lambda k: hs256(claims(nbf=ago(-3600))),
    "no exp": lambda k: hs256(claims(exp=None)),
    "exp as a string": lambda k: hs256(claims(exp=str(ago(-600)))),
    "wrong audience": lambda k: hs256(claims(aud="someone-else")),
    "no audience": lambda k: hs256(claims(aud=None)),
    "wrong issuer": lambda k: k.rs256(claims(iss="https://evil.example.test/")),
    "no issuer": lambda k: hs256(claims(iss=None)),
    "no sub": lambda k: hs256(claims(sub=None)),
    "blank sub": lambda k: hs256(claims(sub="  ")),
    "sub with NUL": lambda k: hs256(claims(sub="mal\u0000lory")),
    "sub with an unpaired surrogate": lambda k: hs256(claims(sub="mal\ud800lory")),
    "tampered HS256 payload": lambda k: tampered(hs256(claims()), sub="victim", role="admin"),
    "tampered RS256 payload": lambda k: tampered(k.rs256(claims()), sub="victim"),
    "signature stripped": lambda k: hs256(claims()).rsplit(".", 1)[0] + ".",
    "not a JWT": lambda k: "definitely-not-a-token",
    "oversized": lambda k: "a" * 20_000,
}
"""Each attack as a token maker, called at test time (some depend on the clock)."""


@pytest.mark.parametrize("attack", list(ATTACKS))
async def test_a_forged_stale_or_misdirected_token_is_refused_with_401(
    guarded: LiveServer, keys: Keys, attack: str
) -> None:
    token = ATTACKS[attack](keys)
    headers = {"Authorization": f"Bearer {token}"}
    async with guarded.raw_client() as client:
        api = await client.get("/api/agents", headers=headers)
        turn = await client.post(
            "/api/chat", headers=headers, json={"agent_name": "assistant", "message": "hi", "session_id": "x"}
        )
        openai = await client.get("/v1/models", headers=headers)
    assert (api.status_code, api.json()["code"]) == (401, "unauthorized")
    assert (turn.status_code, turn.json()["code"]) == (401, "unauthorized")
    assert (openai.status_code, openai.json()["error"]["code"]) == (401, "unauthorized")
    assert token[:40] not in api.text + turn.text + openai.text


async def test_the_same_server_accepts_well_formed_tokens_of_both_kinds(
    guarded: LiveServer, keys: Keys
) -> None:
    """The control: without it every 401 above could come from a server refusing everything."""
    tokens = {"HS256": hs256(claims(sub="hs-user")), "RS256": keys.rs256(claims(sub="rs-user"))}
    async with guarded.raw_client() as client:
        for token in tokens.values():
            response = await client.get("/api/agents", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 200, response.text


async def test_a_revoked_api_key_is_refused_on_every_route(guarded: LiveServer) -> None:
    issued = await guarded.issue_key("key-holder")
    headers = {"Authorization": f"Bearer {issued.key}"}
    async with guarded.raw_client() as client:
        before = await client.get("/api/agents", headers=headers)
        await guarded.revoke_key(issued.prefix)
        after = [
            await client.get("/api/agents", headers=headers),
            await client.get("/api/chats", headers=headers),
            await client.get("/v1/models", headers=headers),
        ]
    assert before.status_code == 200
    assert [response.status_code for response in after] == [401, 401, 401]


@pytest.mark.parametrize(("method", "path", "payload"), ADMIN_ROUTES)
async def test_a_non_admin_gets_403_on_every_admin_route_and_changes_nothing(
    guarded: LiveServer, keys: Keys, method: str, path: str, payload: dict[str, Any] | None
) -> None:
    as_user = {"Authorization": f"Bearer {keys.rs256(claims(sub='plain-user', role='authenticated'))}"}
    async with guarded.raw_client() as client, guarded.client("admin-observer", admin=True) as admin:
        agents_before = (await admin.get("/api/admin/agents")).json()
        refused = await client.request(method, path, headers=as_user, json=payload)
        agents_after = (await admin.get("/api/admin/agents")).json()
    assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
    assert agents_after == agents_before


async def test_an_admin_claim_in_a_forged_token_grants_nothing(guarded: LiveServer) -> None:
    forged = hs256(claims(sub="wannabe", role="admin"), "a-secret-the-attacker-made-up-and-long")
    async with guarded.raw_client() as client:
        response = await client.get("/api/admin/agents", headers={"Authorization": f"Bearer {forged}"})
    assert (response.status_code, response.json()["code"]) == (401, "unauthorized")


async def key_user_id(server: LiveServer, key: str) -> str:
    """The id of an API key's user, as the server shows it (a customization names its owner)."""
    body = {"agent_name": "assistant", "content": {"instructions": ["be brief"]}}
    headers = {"Authorization": f"Bearer {key}"}
    async with server.raw_client() as client:
        await client.post("/api/agent/prompt_customizations/", headers=headers, json=body)
        listed = await client.get("/api/agent/prompt_customizations/assistant", headers=headers)
    assert listed.status_code == 200, listed.text
    return str(listed.json()[0]["user_id"])


@pytest.mark.parametrize("role", [None, "admin"])
async def test_a_jwt_cannot_act_as_a_user_of_api_keys_nor_change_their_admin_flag(
    guarded: LiveServer, role: str | None
) -> None:
    admin_key = await guarded.issue_key("keyed-admin", admin=True)
    plain_key = await guarded.issue_key("keyed")
    for key, admin_status in ((admin_key.key, 200), (plain_key.key, 403)):
        victim = await key_user_id(guarded, key)
        token = hs256(claims(sub=victim, role=role))
        async with guarded.raw_client() as client:
            impostor = await client.get(
                "/api/agent/prompt_customizations/assistant", headers={"Authorization": f"Bearer {token}"}
            )
            keyed = await client.get("/api/admin/agents", headers={"Authorization": f"Bearer {key}"})
        assert (impostor.status_code, impostor.json()["code"]) == (401, "unauthorized")
        assert keyed.status_code == admin_status  # neither demoted nor promoted by the token


async def test_a_jwt_admin_role_lasts_as_long_as_the_token_that_carries_it(guarded: LiveServer) -> None:
    admin = {"Authorization": f"Bearer {hs256(claims(sub='now-and-then', role='admin'))}"}
    plain = {"Authorization": f"Bearer {hs256(claims(sub='now-and-then'))}"}
    async with guarded.raw_client() as client:
        assert (await client.get("/api/admin/agents", headers=admin)).status_code == 200
        assert (await client.get("/api/admin/agents", headers=plain)).status_code == 403
        assert (await client.get("/api/admin/agents", headers=admin)).status_code == 200
        assert (await client.get("/api/chats", headers=plain)).status_code == 200
