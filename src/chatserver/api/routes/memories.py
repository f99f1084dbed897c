"""The caller's long-term memories (notes agents saved with ``remember``): list, search and erase."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from chatserver.api.cursors import decode_id_cursor
from chatserver.api.deps import ContainerDep, CurrentUser
from chatserver.api.schemas import MemoriesDeleted, MemoryOut, MemoryPage
from chatserver.services.memories import LIST_LIMIT_MAX

router = APIRouter(prefix="/api/memories", tags=["memories"])

AgentName = Annotated[str, Query(min_length=1, max_length=64, description="The agent whose notes")]
# Ids are 64-bit integers in both databases: a larger one can name no memory, and the driver would
# refuse to send it.
MemoryId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.get("", response_model=MemoryPage)
async def list_memories(
    principal: CurrentUser,
    container: ContainerDep,
    agent_name: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=LIST_LIMIT_MAX)] = 100,
    before: str | None = None,
    q: Annotated[str, Query(max_length=200, description="Words every note found contains")] = "",
) -> MemoryPage:
    """Your notes, newest first: of one agent, or of every agent when ``agent_name`` is left out;
    with ``q``, only those containing each of its words (case-insensitive substrings).

    ``next_before`` is the ``before`` of the next (older) page, null on the last one."""
    cursor = decode_id_cursor(before) if before else None
    rows = await container.memories.list(principal.user_id, agent_name, limit=limit, before=cursor, query=q)
    next_before = str(rows[-1].id) if len(rows) == limit else None
    return MemoryPage(items=[MemoryOut.of(row) for row in rows], next_before=next_before)


@router.delete("", response_model=MemoriesDeleted)
async def erase_memories(
    agent_name: AgentName, principal: CurrentUser, container: ContainerDep
) -> MemoriesDeleted:
    """Erase every note the agent keeps about you."""
    return MemoriesDeleted(deleted=await container.memories.erase(principal.user_id, agent_name))


@router.delete("/{memory_id}", status_code=204, response_class=Response)
async def delete_memory(memory_id: MemoryId, principal: CurrentUser, container: ContainerDep) -> Response:
    await container.memories.delete(principal.user_id, memory_id)
    return Response(status_code=204)
