"""Seed-compatible prompt customization routes, plus DELETE."""

from __future__ import annotations

from fastapi import APIRouter, Response

from chatserver.api.deps import ContainerDep, CurrentUser
from chatserver.api.schemas import CustomizationIn, CustomizationOut
from chatserver.services.prompt_customization import CustomizationInput

router = APIRouter(prefix="/api/agent/prompt_customizations", tags=["prompt customizations"])


def to_input(body: CustomizationIn) -> CustomizationInput:
    return CustomizationInput(
        agent_name=body.agent_name,
        customization_type=body.customization_type,
        content=body.content,
        is_active=body.is_active,
        priority=body.priority,
    )


@router.post("/", response_model=CustomizationOut, status_code=201)
async def create_customization(
    body: CustomizationIn, principal: CurrentUser, container: ContainerDep
) -> CustomizationOut:
    return CustomizationOut.of(await container.customizations.create(principal.user_id, to_input(body)))


@router.get("/{agent_name}", response_model=list[CustomizationOut])
async def list_customizations(
    agent_name: str, principal: CurrentUser, container: ContainerDep
) -> list[CustomizationOut]:
    rows = await container.customizations.list_active(principal.user_id, agent_name)
    return [CustomizationOut.of(row) for row in rows]


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
