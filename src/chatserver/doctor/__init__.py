"""``chatserver doctor``: what is wrong with this deployment, and how to fix it.

Built by ``build_container`` from the container's own parts; every check only reads.
"""

from __future__ import annotations

from pydantic import ValidationError

from chatserver.config import Settings
from chatserver.doctor.models import ModelChecks
from chatserver.doctor.report import Check, fail, failed, render, warn
from chatserver.doctor.system import configuration_checks, database_checks, redis_check
from chatserver.services.agents import AgentService
from chatserver.storage.sql.engine import SqlDatabase

__all__ = ["Check", "Doctor", "failed", "render", "unloadable_settings"]


class Doctor:
    def __init__(
        self, settings: Settings, database: SqlDatabase, agents: AgentService, models: ModelChecks
    ) -> None:
        self._settings = settings
        self._database = database
        self._agents = agents
        self._models = models

    async def run(self) -> list[Check]:
        checks = configuration_checks(self._settings)
        database = await database_checks(self._settings, self._database)
        checks += database
        checks.append(await redis_check(self._settings))
        if all(check.status != "FAIL" for check in database):
            checks += await self._models.check(await self._agents.list())
        else:
            checks.append(
                warn("models", "not checked: the agents are in the database", "fix the database first")
            )
        return checks


def unloadable_settings(error: ValidationError) -> list[Check]:
    """The one check when the settings do not load at all: each bad variable and what is wrong with
    it (never its value, which may be a secret)."""
    problems = [
        f"CHATSERVER_{'_'.join(str(part) for part in problem['loc']).upper()}: {problem['msg']}"
        for problem in error.errors(include_input=False)
    ]
    return [fail("configuration", "; ".join(problems), "correct the variables named above")]
