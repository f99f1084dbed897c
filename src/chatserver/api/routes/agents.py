"""GET /api/agents for everyone; /api/admin/agents for admins."""

from __future__ import annotations

from fastapi import APIRouter, Response

from chatserver.api.deps import AdminUser, ContainerDep, CurrentUser
from chatserver.api.schemas import AgentIn, AgentOut, AgentSummary
from chatserver.errors import InvalidInput

router = APIRouter(tags=["agents"])


@router.get("/api/agents", response_model=list[AgentSummary])
async def list_agents(_: CurrentUser, container: ContainerDep) -> list[AgentSummary]:
    return [AgentSummary.of(agent) for agent in await container.agents.list()]


@router.get("/api/admin/agents", response_model=list[AgentOut])
async def admin_list_agents(_: AdminUser, container: ContainerDep) -> list[AgentOut]:
    return [AgentOut.of(agent) for agent in await container.agents.list()]


@router.post("/api/admin/agents", response_model=AgentOut, status_code=201)
async def admin_create_agent(body: AgentIn, admin: AdminUser, container: ContainerDep) -> AgentOut:
    return AgentOut.of(await container.agents.create(body.to_domain(), actor=admin.user_id))


@router.get("/api/admin/agents/{name}", response_model=AgentOut)
async def admin_get_agent(name: str, _: AdminUser, container: ContainerDep) -> AgentOut:
    return AgentOut.of(await container.agents.get(name))


@router.put("/api/admin/agents/{name}", response_model=AgentOut)
async def admin_update_agent(name: str, body: AgentIn, admin: AdminUser, container: ContainerDep) -> AgentOut:
    if body.name != name:
        raise InvalidInput("an agent cannot be renamed: name must match the URL", field="name")
    return AgentOut.of(await container.agents.update(body.to_domain(), actor=admin.user_id))


@router.delete("/api/admin/agents/{name}", status_code=204, response_class=Response)
async def admin_delete_agent(name: str, admin: AdminUser, container: ContainerDep) -> Response:
    await container.agents.delete(name, actor=admin.user_id)
    return Response(status_code=204)
