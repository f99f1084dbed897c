"""Contenders' own virtualenvs under the benchmark's cache folder, made from a pinned requirements file."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

INSTALL_TIMEOUT_S = 1200
_STAMP = ".requirements-sha256"


def venv_python(cache: Path, name: str) -> Path:
    return cache / "venvs" / name / "bin" / "python"


def ensure_venv(cache: Path, name: str, requirements: Path) -> Path:
    """``cache/venvs/name`` with exactly ``requirements`` installed (pip, from the package index);
    kept while the requirements file is unchanged, made anew when it changes. Returns its python."""
    venv = cache / "venvs" / name
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    stamp = venv / _STAMP
    if stamp.exists() and stamp.read_text() == digest:
        return venv_python(cache, name)
    if venv.exists():
        shutil.rmtree(venv)
    print(f"installing {name} into {venv} (once per requirements change) ...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv_python(cache, name)), "-m", "pip", "install", "--quiet", "--no-input"]
    subprocess.run([*pip, "-r", str(requirements)], check=True, timeout=INSTALL_TIMEOUT_S)
    stamp.write_text(digest)
    return venv_python(cache, name)
