"""GET /api/usage and /api/budget for the caller; usage and budgets of everyone for admins."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from chatserver.api.deps import AdminUser, ContainerDep, CurrentUser
from chatserver.api.usage_schemas import BudgetIn, BudgetOut, BudgetOverviewOut, BudgetStatusOut, UsageOut
from chatserver.domain.usage import UsageGroup, UsageQuery
from chatserver.errors import InvalidInput

router = APIRouter(tags=["usage"])

From = Annotated[date | None, Query(alias="from", description="first day, YYYY-MM-DD (UTC)")]
To = Annotated[date | None, Query(alias="to", description="last day, YYYY-MM-DD (UTC), included")]


def _query(
    group_by: UsageGroup,
    start: date | None,
    end: date | None,
    user_id: str | None = None,
    agent_name: str | None = None,
) -> UsageQuery:
    if start is not None and end is not None and end < start:
        raise InvalidInput("'to' must not be before 'from'", field="to")
    return UsageQuery(group_by, start, end, user_id=user_id, agent_name=agent_name)


@router.get("/api/usage", response_model=UsageOut)
async def my_usage(
    user: CurrentUser,
    container: ContainerDep,
    start: From = None,
    end: To = None,
    group_by: Literal["day", "agent", "model"] = "day",
) -> UsageOut:
    report = await container.budgets.usage(user.user_id, _query(group_by, start, end))
    return UsageOut.of(report)


@router.get("/api/admin/usage", response_model=UsageOut)
async def everyones_usage(
    _: AdminUser,
    container: ContainerDep,
    start: From = None,
    end: To = None,
    group_by: Literal["user", "agent", "model", "day"] = "user",
    user_id: str | None = None,
    agent_name: str | None = None,
) -> UsageOut:
    query = _query(group_by, start, end, user_id=user_id, agent_name=agent_name)
    return UsageOut.of(await container.budgets.usage_of_everyone(query))


@router.get("/api/budget", response_model=list[BudgetStatusOut])
async def my_budget(user: CurrentUser, container: ContainerDep) -> list[BudgetStatusOut]:
    return [BudgetStatusOut.of_status(status) for status in await container.budgets.status(user.user_id)]


@router.post("/api/admin/budgets", response_model=BudgetOut, status_code=201)
async def set_budget(body: BudgetIn, _: AdminUser, container: ContainerDep) -> BudgetOut:
    return BudgetOut.of(await container.budgets.set(body.to_domain()))


@router.get("/api/admin/budgets", response_model=list[BudgetOverviewOut])
async def list_budgets(_: AdminUser, container: ContainerDep) -> list[BudgetOverviewOut]:
    """Every budget with what it used this period and what is left (null for the default)."""
    return [BudgetOverviewOut.of_row(budget, status) for budget, status in await container.budgets.overview()]


@router.delete("/api/admin/budgets/{budget_id}", status_code=204, response_class=Response)
async def delete_budget(budget_id: str, _: AdminUser, container: ContainerDep) -> Response:
    await container.budgets.delete(budget_id)
    return Response(status_code=204)
