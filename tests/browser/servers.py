"""Live servers for the browser tests."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.e2e.conftest import prepared_database
from tests.e2e.harness import LiveServer, serve_in_thread

# Turns may sleep (/sleep) for a while without hitting the model timeout.
BROWSER_SERVER_SETTINGS: dict[str, Any] = {"model_timeout_seconds": 30.0}


@contextmanager
def browser_test_server(directory: Path, **overrides: Any) -> Iterator[LiveServer]:
    """A live server on SQLite, prepared and run from a thread of its own.

    Playwright's sync API keeps an event loop in the test's thread, where the database cannot be
    prepared with ``asyncio``: so both happen in this thread, which waits until the block ends.
    """
    directory.mkdir(parents=True, exist_ok=True)
    started: queue.Queue[LiveServer | BaseException] = queue.Queue()
    stop = threading.Event()
    failures: list[BaseException] = []

    def run() -> None:
        try:
            settings_overrides = {**BROWSER_SERVER_SETTINGS, **overrides}
            with (
                prepared_database("sqlite", directory, **settings_overrides) as settings,
                serve_in_thread(settings) as live,
            ):
                started.put(live)
                stop.wait(timeout=3600)
        except BaseException as error:
            failures.append(error)
            started.put(error)

    thread = threading.Thread(target=run, name="browser-test-server", daemon=True)
    thread.start()
    first = started.get(timeout=120)
    if isinstance(first, BaseException):
        raise first
    try:
        yield first
    finally:
        stop.set()
        thread.join(timeout=60)
    if failures:
        raise failures[0]
