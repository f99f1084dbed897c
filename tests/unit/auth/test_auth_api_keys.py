"""Server-issued API keys: format, prefix, hash, and telling them apart from JWTs."""

from __future__ import annotations

import hashlib
import re

import jwt
import pytest

from chatserver.auth import generate_api_key, hash_api_key, looks_like_api_key


def test_a_generated_key_is_cs_followed_by_32_random_bytes_in_url_safe_base64() -> None:
    key, _prefix, _hash = generate_api_key()

    assert re.fullmatch(r"cs_[A-Za-z0-9_-]{43}", key)


def test_the_prefix_is_the_first_ten_characters_of_the_key() -> None:
    key, prefix, _hash = generate_api_key()

    assert prefix == key[:10]
    assert prefix.startswith("cs_")


def test_the_hash_is_the_sha256_hex_of_the_whole_key() -> None:
    key, _prefix, key_hash = generate_api_key()

    assert key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key_hash == hash_api_key(key)
    assert re.fullmatch(r"[0-9a-f]{64}", key_hash)


def test_hashing_is_stable_and_sensitive_to_every_character() -> None:
    key, _prefix, key_hash = generate_api_key()

    assert hash_api_key(key) == hash_api_key(key) == key_hash
    assert hash_api_key(key[:-1] + ("A" if key[-1] != "A" else "B")) != key_hash
    assert hash_api_key("cs_known") == hashlib.sha256(b"cs_known").hexdigest()


def test_two_generated_keys_differ() -> None:
    keys = [generate_api_key() for _ in range(100)]

    assert len({key for key, _, _ in keys}) == 100
    assert len({key_hash for _, _, key_hash in keys}) == 100


def test_a_generated_key_looks_like_an_api_key() -> None:
    key, _prefix, _hash = generate_api_key()

    assert looks_like_api_key(key)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "cs_",
        "cs",
        "CS_abcdef",
        "sk_abcdefghijklmnop",
        " cs_abcdef",
        "cs_abc def",
        "cs_abc.def",
        "cs_abcdef\n",
        "cs_" + "a" * 126,
        "x" * 46,
    ],
)
def test_other_strings_do_not_look_like_api_keys(token: str) -> None:
    assert not looks_like_api_key(token)


def test_a_jwt_does_not_look_like_an_api_key() -> None:
    token = jwt.encode({"sub": "cs_user"}, "a-secret-that-is-long-enough-for-hs256!!", algorithm="HS256")

    assert not looks_like_api_key(token)


def test_the_longest_accepted_key_is_128_characters() -> None:
    assert looks_like_api_key("cs_" + "a" * 125)
    assert not looks_like_api_key("cs_" + "a" * 126)
