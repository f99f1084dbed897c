"""``dev.py``: each task installs only what it needs, and switching tasks installs only what is new."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_dev() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dev_script", ROOT / "dev.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Pip:
    """Stands in for the pip child process (the process edge) and records what it was asked."""

    def __init__(self) -> None:
        self.installs: list[str] = []

    def __call__(self, command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        if command[-2:] != ["--upgrade", "pip"]:
            self.installs.append(command[-1])
        return subprocess.CompletedProcess(command, 0)


@pytest.fixture
def dev_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[ModuleType, Path, Pip]:
    dev = load_dev()
    env = tmp_path / "venv"
    python = dev.bin_dir(env) / "python"
    python.parent.mkdir(parents=True)
    python.touch()  # an existing virtualenv: only the installs are under test
    pip = Pip()
    monkeypatch.setattr(dev.subprocess, "run", pip)
    return dev, env, pip


def test_run_installs_the_project_without_the_test_and_lint_tools(
    dev_env: tuple[ModuleType, Path, Pip],
) -> None:
    dev, env, pip = dev_env
    dev.ensure_venv(dev.EXTRAS["run"], env)
    assert pip.installs == [str(ROOT)]


def test_test_lint_and_bench_install_the_dev_extra(dev_env: tuple[ModuleType, Path, Pip]) -> None:
    dev, env, pip = dev_env
    for task in ("test", "lint", "bench"):
        dev.ensure_venv(dev.EXTRAS[task], env)
    assert pip.installs == [f"{ROOT}[dev]"]


def test_switching_from_run_to_test_installs_the_extra_and_back_installs_nothing(
    dev_env: tuple[ModuleType, Path, Pip],
) -> None:
    dev, env, pip = dev_env
    for task in ("run", "test", "run", "lint", "run"):
        dev.ensure_venv(dev.EXTRAS[task], env)
    assert pip.installs == [str(ROOT), f"{ROOT}[dev]"]


def test_a_changed_pyproject_installs_again(
    dev_env: tuple[ModuleType, Path, Pip], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    dev, env, pip = dev_env
    dev.ensure_venv("dev", env)
    changed = tmp_path / "project"
    changed.mkdir()
    (changed / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text() + "\n# changed\n")
    monkeypatch.setattr(dev, "ROOT", changed)
    dev.ensure_venv("", env)
    assert pip.installs == [f"{ROOT}[dev]", str(changed)]
