"""What the contenders other than chatserver share: a virtualenv of their own from pinned
requirements, and an environment that inherits nothing of the project's.

The peers' code is installed from PyPI here and never kept in the repository; only our app and
configuration files for them (``agno_app/``, ``langgraph_app/``) are.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

DEFAULT_CACHE = Path(os.environ.get("CHATSERVER_BENCH_CACHE", Path.home() / ".cache" / "chatserver-bench"))
_STAMP = ".requirements.sha256"
# What a peer's process must not inherit: the project's interpreter and settings. What it gets:
# no telemetry or analytics of any kind (there is no internet here, and none of it is measured).
_NOT_INHERITED = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
NO_TELEMETRY = {
    "AGNO_TELEMETRY": "false",
    "LANGGRAPH_CLI_NO_ANALYTICS": "1",
    "LANGSMITH_TRACING": "false",
    "LANGCHAIN_TRACING_V2": "false",
    "LANGSMITH_TRACING_V2": "false",
    "DO_NOT_TRACK": "1",
}


def venv_dir(cache: Path, name: str) -> Path:
    return cache / "venvs" / name


def ensure_venv(cache: Path, name: str, requirements: Path) -> Path:
    """The virtualenv ``cache/venvs/name`` with exactly ``requirements`` installed; kept as it is
    while the requirements file is unchanged. Returns its ``bin`` folder."""
    venv = venv_dir(cache, name)
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    stamp = venv / _STAMP
    python = venv / "bin" / "python"
    if python.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return venv / "bin"
    venv.parent.mkdir(parents=True, exist_ok=True)
    # A fresh one: an older set of packages left in place could mask a missing pin.
    subprocess.run(["/usr/bin/env", "python3", "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(requirements)], check=True)
    stamp.write_text(digest + "\n")
    return venv / "bin"


def peer_env(**extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in _NOT_INHERITED and not key.startswith("CHATSERVER_")
    }
    return {**env, **NO_TELEMETRY, **extra}
