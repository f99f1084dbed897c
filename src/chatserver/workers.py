"""``chatserver serve --workers N``: N server processes sharing one listening socket.

The parent binds the socket, then forks the workers: each builds its own app and container (engine,
pool, caches, background tasks, tracing) after the fork, so no connection or thread is shared
between processes, while the modules imported and frozen before it are shared copy-on-write.
Each worker is a replica on the same database (see README, Operations: what is per process).

The parent only supervises: SIGTERM or SIGINT is passed on to every worker, each of which drains
as a single server does; a worker that dies is replaced, unless it died before it could serve
(bad settings, a database that is not there), which would fail the same way again, so the
parent stops the others and exits with that code.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from types import FrameType

log = logging.getLogger(__name__)

Serve = Callable[[list[socket.socket]], int]
"""Runs one server on the given sockets until it stops; returns the process's exit code."""

RESTART_PAUSE_SECONDS = 1.0
"""Pause before replacing a worker that died, so one that dies at once cannot spin the parent."""


class Supervisor:
    def __init__(
        self, sockets: list[socket.socket], workers: int, serve: Serve, *, startup_failure: int
    ) -> None:
        self._sockets = sockets
        self._workers = workers
        self._serve = serve
        self._startup_failure = startup_failure
        self._children: set[int] = set()
        self._stopping = False

    def run(self) -> int:
        """Serve until told to stop; the exit code: 0, or a worker's startup failure."""
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        for _ in range(self._workers):
            self._spawn()
        log.info("serving with %d worker processes", self._workers, extra={"workers": sorted(self._children)})
        code = 0
        while self._children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            self._children.discard(pid)
            exit_code = os.waitstatus_to_exitcode(status)
            if self._stopping:
                continue
            if exit_code == self._startup_failure:
                log.error("worker %d failed to start; stopping", pid)
                code = exit_code
                self._stop(signal.SIGTERM, None)
                continue
            log.error("worker %d exited with %d; starting another", pid, exit_code)
            time.sleep(RESTART_PAUSE_SECONDS)
            if not self._stopping:
                self._spawn()
        return code

    def _spawn(self) -> None:
        pid = os.fork()
        if pid == 0:
            os._exit(self._child())
        self._children.add(pid)

    def _child(self) -> int:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            return self._serve(self._sockets)
        except SystemExit as stop:
            return stop.code if isinstance(stop.code, int) else 1
        except BaseException:
            log.exception("worker %d failed", os.getpid())
            return 1
        finally:
            logging.shutdown()

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True
        for pid in list(self._children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                self._children.discard(pid)
