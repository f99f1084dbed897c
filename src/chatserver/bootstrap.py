"""First start: migrate, seed the default agent, issue the first admin key on an empty install."""

from __future__ import annotations

from dataclasses import dataclass

from chatserver.config import Settings
from chatserver.container import build_container
from chatserver.storage.sql.migrate import upgrade_to_head

FIRST_ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Prepared:
    seeded_agent: bool
    first_admin_key: str | None


async def prepare(settings: Settings) -> Prepared:
    await upgrade_to_head(settings.database_url)
    container = build_container(settings)
    try:
        seeded = await container.agents.seed_default(settings.default_model)
        key = None
        if not await container.identity.has_users():
            key = (await container.identity.create_key(FIRST_ADMIN, admin=True)).key
        return Prepared(seeded, key)
    finally:
        await container.aclose()
