"""TurnStream: the events of a streamed turn, whose start (and its errors) happens before the first."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from chatserver.agents.types import StreamEvent


class TurnStream:
    """The events of a turn that has already started: iterate to the end, or ``aclose()`` to stop.

    Closing early cancels the model run and waits for it to end; closing twice, or after the end,
    does nothing.
    """

    def __init__(self, events: AsyncGenerator[StreamEvent | None, None]) -> None:
        self._events = events

    @classmethod
    async def start(cls, events: AsyncGenerator[StreamEvent | None, None]) -> TurnStream:
        """Run ``events`` up to its start marker (``None``): whatever prevents the turn raises here."""
        await anext(events)
        return cls(events)

    def __aiter__(self) -> TurnStream:
        return self

    async def __anext__(self) -> StreamEvent:
        event = await anext(self._events)
        if event is None:
            raise RuntimeError("a turn stream yields its start marker only once")
        return event

    async def aclose(self) -> None:
        await self._events.aclose()
