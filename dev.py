#!/usr/bin/env python3
"""Developer entry point that needs only Python: sets up .venv on first use, then runs a task.

python3 dev.py run     # install and start the server on SQLite (./chatserver.db)
python3 dev.py test    # install and run the whole test suite
python3 dev.py lint    # ruff and mypy
python3 dev.py bench   # benchmarks (see README)
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".installed"


def ensure_venv() -> None:
    """Create .venv and install the project, again whenever pyproject.toml changes."""
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not (BIN / "python").exists():
        print("creating .venv", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    pip = [str(BIN / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[dev]"], check=True)
    STAMP.write_text(wanted)


def run(*argv: str) -> int:
    return subprocess.call([str(BIN / argv[0]), *argv[1:]], cwd=ROOT)


def main() -> int:
    task, *rest = sys.argv[1:] or ["help"]
    if task not in {"run", "test", "lint", "bench"}:
        print(__doc__)
        return 0 if task == "help" else 2
    ensure_venv()
    if task == "run":
        return run("chatserver", "serve", *rest)
    if task == "test":
        return run("pytest", *rest)
    if task == "lint":
        return run("ruff", "check", ".") or run("mypy")
    return run("python", "-m", "benchmarks.run", *rest)


if __name__ == "__main__":
    sys.exit(main())
