"""Settings: the only place that reads the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ROOT = Path(__file__).resolve().parent.parent
DEV_SECRET = "dev-only-secret-change-me-0123456789abcdef"
ENVIRONMENTS = ("development", "production")


class SettingsError(ValueError):
    """A setting is missing or wrong; the message says which and how to fix it."""


@dataclass(frozen=True)
class Settings:
    """Everything the app needs to know about where it runs.

    Each field maps to one ``DIEMDANH_*`` environment variable, documented in README.md.
    """

    env: str = "production"
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = field(default_factory=lambda: ROOT / "data")
    database_url: str = ""
    secret_key: str = DEV_SECRET
    base_url: str = ""  # default: http://<host>:<port>
    timezone: str = "Asia/Ho_Chi_Minh"
    checkin_margin_minutes: int = 120
    session_hours: int = 12
    token_minutes: int = 15
    live_poll_seconds: float = 1.0
    attempt_log_days: int = 90  # `diemdanh prune-attempts` folds older attempt-log lines into daily counts
    max_body_kb: int = 4096  # the largest request body; uploads (CSV, XLSX) are at most 2 MB
    db_timeout_seconds: float = 30.0  # wait for a lock or a connection this long, then answer 503
    # SQLite: "full" makes every commit reach the disk before it is acknowledged (a power cut loses no
    # acknowledged check-in); "normal" leaves the last commits in the OS's cache (faster on a slow disk).
    sqlite_synchronous: str = "full"
    # PostgreSQL behind PgBouncer in transaction mode ("pgbouncer"): no server-side prepared statements
    # and no startup options, which a pooled server connection cannot keep (docs/scale-out.md).
    database_pooler: str = "none"
    # Names, homes, cards and phones of people not seen for this many whole statistical years are removed
    # by `diemdanh retention` (services/retention.py); the counts stay.
    retention_years: int = 2
    # New people one address may bring to one event in a minute before they are marked suspicious
    # (services/flood.py; three times this is the most it may bring at all).
    flood_new_per_minute: int = 20

    def __post_init__(self) -> None:
        if self.env not in ENVIRONMENTS:
            raise SettingsError(f"DIEMDANH_ENV must be one of {', '.join(ENVIRONMENTS)}, not {self.env!r}")
        if self.env != "development" and self.secret_key == DEV_SECRET:
            raise SettingsError(
                "DIEMDANH_SECRET_KEY is still the development default. Set it to a long random value "
                "(for example: python -c 'import secrets; print(secrets.token_urlsafe(48))'), "
                "or set DIEMDANH_ENV=development on a machine nobody else uses."
            )
        if len(self.secret_key) < 32:
            # HS256 wants a key of at least 32 bytes (RFC 7518, section 3.2).
            raise SettingsError("DIEMDANH_SECRET_KEY must be at least 32 characters long")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise SettingsError(f"DIEMDANH_TIMEZONE {self.timezone!r} is not a known time zone") from exc
        if not self.base_url:
            host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
            object.__setattr__(self, "base_url", f"http://{host}:{self.port}")
        if not self.base_url.startswith(("http://", "https://")):
            raise SettingsError("DIEMDANH_BASE_URL must start with http:// or https://")
        if not 0 < self.db_timeout_seconds <= 600:
            raise SettingsError("DIEMDANH_DB_TIMEOUT_SECONDS must be more than 0 and at most 600")
        if self.sqlite_synchronous not in ("full", "normal"):
            raise SettingsError("DIEMDANH_SQLITE_SYNCHRONOUS must be full or normal")
        if self.database_pooler not in ("none", "pgbouncer"):
            raise SettingsError("DIEMDANH_DATABASE_POOLER must be none or pgbouncer")
        if self.max_body_kb < 1:
            raise SettingsError("DIEMDANH_MAX_BODY_KB must be at least 1")
        for name in ("checkin_margin_minutes", "session_hours", "token_minutes"):
            if getattr(self, name) < 0:
                raise SettingsError(f"DIEMDANH_{name.upper()} must not be negative")
        if self.attempt_log_days < 1:
            raise SettingsError("DIEMDANH_ATTEMPT_LOG_DAYS must be at least 1")
        if not 1 <= self.retention_years <= 50:
            raise SettingsError("DIEMDANH_RETENTION_YEARS must be a whole number of years from 1 to 50")
        if not 1 <= self.flood_new_per_minute <= 1_000_000:
            raise SettingsError("DIEMDANH_FLOOD_NEW_PER_MINUTE must be between 1 and 1000000")
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{self.data_dir / 'diemdanh.sqlite3'}")
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def secure_cookies(self) -> bool:
        return self.base_url.startswith("https://")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Build settings from ``DIEMDANH_*`` variables; keyword overrides win (the CLI's --host, tests)."""
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for name, kind in _FIELDS.items():
            raw = environ.get(f"DIEMDANH_{name.upper()}")
            if raw is None or raw == "":
                continue
            try:
                values[name] = kind(raw)
            except ValueError as exc:
                raise SettingsError(
                    f"DIEMDANH_{name.upper()}={raw!r} is not a valid {kind.__name__}"
                ) from exc
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


_FIELDS: dict[str, type] = {
    "env": str,
    "host": str,
    "port": int,
    "data_dir": Path,
    "database_url": str,
    "secret_key": str,
    "base_url": str,
    "timezone": str,
    "checkin_margin_minutes": int,
    "session_hours": int,
    "token_minutes": int,
    "live_poll_seconds": float,
    "attempt_log_days": int,
    "max_body_kb": int,
    "db_timeout_seconds": float,
    "sqlite_synchronous": str,
    "database_pooler": str,
    "retention_years": int,
    "flood_new_per_minute": int,
}

SETTING_NAMES = tuple(f"DIEMDANH_{name.upper()}" for name in _FIELDS)
