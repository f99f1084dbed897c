"""Seed-compatible prompt customization routes, plus DELETE and reading one by id.

Each collection path answers with and without the trailing slash: a redirect would lose a POST's
body for clients that do not follow it (curl by default).
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Response

from chatserver.api.deps import ContainerDep, CurrentUser
from chatserver.api.schemas import CustomizationIn, CustomizationOut
from chatserver.services.prompt_customization import CustomizationInput

UUID_SHAPE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

router = APIRouter(prefix="/api/agent/prompt_customizations", tags=["prompt customizations"])


def to_input(body: CustomizationIn) -> CustomizationInput:
    return CustomizationInput(
        agent_name=body.agent_name,
        customization_type=body.customization_type,
        content=body.content,
        is_active=body.is_active,
        priority=body.priority,
    )


@router.post("", response_model=CustomizationOut, status_code=201)
@router.post("/", response_model=CustomizationOut, status_code=201, include_in_schema=False)
async def create_customization(
    body: CustomizationIn, principal: CurrentUser, container: ContainerDep
) -> CustomizationOut:
    return CustomizationOut.of(await container.customizations.create(principal.user_id, to_input(body)))


@router.get("", response_model=list[CustomizationOut])
@router.get("/", response_model=list[CustomizationOut], include_in_schema=False)
async def list_customizations(
    agent_name: str, principal: CurrentUser, container: ContainerDep, include_inactive: bool = False
) -> list[CustomizationOut]:
    """The caller's customizations of ``agent_name``; inactive ones too with ``include_inactive``."""
    rows = await container.customizations.list_for_agent(
        principal.user_id, agent_name, include_inactive=include_inactive
    )
    return [CustomizationOut.of(row) for row in rows]


@router.get("/{agent_name_or_id}", response_model=list[CustomizationOut] | CustomizationOut)
@router.get(
    "/{agent_name_or_id}/", response_model=list[CustomizationOut] | CustomizationOut, include_in_schema=False
)
async def read_customizations(
    agent_name_or_id: str, principal: CurrentUser, container: ContainerDep, include_inactive: bool = False
) -> list[CustomizationOut] | CustomizationOut:
    """A UUID is a customization id: that one customization, 404 unless the caller owns it.
    Anything else is an agent name: the list, as ``GET ?agent_name=``."""
    customization_id = _as_uuid(agent_name_or_id)
    if customization_id is None:
        return await list_customizations(agent_name_or_id, principal, container, include_inactive)
    return CustomizationOut.of(await container.customizations.get(principal.user_id, customization_id))


def _as_uuid(segment: str) -> str | None:
    """The id in its stored (lowercase) form, or None when ``segment`` is not UUID-shaped."""
    return segment.lower() if UUID_SHAPE.fullmatch(segment) else None


@router.put("/{customization_id}", response_model=CustomizationOut)
async def update_customization(
    customization_id: str, body: CustomizationIn, principal: CurrentUser, container: ContainerDep
) -> CustomizationOut:
    row = await container.customizations.update(principal.user_id, customization_id, to_input(body))
    return CustomizationOut.of(row)


@router.delete("/{customization_id}", status_code=204, response_class=Response)
async def delete_customization(
    customization_id: str, principal: CurrentUser, container: ContainerDep
) -> Response:
    await container.customizations.delete(principal.user_id, customization_id)
    return Response(status_code=204)
