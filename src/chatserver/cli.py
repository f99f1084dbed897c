"""The ``chatserver`` command: serve, migrate, doctor, agents, keys, users, chat."""

from __future__ import annotations

import asyncio
import errno
import math
import shlex
import signal
import socket
import uuid
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from chatserver.budget_commands import budgets_app
from chatserver.command_runner import run_use_case as _run
from chatserver.domain import DEFAULT_AGENT, AgentConfig, ApiKey, McpServer, StartRun, User

if TYPE_CHECKING:
    from chatserver.config import Settings
    from chatserver.container import Container
    from chatserver.doctor import Check

# The server's modules (pydantic-ai, SQLAlchemy, FastAPI) are imported by the commands that use
# them, not here: `chatserver --help` and a mistyped command answer at once.

app = typer.Typer(help="Self-hosted, multi-user LLM agent chat server.", no_args_is_help=True)
agents_app = typer.Typer(help="Manage agents.", no_args_is_help=True)
keys_app = typer.Typer(help="Issue, list and revoke API keys.", no_args_is_help=True)
users_app = typer.Typer(help="See users, make or unmake admins, erase a user.", no_args_is_help=True)
app.add_typer(agents_app, name="agents")
app.add_typer(keys_app, name="keys")
app.add_typer(users_app, name="users")
app.add_typer(budgets_app, name="budgets")

T = TypeVar("T")

STARTUP_FAILURE = 3
"""The exit code of a server that could not start, as uvicorn's own."""


@app.command()
def migrate() -> None:
    """Apply database migrations."""
    from chatserver.config import Settings
    from chatserver.storage.sql.migrate import upgrade_to_head

    asyncio.run(upgrade_to_head(Settings().database_url))
    typer.echo("database is up to date")


@app.command()
def doctor() -> None:
    """Check settings, database, Redis and model providers; print what to fix (exit 1 on a failure)."""
    from pydantic import ValidationError

    from chatserver.config import Settings
    from chatserver.container import build_container
    from chatserver.doctor import failed, render, unloadable_settings

    try:
        settings = Settings()
    except ValidationError as error:
        checks = unloadable_settings(error)
    else:

        async def main() -> list[Check]:
            container = build_container(settings)
            try:
                return await container.doctor.run()
            finally:
                await container.aclose()

        checks = asyncio.run(main())
    typer.echo(render(checks))
    if failed(checks):
        raise typer.Exit(1)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (CHATSERVER_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (CHATSERVER_PORT)")] = None,
    workers: Annotated[
        int, typer.Option(min=1, help="Server processes on the one port, e.g. one per core (each a replica)")
    ] = 1,
) -> None:
    """Migrate, seed, and serve HTTP."""
    from chatserver.config import Settings
    from chatserver.observability.logs import configure_logging

    settings = Settings()
    if host is not None:
        settings.host = host
    if port is not None:
        settings.port = port
    configure_logging(settings.log_level, json=settings.log_json)
    if _port_in_use(settings.host, settings.port):
        typer.echo(
            f"error: port {settings.port} on {settings.host} is in use (is chatserver already running?); "
            "choose another with --port N (or CHATSERVER_PORT)",
            err=True,
        )
        raise typer.Exit(STARTUP_FAILURE)
    _prepare_and_greet(settings)
    code = _serve_http(settings, None) if workers == 1 else _serve_workers(settings, workers)
    if code:
        raise typer.Exit(code)


def _prepare_and_greet(settings: Settings) -> None:
    """Migrate and seed, then print where the server is and how to sign in."""
    from chatserver.agents.local import default_model as local_default_model
    from chatserver.bootstrap import prepare

    if "default_model" not in settings.model_fields_set:
        # The seeded agent runs offline on the local model when the local extra is installed.
        settings.default_model = local_default_model()
    prepared = asyncio.run(prepare(settings))
    if prepared.seeded_agent:
        typer.echo(f"created agent '{DEFAULT_AGENT}' with model {settings.default_model}")
    url = settings.public_url or f"http://{settings.host}:{settings.port}"
    if prepared.first_admin_key:
        _print_first_run(url, prepared.first_admin_key)
    else:
        typer.echo(
            f"Server: {url}\n"
            "Need a key to sign in? Keys are shown once, when issued: "
            "chatserver keys create --user NAME --admin (without --admin for a regular user)"
        )


def _serve_workers(settings: Settings, workers: int) -> int:
    import uvicorn

    from chatserver.workers import Supervisor

    # Bound once here, inherited by every worker: the kernel spreads the connections among them.
    sockets = [
        uvicorn.Config("chatserver.api.app:create_app", host=settings.host, port=settings.port).bind_socket()
    ]
    supervisor = Supervisor(
        sockets, workers, lambda bound: _serve_http(settings, bound), startup_failure=STARTUP_FAILURE
    )
    return supervisor.run()


def _serve_http(settings: Settings, sockets: list[socket.socket] | None) -> int:
    """Serve until stopped, on ``sockets`` if given (a worker) or on host and port; the exit code."""
    import uvicorn

    from chatserver.api.app import create_app
    from chatserver.http_server import DrainingServer, server_options
    from chatserver.runtime import tune_garbage_collector

    # uvicorn drains in-flight requests on SIGTERM, then re-raises the signal into the handler that
    # was installed before it started: this one, so a graceful stop exits 0.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    api = create_app(settings)
    tune_garbage_collector()
    try:
        config = uvicorn.Config(
            api,
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level.lower(),
            timeout_graceful_shutdown=math.ceil(settings.shutdown_grace_seconds),
            **server_options(settings),
            # Logging is configured above (JSON, request ids); the access log is written by the
            # app, without query strings, so uvicorn's own is off.
            log_config=None,
            access_log=False,
        )
        server = DrainingServer(config, on_drain=lambda: _draining(api))
        server.run(sockets=sockets)
    except KeyboardInterrupt:
        return 130
    return 0 if server.started else STARTUP_FAILURE


def _port_in_use(host: str, port: int) -> bool:
    """Whether ``host:port`` is taken, checked before the slow start so the answer is immediate."""
    if port == 0:
        return False
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        # create_server sets SO_REUSEADDR as uvicorn does: a port in TIME_WAIT is not "in use".
        with socket.create_server((host, port), family=family):
            return False
    except OSError as error:
        return error.errno == errno.EADDRINUSE


def _draining(api: Any) -> None:
    container = getattr(api.state, "container", None)
    if container is not None:
        container.draining()


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def _print_first_run(url: str, key: str) -> None:
    from chatserver.bootstrap import FIRST_ADMIN

    typer.echo(
        f"\nFirst run: created admin user '{FIRST_ADMIN}'. Its API key is shown once; keep it safe.\n"
        f"Server: {url}  (open it in a browser and sign in with the key below)\n"
        f"Try it:\n  curl -s {url}/api/chat -H 'Authorization: Bearer {key}' "
        f"-H 'Content-Type: application/json' "
        f'-d \'{{"agent_name": "{DEFAULT_AGENT}", "message": "hello", "session_id": "{uuid.uuid4()}"}}\'\n'
        f"API key:\n{key}\n"
    )


@agents_app.command("create")
def agents_create(
    name: str,
    model: Annotated[str, typer.Option(help="provider:model, or echo")],
    system_prompt: Annotated[str, typer.Option("--system-prompt")] = "You are a helpful assistant.",
    description: str = "",
    tool: Annotated[list[str] | None, typer.Option(help="A built-in tool; repeatable")] = None,
    history_window: Annotated[int | None, typer.Option(help="Turns of history the agent sees")] = None,
    mcp: Annotated[
        list[str] | None, typer.Option(help="An MCP server as NAME=URL (streamable HTTP); repeatable")
    ] = None,
    mcp_command: Annotated[
        list[str] | None,
        typer.Option(help="An MCP server as 'NAME=COMMAND ARGS...' (stdio; CHATSERVER_MCP_ALLOW_STDIO)"),
    ] = None,
    context_tokens: Annotated[
        int | None, typer.Option(help="History budget in estimated tokens (oldest turns dropped first)")
    ] = None,
    fallback: Annotated[
        list[str] | None, typer.Option(help="A model tried when the ones before fail; repeatable, in order")
    ] = None,
    approve: Annotated[
        list[str] | None,
        typer.Option(help="A tool whose calls wait for the user's approval (MCP: SERVER_TOOL); repeatable"),
    ] = None,
) -> None:
    """Create an agent."""
    servers = [_mcp_server(value, stdio=False) for value in mcp or ()]
    servers += [_mcp_server(value, stdio=True) for value in mcp_command or ()]
    config = AgentConfig(
        name,
        model,
        system_prompt,
        description,
        tuple(tool or ()),
        history_window,
        mcp_servers=tuple(servers),
        context_tokens=context_tokens,
        fallback_models=tuple(fallback or ()),
        tools_requiring_approval=tuple(approve or ()),
    )
    created = _run(lambda c: c.agents.create(config))
    typer.echo(f"created agent '{created.name}'")


def _mcp_server(value: str, *, stdio: bool) -> McpServer:
    name, sep, target = value.partition("=")
    if not sep or not name or not target.strip():
        raise typer.BadParameter(f"expected NAME=... , got {value!r}")
    if stdio:
        return McpServer(name=name, command=tuple(shlex.split(target)))
    return McpServer(name=name, url=target)


@agents_app.command("list")
def agents_list() -> None:
    """List agents."""
    for agent in _run(lambda c: c.agents.list()):
        tools = ",".join(agent.tools) or "-"
        typer.echo(f"{agent.name}\t{agent.model}\t{tools}\t{agent.description}")


@agents_app.command("delete")
def agents_delete(name: str) -> None:
    """Delete an agent."""
    _run(lambda c: c.agents.delete(name))
    typer.echo(f"deleted agent '{name}'")


@keys_app.command("create")
def keys_create(
    user: Annotated[str, typer.Option(help="User name; created when new")],
    admin: Annotated[bool, typer.Option("--admin", help="Give the user admin rights")] = False,
) -> None:
    """Issue an API key. The key is printed once, alone on the last line."""
    issued = _run(lambda c: c.identity.create_key(user, admin=admin))
    typer.echo(f"key id {issued.key_id} (prefix {issued.prefix}) for user '{user}' ({issued.user.id})")
    if issued.promoted:
        typer.echo(
            f"user '{user}' is now an admin: every key of theirs acts as admin (undo: users unset-admin)"
        )
    typer.echo(issued.key)


@keys_app.command("list")
def keys_list(
    user: Annotated[str | None, typer.Option(help="Only this user's keys (name or id)")] = None,
) -> None:
    """List API keys: id, prefix, user, created, revoked (keys themselves are never stored)."""

    async def listed(c: Container) -> list[tuple[User, list[ApiKey]]]:
        return [await c.identity.user(user)] if user else await c.identity.users()

    for owner, keys in _run(listed):
        for key in keys:
            revoked = key.revoked_at.isoformat() if key.revoked_at else "active"
            typer.echo(
                f"{key.id}\t{key.prefix}\t{owner.name or owner.id}\t{key.created_at.isoformat()}\t{revoked}"
            )


@users_app.command("list")
def users_list() -> None:
    """List users: id, name (key users; JWT users have none), admin, created, active keys."""
    for user, keys in _run(lambda c: c.identity.users()):
        active = sum(1 for key in keys if key.revoked_at is None)
        admin = "admin" if user.is_admin else "-"
        typer.echo(f"{user.id}\t{user.name or '-'}\t{admin}\t{user.created_at.isoformat()}\t{active} key(s)")


@users_app.command("show")
def users_show(user: Annotated[str, typer.Argument(help="Name or id")]) -> None:
    """Show one user and their keys."""
    found, keys = _run(lambda c: c.identity.user(user))
    typer.echo(f"id {found.id}\nname {found.name or '-'}\nadmin {'yes' if found.is_admin else 'no'}")
    typer.echo(f"created {found.created_at.isoformat()}")
    for key in keys:
        typer.echo(f"key {key.id} {key.prefix} {'revoked' if key.revoked_at else 'active'}")


@users_app.command("set-admin")
def users_set_admin(user: Annotated[str, typer.Argument(help="Name or id")]) -> None:
    """Make a user an admin: every key of theirs then acts as admin."""
    changed = _run(lambda c: c.identity.set_admin(user, is_admin=True))
    typer.echo(f"user '{changed.name or changed.id}' is an admin")


@users_app.command("unset-admin")
def users_unset_admin(user: Annotated[str, typer.Argument(help="Name or id")]) -> None:
    """Make a user a regular user again."""
    changed = _run(lambda c: c.identity.set_admin(user, is_admin=False))
    typer.echo(f"user '{changed.name or changed.id}' is not an admin")


@users_app.command("erase")
def users_erase(
    user: Annotated[str, typer.Argument(help="Name or id")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
) -> None:
    """Erase a user and everything of theirs (see README, Data lifecycle)."""
    if not yes:
        typer.confirm(f"Erase user '{user}' and everything of theirs?", abort=True)

    async def erase(c: Container) -> dict[str, int]:
        found, _keys = await c.identity.user(user)
        return await c.erasure.erase(found.id, by="cli")

    counts = _run(erase)
    typer.echo("erased " + ", ".join(f"{kind} {n}" for kind, n in counts.items()))


@keys_app.command("revoke")
def keys_revoke(key: Annotated[str, typer.Argument(help="Key id or prefix")]) -> None:
    """Revoke an API key."""
    _run(lambda c: c.identity.revoke_key(key))
    typer.echo("revoked")


@app.command()
def chat(
    message: str,
    user: Annotated[str, typer.Option(help="User name (as given to keys create)")],
    agent: str = DEFAULT_AGENT,
    chat_id: Annotated[str | None, typer.Option("--chat", help="Chat id to continue")] = None,
) -> None:
    """Send one message as a user and print the answer."""
    chat_id = chat_id or str(uuid.uuid4())

    async def turn(c: Container) -> str:
        found = await c.identity.user_named(user)
        from chatserver.services.run_errors import error_of

        handle = await c.runs.start(StartRun(found.id, agent, message, chat_id=chat_id))
        outcome = await handle.outcome()
        if outcome.kind == "error":
            raise error_of(outcome.data["code"], outcome.data["detail"])
        return str(outcome.data.get("response") or "")

    typer.echo(_run(turn))
    typer.echo(f"(chat {chat_id})", err=True)


def main() -> None:
    app()
