"""History that fits the model: drop the oldest turns until the estimated tokens fit the budget.

Estimate (documented, deliberately simple and provider-independent): one token per 4 characters,
rounded up, counted separately for the system prompt, the current message, and each earlier turn
(its user message, the assistant's text, tool calls as name + JSON arguments, tool results as the
text the model saw).

Rule: with a budget of B tokens, whole turns are dropped, oldest first, while the estimate of
system prompt + remaining turns + current message exceeds B. The system prompt and the current
message are never dropped, so a turn whose own message is over budget still runs, with no history.
A turn starts at a user message; anything before the first one (a window that began mid-turn) is
dropped first. Dropping whole turns keeps every tool call with its result.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    SystemPromptPart,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)

CHARS_PER_TOKEN = 4


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def message_chars(message: ModelMessage) -> int:
    """Characters the model reads in one message (parts that carry no text count 0)."""
    if isinstance(message, ModelResponse):
        return sum(_response_part_chars(part) for part in message.parts)
    total = 0
    for part in message.parts:
        if isinstance(part, UserPromptPart):
            total += len(_prompt_text(part))
        elif isinstance(part, SystemPromptPart):
            total += len(part.content)
        elif isinstance(part, ToolReturnPart):
            total += len(part.tool_name) + len(part.model_response_str())
    return total


def _response_part_chars(part: object) -> int:
    if isinstance(part, TextPart):
        return len(part.content)
    if isinstance(part, ToolCallPart):
        return len(part.tool_name) + len(part.args_as_json_str())
    return 0


def _prompt_text(part: UserPromptPart) -> str:
    if isinstance(part.content, str):
        return part.content
    return "".join(item for item in part.content if isinstance(item, str))


def split_turns(history: Sequence[ModelMessage]) -> list[list[ModelMessage]]:
    """Consecutive groups, each starting at a request with a user prompt (a leading partial group aside)."""
    turns: list[list[ModelMessage]] = []
    for message in history:
        starts_turn = isinstance(message, ModelRequest) and any(
            isinstance(part, UserPromptPart) for part in message.parts
        )
        if starts_turn or not turns:
            turns.append([])
        turns[-1].append(message)
    return turns


def fit_history(
    history: Sequence[ModelMessage], *, budget: int | None, fixed: Iterable[str] = ()
) -> list[ModelMessage]:
    """``history`` without its oldest turns, so that ``fixed`` texts + history fit ``budget``.

    ``fixed`` are the texts always sent (system prompt, current message). ``None``: no budget.
    """
    if budget is None:
        return list(history)
    turns = split_turns(history)
    costs = [estimate_tokens_of(turn) for turn in turns]
    total = sum(estimate_tokens(text) for text in fixed) + sum(costs)
    dropped = 0
    while dropped < len(turns) and total > budget:
        total -= costs[dropped]
        dropped += 1
    return [message for turn in turns[dropped:] for message in turn]


def estimate_tokens_of(messages: Iterable[ModelMessage]) -> int:
    return math.ceil(sum(message_chars(message) for message in messages) / CHARS_PER_TOKEN)
