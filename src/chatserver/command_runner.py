"""How a CLI command runs one use case: a fresh container from the environment's settings."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import typer

from chatserver.errors import ChatServerError

if TYPE_CHECKING:
    from chatserver.container import Container

T = TypeVar("T")


def run_use_case(work: Callable[[Container], Awaitable[T]]) -> T:
    """Run one use case on a fresh container; domain errors become a clean exit 1."""
    from chatserver.config import Settings
    from chatserver.container import build_container

    settings = Settings()

    async def main() -> T:
        container = build_container(settings)
        try:
            return await work(container)
        finally:
            await container.aclose()

    try:
        return asyncio.run(main())
    except ChatServerError as error:
        typer.echo(f"error: {error.detail}", err=True)
        raise typer.Exit(1) from error
