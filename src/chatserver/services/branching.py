"""Where a turn goes in its chat's tree: checking a command's ``edit_of`` and ``regenerate``, and
following an older run's answer (``follows_run``)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from chatserver.domain import StartRun
from chatserver.errors import InvalidInput, NotFound
from chatserver.storage.protocols import UnitOfWork, UnitOfWorkFactory

MAX_ANSWER_MESSAGES = 512
"""How far back from an answer its user message is looked for (an answer's tool calls and results)."""


@dataclass(frozen=True, slots=True)
class Placement:
    edit_of: int | None = None
    regenerate: int | None = None
    """The user message answered again (the regenerated answer's)."""


async def place_turn(uow_factory: UnitOfWorkFactory, command: StartRun) -> tuple[StartRun, Placement]:
    """The command as the turn runs it (a regenerated answer's message is its user message's), and
    where it goes; refuses ids that are not a message of the caller's chat of the right kind."""
    if command.follows_run is not None and (command.edit_of, command.regenerate) != (None, None):
        raise InvalidInput("a turn that follows a run names no other message")
    if command.edit_of is None and command.regenerate is None:
        return command, Placement()
    if command.chat_id is None:
        raise InvalidInput("edit_of and regenerate need a chat_id")
    if command.edit_of is not None and command.regenerate is not None:
        raise InvalidInput("give edit_of or regenerate, not both")
    if command.regenerate is not None and command.message:
        raise InvalidInput("regenerate takes no message: the answer is to the same user message")
    named = command.edit_of if command.edit_of is not None else command.regenerate
    assert named is not None
    async with uow_factory(user_id=command.user_id) as uow:
        message = await uow.messages.get(command.user_id, command.chat_id, named)
        if message is None:
            raise NotFound(f"message {named} not found in chat '{command.chat_id}'")
        if command.edit_of is not None:
            if message.role != "user":
                raise InvalidInput("edit_of must name a user message")
            return command, Placement(edit_of=message.id)
        if message.role != "assistant":
            raise InvalidInput("regenerate must name an assistant message")
        before = await uow.messages.branch(
            command.user_id, command.chat_id, from_id=message.parent_id, limit=MAX_ANSWER_MESSAGES
        )
    asked = next((m for m in reversed(before) if m.role == "user"), None)
    if asked is None:
        raise InvalidInput("the answer to regenerate follows no user message")
    return replace(command, message=asked.content), Placement(regenerate=asked.id)


async def follow_run(uow: UnitOfWork, user_id: str, chat_id: str, run_id: str) -> None:
    """Make the last message run ``run_id`` wrote the chat's active leaf, in the transaction that
    stores the turn: a new branch from it when it is an older answer. Such a turn is started with the
    reject policy, so a chat with another run going on (which writes after the active leaf) refuses
    it, and this transaction, the leaf's move with it, rolls back."""
    last = await uow.messages.last_of_run(user_id, chat_id, run_id)
    if last is None:
        raise InvalidInput(f"run '{run_id}' stored no message to follow")
    chat = await uow.chats.get(user_id, chat_id)
    if chat is not None and chat.active_message_id != last:
        await uow.chats.set_active(user_id, chat_id, last)
