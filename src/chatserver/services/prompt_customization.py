"""PromptCustomizationService: each user's own instructions for each agent.

Every change invalidates the caller's cached agent for that agent name (after the commit), so the
very next turn is built with the new prompt; other users' cached agents are untouched. Every query
is scoped to the caller, who is also the unit of work's row-level security user on PostgreSQL.
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
from chatserver.errors import Conflict, InvalidInput, NotFound
from chatserver.services.agent_loader import AgentLoader
from chatserver.storage.protocols import UnitOfWork, UnitOfWorkFactory

CUSTOMIZATION_TYPE_PATTERN = r"^[a-z0-9_]{1,64}$"
CUSTOMIZATION_TYPE = re.compile(CUSTOMIZATION_TYPE_PATTERN)
MAX_CONTENT_BYTES = 16 * 1024
"""``content`` serialized as compact UTF-8 JSON may not be longer than this."""
MAX_CONTENT_DEPTH = 16
"""Objects and lists nested deeper than this are refused: the prompt must stay readable."""
PRIORITY_MIN, PRIORITY_MAX = -1000, 1000
PRIORITY_RANGE = (PRIORITY_MIN, PRIORITY_MAX)
INSTRUCTION_SET = "instruction_set"
INSTRUCTIONS_KEY = "instructions"


@dataclass(frozen=True, slots=True)
class CustomizationInput:
    agent_name: str
    customization_type: str
    content: dict[str, Any]
    is_active: bool = True
    priority: int = 0


def validate_customization(data: CustomizationInput) -> None:
    """Raise ``InvalidInput`` naming the first field that breaks a rule."""
    if "\x00" in data.agent_name:
        raise InvalidInput("must not contain NUL characters", field="agent_name")
    if not CUSTOMIZATION_TYPE.fullmatch(data.customization_type):
        raise InvalidInput("must be 1-64 characters of [a-z0-9_]", field="customization_type")
    validate_content(data.content)
    if isinstance(data.priority, bool) or not isinstance(data.priority, int):
        raise InvalidInput("must be an integer", field="priority")
    if not PRIORITY_MIN <= data.priority <= PRIORITY_MAX:
        raise InvalidInput(f"must be between {PRIORITY_MIN} and {PRIORITY_MAX}", field="priority")


def validate_content(content: object) -> None:
    """A JSON object both databases store and return unchanged, within the size and depth limits."""
    if not isinstance(content, dict):
        raise InvalidInput("must be a JSON object", field="content")
    _check_structure(content)
    try:
        serialized = json.dumps(content, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"must be plain JSON with finite numbers ({exc})", field="content") from exc
    if len(serialized.encode()) > MAX_CONTENT_BYTES:
        raise InvalidInput(f"must be at most {MAX_CONTENT_BYTES} bytes as compact JSON", field="content")


def _check_structure(content: dict[str, Any]) -> None:
    """Depth and NUL characters, walked iteratively: deep input must not exhaust the stack."""
    pending: list[tuple[object, int]] = [(content, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str) and "\x00" in value:
            # PostgreSQL's JSONB cannot store NUL; refusing it everywhere keeps both databases alike.
            raise InvalidInput("must not contain NUL characters", field="content")
        if not isinstance(value, dict | list):
            continue
        if depth > MAX_CONTENT_DEPTH:
            raise InvalidInput(f"must not nest deeper than {MAX_CONTENT_DEPTH} levels", field="content")
        if isinstance(value, dict):
            pending.extend((key, depth) for key in value)
            pending.extend((child, depth + 1) for child in value.values())
        else:
            pending.extend((child, depth + 1) for child in value)


class PromptCustomizationService:
    def __init__(self, uow: UnitOfWorkFactory, loader: AgentLoader, clock: Clock) -> None:
        self._uow = uow
        self._loader = loader
        self._clock = clock

    async def create(self, user_id: str, data: CustomizationInput) -> PromptCustomization:
        """``NotFound`` for an unknown agent; ``Conflict`` when the caller has this type already."""
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
        return await self.list_for_agent(user_id, agent_name)

    async def list_for_agent(
        self, user_id: str, agent_name: str, *, include_inactive: bool = False
    ) -> list[PromptCustomization]:
        """The caller's customizations (active ones only unless asked), priority ascending;
        ``[]`` for an unknown agent."""
        if "\x00" in agent_name:
            return []  # no agent can have this name, and PostgreSQL refuses it as a parameter
        async with self._uow(user_id=user_id) as uow:
            return await uow.customizations.list_for_agent(
                user_id, agent_name, include_inactive=include_inactive
            )

    async def get(self, user_id: str, customization_id: str) -> PromptCustomization:
        """``NotFound`` unless the caller owns it."""
        async with self._uow(user_id=user_id) as uow:
            return await _require_own(uow, user_id, customization_id)

    async def update(
        self, user_id: str, customization_id: str, data: CustomizationInput
    ) -> PromptCustomization:
        """Replace every field but the id; ``NotFound`` unless the caller owns it and the agent exists."""
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
        if row.agent_name != current.agent_name:
            self._loader.invalidate(user_id, row.agent_name)
        return row

    async def delete(self, user_id: str, customization_id: str) -> None:
        now = self._clock.now()
        async with self._uow(user_id=user_id) as uow:
            current = await _require_own(uow, user_id, customization_id)
            if not await uow.customizations.delete(user_id, customization_id):
                raise NotFound(f"customization '{customization_id}' not found")
            await _audit(uow, "customization.deleted", current, now)
            await uow.commit()
        self._loader.invalidate(user_id, current.agent_name)

    async def set_instructions(self, user_id: str, agent_name: str, instructions: list[str]) -> str:
        """The ``update_instructions`` tool: add or replace the caller's instruction set for this agent.

        Only the ``instructions`` list changes; other keys of the content, the priority and the
        active flag stay as the user set them.
        """
        items = [str(item) for item in instructions]
        try:
            replaced = await self._save_instructions(user_id, agent_name, items)
        except Conflict:
            # A concurrent first save created the row after this one looked: replace that one.
            replaced = await self._save_instructions(user_id, agent_name, items)
        self._loader.invalidate(user_id, agent_name)
        if replaced:
            return f"replaced instructions with {len(items)} instructions"
        return f"saved {len(items)} instructions"

    async def _save_instructions(self, user_id: str, agent_name: str, items: list[str]) -> bool:
        """One transaction: update the instruction set if there is one (True), else create it."""
        now = self._clock.now()
        async with self._uow(user_id=user_id) as uow:
            await _require_agent(uow, agent_name)
            existing = await uow.customizations.find(user_id, agent_name, INSTRUCTION_SET)
            if existing is None:
                content: dict[str, Any] = {INSTRUCTIONS_KEY: items}
                row = PromptCustomization(
                    str(uuid.uuid4()), user_id, agent_name, INSTRUCTION_SET, content, True, 0, now, now
                )
            else:
                content = {**existing.content, INSTRUCTIONS_KEY: items}
                row = replace(existing, content=content, updated_at=now)
            validate_content(row.content)
            if existing is None:
                await uow.customizations.add(row)
            elif not await uow.customizations.update(row):
                raise Conflict("the instruction set changed while it was being saved")
            await _audit(uow, "customization.updated" if existing else "customization.created", row, now)
            await uow.commit()
        return existing is not None


async def _require_agent(uow: UnitOfWork, agent_name: str) -> None:
    if await uow.agents.get(agent_name) is None:
        raise NotFound(f"agent '{agent_name}' not found")


async def _require_own(uow: UnitOfWork, user_id: str, customization_id: str) -> PromptCustomization:
    # No stored id has a NUL, and PostgreSQL refuses one as a parameter.
    current = None if "\x00" in customization_id else await uow.customizations.get(user_id, customization_id)
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
