"""A user with a row in every table that can hold one: what export and erasure are tested on."""

from __future__ import annotations

from chatserver.domain import NewEvent, NewMessage, Run
from chatserver.domain.steps import RunStep
from chatserver.domain.usage import Budget, ModelUsage, Spend
from chatserver.services.ids import sortable_id
from chatserver.storage.protocols import UnitOfWorkFactory
from tests.support.builders import NOW, api_key, at, chat, customization, session


async def populate(
    uow_factory: UnitOfWorkFactory, user_id: str, *, messages: int = 3, chat_id: str | None = None
) -> str:
    """Store a chat (with ``messages`` messages), a customization, a session, a memory, a run, an
    API key, an audit event, a usage record and a budget with its counter of ``user_id`` (who must
    exist); the chat's id (by default one naming the user)."""
    chat_id = chat_id or f"chat-of-{user_id}"
    async with uow_factory(user_id=user_id) as uow:
        await uow.chats.create_if_absent(chat(chat_id, user_id))
        await uow.messages.add(
            user_id, chat_id, 1, [NewMessage("user", f"message {n}") for n in range(messages)], now=NOW
        )
        await uow.customizations.add(customization(user_id))
        await uow.sessions.add(session(user_id, chat_id))
        await uow.memories.add(user_id, "helper", f"a note about {user_id}", now=NOW)
        run_id = sortable_id(at(1))
        await uow.runs.add(Run(run_id, user_id, chat_id, "helper", "queued", "hi", at(1)))
        await uow.steps.add(user_id, [RunStep(run_id, 0, "model", "echo", "completed", at(1), at(1))])
        await uow.api_keys.add(api_key(user_id, prefix=f"cs_{user_id[:8]}"), key_hash=f"hash-{user_id}")
        await uow.events.add(NewEvent("chat.turn", user_id=user_id, chat_id=chat_id), now=NOW)
        await uow.usage.add(user_id, "helper", sortable_id(at(1)), [ModelUsage("echo", 3, 4, 1)], now=NOW)
        owned = Budget(sortable_id(NOW), "day", user_id=user_id, max_requests=9, created_at=NOW)
        budget = await uow.budgets.put(owned)
        await uow.budgets.spend(budget, user_id, NOW.date(), Spend(tokens=7, requests=1))
        await uow.commit()
    return chat_id
