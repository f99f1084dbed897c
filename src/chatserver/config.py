"""Settings, read once from the environment (prefix ``CHATSERVER_``) and passed down."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# What a browser sends as Origin: scheme://host[:port], nothing after it.
_ORIGIN = re.compile(r"^[a-z][a-z0-9+.-]*://[^/?#@\s]+$")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHATSERVER_", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./chatserver.db"
    db_pool_size: int = Field(10, ge=1)
    db_max_overflow: int = Field(
        0,
        ge=0,
        description="connections past the pool: each is opened for one use and closed, so under load "
        "every turn would pay a new PostgreSQL connection (a backend, its role, its type lookups)",
    )
    db_timeout_seconds: float = Field(5.0, gt=0)
    readiness_timeout_seconds: float = Field(2.0, gt=0, description="bound of /readyz's database checks")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    public_url: str | None = None
    http_max_header_bytes: int = Field(65_536, ge=1024, description="request line and headers, at most")
    http_request_timeout_seconds: float = Field(10.0, gt=0, description="to send a whole request")
    http_keep_alive_seconds: int = Field(5, ge=1, description="an idle keep-alive connection closes after")
    http_max_connections: int = Field(2048, ge=1, description="concurrent connections; 503 past it")

    jwt_secret: SecretStr | None = None
    database_app_role: str = Field(
        "chatserver_rls",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="PostgreSQL: requests run as this role when the configured one bypasses RLS",
    )
    erasure_salt: SecretStr | None = Field(
        None, description="salts the user id hashed into user.erased; unset: derived from jwt_secret"
    )
    jwks_url: str | None = None
    jwt_audience: str = "authenticated"
    jwt_issuer: str | None = None
    jwt_leeway_seconds: int = Field(10, ge=0)
    jwt_max_age_seconds: int | None = Field(None, ge=1, description="longest JWT lifetime; unset: any")
    admin_claim: str = "role"

    default_model: str = "echo"
    openai_base_url: str | None = None
    openai_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("CHATSERVER_OPENAI_API_KEY", "OPENAI_API_KEY")
    )
    anthropic_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("CHATSERVER_ANTHROPIC_API_KEY", "ANTHROPIC_API_KEY")
    )
    google_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("CHATSERVER_GOOGLE_API_KEY", "GOOGLE_API_KEY")
    )
    echo_latency_ms: int = Field(0, ge=0)
    model_timeout_seconds: float = Field(60.0, gt=0)
    model_retries: int = Field(2, ge=0, le=10, description="retries of a failed model request, where safe")
    model_attempt_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="for agents with fallback models: how long one model may take to start answering "
        "(streamed: its first token; otherwise its whole answer) before the next one is tried",
    )
    model_titles: bool = Field(
        True,
        description="title a new chat by its agent's model (not echo) after the first answer; "
        "false: the first message, cleaned up",
    )
    budget_refresh_seconds: float = Field(
        5.0, ge=0, description="how often budgets set on another replica or by the CLI are read"
    )
    model_retry_backoff_seconds: float = Field(0.5, gt=0, le=60, description="first retry wait; doubles")
    max_model_requests: int = Field(10, ge=1, description="model requests (tool steps) per turn")
    local_threads: int | None = Field(None, ge=1, description="llama.cpp threads; unset: its default")
    local_max_tokens: int = Field(512, ge=1, le=4096, description="longest answer of a local model")
    mcp_allow_stdio: bool = Field(False, description="let agents run MCP servers as local commands")
    mcp_timeout_seconds: float = Field(30.0, gt=0, description="MCP connect and per-call timeout")

    history_window: int = Field(50, ge=0)
    max_message_chars: int = Field(32000, ge=1)
    max_body_bytes: int = Field(1_048_576, ge=1024)
    busy_chat_policy: Literal["enqueue", "wait", "reject", "interrupt", "steer"] = "enqueue"
    run_lease_seconds: float = Field(30.0, ge=0.3, description="a dead replica's runs end within 2x this")
    approval_timeout_seconds: float = Field(
        86400.0, gt=0, description="a tool call undecided this long is denied"
    )
    max_runs_per_user: int = Field(64, ge=1, description="a user's queued and running runs; 429 past it")
    run_events_ttl_seconds: float = Field(3600.0, gt=0, description="event logs kept after a run ends")
    run_token_flush_seconds: float | None = Field(
        None, ge=0, le=5, description="a run's tokens batched this long; unset: 0.05 with Redis, else 0"
    )

    agent_cache_size: int = Field(100, ge=1)
    agent_cache_ttl_seconds: float = Field(900.0, gt=0)
    cleanup_interval_seconds: float = Field(300.0, gt=0)
    session_ttl_seconds: float = Field(1800.0, gt=0)
    retention_chat_days: int = Field(0, ge=0, description="chats without activity this long go; 0: never")
    retention_session_days: int = Field(30, ge=0, description="inactive session instances; 0: never")
    retention_event_days: int = Field(0, ge=0, description="audit events; 0: never")
    retention_run_days: int = Field(90, ge=0, description="records of ended runs; 0: never")
    shutdown_grace_seconds: float = Field(30.0, ge=0)
    background_tasks: bool = True

    redis_url: str | None = None
    redis_prefix: str = Field("chatserver:", min_length=1, max_length=64, description="prefix of every key")
    redis_timeout_seconds: float = Field(0.5, gt=0, description="bound of each Redis call a request waits on")
    redis_circuit_seconds: float = Field(5.0, gt=0, description="Redis skipped this long after a failure")
    event_stream_interval_seconds: float = Field(1.0, gt=0, description="audit events to Redis, every")
    rate_limit_per_minute: int = Field(0, ge=0, description="0 disables rate limiting")
    # NoDecode: the environment gives a comma-separated string, not the JSON list pydantic expects.
    cors_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        (), description="browser origins allowed to call every route; * for any; none: no CORS"
    )
    log_level: str = "INFO"
    # The OpenTelemetry SDK's own variable names, so a deployment's usual OTel setup applies as is.
    otel_exporter_otlp_endpoint: str | None = Field(
        None,
        validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT"),
        description="OTLP/HTTP collector base URL (traces go to <url>/v1/traces); unset: no tracing",
    )
    otel_exporter_otlp_traces_endpoint: str | None = Field(
        None,
        validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
        description="full OTLP/HTTP traces URL; wins over the base URL",
    )
    otel_service_name: str = Field("chatserver", validation_alias=AliasChoices("OTEL_SERVICE_NAME"))
    otel_capture_content: bool = Field(
        False, description="put prompts, answers and tool arguments and results in model and tool spans"
    )
    log_json: bool | None = Field(None, description="unset: readable text on a terminal, JSON otherwise")

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("cors_origins")
    @classmethod
    def _check_origins(cls, origins: tuple[str, ...]) -> tuple[str, ...]:
        if "*" in origins and len(origins) > 1:
            raise ValueError("'*' allows every origin: list no other origins with it")
        # Browsers send the scheme and host in lower case; the match is exact.
        checked = tuple(origin.lower() for origin in origins)
        for origin in checked:
            if origin != "*" and not _ORIGIN.match(origin):
                raise ValueError(
                    f"{origin!r} is not an origin: scheme://host[:port], no path or trailing '/'"
                )
        return checked

    @property
    def otel_traces_endpoint(self) -> str | None:
        """Where spans go, by the OTLP exporter's rules; ``None`` turns tracing off."""
        if self.otel_exporter_otlp_traces_endpoint:
            return self.otel_exporter_otlp_traces_endpoint
        if self.otel_exporter_otlp_endpoint:
            return self.otel_exporter_otlp_endpoint.rstrip("/") + "/v1/traces"
        return None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
