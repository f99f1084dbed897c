"""Who is calling: bearer tokens (JWT or API key) to a Principal; API key issue and revoke."""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from chatserver.auth.api_keys import generate_api_key, hash_api_key, looks_like_api_key
from chatserver.auth.jwt import JwtVerifier
from chatserver.clock import Clock
from chatserver.domain import ApiKey, NewEvent, Principal, User
from chatserver.errors import Conflict, NotFound, Unauthorized
from chatserver.storage.protocols import UnitOfWork, UnitOfWorkFactory

KNOWN_USERS_MAX = 10_000
SUBJECT_TAKEN = "the token's subject is a user of API keys, not of JWTs"
LAST_ADMIN_KEY = (
    "this is the last active admin API key, and it is yours: revoking it would lock you out. "
    "Issue another admin key first (or revoke it with `chatserver keys revoke`)"
)


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key: str
    key_id: str
    prefix: str
    user: User
    promoted: bool = False
    """The user existed and was not an admin: now they are, with every key of theirs."""


class IdentityService:
    def __init__(self, uow: UnitOfWorkFactory, verifier: JwtVerifier, clock: Clock) -> None:
        self._uow = uow
        self._verifier = verifier
        self._clock = clock
        # JWT users already provisioned by this process, so a JWT request costs no write.
        self._known: OrderedDict[str, None] = OrderedDict()

    async def authenticate(self, token: str) -> Principal:
        if not token:
            raise Unauthorized("missing bearer token")
        if looks_like_api_key(token):
            return await self._authenticate_key(token)
        principal = await self._verifier.verify(token)
        await self._provision(principal)
        return principal

    async def _authenticate_key(self, key: str) -> Principal:
        async with self._uow() as uow:
            found = await uow.api_keys.find_active(hash_api_key(key))
        if found is None:
            raise Unauthorized("invalid API key")
        _key, user = found
        return Principal(user.id, user.is_admin)

    async def _provision(self, principal: Principal) -> None:
        """A JWT's admin role is the token's alone: it is never stored, so it neither outlives the
        token nor reaches a user of API keys, whose id a JWT's ``sub`` may not take."""
        if principal.user_id in self._known:
            self._known.move_to_end(principal.user_id)
            return
        async with self._uow() as uow:
            provisioned = await uow.users.provision_subject(principal.user_id, now=self._clock.now())
            await uow.commit()
        if not provisioned:
            raise Unauthorized(SUBJECT_TAKEN)
        self._known[principal.user_id] = None
        if len(self._known) > KNOWN_USERS_MAX:
            self._known.popitem(last=False)

    def forget(self, user_id: str) -> None:
        """An erased user: their next JWT request must sign them up again."""
        self._known.pop(user_id, None)

    async def create_key(self, user_name: str, *, admin: bool, actor: str | None = None) -> IssuedKey:
        """Issue a key for the user named ``user_name``, creating the user when new.

        ``admin`` for an existing user who is not one promotes the user, so every key of theirs acts
        as admin: ``IssuedKey.promoted`` says so, for the caller to tell. ``actor``: the admin who
        asked (None: the command line), for the audit event.
        """
        now = self._clock.now()
        key, prefix, key_hash = generate_api_key()
        async with self._uow() as uow:
            user = await uow.users.get_by_name(user_name)
            if user is None:
                user = User(str(uuid.uuid4()), user_name, admin, now)
                await uow.users.add(user)
            promoted = admin and not user.is_admin
            if promoted:
                await uow.users.set_admin(user.id, is_admin=True)
                user = User(user.id, user.name, True, user.created_at)
            record = ApiKey(str(uuid.uuid4()), user.id, prefix, now)
            await uow.api_keys.add(record, key_hash=key_hash)
            await _audit(uow, "api_key.created", record, actor, now=now, promoted=promoted)
            await uow.commit()
        return IssuedKey(key, record.id, prefix, user, promoted=promoted)

    async def revoke_key(self, key_id_or_prefix: str, *, actor: str | None = None) -> ApiKey:
        """Revoke an active key. An admin (``actor``) may not revoke their own key when it is the
        last active admin key: nobody could then sign in to the page as an admin."""
        now = self._clock.now()
        async with self._uow() as uow:
            key = await uow.api_keys.get(key_id_or_prefix)
            if key is None or key.revoked_at is not None:
                raise NotFound(f"no active API key '{key_id_or_prefix}'")
            if key.user_id == actor and await uow.api_keys.count_active_of_admins() <= 1:
                raise Conflict(LAST_ADMIN_KEY)
            if not await uow.api_keys.revoke(key.id, now=now):
                raise NotFound(f"no active API key '{key_id_or_prefix}'")
            await _audit(uow, "api_key.revoked", key, actor, now=now)
            await uow.commit()
        return ApiKey(key.id, key.user_id, key.prefix, key.created_at, revoked_at=now)

    async def has_users(self) -> bool:
        async with self._uow() as uow:
            return await uow.users.count() > 0

    async def users(self, *, limit: int = 1000) -> list[tuple[User, list[ApiKey]]]:
        """Every user (oldest first) with their keys: for operators."""
        async with self._uow() as uow:
            found = await uow.users.list(limit=limit)
            keys = await uow.api_keys.list_all(limit=limit * 10)
        return [(user, [k for k in keys if k.user_id == user.id]) for user in found]

    async def user(self, name_or_id: str) -> tuple[User, list[ApiKey]]:
        """A user by name (as given to ``keys create``) or id, with their keys."""
        async with self._uow() as uow:
            user = await uow.users.get_by_name(name_or_id) or await uow.users.get(name_or_id)
            if user is None:
                raise NotFound(f"user '{name_or_id}' not found")
            return user, await uow.api_keys.list_for_user(user.id)

    async def set_admin(self, name_or_id: str, *, is_admin: bool) -> User:
        """A key user's admin flag (a JWT user's admin role comes from each token, not from here)."""
        user, _keys = await self.user(name_or_id)
        async with self._uow() as uow:
            await uow.users.set_admin(user.id, is_admin=is_admin)
            await uow.commit()
        return User(user.id, user.name, is_admin, user.created_at)

    async def user_named(self, name: str) -> User:
        async with self._uow() as uow:
            user = await uow.users.get_by_name(name)
        if user is None:
            raise NotFound(f"user '{name}' not found")
        return user


async def _audit(
    uow: UnitOfWork, type_: str, key: ApiKey, actor: str | None, *, now: datetime, **flags: bool
) -> None:
    """Filed under the key's owner, so erasing them erases it; ``by`` names who acted."""
    body = {"key_id": key.id, "prefix": key.prefix, "by": actor or "cli", **flags}
    await uow.events.add(NewEvent(type_, user_id=key.user_id, data=body), now=now)
