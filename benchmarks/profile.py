"""Profile the server under load: py-spy samples `chatserver serve` while the load driver runs.

    python -m benchmarks.profile --db postgres --concurrency 1 --turns 2000

Prints the functions that take the most samples (inclusive and self) and leaves the raw collapsed
stacks (`--out`, for flame graph tools or speedscope) behind. py-spy comes with the dev extra.
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from benchmarks.common import Server, chatserver
from benchmarks.load import chat_ids, drive, run_on_uvloop
from benchmarks.run import USERS, database

_LINE = re.compile(r"^(?P<stack>.*) (?P<count>\d+)$")
_FRAME = re.compile(r"^(?P<name>.*?) \((?P<file>[^:]*)(?::\d+)?\)$")


def _frame_label(frame: str) -> str:
    """``name (path/to/file.py:123)`` -> ``name (package/file.py)``: one label per function, any line."""
    match = _FRAME.match(frame)
    if match is None:
        return frame
    path = match["file"]
    for marker in ("site-packages/", "src/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match['name']} ({path})"


def summarize(raw: Path, top: int, focus: str | None = None) -> None:
    """Share of samples per function, inclusive and self; ``focus``: only stacks through it."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        match = _LINE.match(line)
        if match is None:
            continue
        count = int(match["count"])
        frames = [_frame_label(f) for f in match["stack"].split(";")]
        total += count
        if focus is not None:
            at = next((i for i, frame in enumerate(frames) if frame.startswith(focus)), None)
            if at is None:
                continue
            frames = frames[at:]
        for label in set(frames):
            inclusive[label] += count
        if frames:
            own[frames[-1]] += count
    print(f"\n{total} samples\n\n### inclusive\n")
    for label, count in inclusive.most_common(top):
        print(f"{100 * count / total:5.1f}%  {label}")
    print("\n### self\n")
    for label, count in own.most_common(top):
        print(f"{100 * count / total:5.1f}%  {label}")


def record(server: Server, args: argparse.Namespace) -> None:
    """Warm up, then drive ``args.turns`` turns with py-spy attached to the server."""
    chats = chat_ids("profile", args.concurrency)

    def load(turns: int) -> None:
        result = run_on_uvloop(
            drive(
                server.url,
                path="/api/chat",
                agent="assistant",
                chats=chats,
                users=USERS,
                turns=turns,
                message="hello",
            )
        )
        print(
            f"{result.turns} turns, {result.errors} errors, {result.turns_per_second:.0f}/s, "
            f"p50 {result.p50:.2f} ms",
            file=sys.stderr,
        )

    load(max(2 * args.concurrency, 50))
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    argv = [
        py_spy,
        "record",
        "--pid",
        str(server.process.pid),
        "--format",
        "raw",
        "--rate",
        str(args.rate),
        "--output",
        str(args.out),
    ]
    if args.idle:
        argv.append("--idle")
    # Sampling without pausing the server disturbs it least; native frames need the pause.
    argv.append("--native" if args.native else "--nonblocking")
    recorder = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        load(args.turns)
    finally:
        recorder.send_signal(signal.SIGINT)
        recorder.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--turns", type=int, default=2000)
    parser.add_argument("--rate", type=int, default=1000, help="samples per second")
    parser.add_argument("--top", type=int, default=45)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/profile.txt"))
    parser.add_argument("--idle", action="store_true", help="include samples of an idle event loop")
    parser.add_argument("--native", action="store_true", help="include C and Cython frames")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the server")
    parser.add_argument("--focus", help="only stacks through this function (name prefix)")
    parser.add_argument("--summarize", action="store_true", help="summarize --out again, do not record")
    args = parser.parse_args()
    if args.summarize:
        summarize(args.out, args.top, args.focus)
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    extra = dict(item.split("=", 1) for item in args.env)
    with (
        tempfile.TemporaryDirectory() as tmp,
        database(args.db, Path(tmp)) as url,
        chatserver(url, Path(tmp), **extra) as server,
    ):
        record(server, args)
    summarize(args.out, args.top, args.focus)


if __name__ == "__main__":
    main()
