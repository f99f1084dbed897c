"""A run's tool approvals, its ledger of steps, and the resume of an interrupted run."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from chatserver.api.deps import ContainerDep, CurrentUser
from chatserver.api.routes.runs import RunId
from chatserver.api.schemas import RunOut, Strict
from chatserver.domain.steps import Decision, RunStep

router = APIRouter(prefix="/api", tags=["runs"])


class DecisionIn(Strict):
    id: str = Field(min_length=1, max_length=255)
    approve: bool
    args: dict[str, Any] | None = Field(None, description="approve only: the call's arguments, edited")
    reason: str | None = Field(None, max_length=2000, description="deny only: told to the model")


class DecisionsIn(Strict):
    decisions: list[DecisionIn] = Field(min_length=1, max_length=64)


class StepOut(BaseModel):
    kind: str
    name: str
    status: str
    args: dict[str, Any] | None = None
    started_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, step: RunStep) -> StepOut:
        return cls(
            kind=step.kind,
            name=step.name,
            status=step.status,
            args=step.args,
            started_at=step.started_at,
            finished_at=step.finished_at,
        )


@router.post("/runs/{run_id}/approvals", response_model=RunOut)
async def decide(run_id: RunId, body: DecisionsIn, principal: CurrentUser, container: ContainerDep) -> RunOut:
    decisions = [Decision(d.id, d.approve, d.args if d.approve else None, d.reason) for d in body.decisions]
    return RunOut.of(await container.approvals.decide(principal.user_id, run_id, decisions))


@router.get("/runs/{run_id}/steps", response_model=list[StepOut])
async def steps(run_id: RunId, principal: CurrentUser, container: ContainerDep) -> list[StepOut]:
    return [StepOut.of(step) for step in await container.approvals.steps(principal.user_id, run_id)]


@router.post("/runs/{run_id}/resume", response_model=RunOut)
async def resume(run_id: RunId, principal: CurrentUser, container: ContainerDep) -> RunOut:
    return RunOut.of(await container.approvals.resume(principal.user_id, run_id))
