#!/usr/bin/env python3
"""Developer entry point that needs only Python: sets up .venv on first use, then runs a task.

python3 dev.py run     # install what serving needs and start the server on SQLite (./chatserver.db)
python3 dev.py test    # install the test tools too and run the whole test suite
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
EXTRAS = {"run": "", "test": "dev", "lint": "dev", "bench": "dev"}
"""The extras each task installs: serving needs none of the test and lint tools."""


def bin_dir(env: Path) -> Path:
    return env / ("Scripts" if os.name == "nt" else "bin")


def stamp_dir(env: Path) -> Path:
    return env / ".chatserver-installed"


def extras_of(stamp: Path) -> set[str]:
    return set() if stamp.name == "base" else set(stamp.name.split(","))


def installed(env: Path, extras: str, wanted: str) -> bool:
    """Whether an install of ``extras`` (or more) was made from this very pyproject.toml."""
    stamps = stamp_dir(env)
    needed = extras_of(stamps / (extras or "base"))
    return stamps.is_dir() and any(
        stamp.read_text() == wanted and needed <= extras_of(stamp) for stamp in stamps.iterdir()
    )


def ensure_venv(extras: str, env: Path = VENV) -> None:
    """Create ``env`` and install the project with ``extras``, again whenever pyproject.toml changes.

    One stamp per set of extras, so switching between ``run`` and ``test`` installs only what is new.
    """
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if installed(env, extras, wanted):
        return
    if not (bin_dir(env) / "python").exists():
        print("creating .venv", flush=True)
        venv.EnvBuilder(with_pip=True).create(env)
    pip = [str(bin_dir(env) / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[{extras}]" if extras else str(ROOT)], check=True)
    stamp_dir(env).mkdir(exist_ok=True)
    (stamp_dir(env) / (extras or "base")).write_text(wanted)


def run(*argv: str) -> int:
    return subprocess.call([str(bin_dir(VENV) / argv[0]), *argv[1:]], cwd=ROOT)


def main() -> int:
    task, *rest = sys.argv[1:] or ["help"]
    if task not in EXTRAS:
        print(__doc__)
        return 0 if task == "help" else 2
    ensure_venv(EXTRAS[task])
    if task == "run":
        return run("chatserver", "serve", *rest)
    if task == "test":
        return run("pytest", *rest)
    if task == "lint":
        return run("ruff", "check", ".") or run("mypy")
    return run("python", "-m", "benchmarks.run", *rest)


if __name__ == "__main__":
    sys.exit(main())
