"""Provider SDKs load when an agent first uses one, not at start; their errors still map to ModelError.

The command line loads the server's libraries only for the commands that need them.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from chatserver.agents.registry import ModelRegistry
from chatserver.agents.runner import map_model_errors
from chatserver.config import Settings
from chatserver.errors import ModelError

SDKS = ("openai", "anthropic", "google.genai")


SERVER_LIBRARIES = ("pydantic_ai", "sqlalchemy", "fastapi", *SDKS)


def modules_loaded_after(code: str, modules: tuple[str, ...] = SDKS) -> set[str]:
    """Which of ``modules`` a fresh interpreter has loaded after running ``code``."""
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {modules!r} if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return set(done.stdout.split())


@pytest.mark.parametrize("module", ["chatserver.api.app", "chatserver.cli", "chatserver.container"])
def test_importing_the_server_loads_no_provider_sdk(module: str) -> None:
    assert modules_loaded_after(f"import {module}") == set()


def test_resolving_an_openai_model_loads_that_sdk_alone() -> None:
    code = (
        "from chatserver.api.app import create_app\n"
        "from chatserver.agents.registry import ModelRegistry\n"
        "from chatserver.config import Settings\n"
        "settings = Settings(database_url='sqlite+aiosqlite:///:memory:', openai_api_key='sk-test')\n"
        "ModelRegistry(settings).resolve('openai:gpt-4.1-mini')"
    )
    assert modules_loaded_after(code) == {"openai"}


def test_an_openai_sdk_error_is_a_model_error_once_the_sdk_is_in_use() -> None:
    settings = Settings(database_url="sqlite+aiosqlite:///:memory:", openai_api_key="sk-test")
    ModelRegistry(settings).resolve("openai:gpt-4.1-mini")
    import openai

    with pytest.raises(ModelError, match=r"unreachable \(OpenAIError\)"), map_model_errors(10):
        raise openai.OpenAIError("boom with sk-test")


def test_an_anthropic_sdk_error_is_a_model_error_once_the_sdk_is_in_use() -> None:
    settings = Settings(database_url="sqlite+aiosqlite:///:memory:", anthropic_api_key="sk-ant-test")
    ModelRegistry(settings).resolve("anthropic:claude-sonnet-4-5")
    import anthropic

    with pytest.raises(ModelError, match=r"unreachable \(AnthropicError\)"), map_model_errors(10):
        raise anthropic.AnthropicError("boom")


def test_the_commands_help_loads_none_of_the_servers_libraries() -> None:
    code = (
        "import contextlib, io, sys\n"
        "from chatserver.cli import main\n"
        "sys.argv = ['chatserver', '--help']\n"
        "with contextlib.redirect_stdout(io.StringIO()) as shown, contextlib.suppress(SystemExit):\n"
        "    main()\n"
        "assert 'serve' in shown.getvalue()"
    )
    assert modules_loaded_after(code, SERVER_LIBRARIES) == set()
