"""PromptCustomizationService: each user's own instructions for each agent.

Every change invalidates the caller's cached agent for that agent name, so the very next turn is
built with the new prompt; other users' cached agents are untouched.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from chatserver.clock import Clock
from chatserver.domain import NewEvent, PromptCustomization
from chatserver.errors import InvalidInput, NotFound
from chatserver.services.agent_loader import AgentLoader
from chatserver.storage.protocols import UnitOfWork, UnitOfWorkFactory

CUSTOMIZATION_TYPE = re.compile(r"^[a-z0-9_]{1,64}$")
MAX_CONTENT_BYTES = 16 * 1024
PRIORITY_RANGE = (-1000, 1000)
INSTRUCTION_SET = "instruction_set"


@dataclass(frozen=True, slots=True)
class CustomizationInput:
    agent_name: str
    customization_type: str
    content: dict[str, Any]
    is_active: bool = True
    priority: int = 0


def validate_customization(data: CustomizationInput) -> None:
    if not CUSTOMIZATION_TYPE.match(data.customization_type):
        raise InvalidInput("must be 1-64 characters of [a-z0-9_]", field="customization_type")
    if not isinstance(data.content, dict):
        raise InvalidInput("must be a JSON object", field="content")
    if len(json.dumps(data.content, separators=(",", ":")).encode()) > MAX_CONTENT_BYTES:
        raise InvalidInput(f"must be at most {MAX_CONTENT_BYTES} bytes as JSON", field="content")
    low, high = PRIORITY_RANGE
    if not low <= data.priority <= high:
        raise InvalidInput(f"must be between {low} and {high}", field="priority")


class PromptCustomizationService:
    def __init__(self, uow: UnitOfWorkFactory, loader: AgentLoader, clock: Clock) -> None:
        self._uow = uow
        self._loader = loader
        self._clock = clock

    async def create(self, user_id: str, data: CustomizationInput) -> PromptCustomization:
        validate_customization(data)
        now = self._clock.now()
        row = PromptCustomization(
            str(uuid.uuid4()),
            user_id,
            data.agent_name,
            data.customization_type,
            data.content,
            data.is_active,
            data.priority,
            now,
            now,
        )
        async with self._uow(user_id=user_id) as uow:
            await _require_agent(uow, data.agent_name)
            await uow.customizations.add(row)
            await _audit(uow, "customization.created", row, now)
            await uow.commit()
        self._loader.invalidate(user_id, data.agent_name)
        return row

    async def list_active(self, user_id: str, agent_name: str) -> list[PromptCustomization]:
        async with self._uow(user_id=user_id) as uow:
            return await uow.customizations.list_active(user_id, agent_name)

    async def update(
        self, user_id: str, customization_id: str, data: CustomizationInput
    ) -> PromptCustomization:
        validate_customization(data)
        now = self._clock.now()
        async with self._uow(user_id=user_id) as uow:
            current = await _require_own(uow, user_id, customization_id)
            await _require_agent(uow, data.agent_name)
            row = replace(
                current,
                agent_name=data.agent_name,
                customization_type=data.customization_type,
                content=data.content,
                is_active=data.is_active,
                priority=data.priority,
                updated_at=now,
            )
            if not await uow.customizations.update(row):
                raise NotFound(f"customization '{customization_id}' not found")
            await _audit(uow, "customization.updated", row, now)
            await uow.commit()
        self._loader.invalidate(user_id, current.agent_name)
        self._loader.invalidate(user_id, row.agent_name)
        return row

    async def delete(self, user_id: str, customization_id: str) -> None:
        now = self._clock.now()
        async with self._uow(user_id=user_id) as uow:
            current = await _require_own(uow, user_id, customization_id)
            await uow.customizations.delete(user_id, customization_id)
            await _audit(uow, "customization.deleted", current, now)
            await uow.commit()
        self._loader.invalidate(user_id, current.agent_name)

    async def set_instructions(self, user_id: str, agent_name: str, instructions: list[str]) -> str:
        """The ``update_instructions`` tool: add or replace the caller's instruction set."""
        content: dict[str, Any] = {"instructions": [str(item) for item in instructions]}
        async with self._uow(user_id=user_id) as uow:
            existing = await uow.customizations.find(user_id, agent_name, INSTRUCTION_SET)
        data = CustomizationInput(agent_name, INSTRUCTION_SET, content)
        if existing is None:
            await self.create(user_id, data)
            return f"saved {len(instructions)} instructions"
        keep = replace(data, is_active=existing.is_active, priority=existing.priority)
        await self.update(user_id, existing.id, keep)
        return f"replaced instructions with {len(instructions)} instructions"


async def _require_agent(uow: UnitOfWork, agent_name: str) -> None:
    if await uow.agents.get(agent_name) is None:
        raise NotFound(f"agent '{agent_name}' not found")


async def _require_own(uow: UnitOfWork, user_id: str, customization_id: str) -> PromptCustomization:
    current = await uow.customizations.get(user_id, customization_id)
    if current is None:
        raise NotFound(f"customization '{customization_id}' not found")
    return current


async def _audit(uow: UnitOfWork, type_: str, row: PromptCustomization, now: datetime) -> None:
    event = NewEvent(
        type_,
        user_id=row.user_id,
        agent_name=row.agent_name,
        data={"id": row.id, "customization_type": row.customization_type},
    )
    await uow.events.add(event, now=now)
