"""Read a child process's output in a thread, so a chatty server never blocks on a full pipe."""

from __future__ import annotations

import threading
import time
from typing import IO


class Drain:
    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._stream = stream
        self._thread = threading.Thread(target=self._read, name="output-drain", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._stream:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, marker: str, timeout: float = 30.0) -> str:
        """The first line containing ``marker``, waiting for it up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = next((line for line in list(self.lines) if marker in line), None)
            if found is not None:
                return found
            time.sleep(0.05)
        raise AssertionError(f"{marker!r} not printed; output so far: {self.lines[-20:]}")

    def finish(self, timeout: float = 10.0) -> list[str]:
        """Everything printed, once the stream has ended (the process exited)."""
        self._thread.join(timeout=timeout)
        return list(self.lines)
