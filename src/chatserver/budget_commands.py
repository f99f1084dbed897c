"""``chatserver budgets``: set, list and delete budgets (as ``/api/admin/budgets``)."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from chatserver.command_runner import run_use_case
from chatserver.domain.usage import Budget

budgets_app = typer.Typer(
    help="Set, list and delete budgets of tokens, requests and cost.", no_args_is_help=True
)


def _limit(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


@budgets_app.command("set")
def budgets_set(
    period: Annotated[Literal["day", "month"], typer.Option(help="The budget resets each UTC day or month")],
    user: Annotated[str | None, typer.Option(help="A user's id; omit for every user")] = None,
    agent: Annotated[str | None, typer.Option(help="An agent's name; omit for every agent")] = None,
    max_tokens: Annotated[int | None, typer.Option(min=0)] = None,
    max_requests: Annotated[int | None, typer.Option(min=0)] = None,
    max_cost_usd: Annotated[float | None, typer.Option(min=0)] = None,
) -> None:
    """Set a budget (replacing the one of the same user, agent and period). With no user and no
    agent it is every user's default; an agent's budget with no user is that agent's total."""
    budget = Budget("", period, user, agent, max_tokens, max_requests, max_cost_usd)
    stored = run_use_case(lambda c: c.budgets.set(budget))
    typer.echo(f"set budget {stored.id}")


@budgets_app.command("list")
def budgets_list() -> None:
    """List budgets: id, period, user, agent, max tokens, requests, cost."""
    for b in run_use_case(lambda c: c.budgets.all()):
        limits = "\t".join(_limit(v) for v in (b.max_tokens, b.max_requests, b.max_cost_usd))
        typer.echo(f"{b.id}\t{b.period}\t{b.user_id or '*'}\t{b.agent_name or '*'}\t{limits}")


@budgets_app.command("delete")
def budgets_delete(budget_id: str) -> None:
    """Delete a budget."""
    run_use_case(lambda c: c.budgets.delete(budget_id))
    typer.echo(f"deleted budget {budget_id}")
