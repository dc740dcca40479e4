"""Settings: read once from the environment, typed, frozen and validated at start-up.

Only :meth:`Settings.from_env` reads the environment (``manage.py`` and ``runtime.setup()`` call it
once, through :meth:`Settings.from_process_env`). Names follow
Dify where Dify has a setting (``MAIL_TYPE``, ``SMTP_*``, ``CONSOLE_WEB_URL``, ``LOG_LEVEL``);
settings of our own carry the ``WORKER_`` prefix. Tests build ``Settings(...)`` directly, by field
name. An empty environment variable counts as unset.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic import model_validator as _model_validator

from worker import queues
from worker.domain import mail_headers
from worker.domain.mail_inner import TemplatingMode

#: Where the embedded PostgreSQL keeps its data when ``DATABASE_URL`` is unset.
WORKER_DATA_DIR = Path(".data")
#: Dify's default SMTP port (implicit TLS).
SMTP_PORT = 465
#: Log level of the CLI and the worker.
LOG_LEVEL = "INFO"
#: Seconds to wait for a database connection before giving up.
WORKER_DB_CONNECT_TIMEOUT = 10
#: Seconds running jobs get to finish after SIGTERM/SIGINT before they are aborted.
WORKER_SHUTDOWN_TIMEOUT = 30.0
#: Seconds between two heartbeats of a worker.
WORKER_HEARTBEAT_INTERVAL = 10.0
#: Seconds without a heartbeat after which a worker is presumed dead and its jobs re-queued.
WORKER_STALLED_AFTER = 60.0
#: Seconds between two sweeps for stalled jobs.
WORKER_RECOVERY_INTERVAL = 15.0
#: Lost runs in which a job ran alone (its worker died each time) before it is failed as poison.
WORKER_MAX_LOST_RUNS = 3
#: Seconds the enterprise inner mail's body may take to render in the sandbox (Dify's value).
MAIL_TEMPLATING_TIMEOUT = 3.0
#: Seconds a document may stay in progress with no job before the sweep re-defers it.
STUCK_DOCUMENT_AFTER = 300.0
#: Notion's public API.
NOTION_API_BASE_URL = "https://api.notion.com/v1"
#: Timeout of one outgoing HTTP request (Notion, websites, embeddings), in seconds.
WORKER_HTTP_TIMEOUT = 30.0
#: Texts per embedding request.
WORKER_EMBEDDING_BATCH_SIZE = 32
#: Dimension of the local embedder's vectors.
WORKER_EMBEDDING_DIMENSION = 256
#: Segments embedded and committed per step while indexing a document.
WORKER_INDEXING_BATCH_SIZE = 64
#: Seconds between two stuck-document sweeps of the scheduler (ticks at multiples of it).
WORKER_SWEEP_INTERVAL = 300
#: Seconds between two retention runs of the scheduler (ticks at multiples of it: hourly at :00).
WORKER_RETENTION_INTERVAL = 3600
#: Finished jobs (succeeded, cancelled, aborted) are deleted this many seconds after they ended.
WORKER_RETAIN_SUCCEEDED = 86400.0
#: Failed jobs are kept this long (seconds), so that operators can still ``jobs retry`` them.
WORKER_RETAIN_FAILED = 7 * 86400.0
#: Mail delivery records are kept this long (seconds).
WORKER_RETAIN_MAIL_DELIVERIES = 30 * 86400.0
#: Dify's plugin daemon.
PLUGIN_DAEMON_URL = "http://localhost:5002"
#: Dify's default key of the plugin daemon's API.
PLUGIN_DAEMON_KEY = "plugin-api-key"
#: Dify's marketplace.
MARKETPLACE_API_URL = "https://marketplace.dify.ai"
#: Largest plugin package downloaded from the marketplace, in bytes (Dify's 15 MiB).
PLUGIN_MAX_PACKAGE_SIZE = 15 * 1024 * 1024
#: Where ``manage.py dashboard`` listens: this machine only, unless told otherwise.
WORKER_DASHBOARD_HOST = "127.0.0.1"
WORKER_DASHBOARD_PORT = 8800
#: Shortest dashboard token accepted.
MIN_DASHBOARD_TOKEN = 16

#: Days between two runs of Dify's daily maintenance (``CELERY_BEAT_SCHEDULER_TIME``).
CELERY_BEAT_SCHEDULER_TIME = 1
#: Days unused after which datasets' documents are disabled (every workspace) and cached
#: embeddings deleted.
PLAN_SANDBOX_CLEAN_DAY_SETTING = 30
#: Days unused after which a sandbox workspace's datasets are disabled (billing only).
PLAN_PRO_CLEAN_DAY_SETTING = 7
#: Minutes between two checks of the queue monitor.
QUEUE_MONITOR_INTERVAL = 30
#: Waiting jobs of a queue from which the queue monitor alerts.
QUEUE_MONITOR_THRESHOLD = 200

#: Units of durations: ``90``, ``90s``, ``15m``, ``12h``, ``7d``.
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

_POSTGRES_SCHEMES = frozenset({"postgresql", "postgres", "postgresql+psycopg"})


class ConfigError(Exception):
    """The configuration is invalid; the message names every bad setting."""


class MailType(enum.StrEnum):
    """Mail backends, as Dify's ``MAIL_TYPE``."""

    #: SMTP: plain, STARTTLS (``SMTP_OPPORTUNISTIC_TLS``) or implicit TLS (``SMTP_USE_TLS``).
    SMTP = "smtp"
    #: Resend's HTTP API.
    RESEND = "resend"
    #: SendGrid's HTTP API.
    SENDGRID = "sendgrid"


class EmbeddingProvider(enum.StrEnum):
    """Where document and annotation embeddings come from."""

    #: Deterministic feature hashing: offline, no model download (the default).
    LOCAL = "local"
    #: An OpenAI-compatible ``POST {base}/embeddings`` endpoint.
    OPENAI = "openai"


class Settings(BaseModel):
    """Every setting of the worker and the CLI; see the README's table for each one."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", validate_by_name=True, validate_by_alias=True
    )

    database_url: str | None = Field(default=None, alias="DATABASE_URL")
    data_dir: Path = Field(default=WORKER_DATA_DIR, alias="WORKER_DATA_DIR")
    db_connect_timeout: int = Field(
        default=WORKER_DB_CONNECT_TIMEOUT, alias="WORKER_DB_CONNECT_TIMEOUT", ge=1, le=300
    )
    log_level: str = Field(default=LOG_LEVEL, alias="LOG_LEVEL")
    console_web_url: str = Field(default="", alias="CONSOLE_WEB_URL")
    import_paths: tuple[str, ...] = Field(default=(), alias="WORKER_IMPORT_PATHS")
    concurrency: dict[str, int] = Field(default_factory=dict, alias="WORKER_CONCURRENCY")
    shutdown_timeout: float = Field(
        default=WORKER_SHUTDOWN_TIMEOUT, alias="WORKER_SHUTDOWN_TIMEOUT", ge=0
    )
    heartbeat_interval: float = Field(
        default=WORKER_HEARTBEAT_INTERVAL, alias="WORKER_HEARTBEAT_INTERVAL", gt=0
    )
    stalled_after: float = Field(default=WORKER_STALLED_AFTER, alias="WORKER_STALLED_AFTER", gt=0)
    recovery_interval: float = Field(
        default=WORKER_RECOVERY_INTERVAL, alias="WORKER_RECOVERY_INTERVAL", gt=0
    )

    max_lost_runs: int = Field(
        default=WORKER_MAX_LOST_RUNS, alias="WORKER_MAX_LOST_RUNS", ge=1, le=1000
    )
    #: Jobs a worker process runs before it replaces itself (Celery's max_tasks_per_child).
    max_jobs: int | None = Field(default=None, alias="WORKER_MAX_JOBS", ge=1, le=10_000_000)
    #: Resident MiB after which a worker process replaces itself (max_memory_per_child).
    max_memory_mb: int | None = Field(
        default=None, alias="WORKER_MAX_MEMORY_MB", ge=1, le=16 * 1024 * 1024
    )

    mail_type: MailType | None = Field(default=None, alias="MAIL_TYPE")
    mail_default_send_from: str | None = Field(default=None, alias="MAIL_DEFAULT_SEND_FROM")
    smtp_server: str | None = Field(default=None, alias="SMTP_SERVER")
    smtp_port: int = Field(default=SMTP_PORT, alias="SMTP_PORT", ge=1, le=65535)
    smtp_username: str | None = Field(default=None, alias="SMTP_USERNAME")
    smtp_password: SecretStr | None = Field(default=None, alias="SMTP_PASSWORD")
    smtp_use_tls: bool = Field(default=False, alias="SMTP_USE_TLS")
    smtp_opportunistic_tls: bool = Field(default=False, alias="SMTP_OPPORTUNISTIC_TLS")
    storage_local_path: Path | None = Field(default=None, alias="STORAGE_LOCAL_PATH")
    http_timeout: float = Field(default=WORKER_HTTP_TIMEOUT, alias="WORKER_HTTP_TIMEOUT", gt=0)
    embedding_provider: EmbeddingProvider = Field(
        default=EmbeddingProvider.LOCAL, alias="WORKER_EMBEDDING_PROVIDER"
    )
    embedding_base_url: str | None = Field(default=None, alias="WORKER_EMBEDDING_BASE_URL")
    embedding_api_key: SecretStr | None = Field(default=None, alias="WORKER_EMBEDDING_API_KEY")
    embedding_model: str | None = Field(default=None, alias="WORKER_EMBEDDING_MODEL")
    embedding_batch_size: int = Field(
        default=WORKER_EMBEDDING_BATCH_SIZE, alias="WORKER_EMBEDDING_BATCH_SIZE", ge=1, le=2048
    )
    embedding_dimension: int = Field(
        default=WORKER_EMBEDDING_DIMENSION, alias="WORKER_EMBEDDING_DIMENSION", ge=8, le=4096
    )
    indexing_batch_size: int = Field(
        default=WORKER_INDEXING_BATCH_SIZE, alias="WORKER_INDEXING_BATCH_SIZE", ge=1, le=10000
    )
    notion_api_base_url: str = Field(default=NOTION_API_BASE_URL, alias="NOTION_API_BASE_URL")
    notion_integration_token: SecretStr | None = Field(
        default=None, alias="NOTION_INTEGRATION_TOKEN"
    )
    website_crawl_base_url: str | None = Field(default=None, alias="WEBSITE_CRAWL_BASE_URL")
    website_crawl_api_key: SecretStr | None = Field(default=None, alias="WEBSITE_CRAWL_API_KEY")
    mail_templating_mode: TemplatingMode = Field(
        default=TemplatingMode.SANDBOX, alias="MAIL_TEMPLATING_MODE"
    )
    mail_templating_timeout: float = Field(
        default=MAIL_TEMPLATING_TIMEOUT, alias="MAIL_TEMPLATING_TIMEOUT", gt=0, le=60
    )
    sendgrid_api_url: str | None = Field(default=None, alias="SENDGRID_API_URL")
    mail_brand_title: str | None = Field(default=None, alias="WORKER_MAIL_BRAND_TITLE")
    resend_api_key: SecretStr | None = Field(default=None, alias="RESEND_API_KEY")
    resend_api_url: str | None = Field(default=None, alias="RESEND_API_URL")
    sendgrid_api_key: SecretStr | None = Field(default=None, alias="SENDGRID_API_KEY")

    scheduler: bool = Field(default=True, alias="WORKER_SCHEDULER")
    sweep_interval: int = Field(
        default=WORKER_SWEEP_INTERVAL, alias="WORKER_SWEEP_INTERVAL", ge=1, le=7 * 86400
    )
    retention_interval: int = Field(
        default=WORKER_RETENTION_INTERVAL, alias="WORKER_RETENTION_INTERVAL", ge=1, le=7 * 86400
    )
    retain_succeeded: float = Field(
        default=WORKER_RETAIN_SUCCEEDED, alias="WORKER_RETAIN_SUCCEEDED", gt=0
    )
    retain_failed: float = Field(default=WORKER_RETAIN_FAILED, alias="WORKER_RETAIN_FAILED", gt=0)
    retain_mail_deliveries: float = Field(
        default=WORKER_RETAIN_MAIL_DELIVERIES, alias="WORKER_RETAIN_MAIL_DELIVERIES", gt=0
    )
    plugin_daemon_url: str = Field(default=PLUGIN_DAEMON_URL, alias="PLUGIN_DAEMON_URL")
    plugin_daemon_key: SecretStr = Field(
        default=SecretStr(PLUGIN_DAEMON_KEY), alias="PLUGIN_DAEMON_KEY"
    )
    marketplace_api_url: str = Field(default=MARKETPLACE_API_URL, alias="MARKETPLACE_API_URL")
    marketplace_enabled: bool = Field(default=True, alias="MARKETPLACE_ENABLED")
    check_upgradable_plugins: bool = Field(
        default=True, alias="ENABLE_CHECK_UPGRADABLE_PLUGIN_TASK"
    )
    plugin_max_package_size: int = Field(
        default=PLUGIN_MAX_PACKAGE_SIZE, alias="PLUGIN_MAX_PACKAGE_SIZE", ge=1
    )
    dashboard_token: SecretStr | None = Field(default=None, alias="WORKER_DASHBOARD_TOKEN")
    dashboard_host: str = Field(
        default=WORKER_DASHBOARD_HOST, alias="WORKER_DASHBOARD_HOST", min_length=1
    )
    dashboard_port: int = Field(
        default=WORKER_DASHBOARD_PORT, alias="WORKER_DASHBOARD_PORT", ge=1, le=65535
    )
    clean_embedding_cache: bool = Field(default=False, alias="ENABLE_CLEAN_EMBEDDING_CACHE_TASK")
    clean_unused_datasets: bool = Field(default=False, alias="ENABLE_CLEAN_UNUSED_DATASETS_TASK")
    clean_document_notify: bool = Field(
        default=False, alias="ENABLE_MAIL_CLEAN_DOCUMENT_NOTIFY_TASK"
    )
    queue_monitor: bool = Field(default=False, alias="ENABLE_DATASETS_QUEUE_MONITOR")
    beat_scheduler_days: int = Field(
        default=CELERY_BEAT_SCHEDULER_TIME, alias="CELERY_BEAT_SCHEDULER_TIME", ge=1, le=365
    )
    plan_sandbox_clean_days: int = Field(
        default=PLAN_SANDBOX_CLEAN_DAY_SETTING,
        alias="PLAN_SANDBOX_CLEAN_DAY_SETTING",
        ge=1,
        le=3650,
    )
    plan_pro_clean_days: int = Field(
        default=PLAN_PRO_CLEAN_DAY_SETTING, alias="PLAN_PRO_CLEAN_DAY_SETTING", ge=1, le=3650
    )
    queue_monitor_interval: int = Field(
        default=QUEUE_MONITOR_INTERVAL, alias="QUEUE_MONITOR_INTERVAL", ge=1, le=1440
    )
    queue_monitor_threshold: int = Field(
        default=QUEUE_MONITOR_THRESHOLD, alias="QUEUE_MONITOR_THRESHOLD", ge=1, le=100_000_000
    )
    queue_monitor_alert_emails: tuple[str, ...] = Field(
        default=(), alias="QUEUE_MONITOR_ALERT_EMAILS"
    )
    #: Dify's billing service: account deletion goes through it when enabled.
    billing_enabled: bool = Field(default=False, alias="BILLING_ENABLED")
    billing_api_url: str | None = Field(default=None, alias="BILLING_API_URL")
    billing_api_secret_key: SecretStr | None = Field(default=None, alias="BILLING_API_SECRET_KEY")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Self:
        """Build the settings from an environment mapping (``os.environ`` in ``manage.py``).

        Raises
        ------
        ConfigError
            One line naming every invalid setting and why.
        """
        known = {field.alias for field in cls.model_fields.values() if field.alias}
        data = {key: value for key, value in environ.items() if key in known and value.strip()}
        return cls.validated(**data)

    @classmethod
    def from_process_env(cls) -> Self:
        """The settings of this process's environment (see :meth:`from_env`)."""
        return cls.from_env(os.environ)

    @classmethod
    def validated(cls, **values: Any) -> Self:
        """Construct and validate; pydantic's report becomes a one-line :class:`ConfigError`."""
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise ConfigError(_describe(cls, exc)) from None

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            url = sa.make_url(value)
        except sa.exc.ArgumentError:
            raise ValueError(
                "not a URL; expected postgresql://user:password@host:port/dbname"
            ) from None
        if url.drivername not in _POSTGRES_SCHEMES:
            raise ValueError(f"unsupported scheme {url.drivername!r}; expected postgresql://")
        return value

    @field_validator("data_dir", "storage_local_path")
    @classmethod
    def _check_directory(cls, value: Path | None) -> Path | None:
        # caught here, not as an OSError halfway through a command
        if value is None:
            return None
        existing = next((p for p in (value, *value.parents) if p.exists()), None)
        if existing is not None and not existing.is_dir():
            raise ValueError(f"{existing} is a file, not a directory")
        return value

    @field_validator("import_paths", mode="before")
    @classmethod
    def _split_import_paths(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("queue_monitor_alert_emails", mode="before")
    @classmethod
    def _split_alert_emails(cls, value: object) -> object:
        if isinstance(value, str):
            value = tuple(part.strip() for part in value.split(",") if part.strip())
        for address in value if isinstance(value, tuple | list) else ():
            reason = mail_headers.address_problem(str(address))
            if reason:
                raise ValueError(f"{address!r}: {reason}")
        return value

    @field_validator("dashboard_token")
    @classmethod
    def _check_dashboard_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_DASHBOARD_TOKEN:
            raise ValueError(f"must be at least {MIN_DASHBOARD_TOKEN} characters long")
        return value

    @field_validator("concurrency", mode="before")
    @classmethod
    def _parse_concurrency(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        return parse_concurrency(value)

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @field_validator("mail_default_send_from")
    @classmethod
    def _check_sender(cls, value: str | None) -> str | None:
        # it becomes the From header of every mail: nothing in it may add a header or a line
        reason = mail_headers.sender_problem(value) if value is not None else None
        if reason:
            raise ValueError(f"{reason}; expected 'address' or 'Name <address>'")
        return value

    @field_validator("mail_brand_title")
    @classmethod
    def _check_brand_title(cls, value: str | None) -> str | None:
        # it goes into mail subjects: nothing in it may add a header or a line
        if value is not None and not value.strip():
            raise ValueError("must not be blank")
        reason = mail_headers.problem(value) if value is not None else None
        if reason:
            raise ValueError(f"{reason}; it goes into mail subjects")
        return value

    @field_validator(
        "console_web_url",
        "resend_api_url",
        "sendgrid_api_url",
        "embedding_base_url",
        "notion_api_base_url",
        "website_crawl_base_url",
        "plugin_daemon_url",
        "marketplace_api_url",
        "billing_api_url",
    )
    @classmethod
    def _check_http_url(cls, value: str | None) -> str | None:
        if not value:
            return value
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError("expected an http(s) URL")
        return value.rstrip("/")

    @field_validator(
        "sweep_interval",
        "retention_interval",
        "retain_succeeded",
        "retain_failed",
        "retain_mail_deliveries",
        mode="before",
    )
    @classmethod
    def _parse_duration(cls, value: object) -> object:
        return parse_duration(value) if isinstance(value, str) else value

    @_model_validator(mode="after")
    def _check_combinations(self) -> Self:
        problems = self._problems()
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _problems(self) -> list[str]:
        problems = []
        if self.embedding_provider is EmbeddingProvider.OPENAI and not (
            self.embedding_base_url and self.embedding_model
        ):
            problems.append(
                "WORKER_EMBEDDING_PROVIDER=openai needs WORKER_EMBEDDING_BASE_URL and "
                "WORKER_EMBEDDING_MODEL"
            )
        if self.stalled_after < 3 * self.heartbeat_interval:
            problems.append(
                "WORKER_STALLED_AFTER must be at least 3 x WORKER_HEARTBEAT_INTERVAL, "
                "or live workers look dead"
            )
        if self.billing_enabled and not (self.billing_api_url and self.billing_api_secret_key):
            problems.append("BILLING_ENABLED=true needs BILLING_API_URL and BILLING_API_SECRET_KEY")
        if self.queue_monitor and not self.queue_monitor_alert_emails:
            problems.append("ENABLE_DATASETS_QUEUE_MONITOR=true needs QUEUE_MONITOR_ALERT_EMAILS")
        if self.smtp_opportunistic_tls and not self.smtp_use_tls:
            problems.append("SMTP_OPPORTUNISTIC_TLS=true needs SMTP_USE_TLS=true")
        if self.mail_type is None:
            return problems
        if not self.mail_default_send_from:
            problems.append(f"MAIL_DEFAULT_SEND_FROM is required when MAIL_TYPE={self.mail_type}")
        required = {
            MailType.SMTP: ("SMTP_SERVER", self.smtp_server),
            MailType.RESEND: ("RESEND_API_KEY", self.resend_api_key),
            MailType.SENDGRID: ("SENDGRID_API_KEY", self.sendgrid_api_key),
        }
        name, value = required[self.mail_type]
        if not value:
            problems.append(f"{name} is required when MAIL_TYPE={self.mail_type}")
        return problems

    @property
    def mail_enabled(self) -> bool:
        """Whether a mail backend is configured (``MAIL_TYPE`` set)."""
        return self.mail_type is not None

    @property
    def storage_root(self) -> Path:
        """Root of the local file storage (``STORAGE_LOCAL_PATH``, else ``<data dir>/storage``)."""
        return self.storage_local_path or self.data_dir / "storage"

    @property
    def embedded_database(self) -> bool:
        """Whether the embedded PostgreSQL is used (``DATABASE_URL`` unset)."""
        return self.database_url is None


def parse_concurrency(value: str) -> dict[str, int]:
    """``"dataset=8,mail=4"`` as ``{"dataset": 8, "mail": 4}``; queues must be known, N >= 1.

    Raises
    ------
    ValueError
        An item is not ``QUEUE=N`` with a known queue and a positive N.
    """
    parsed: dict[str, int] = {}
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        name, sep, number = item.partition("=")
        name = name.strip()
        if (
            not sep
            or name not in queues.ALL_QUEUES
            or not number.strip().isdigit()
            or int(number) < 1
        ):
            raise ValueError(
                f"expected QUEUE=N with N >= 1 and QUEUE one of {', '.join(queues.ALL_QUEUES)}; "
                f"got {item!r}"
            )
        parsed[name] = int(number)
    return parsed


def parse_duration(value: str) -> float | str:
    """Seconds in ``"90"``, ``"90s"``, ``"15m"``, ``"12h"`` or ``"7d"``; anything else is returned
    as given, for the field's own validation to refuse."""
    text = value.strip().lower()
    factor = _DURATION_UNITS.get(text[-1:], 0)
    number = text[:-1] if factor else text
    try:
        seconds = float(number) * (factor or 1)
    except ValueError:
        return value
    return int(seconds) if seconds.is_integer() else seconds


def _describe(model: type[BaseModel], exc: ValidationError) -> str:
    aliases = {name: field.alias or name for name, field in model.model_fields.items()}
    parts = []
    for error in exc.errors():
        message = error["msg"].removeprefix("Value error, ")
        location = [str(item) for item in error["loc"]]
        if not location:
            parts.append(message)
            continue
        setting = aliases.get(location[0], location[0])
        if error["type"] == "extra_forbidden":
            message = "unknown setting"
        shown = "" if _is_secret(model, location[0]) else _shown_input(error.get("input"))
        parts.append(f"{setting}: {message}{shown}")
    return "invalid configuration: " + "; ".join(parts)


def _is_secret(model: type[BaseModel], name: str) -> bool:
    """Secrets (and URLs that may hold a password) never appear in error messages."""
    field = model.model_fields.get(name) or next(
        (f for f in model.model_fields.values() if f.alias == name), None
    )
    annotation: object = field.annotation if field else None
    return name in ("database_url", "DATABASE_URL") or "SecretStr" in repr(annotation)


def _shown_input(value: object) -> str:
    if isinstance(value, str) and value and len(value) <= 80:
        return f" (got {value!r})"
    return ""
