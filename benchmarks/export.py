"""GET /api/me/export of a user with many messages, over real HTTP against `chatserver serve` on
SQLite: time, size, and how much the server's peak RSS grows while it streams the export.

    .venv/bin/python -m benchmarks.export [--messages 100000] [--chats 100]

The peak is reset before each export (``/proc/PID/clear_refs``), so the delta is the export's own;
a streamed export should grow about as much for 10x the messages.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks.common import chatserver, fresh_database, process_usage, token
from benchmarks.seed import seed_long_chats

USER = "exporter"


def reset_peak(pid: int) -> None:
    """Linux: writing 5 to clear_refs resets VmHWM to the current RSS."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def export_once(url: str, pid: int) -> tuple[float, int, float]:
    """(seconds, bytes, peak RSS growth in MB) of one export, read as it arrives."""
    reset_peak(pid)
    before = process_usage(pid).rss_mb
    started = time.perf_counter()
    size = 0
    headers = {"Authorization": f"Bearer {token(USER)}"}
    with httpx.stream("GET", f"{url}/api/me/export", headers=headers, timeout=600) as response:
        response.raise_for_status()
        for chunk in response.iter_bytes():
            size += len(chunk)
    return time.perf_counter() - started, size, process_usage(pid).peak_rss_mb - before


def measure(directory: Path, messages: int, chats: int) -> tuple[float, int, float]:
    async def seed() -> str:
        async with fresh_database("sqlite", directory) as url:
            owned = [(f"chat-{n:05d}", USER) for n in range(chats)]
            await seed_long_chats(url, owned, messages=messages // chats)
            return url

    url = asyncio.run(seed())
    with chatserver(url, directory, CHATSERVER_LOG_LEVEL="WARNING") as server:
        export_once(server.url, server.process.pid)  # warm: imports and first connections
        return export_once(server.url, server.process.pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--chats", type=int, default=100)
    args = parser.parse_args()
    print(f"{'messages':>9} {'chats':>6} {'seconds':>8} {'MB sent':>8} {'peak RSS +MB':>13}")
    for messages in sorted({args.messages // 10, args.messages}):
        with tempfile.TemporaryDirectory() as directory:
            seconds, size, grown = measure(Path(directory), messages, args.chats)
        print(f"{messages:>9} {args.chats:>6} {seconds:>8.2f} {size / 1e6:>8.1f} {grown:>13.1f}")


if __name__ == "__main__":
    main()
