"""Steering: a user's message reaches a running run before its next model request.

A history processor, so it runs where the agent framework prepares each request; the messages it
adds become part of the run's own messages (stored with its answer, seen by later turns).
"""

from __future__ import annotations

from dataclasses import replace

from pydantic_ai import RunContext
from pydantic_ai.messages import ModelMessage, ModelRequest, UserPromptPart

from chatserver.agents.types import TurnDeps


async def apply_steering(ctx: RunContext[TurnDeps], messages: list[ModelMessage]) -> list[ModelMessage]:
    steering = ctx.deps.steering
    if steering is None:
        return messages
    taken = await steering.take()
    if not taken:
        return messages
    parts = [UserPromptPart(text) for text in taken]
    last = messages[-1] if messages else None
    if isinstance(last, ModelRequest):
        return [*messages[:-1], replace(last, parts=[*last.parts, *parts])]
    return [*messages, ModelRequest(parts=parts)]
