"""Bodies of the admin routes for users and their API keys."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from chatserver.api.schemas import Strict
from chatserver.api.text import StoredText
from chatserver.domain import ApiKey, User
from chatserver.services.identity import IssuedKey


class UserOut(BaseModel):
    id: str
    name: str | None = Field(description="API-key users have one (as given to keys create); JWT users none")
    is_admin: bool = Field(description="Stored flag; a JWT user's admin role comes from each token")
    created_at: datetime
    active_keys: int

    @classmethod
    def of(cls, user: User, keys: list[ApiKey]) -> UserOut:
        active = sum(1 for key in keys if key.revoked_at is None)
        return cls(
            id=user.id, name=user.name, is_admin=user.is_admin, created_at=user.created_at, active_keys=active
        )


class KeyOut(BaseModel):
    id: str
    prefix: str = Field(description="The key's first characters: what a person can recognise it by")
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, key: ApiKey) -> KeyOut:
        return cls(id=key.id, prefix=key.prefix, created_at=key.created_at, revoked_at=key.revoked_at)


class UserDetailOut(UserOut):
    keys: list[KeyOut]

    @classmethod
    def with_keys(cls, user: User, keys: list[ApiKey]) -> UserDetailOut:
        return cls(**UserOut.of(user, keys).model_dump(), keys=[KeyOut.of(key) for key in keys])


class KeyIn(Strict):
    user: StoredText = Field(min_length=1, max_length=255, description="User name; created when new")
    admin: bool = Field(False, strict=True, description="Give the user admin rights (every key of theirs)")


class IssuedKeyOut(BaseModel):
    key: str = Field(description="The key itself: shown this once, never stored")
    id: str
    prefix: str
    user: UserOut
    promoted: bool = Field(description="The user existed and was not an admin: now every key of theirs is")

    @classmethod
    def of(cls, issued: IssuedKey, keys: list[ApiKey]) -> IssuedKeyOut:
        return cls(
            key=issued.key,
            id=issued.key_id,
            prefix=issued.prefix,
            user=UserOut.of(issued.user, keys),
            promoted=issued.promoted,
        )
