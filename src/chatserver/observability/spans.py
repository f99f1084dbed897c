"""chatserver's own spans, for whoever executes runs: a run, from its start to its end written.

Each takes the tracer or ``None`` (tracing off: nothing is made, not even a no-op span). Model
request and tool spans are pydantic-ai's (its ``InstrumentedModel``), children of the run span.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from chatserver.domain import Run

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

RUN_ID = "chatserver.run.id"
CHAT_ID = "chatserver.chat.id"
AGENT_NAME = "gen_ai.agent.name"


@contextmanager
def run_span(tracer: Tracer | None, run: Run) -> Iterator[None]:
    """The span of ``run`` executing, current while it is open (the run's own spans nest in it)."""
    if tracer is None:
        yield
        return
    attributes = {RUN_ID: run.id, AGENT_NAME: run.agent_name}
    if run.chat_id is not None:
        attributes[CHAT_ID] = run.chat_id
    with tracer.start_as_current_span(f"run {run.agent_name}", attributes=attributes):
        yield
