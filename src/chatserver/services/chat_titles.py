"""Titles of new chats written by the agent's model, in the background once the first answer is out.

The answer never waits for it: the request goes out after the run has ended, as a task of its own,
and its failure only leaves the title the first message gave. A chat renamed meanwhile keeps its name.
"""

from __future__ import annotations

import asyncio
import logging

from pydantic_ai.direct import model_request
from pydantic_ai.messages import ModelRequest, TextPart
from pydantic_ai.settings import ModelSettings

from chatserver.agents.echo import ECHO_MODEL_NAME
from chatserver.agents.types import BuiltAgent
from chatserver.domain import Run
from chatserver.domain.titles import title_from
from chatserver.storage.protocols import UnitOfWorkFactory

log = logging.getLogger("chatserver.titles")

PROMPT = (
    "Write a title of at most six words for the conversation below. Answer with the title only,"
    " no quotes.\n\nUser: {question}\n\nAssistant: {answer}"
)
EXCERPT_CHARS = 1000
TITLE_SECONDS = 30.0


class ChatTitler:
    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow
        self._tasks: set[asyncio.Task[None]] = set()

    def after_answer(self, run: Run, built: BuiltAgent, turn: int, answer: str) -> None:
        """Title the chat of ``run`` if this was its first turn and its model is a real one."""
        if run.chat_id is None or turn != 1 or built.config.model.split(":")[0] == ECHO_MODEL_NAME:
            return
        task = asyncio.create_task(self._title(run, built, answer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _title(self, run: Run, built: BuiltAgent, answer: str) -> None:
        assert run.chat_id is not None
        prompt = PROMPT.format(question=run.message[:EXCERPT_CHARS], answer=answer[:EXCERPT_CHARS])
        try:
            async with asyncio.timeout(TITLE_SECONDS):
                response = await model_request(
                    built.model,
                    [ModelRequest.user_text_prompt(prompt)],
                    model_settings=ModelSettings(max_tokens=24),
                )
            text = "".join(p.content for p in response.parts if isinstance(p, TextPart))
            title = title_from(text.strip().strip("\"'"))
            if not title:
                return
            async with self._uow(user_id=run.user_id) as uow:
                await uow.chats.retitle(run.user_id, run.chat_id, was=title_from(run.message), title=title)
                await uow.commit()
        except Exception:
            log.warning("could not title chat of run %s", run.id, exc_info=True)
