"""``open311``: file tickets on a platform speaking Open311 GeoReport v2, and follow them there.

The gateway's own ledger (``LocalLedger``) stays its mirror: a ticket is recorded there first
(its readable number, the draft, the conversation, the status history, the citizen's rating,
which GeoReport has no place for) and then sent with ``POST requests.json``; the platform's
``service_request_id`` (or the ``token`` it promises one for) is kept beside it. ``get``,
``list_for``, ``rate`` and ``changes_since`` answer from the mirror; ``changes_since`` first asks
the platform what changed (``GET requests.json?updated_after=``, or ``GET requests/{id}.json`` per
followed ticket) at most every ``poll_s`` and records each real change as a walk of the workflow
(``ticket_client.base.walk``), and a new ``status_notes`` under an unchanged status as a progress
note (once). The platform owns the workflow and its notes: ``set_status`` and ``add_note`` are
refused.

Sending is exactly-once as far as the platform lets it be: a ticket linked to a request is never
sent again, and a ticket whose POST went out without an answer coming back (a timeout) is looked
for on the platform (by its number, written into the description) before it is sent again. The
gap that stays: a platform that does not list a just-created request, or hides descriptions,
gets a second one. httpx errors stop here: down, slow or 5xx is ``PlatformUnavailable`` (retry),
a 4xx to a filing is ``PlatformRejected`` (do not), a start-up disagreement with the settings is
``PlatformMisconfigured``. See docs/ticket_platform.md.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

import httpx
import prcoords
import structlog
import yaml

from ticket_client import media_link
from ticket_client.base import (
    MAX_NOTE,
    STATUSES,
    CategoryTrend,
    Correction,
    CorrectionCount,
    CorrectionRefused,
    DepartmentTally,
    ExtendRefused,
    FollowUpEvent,
    FollowUpKind,
    Hotspot,
    MergeRefused,
    NotesManagedByPlatform,
    PlatformMisconfigured,
    PlatformRejected,
    PlatformUnavailable,
    Rejudged,
    Spot,
    StatusChange,
    StatusManagedByPlatform,
    Summary,
    Ticket,
    TicketDraft,
    TicketError,
    TicketQuery,
    TicketRef,
    Urged,
    WithdrawRefused,
)
from ticket_client.ledger import LocalLedger, PlatformLink, utcnow

if TYPE_CHECKING:
    from config.settings import Settings

log = structlog.get_logger(__name__)

DEPARTMENTS_YML = Path(__file__).resolve().parent.parent / "config" / "departments.yml"

# The platform's status (lower case, spaces and hyphens as "_") → the ledger's. GeoReport itself
# has "open" and "closed"; the rest are the common extensions (FixMyStreet, SeeClickFix, cities).
# "open" is 已派单: the platform holds the request in its queue. "closed" and its kin are 已办结
# (the citizen hears the answer and is surveyed); a request the platform hands back (not its
# responsibility, a duplicate) is 已退回 for the 12345 centre to follow up.
DEFAULT_STATUS_MAP: dict[str, str] = {
    "open": "accepted",
    "acknowledged": "accepted",
    "confirmed": "accepted",
    "submitted": "accepted",
    "in_progress": "processing",
    "investigating": "processing",
    "action_scheduled": "processing",
    "assigned": "processing",
    "closed": "resolved",
    "fixed": "resolved",
    "resolved": "resolved",
    "completed": "resolved",
    "archived": "resolved",
    "unable_to_fix": "resolved",
    "no_further_action": "resolved",
    "duplicate": "returned",
    "not_councils_responsibility": "returned",
    "not_responsible": "returned",
    "internal_referral": "returned",
}
MAPPABLE = tuple(s for s in STATUSES if s != "received")  # nothing walks back to received

RETRYABLE_4XX = frozenset({408, 425, 429})
OVERLAP = timedelta(minutes=5)  # each updated_after poll looks this far behind the last seen update
# the first poll has no platform time to start from, only ours: this much room for its clock
FIRST_POLL_MARGIN = timedelta(hours=1)
RECHECK_MARGIN = timedelta(minutes=10)  # around a lost POST when looking for the request it made
FOLLOW_RESOLVED = timedelta(days=30)  # `each` mode keeps asking about resolved tickets this long
FETCH_CONCURRENCY = 8
MAX_DESCRIPTION = 4000
POLLED_AT = "open311.polled_at"
UPDATED_AFTER = "open311.updated_after"


def normalize_status(raw: object) -> str:
    """``In Progress`` / ``in-progress`` / ``IN_PROGRESS`` → ``in_progress`` ("unknown" if none)."""
    return re.sub(r"[\s\-]+", "_", str(raw or "").strip().lower()) or "unknown"


def parse_timestamp(text: str) -> datetime | None:
    """A GeoReport datetime (W3C / ISO 8601) as an aware datetime; naive ones are taken as UTC."""
    try:
        found = datetime.fromisoformat(text.strip())
    except (ValueError, AttributeError):
        return None
    return found if found.tzinfo is not None else found.replace(tzinfo=UTC)


def _shift(text: str, delta: timedelta) -> str:
    """The platform's own timestamp moved by ``delta``, written in its own offset (or none)."""
    return (datetime.fromisoformat(text.strip()) + delta).isoformat(timespec="seconds")


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _text(value: object) -> str:
    """An id or text field as a string: the spec's own examples give ids as numbers."""
    if value is None or isinstance(value, bool):
        return ""
    return str(value).strip()


@dataclass(frozen=True)
class PlatformRequest:
    """The fields of a GeoReport service request the gateway reads."""

    request_id: str
    status: str = ""
    status_notes: str = ""
    updated: str = ""
    description: str = ""
    service_code: str = ""


def _items(payload: Any, wrappers: tuple[str, ...]) -> list[dict[str, Any]]:
    """The records of an answer: a JSON list (the spec), or one object, or a list wrapped in an
    object under one of ``wrappers`` (as some servers render their XML as JSON)."""
    if isinstance(payload, list):
        return [item for item in payload if isinstance(item, dict)]
    if isinstance(payload, dict):
        for key in wrappers:
            if key in payload:
                return _items(payload[key], wrappers)
        return [payload]
    return []


def parse_requests(payload: Any) -> list[PlatformRequest]:
    """``GET requests.json``, ``GET requests/{id}.json`` and ``GET tokens/{t}.json`` answers."""
    found = []
    for item in _items(payload, ("service_requests", "requests", "request")):
        request_id = _text(item.get("service_request_id"))
        if request_id:
            found.append(
                PlatformRequest(
                    request_id=request_id,
                    status=_text(item.get("status")),
                    status_notes=_text(item.get("status_notes")),
                    updated=_text(item.get("updated_datetime")) or _text(item.get("requested_datetime")),
                    description=_text(item.get("description")),
                    service_code=_text(item.get("service_code")),
                )
            )
    return found


def parse_post_answer(payload: Any) -> tuple[str | None, str | None]:
    """``POST requests.json``'s answer: (service_request_id, token); one of them at least is set
    when the platform took the request."""
    for item in _items(payload, ("service_requests", "requests", "request")):
        request_id, token = _text(item.get("service_request_id")), _text(item.get("token"))
        if request_id or token:
            return request_id or None, token or None
    return None, None


def parse_errors(payload: Any) -> list[tuple[str, str]]:
    """The spec's error answer ``[{"code": 403, "description": "Invalid api_key"}]``."""
    return [
        (_text(item.get("code")), _text(item.get("description")))
        for item in _items(payload, ("errors", "error"))
        if "description" in item or "code" in item
    ]


def parse_services(payload: Any) -> dict[str, str]:
    """``GET services.json``: service_code → service_name."""
    return {
        _text(item.get("service_code")): _text(item.get("service_name"))
        for item in _items(payload, ("services", "service"))
        if _text(item.get("service_code"))
    }


def _to_datum(lat: float, lng: float, source: str, target: str) -> tuple[float, float]:
    """Coordinates from the gateway's map datum to the platform's (unchanged outside China)."""
    if source == target:
        return lat, lng
    here = prcoords.Coords(lat, lng)
    if not prcoords.sanity_in_china_p(here):
        return lat, lng
    wgs = {"wgs84": here, "gcj02": prcoords.gcj_wgs_bored(here), "bd09": prcoords.bd_wgs_bored(here)}[source]
    out = {"wgs84": wgs, "gcj02": prcoords.wgs_gcj(wgs, False), "bd09": prcoords.wgs_bd(wgs, False)}[target]
    return out.lat, out.lon


def _first_level_categories(path: Path = DEPARTMENTS_YML) -> set[str]:
    """The taxonomy's first-level classes, as config/departments.yml lists them (empty: unknown)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return set()
    return {str(key).split("/", 1)[0] for key in (data.get("rules") or {})}


@dataclass(frozen=True)
class Open311Config:
    """The open311 backend's settings, checked; ``from_settings`` names the variable at fault."""

    url: str
    api_key: str
    default_service_code: str
    service_codes: dict[str, str] = field(default_factory=dict)  # "一级" or "一级/二级" → code
    status_map: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_STATUS_MAP))
    jurisdiction_id: str = ""
    address_fallback: str = ""
    poll_s: float = 60.0
    poll_mode: Literal["updated_after", "each"] = "updated_after"
    timeout_s: float = 10.0
    map_datum: str = "gcj02"  # the drafts' coordinates (HOTLINE_MAP_DATUM)
    platform_datum: str = "wgs84"
    public_url: str = ""  # HOTLINE_PUBLIC_URL: where the platform fetches a ticket's photo (media_url)
    media_key: bytes = b""  # signs those links (media_link.key_from the admin token)
    media_link_s: float = 30 * 24 * 3600

    @classmethod
    def from_settings(cls, settings: Settings) -> Open311Config:
        """Raises ValueError naming the HOTLINE_OPEN311_* variable to fix."""
        codes: dict[str, str] = {}
        known = _first_level_categories()
        for key, code in settings.open311_service_codes.items():
            path = "/".join(part.strip() for part in str(key).split("/"))
            if not path or not _text(code):
                raise ValueError(
                    f"HOTLINE_OPEN311_SERVICE_CODES: {key!r} → {code!r}: category and code must not be empty"
                )
            if known and path.split("/", 1)[0] not in known:
                raise ValueError(
                    f"HOTLINE_OPEN311_SERVICE_CODES: {key!r} is not a first-level category (or a path "
                    f"under one); known: {', '.join(sorted(known))}"
                )
            codes[path] = _text(code)
        status_map = dict(DEFAULT_STATUS_MAP)
        for raw, status in settings.open311_status_map.items():
            if status not in MAPPABLE:
                raise ValueError(
                    f"HOTLINE_OPEN311_STATUS_MAP: {raw!r} → {status!r}; map to one of {', '.join(MAPPABLE)}"
                )
            status_map[normalize_status(raw)] = status
        return cls(
            url=settings.open311_url.strip(),
            api_key=settings.open311_api_key.get_secret_value().strip(),
            default_service_code=settings.open311_default_service_code.strip(),
            service_codes=codes,
            status_map=status_map,
            jurisdiction_id=settings.open311_jurisdiction_id.strip(),
            address_fallback=settings.open311_address_fallback.strip(),
            poll_s=settings.open311_poll_s,
            poll_mode=settings.open311_poll_mode,
            timeout_s=settings.open311_timeout_s,
            map_datum=settings.map_datum,
            platform_datum=settings.open311_datum,
            public_url=settings.public_url.strip(),
            media_key=media_link.key_from(settings.ensure_admin_token())
            if settings.public_url.strip()
            else b"",
            media_link_s=settings.media_link_days * 24 * 3600,
        )

    def service_code(self, category: list[str]) -> str:
        """The most specific mapped path of ``category`` ("一级/二级/三级" … "一级"), else the default."""
        for n in range(len(category), 0, -1):
            code = self.service_codes.get("/".join(category[:n]))
            if code:
                return code
        return self.default_service_code


def request_form(ticket: Ticket, config: Open311Config) -> dict[str, str]:
    """The ``POST requests.json`` form of a mirrored ticket (GeoReport v2, form-encoded).

    ``description`` carries what GeoReport has no field for: the 紧急 flag and request type, the
    title, the place as written, signed links to the photos after the first (``media_url`` takes
    one), and the ticket's 12345 number (by which a lost answer's request is found again, and the
    platform's staff can cite it).
    """
    form = {"api_key": config.api_key, "service_code": config.service_code(ticket.category)}
    if config.jurisdiction_id:
        form["jurisdiction_id"] = config.jurisdiction_id
    tags = ("【紧急】" if ticket.urgent else "") + (
        f"【{ticket.request_type}】" if ticket.request_type else ""
    )
    title = ticket.title.strip()
    words = ticket.description.strip()
    head = tags + (title if title and not words.startswith(title) else "")
    place = ticket.location.text.strip()
    links = [
        media_link.link(config.public_url, config.media_key, ref, config.media_link_s)
        for ref in (ticket.attachments[1:] if config.public_url else [])
    ]
    more = [f"其他附件{i}：{url}" for i, url in enumerate(links, start=2)]
    tail = ([f"地点：{place}"] if place else []) + more + [f"（12345热线工单 {ticket.ticket_id}）"]
    room = MAX_DESCRIPTION - sum(len(line) + 1 for line in [head, *tail] if line)
    if len(words) > room:
        words = words[: max(room - 1, 0)] + "…"
    form["description"] = "\n".join(line for line in [head, words, *tail] if line)
    location = ticket.location
    if location.lat is not None and location.lng is not None:
        lat, lng = _to_datum(location.lat, location.lng, config.map_datum, config.platform_datum)
        form["lat"], form["long"] = f"{lat:.7f}", f"{lng:.7f}"
    elif place or config.address_fallback:
        form["address_string"] = place or config.address_fallback
    if ticket.contact:
        form["phone"] = ticket.contact
    if ticket.attachments and config.public_url:  # GeoReport takes one: the first photo, by a signed link
        form["media_url"] = media_link.link(
            config.public_url, config.media_key, ticket.attachments[0], config.media_link_s
        )
    return form


class Open311Client:
    """The TicketClient of the ``open311`` backend: ``mirror`` is the gateway's own ledger (it
    owns it and closes it). ``clock`` exists for tests."""

    def __init__(
        self, mirror: LocalLedger, config: Open311Config, *, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.mirror = mirror
        self.config = config
        self._clock = clock
        base = config.url if config.url.endswith("/") else config.url + "/"
        self._http = httpx.AsyncClient(
            base_url=base,
            timeout=httpx.Timeout(config.timeout_s),
            headers={"Accept": "application/json"},
            follow_redirects=False,
        )
        # one filing's lease (a look-up, then the POST): a filer that takes longer is treated as
        # lost, its answer unknown, and the next one looks before sending again
        self._lease = timedelta(seconds=config.timeout_s * 4 + 10)
        self._platform_checked = False
        self._next_poll = 0.0  # time.monotonic() of the next platform poll of this process

    # -- HTTP at the edge: httpx's errors stop here ---------------------------------------

    def _params(self, **extra: str) -> dict[str, str]:
        return (
            {"jurisdiction_id": self.config.jurisdiction_id, **extra}
            if self.config.jurisdiction_id
            else extra
        )

    async def _call(
        self,
        method: str,
        path: str,
        action: str,
        *,
        params: dict[str, str] | None = None,
        data: dict[str, str] | None = None,
    ) -> httpx.Response:
        """One exchange; down, slow, 5xx, 408/425/429 → PlatformUnavailable; 3xx and other 4xx are returned."""
        try:
            response = await self._http.request(method, path, params=params, data=data)
        except httpx.HTTPError as exc:  # connect, timeout, protocol: the request may or may not have arrived
            raise PlatformUnavailable(
                f"the ticket platform did not answer {action}: {type(exc).__name__}: {exc}"
            ) from exc
        if response.status_code >= 500 or response.status_code in RETRYABLE_4XX:
            raise PlatformUnavailable(
                f"the ticket platform answered {action} with HTTP {response.status_code}{_said(response)}"
            )
        return response

    @staticmethod
    def _json(response: httpx.Response, action: str) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise PlatformUnavailable(
                f"the ticket platform answered {action} with HTTP {response.status_code} but no JSON"
            ) from exc

    # -- start-up ---------------------------------------------------------------------------

    async def check_platform(self) -> dict[str, str]:
        """``GET services.json``; every service code the settings name must be offered. Returns
        the platform's services (code → name)."""
        where = f"the ticket platform at HOTLINE_OPEN311_URL={self.config.url}"
        try:
            response = await self._call("GET", "services.json", "GET services.json", params=self._params())
        except PlatformUnavailable as exc:
            raise PlatformUnavailable(f"{where} cannot be reached: {exc}") from exc
        if response.status_code >= 300:
            raise PlatformMisconfigured(
                f"{where} answered GET services.json with HTTP {response.status_code}{_said(response)}: "
                "is it the GeoReport v2 base (the folder of services.json)? (HOTLINE_OPEN311_JURISDICTION_ID "
                f"is {self.config.jurisdiction_id or 'not set'})"
            )
        offered = parse_services(self._json(response, "GET services.json"))
        missing = []
        if self.config.default_service_code not in offered:
            missing.append(f"HOTLINE_OPEN311_DEFAULT_SERVICE_CODE={self.config.default_service_code!r}")
        missing += [
            f"HOTLINE_OPEN311_SERVICE_CODES {path} → {code!r}"
            for path, code in self.config.service_codes.items()
            if code not in offered
        ]
        if missing:
            listed = ", ".join(
                f"{code} ({name})" if name else code for code, name in list(offered.items())[:30]
            )
            raise PlatformMisconfigured(
                f"{where} does not offer the service code of {'; '.join(missing)}; it offers: {listed or 'none'}"
            )
        return offered

    async def ping(self) -> None:
        """The mirror must answer; the platform's service list is checked once (at start): a
        platform down later is no reason to call the gateway unhealthy, filings wait for it."""
        await self.mirror.ping()
        if not self._platform_checked:
            await self.check_platform()
            self._platform_checked = True

    # -- filing -------------------------------------------------------------------------------

    async def file(self, draft: TicketDraft, idempotency_key: str) -> TicketRef:
        """Record ``draft`` in the mirror (once per key), then send it to the platform unless it is
        there already. ``created`` is True for the call that got it onto the platform."""
        ref = await self.mirror.file(draft, idempotency_key)
        before, claimed = await self.mirror.claim_sending(ref.ticket_id, self._lease)
        if before.filed:
            return TicketRef(ticket_id=ref.ticket_id, status=before.status, created=False)
        if not claimed:
            raise PlatformUnavailable(
                f"ticket {ref.ticket_id} is being sent to the platform by another worker"
            )
        linked = refused = False
        try:
            ticket = await self.mirror.get(ref.ticket_id)
            request_id = token = None
            if before.posted_at is not None:  # an earlier POST's answer was lost: did it arrive?
                request_id = await self._find_sent(ticket, before.posted_at)
            found_again = request_id is not None
            if request_id is None:
                try:
                    request_id, token = await self._post(ticket)
                except PlatformRejected:
                    # the platform said no to the only POST there was: nothing of it exists there
                    refused = before.posted_at is None
                    raise
            await self.mirror.end_sending(ref.ticket_id, request_id=request_id, token=token)
            linked = True
        finally:
            if not linked:  # give the lease back; posted_at stays, so the next attempt looks first
                try:
                    await self.mirror.end_sending(ref.ticket_id, unsent=refused)
                except PlatformUnavailable:
                    pass  # the lease runs out by itself
        log.info(
            "open311_filed",
            ticket_id=ref.ticket_id,
            request_id=request_id,
            token=token,
            service_code=self.config.service_code(ticket.category),
            found_again=found_again,
        )
        return TicketRef(ticket_id=ref.ticket_id, status=ticket.status, created=True)

    async def _post(self, ticket: Ticket) -> tuple[str | None, str | None]:
        action = "POST requests.json"
        response = await self._call("POST", "requests.json", action, data=request_form(ticket, self.config))
        if 300 <= response.status_code < 400:
            raise PlatformUnavailable(
                f"the ticket platform answered {action} with HTTP {response.status_code}{_said(response)}"
            )
        if response.status_code >= 400:
            try:
                errors = parse_errors(response.json())
            except ValueError:
                errors = []
            said = "; ".join(f"{code} {text}".strip() for code, text in errors) or _said(response).strip(": ")
            log.warning(
                "open311_refused", ticket_id=ticket.ticket_id, status=response.status_code, errors=said
            )
            raise PlatformRejected(
                f"the ticket platform refused ticket {ticket.ticket_id} (HTTP {response.status_code}): {said}",
                status=response.status_code,
                errors=errors,
            )
        request_id, token = parse_post_answer(self._json(response, action))
        if not (request_id or token):
            raise PlatformUnavailable(
                f"the ticket platform took ticket {ticket.ticket_id} (HTTP {response.status_code}) "
                "but answered neither service_request_id nor token"
            )
        return request_id, token

    async def _find_sent(self, ticket: Ticket, since: datetime) -> str | None:
        """The platform's request made by an earlier POST of ``ticket`` whose answer was lost,
        found by the ticket's number in its description; None if the platform lists none."""
        now = self._clock()
        params = self._params(
            start_date=_iso(since - RECHECK_MARGIN),
            end_date=_iso(now + RECHECK_MARGIN),
            service_code=self.config.service_code(ticket.category),
        )
        action = "GET requests.json (looking for an earlier POST)"
        response = await self._call("GET", "requests.json", action, params=params)
        if response.status_code >= 300:
            log.warning("open311_recheck_refused", ticket_id=ticket.ticket_id, status=response.status_code)
            return None
        number = re.compile(rf"(?<![\w-]){re.escape(ticket.ticket_id)}(?![\w-])")
        for request in parse_requests(self._json(response, action)):
            if number.search(request.description):
                return request.request_id
        return None

    # -- reading: the mirror ----------------------------------------------------------------

    async def get(self, ticket_id: str) -> Ticket:
        return await self.mirror.get(ticket_id)

    async def list_for(self, conversation_key: str, limit: int = 10) -> list[Ticket]:
        return await self.mirror.list_for(conversation_key, limit)

    async def search(self, query: TicketQuery) -> list[Ticket]:
        """From the mirror: it holds the platform's number beside ours."""
        return await self.mirror.search(query)

    def scan(self, query: TicketQuery, size: int = 500) -> AsyncGenerator[list[Ticket], None]:
        return self.mirror.scan(query, size)

    async def count(self, query: TicketQuery) -> int:
        return await self.mirror.count(query)

    async def open_at(self, spots: Sequence[Spot], since: datetime) -> dict[Spot, int]:
        return await self.mirror.open_at(spots, since)

    async def department_tallies(self, query: TicketQuery, limit: int = 100) -> list[DepartmentTally]:
        return await self.mirror.department_tallies(query, limit)

    async def category_trends(self, since: datetime, until: datetime, limit: int = 15,
                              before: datetime | None = None) -> list[CategoryTrend]:
        return await self.mirror.category_trends(since, until, limit, before)

    async def hotspots(self, since: datetime, limit: int = 15, until: datetime | None = None) -> list[Hotspot]:
        return await self.mirror.hotspots(since, limit, until)

    async def rate(self, ticket_id: str, rating: str, comment: str = "") -> Ticket:
        """Kept in the mirror only: GeoReport has no satisfaction rating."""
        return await self.mirror.rate(ticket_id, rating, comment)

    async def mark_solved(self, ticket_id: str, solved: bool) -> Ticket:
        """Kept in the mirror only, as the rating: GeoReport has no place for it."""
        return await self.mirror.mark_solved(ticket_id, solved)

    async def summary(self, since: datetime, until: datetime | None = None) -> Summary:
        """From the mirror, which holds the ratings the platform has no place for."""
        return await self.mirror.summary(since, until)

    async def rejudge(self, since: datetime, until: datetime | None = None) -> Rejudged:
        """In the mirror, where the platform's steps were judged as they arrived."""
        return await self.mirror.rejudge(since, until)

    async def correction_counts(self, since: datetime) -> list[CorrectionCount]:
        """From the mirror, where the console's corrections are kept."""
        return await self.mirror.correction_counts(since)

    async def set_status(self, ticket_id: str, status: str, note: str = "") -> Ticket:
        """Refused: the platform owns the workflow (its changes come back through the poll)."""
        link = await self.mirror.link(ticket_id)  # TicketNotFound first
        where = f"（平台编号 {link.request_id}）" if link.request_id else ""
        raise StatusManagedByPlatform(f"工单状态由工单平台管理，请在平台上办理{where}")

    async def add_note(self, ticket_id: str, note: str) -> Ticket:
        """Refused: GeoReport v2 has no way to post a note, and the platform owns the notes as it
        owns the statuses (a note its staff add comes back through the poll as a progress note)."""
        link = await self.mirror.link(ticket_id)  # TicketNotFound first
        where = f"（平台编号 {link.request_id}）" if link.request_id else ""
        raise NotesManagedByPlatform(f"办理进展由工单平台管理，请在平台上填写{where}")

    async def urge(self, ticket_id: str, note: str, key: str = "") -> Urged:
        """Kept in the mirror (for the console and the 班长视图): GeoReport v2 has no way to post
        one to the platform."""
        return await self.mirror.urge(ticket_id, note, key)

    async def add_info(self, ticket_id: str, note: str, attachments: Sequence[str] = (), key: str = "") -> Ticket:
        """Kept in the mirror, like an urge: GeoReport v2 cannot add to a request."""
        return await self.mirror.add_info(ticket_id, note, attachments, key)

    async def assist(self, ticket_id: str, unit: str, note: str) -> Ticket:
        """Kept in the mirror, like a 补充: for the centre's record (the platform's own units talk
        to each other there)."""
        return await self.mirror.assist(ticket_id, unit, note)

    async def correct(self, ticket_id: str, correction: Correction) -> Ticket:
        """A 更正 of the category, request type, urgency or place is kept in the mirror (the
        centre's figures, the NLU's labels; before the platform has the request, what it is sent);
        a 改派 (``departments``) is refused: the platform routes the request, and GeoReport v2
        cannot change it."""
        if correction.departments is not None:
            link = await self.mirror.link(ticket_id)  # TicketNotFound first
            where = f"（平台编号 {link.request_id}）" if link.request_id else ""
            raise CorrectionRefused(f"派单由工单平台管理，请在平台上改派{where}")
        return await self.mirror.correct(ticket_id, correction)

    async def merge(self, ticket_id: str, into: str) -> Ticket:
        """Refused: the platform owns the workflow, and GeoReport v2 has no way to merge requests
        (a 并单 is made on the platform)."""
        await self.mirror.link(into)  # TicketNotFound first
        link = await self.mirror.link(ticket_id)
        where = f"（平台编号 {link.request_id}）" if link.request_id else ""
        raise MergeRefused(f"并单由工单平台管理，请在平台上合并{where}")

    async def unmerge(self, ticket_id: str) -> Ticket:
        """Refused, as ``merge``: nothing is merged here."""
        await self.mirror.link(ticket_id)  # TicketNotFound first
        raise MergeRefused("并单由工单平台管理，请在平台上办理")

    async def withdraw(self, ticket_id: str, reason: str) -> Ticket:
        """Refused: the platform owns the workflow, and GeoReport v2 has no way to withdraw a
        request (the operator closes it on the platform; the change comes back through the poll)."""
        link = await self.mirror.link(ticket_id)  # TicketNotFound first
        where = f"（平台编号 {link.request_id}）" if link.request_id else ""
        raise WithdrawRefused(f"撤单由工单平台管理，请在平台上办理{where}")

    async def extend(self, ticket_id: str, until: datetime, reason: str) -> Ticket:
        """Refused: the platform keeps the 办理时限 of its requests (GeoReport v2 has no field for
        one), so a 延期 is granted there."""
        link = await self.mirror.link(ticket_id)  # TicketNotFound first
        where = f"（平台编号 {link.request_id}）" if link.request_id else ""
        raise ExtendRefused(f"延期由工单平台管理，请在平台上办理{where}")

    async def ask_extension(self, ticket_id: str, until: datetime, reason: str, unit: str) -> Ticket:
        """Refused, as ``extend``: departments ask the platform."""
        return await self.extend(ticket_id, until, reason)

    async def decide_extension(self, ticket_id: str, *, approve: bool, by: str, reason: str = "",
                               until: datetime | None = None) -> Ticket:
        """Refused, as ``extend``: nothing is asked here."""
        return await self.extend(ticket_id, until or datetime.now(UTC), reason)

    async def abandon(self, idempotency_key: str) -> str | None:
        """The mirror forgets a ticket the platform never got (nor possibly got: a POST whose
        answer was lost keeps it, to be found there)."""
        return await self.mirror.abandon(idempotency_key)

    # -- status changes ---------------------------------------------------------------------

    async def last_change(self) -> int:
        """The mirror's (the platform's news come into it as changes)."""
        return await self.mirror.last_change()

    async def followups_since(self, cursor: int, kinds: Sequence[FollowUpKind] = ("urge",),
                              limit: int = 100) -> list[FollowUpEvent]:
        """The mirror's (follow-ups are kept there)."""
        return await self.mirror.followups_since(cursor, kinds, limit)

    async def last_followup(self) -> int:
        return await self.mirror.last_followup()

    async def last_change_before(self, at: datetime) -> int:
        return await self.mirror.last_change_before(at)

    async def cursor(self, reader: str) -> int | None:
        """The mirror's (its changes are the ones read)."""
        return await self.mirror.cursor(reader)

    async def keep_cursor(self, reader: str, seq: int) -> None:
        await self.mirror.keep_cursor(reader, seq)

    async def changes_since(self, cursor: int, limit: int = 100) -> list[StatusChange]:
        """The mirror's changes after ``cursor``, once the platform's news (asked at most every
        ``poll_s``, across processes) is recorded; PlatformUnavailable when it cannot be asked."""
        if await self._poll_due():
            await self.poll_platform()
        return await self.mirror.changes_since(cursor, limit)

    async def _poll_due(self) -> bool:
        now = time.monotonic()
        if now < self._next_poll:
            return False
        self._next_poll = now + self.config.poll_s  # also after a failure: no hammering a down platform
        last = parse_timestamp(await self.mirror.platform_state(POLLED_AT))
        if last is not None:
            elapsed = (self._clock() - last).total_seconds()
            if 0 <= elapsed < self.config.poll_s:  # another process asked just now
                self._next_poll = now + self.config.poll_s - elapsed
                return False
        return True

    async def poll_platform(self) -> None:
        """Ask the platform what changed and record it in the mirror."""
        started = self._clock()
        await self._resolve_tokens()
        if self.config.poll_mode == "each":
            await self._poll_each()
        else:
            await self._poll_updated_after()
        await self.mirror.set_platform_state(POLLED_AT, started.isoformat())

    async def _resolve_tokens(self) -> None:
        for link in await self.mirror.pending_tokens():
            assert link.token is not None
            action = "GET tokens/{token}.json"
            response = await self._call(
                "GET", f"tokens/{quote(link.token, safe='')}.json", action, params=self._params()
            )
            if response.status_code == 404:
                continue  # no number yet
            if response.status_code >= 300:
                raise PlatformUnavailable(
                    f"the ticket platform answered {action} with HTTP {response.status_code}"
                )
            found = parse_requests(self._json(response, action))
            if found:
                await self._link_quietly(link, found[0].request_id)

    async def _link_quietly(self, link: PlatformLink, request_id: str) -> None:
        try:
            await self.mirror.end_sending(link.ticket_id, request_id=request_id)
        except PlatformUnavailable:
            raise
        except TicketError as exc:  # the platform gave a number another ticket has: a person looks
            log.error("open311_link_refused", ticket_id=link.ticket_id, request_id=request_id, error=str(exc))

    async def _poll_updated_after(self) -> None:
        mark = await self.mirror.platform_state(UPDATED_AFTER)
        marked = parse_timestamp(mark) if mark else None
        if marked is None:
            first = await self.mirror.first_link_at()
            if first is None:
                return  # nothing filed on the platform yet
            since = _iso(first - FIRST_POLL_MARGIN)
        else:
            since = _shift(mark, -OVERLAP)  # updates committed late still have an earlier time
        action = "GET requests.json?updated_after="
        response = await self._call("GET", "requests.json", action, params=self._params(updated_after=since))
        if response.status_code >= 300:
            raise PlatformUnavailable(
                f"the ticket platform answered {action} with HTTP {response.status_code}{_said(response)}; "
                "a platform without updated_after is followed with HOTLINE_OPEN311_POLL_MODE=each"
            )
        requests = parse_requests(self._json(response, action))
        ours = await self.mirror.links_by_request_id(r.request_id for r in requests)
        for request in requests:
            if request.request_id in ours:
                await self._apply(request)
        stamped = [(at, r.updated) for r in requests if (at := parse_timestamp(r.updated)) is not None]
        if stamped:
            newest_at, newest = max(stamped, key=lambda pair: pair[0])
            if marked is None or newest_at > marked:
                await self.mirror.set_platform_state(UPDATED_AFTER, newest)
        # tickets linked after their request's last update (a token's number came late): ask each
        for link in await self.mirror.unseen_links():
            assert link.request_id is not None
            fetched = await self._fetch(link.request_id)
            if fetched is not None:
                await self._apply(fetched)

    async def _poll_each(self) -> None:
        links = await self.mirror.followed_links(self._clock() - FOLLOW_RESOLVED)
        gate = asyncio.Semaphore(FETCH_CONCURRENCY)

        async def one(request_id: str) -> PlatformRequest | None:
            async with gate:
                return await self._fetch(request_id)

        results = await asyncio.gather(
            *(one(link.request_id) for link in links if link.request_id), return_exceptions=True
        )
        failed: PlatformUnavailable | None = None
        for result in results:
            if isinstance(result, PlatformUnavailable):
                failed = failed or result
            elif isinstance(result, BaseException):
                raise result
            elif result is not None:
                await self._apply(result)
        if failed is not None:
            raise failed

    async def _fetch(self, request_id: str) -> PlatformRequest | None:
        action = "GET requests/{id}.json"
        response = await self._call(
            "GET", f"requests/{quote(request_id, safe='')}.json", action, params=self._params()
        )
        if response.status_code == 404:
            return None  # not listed (yet)
        if response.status_code >= 300:
            raise PlatformUnavailable(
                f"the ticket platform answered {action} with HTTP {response.status_code}"
            )
        found = parse_requests(self._json(response, action))
        return next((r for r in found if r.request_id == request_id), None)

    async def _apply(self, request: PlatformRequest) -> None:
        """Record one platform request's status in the mirror, and say what could not be."""
        status = normalize_status(request.status)
        target = self.config.status_map.get(status)
        followed = await self.mirror.follow_platform(
            request.request_id,
            status,
            request.updated[:64],
            target,
            request.status_notes.strip()[:MAX_NOTE],
            parse_timestamp(request.updated) or self._clock(),
        )
        if followed is None:
            return
        if target is None:
            log.warning(
                "open311_status_unmapped",
                ticket_id=followed.ticket_id,
                request_id=request.request_id,
                platform_status=status,
                fix="add it to HOTLINE_OPEN311_STATUS_MAP",
            )
        elif not followed.fits:
            log.warning(
                "open311_status_not_followed",
                ticket_id=followed.ticket_id,
                request_id=request.request_id,
                platform_status=status,
                mirror_status=followed.before,
                wanted=target,
            )
        elif followed.recorded:
            log.info(
                "open311_status",
                ticket_id=followed.ticket_id,
                request_id=request.request_id,
                platform_status=status,
                recorded=followed.recorded,
            )
        elif followed.noted:  # the note's words stay out of the log: the citizen's name may be in them
            log.info(
                "open311_note",
                ticket_id=followed.ticket_id,
                request_id=request.request_id,
                platform_status=status,
                chars=len(request.status_notes.strip()[:MAX_NOTE]),
            )

    # -- lifecycle --------------------------------------------------------------------------

    async def close(self) -> None:
        await self._http.aclose()
        await self.mirror.close()

    async def __aenter__(self) -> Open311Client:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


def _said(response: httpx.Response) -> str:
    """What a refusing platform said, briefly: where it redirects to, the GeoReport error list, or
    the body's start."""
    if response.is_redirect:
        return f" to {response.headers.get('location', '?')}: set HOTLINE_OPEN311_URL to where it points"
    try:
        errors = parse_errors(response.json())
    except ValueError:
        errors = []
    if errors:
        return ": " + "; ".join(f"{code} {text}".strip() for code, text in errors)[:300]
    body = response.text.strip().replace("\n", " ")[:200]
    return f": {body}" if body else ""
