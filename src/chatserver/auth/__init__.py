"""Authentication: JWT verification (HS256 secret or JWKS) and server-issued API keys."""

from chatserver.auth.api_keys import generate_api_key, hash_api_key, looks_like_api_key
from chatserver.auth.jwks import HttpJwksSource, JwksSource, JwksUnavailable
from chatserver.auth.jwt import JwtVerifier

__all__ = [
    "HttpJwksSource",
    "JwksSource",
    "JwksUnavailable",
    "JwtVerifier",
    "generate_api_key",
    "hash_api_key",
    "looks_like_api_key",
]
