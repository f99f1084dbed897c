"""API keys issued by the server: ``cs_`` + 32 random bytes (url-safe base64); only a hash is stored.

The hash is a plain SHA-256 on purpose: a key carries 256 bits of randomness, so it cannot be
guessed or brute-forced from its hash, and a slow password hash (bcrypt, argon2) would only add
latency to every request. A fast deterministic hash also lets storage look a key up by its hash
directly, with no per-user scan and no timing-sensitive string comparison in Python.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Final

__all__ = [
    "API_KEY_MAX_LENGTH",
    "API_KEY_PREFIX",
    "API_KEY_PREFIX_LENGTH",
    "generate_api_key",
    "hash_api_key",
    "looks_like_api_key",
]

API_KEY_PREFIX: Final = "cs_"
API_KEY_RANDOM_BYTES: Final = 32
API_KEY_PREFIX_LENGTH: Final = 10
"""Characters of the key shown in listings (``cs_`` + 7): enough to tell keys apart, useless to guess."""
API_KEY_MAX_LENGTH: Final = 128
"""Upper bound accepted by ``looks_like_api_key``; generated keys are 46 characters."""

_API_KEY_SHAPE: Final = re.compile(re.escape(API_KEY_PREFIX) + r"[A-Za-z0-9_-]+")


def generate_api_key() -> tuple[str, str, str]:
    """A new key as ``(plaintext, prefix, sha256_hex)``. Show the plaintext once; store the rest."""
    key = API_KEY_PREFIX + secrets.token_urlsafe(API_KEY_RANDOM_BYTES)
    return key, key[:API_KEY_PREFIX_LENGTH], hash_api_key(key)


def hash_api_key(key: str) -> str:
    """SHA-256 hex digest of the whole key, as stored and looked up."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def looks_like_api_key(token: str) -> bool:
    """True when ``token`` has the shape of a server-issued key, so it is never tried as a JWT.

    Only the shape is checked (``cs_`` then url-safe characters, at most ``API_KEY_MAX_LENGTH`` in
    all); whether the key exists is storage's question. A JWT starts with ``eyJ`` and never matches.
    """
    return len(token) <= API_KEY_MAX_LENGTH and _API_KEY_SHAPE.fullmatch(token) is not None
