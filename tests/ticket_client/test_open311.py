"""The open311 backend against a stand-in GeoReport v2 platform on loopback (aiohttp).

The mirror runs on SQLite and (with HOTLINE_TEST_DATABASE_URL) PostgreSQL through the
``database_url`` fixture; the last tests run the whole gateway (``create_app``, workers, Redis)
against the stand-in. Answers follow the spec's examples in fixtures/open311 (see its README).
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import prcoords
import pytest
from aiohttp import web
from pydantic import SecretStr

from config.settings import Settings
from gateway.errors import StartupError
from tests.conftest import ADMIN_TOKEN, serve_local, wait_for_events
from tests.gateway.test_web_e2e import new_session, say
from ticket_client import (
    Correction,
    CorrectionRefused,
    ExtendRefused,
    InvalidTransition,
    Limits,
    LocalLedger,
    LocationInfo,
    MergeRefused,
    NoteRefused,
    NotesManagedByPlatform,
    PlatformMisconfigured,
    PlatformRejected,
    PlatformUnavailable,
    StatusManagedByPlatform,
    Ticket,
    TicketDraft,
    TicketNotFound,
    TicketQuery,
    TimeLimit,
    WithdrawRefused,
    make_client,
    migrate,
)
from ticket_client.base import walk
from ticket_client.open311 import (
    DEFAULT_STATUS_MAP,
    MAX_DESCRIPTION,
    OVERLAP,
    UPDATED_AFTER,
    Open311Client,
    Open311Config,
    PlatformRequest,
    parse_errors,
    parse_post_answer,
    parse_requests,
    parse_services,
    request_form,
)

FIXTURES = Path(__file__).parent / "fixtures" / "open311"
API_KEY = "open311-key-7f3a9c0d2e5b"
SHANGHAI = timezone(timedelta(hours=8))
BASE_PATH = "/open311/v2"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


class Platform:
    """A GeoReport v2 platform: what it was sent, what it holds, and knobs to make it misbehave."""

    def __init__(self) -> None:
        self.url = ""
        self.services: list[dict[str, Any]] = fixture("services.json")
        self.requests: dict[str, dict[str, Any]] = {}
        self.hidden: set[str] = set()  # requests not listed yet (created behind a token)
        self.posts: list[dict[str, str]] = []  # every POST's form, answered or not
        self.calls: list[tuple[str, str, dict[str, str]]] = []  # (method, path, query)
        self.next_id = 293944
        self.unavailable = 0  # the next n calls, whatever they are, answer 503
        self.refuse: list[dict[str, Any]] | None = None  # POSTs answer 400 with this error list
        self.with_tokens = False  # POSTs answer with a token; the id comes with tokens_ready
        self.tokens: dict[str, str] = {}
        self.slow_posts = 0  # the next n POSTs record the request, then answer after slow_s
        self.slow_s = 1.5
        self.unlisted = False  # requests.json never lists by date (cannot be searched)
        self.no_updated_after = False  # requests.json refuses updated_after (400)
        self.garbage = False  # every answer is an HTML page

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._gate])
        app.router.add_get(f"{BASE_PATH}/services.json", self._services)
        app.router.add_post(f"{BASE_PATH}/requests.json", self._post)
        app.router.add_get(f"{BASE_PATH}/requests.json", self._list)
        app.router.add_get(BASE_PATH + "/requests/{id}.json", self._one)
        app.router.add_get(BASE_PATH + "/tokens/{token}.json", self._token)
        app.router.add_get("/moved/services.json", self._moved)
        return app

    async def _moved(self, request: web.Request) -> web.Response:
        raise web.HTTPMovedPermanently(f"{BASE_PATH}/services.json")

    @staticmethod
    def now() -> str:
        return datetime.now(SHANGHAI).isoformat(timespec="seconds")

    def only(self) -> tuple[str, dict[str, Any]]:
        assert len(self.requests) == 1, self.requests
        return next(iter(self.requests.items()))

    def update(self, request_id: str, status: str, notes: str | None = None) -> None:
        """The platform's staff move a request on."""
        self.requests[request_id].update(status=status, status_notes=notes, updated_datetime=self.now())

    def tokens_ready(self) -> None:
        self.hidden.clear()

    def queried(self, path: str) -> list[dict[str, str]]:
        return [query for method, p, query in self.calls if method == "GET" and p == BASE_PATH + path]

    @web.middleware
    async def _gate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.calls.append((request.method, request.path, dict(request.query)))
        if self.unavailable > 0:
            self.unavailable -= 1
            return web.json_response([{"code": 503, "description": "maintenance"}], status=503)
        if self.garbage:
            return web.Response(text="<html><body>Welcome</body></html>", content_type="text/html")
        response: web.StreamResponse = await handler(request)
        return response

    async def _services(self, request: web.Request) -> web.Response:
        return web.json_response(self.services)

    async def _post(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.posts.append(form)
        if form.get("api_key") != API_KEY:
            return web.json_response(fixture("post_requests__error.json"), status=403)
        if self.refuse is not None:
            return web.json_response(self.refuse, status=400)
        if form.get("service_code") not in {s["service_code"] for s in self.services}:
            return web.json_response([{"code": 400, "description": "service_code not found"}], status=400)
        request_id = str(self.next_id)
        self.next_id += 1
        now = self.now()
        self.requests[request_id] = {
            **fixture("request__closed.json")[0],
            "service_request_id": int(request_id),  # a number, as in the spec's examples
            "status": "open",
            "status_notes": None,
            "service_code": form["service_code"],
            "description": form.get("description"),
            "requested_datetime": now,
            "updated_datetime": now,
            "address": form.get("address_string"),
            "lat": float(form["lat"]) if "lat" in form else None,
            "long": float(form["long"]) if "long" in form else None,
        }
        if self.slow_posts > 0:
            self.slow_posts -= 1
            await asyncio.sleep(self.slow_s)
        if self.with_tokens:
            token = str(1000 + len(self.tokens))
            self.tokens[token] = request_id
            self.hidden.add(request_id)
            answer = fixture("post_requests__token.json")
            answer[0]["token"] = int(token)
        else:
            answer = fixture("post_requests__created.json")
            answer[0]["service_request_id"] = int(request_id)
        return web.json_response(answer, status=201)

    def _listed(self) -> list[dict[str, Any]]:
        return [r for rid, r in self.requests.items() if rid not in self.hidden]

    async def _list(self, request: web.Request) -> web.Response:
        query = request.query
        found = self._listed()
        if "service_request_id" in query:
            wanted = query["service_request_id"].split(",")
            found = [r for r in found if str(r["service_request_id"]) in wanted]
        elif "updated_after" in query:
            if self.no_updated_after:
                return web.json_response(
                    [{"code": 400, "description": "unknown parameter updated_after"}], status=400
                )
            after = datetime.fromisoformat(query["updated_after"])
            found = [r for r in found if datetime.fromisoformat(r["updated_datetime"]) > after]
        else:
            if self.unlisted:
                return web.json_response([])
            if "start_date" in query:
                start = datetime.fromisoformat(query["start_date"])
                found = [r for r in found if datetime.fromisoformat(r["requested_datetime"]) >= start]
            if "end_date" in query:
                end = datetime.fromisoformat(query["end_date"])
                found = [r for r in found if datetime.fromisoformat(r["requested_datetime"]) <= end]
            if "service_code" in query:
                found = [r for r in found if r["service_code"] == query["service_code"]]
        return web.json_response(found)

    async def _one(self, request: web.Request) -> web.Response:
        request_id = request.match_info["id"]
        if request_id not in self.requests or request_id in self.hidden:
            return web.json_response(
                [{"code": 404, "description": "service_request_id not found"}], status=404
            )
        return web.json_response([self.requests[request_id]])

    async def _token(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        request_id = self.tokens.get(token)
        if request_id is None or request_id in self.hidden:
            return web.json_response([{"code": 404, "description": "token not found"}], status=404)
        answer = fixture("tokens__found.json")
        answer[0].update(service_request_id=int(request_id), token=int(token))
        return web.json_response(answer)


@pytest.fixture
async def platform() -> AsyncIterator[Platform]:
    stand_in = Platform()
    runner, base = await serve_local(stand_in.app())
    stand_in.url = base + BASE_PATH
    try:
        yield stand_in
    finally:
        await runner.cleanup()


def config_for(platform: Platform, **overrides: Any) -> Open311Config:
    values: dict[str, Any] = {
        "url": platform.url,
        "api_key": API_KEY,
        "default_service_code": "001",
        "service_codes": {"城乡建设": "002"},
        "poll_s": 0.0,  # ask the platform on every changes_since
        "timeout_s": 2.0,
    }
    values.update(overrides)
    return Open311Config(**values)


@pytest.fixture
async def mirror_url(database_url: str) -> str:
    await migrate(database_url)
    return database_url


@pytest.fixture
async def open311(mirror_url: str, platform: Platform) -> AsyncIterator[Open311Client]:
    async with Open311Client(LocalLedger(mirror_url), config_for(platform)) as client:
        yield client


def draft(conversation_key: str = "web:alice", **fields: Any) -> TicketDraft:
    values: dict[str, Any] = {
        "channel": "web",
        "conversation_key": conversation_key,
        "description": "小区门口路灯坏了一个星期，晚上很黑",
        "category": ["城乡建设"],
        "location": LocationInfo(text="A3区联丰路米兰春天小区"),
    }
    values.update(fields)
    return TicketDraft.model_validate(values)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def history(ticket: Ticket) -> list[tuple[str, str]]:
    return [(h.status, h.note) for h in ticket.history]


# -- the spec's answers, read by the parsers: one line per fixture ----------------------------


def test_fixtures_read_as_the_spec_means_them() -> None:
    assert parse_post_answer(fixture("post_requests__created.json")) == ("293944", None)
    assert parse_post_answer(fixture("post_requests__token.json")) == (None, "12345")
    assert parse_errors(fixture("post_requests__error.json")) == [("403", "Invalid api_key")]
    assert parse_requests(fixture("tokens__found.json")) == [PlatformRequest("638344")]
    assert parse_requests(fixture("request__closed.json")) == [
        PlatformRequest("638344", "closed", "Duplicate request.", "2010-04-14T06:37:38-08:00", "", "006")
    ]
    assert [
        (r.request_id, r.status, r.status_notes) for r in parse_requests(fixture("requests__list.json"))
    ] == [
        ("638344", "closed", "Duplicate request."),
        ("638349", "open", ""),
    ]
    assert parse_services(fixture("services.json")) == {
        "001": "Cans left out 24x7",
        "002": "Construction plate shifted",
        "003": "Curb or curb ramp defect",
    }
    # servers that render their XML as JSON wrap the list; one object alone is one request
    assert parse_requests({"service_requests": fixture("requests__list.json")})[1].request_id == "638349"
    assert parse_requests(fixture("request__closed.json")[0])[0].request_id == "638344"


@pytest.mark.parametrize(
    ("current", "target", "steps"),
    [
        ("received", "accepted", ["accepted"]),
        ("received", "resolved", ["accepted", "resolved"]),  # open → closed between two polls
        ("received", "processing", ["accepted", "processing"]),
        ("accepted", "closed", ["resolved", "closed"]),  # passes 办结, so the citizen is surveyed
        ("resolved", "accepted", ["reopened", "accepted"]),  # reopened on the platform
        ("returned", "resolved", ["accepted", "resolved"]),
        ("processing", "processing", []),
        ("resolved", "closed", ["closed"]),
        ("closed", "resolved", []),  # final statuses only move forward
        ("processing", "accepted", None),  # back from in progress to open: would invent a 退回
        ("received", "reopened", None),
    ],
)
def test_walk_fills_the_steps_a_platform_skips(current: str, target: str, steps: list[str] | None) -> None:
    assert walk(current, target) == steps


# -- filing -----------------------------------------------------------------------------------


async def test_filed_once_despite_retries_and_a_platform_down_for_a_while(
    open311: Open311Client, platform: Platform
) -> None:
    platform.unavailable = 3  # the POST, then the two look-ups before sending again
    for _ in range(3):
        with pytest.raises(PlatformUnavailable):
            await open311.file(draft(contact="13812345678"), "web:alice:m1")
    ref = await open311.file(draft(contact="13812345678"), "web:alice:m1")
    again = await open311.file(draft(), "web:alice:m1")  # the outbox handing it over once more
    assert ref.created and not again.created and again.ticket_id == ref.ticket_id
    request_id, request = platform.only()
    assert [m for m, _, _ in platform.calls if m == "POST"] == ["POST", "POST"]  # the one the outage refused
    assert len(platform.queried("/requests.json")) == 3  # before each later POST: did the first arrive?
    (posted,) = platform.posts
    assert posted["api_key"] == API_KEY and posted["phone"] == "13812345678"
    assert posted["address_string"] == "A3区联丰路米兰春天小区" and "lat" not in posted
    assert ref.ticket_id in request["description"] and "路灯坏了" in request["description"]
    ticket = await open311.get(ref.ticket_id)
    assert ticket.platform_request_id == request_id and ticket.status == "received"
    assert len(await open311.list_for("web:alice")) == 1


async def test_a_lost_answer_is_looked_for_before_sending_again(mirror_url: str, platform: Platform) -> None:
    async with Open311Client(LocalLedger(mirror_url), config_for(platform, timeout_s=0.5)) as client:
        platform.slow_posts = 1  # the platform takes the request, its answer comes too late
        with pytest.raises(PlatformUnavailable):
            await client.file(draft(), "k")
        request_id, _ = platform.only()
        ref = await client.file(draft(), "k")
        assert ref.created
        assert (await client.get(ref.ticket_id)).platform_request_id == request_id
        assert len(platform.posts) == 1  # found by the ticket's number, not sent again
        search = platform.queried("/requests.json")[-1]
        assert search["service_code"] == "002" and "start_date" in search and "end_date" in search


async def test_a_platform_that_cannot_be_searched_gets_a_duplicate(
    mirror_url: str, platform: Platform
) -> None:
    """The documented gap: after a lost answer, a platform that lists nothing by date cannot
    show the request the first POST made, so the retry makes a second one."""
    async with Open311Client(LocalLedger(mirror_url), config_for(platform, timeout_s=0.5)) as client:
        platform.slow_posts, platform.unlisted = 1, True
        with pytest.raises(PlatformUnavailable):
            await client.file(draft(), "k")
        ref = await client.file(draft(), "k")
        assert len(platform.requests) == 2 and len(platform.posts) == 2
        assert (await client.get(ref.ticket_id)).platform_request_id == str(platform.next_id - 1)


async def test_concurrent_filers_send_once(mirror_url: str, platform: Platform) -> None:
    async with Open311Client(LocalLedger(mirror_url), config_for(platform)) as client:
        platform.slow_posts, platform.slow_s = 1, 0.5
        results = await asyncio.gather(
            *(client.file(draft(), "same") for _ in range(5)), return_exceptions=True
        )
        done = [r for r in results if not isinstance(r, BaseException)]
        assert sum(r.created for r in done) == 1
        assert all(isinstance(r, PlatformUnavailable) for r in results if isinstance(r, BaseException))
        assert not (await client.file(draft(), "same")).created
        assert len(platform.posts) == 1 and len(platform.requests) == 1


async def test_token_answer_gets_its_id_later(open311: Open311Client, platform: Platform) -> None:
    platform.with_tokens = True
    ref = await open311.file(draft(), "k")
    assert ref.created and not (await open311.file(draft(), "k")).created
    link = await open311.mirror.link(ref.ticket_id)
    assert (link.token, link.request_id) == ("1000", None)
    changes = await open311.changes_since(0)
    assert [c.status for c in changes] == ["received"]  # no id yet: nothing to follow
    assert platform.queried("/tokens/1000.json")
    platform.tokens_ready()
    newer = await open311.changes_since(changes[-1].seq)
    request_id, _ = platform.only()
    assert [(c.ticket_id, c.status) for c in newer] == [(ref.ticket_id, "accepted")]
    assert (await open311.get(ref.ticket_id)).platform_request_id == request_id
    assert len(platform.posts) == 1


def _ticket(**fields: Any) -> Ticket:
    now = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
    values: dict[str, Any] = {
        "ticket_id": "12345-20261127-000001",
        "status": "received",
        "created_at": now,
        "updated_at": now,
        "channel": "web",
        "conversation_key": "web:alice",
        "description": "小区门口路灯坏了一个星期",
        "category": ["城乡建设", "城市建设和市政管理"],
    }
    values.update(fields)
    return Ticket.model_validate(values)


def test_lat_long_when_known_else_the_place_as_written_else_the_fallback() -> None:
    config = Open311Config(
        url="http://p/",
        api_key=API_KEY,
        default_service_code="001",
        jurisdiction_id="a3.gov.cn",
        address_fallback="示例市",
        map_datum="gcj02",
    )
    located = _ticket(
        location=LocationInfo(text="西湖区文三路", lat=30.2741, lng=120.1551), contact="13812345678"
    )
    form = request_form(located, config)
    wgs = prcoords.gcj_wgs_bored(prcoords.Coords(30.2741, 120.1551))
    assert (float(form["lat"]), float(form["long"])) == pytest.approx((wgs.lat, wgs.lon), abs=1e-6)
    assert abs(float(form["long"]) - 120.1551) > 0.001  # GCJ-02 is not what GeoReport's WGS-84 wants
    assert "address_string" not in form and "地点：西湖区文三路" in form["description"]
    assert (form["api_key"], form["jurisdiction_id"], form["phone"]) == (API_KEY, "a3.gov.cn", "13812345678")

    assert (
        request_form(_ticket(location=LocationInfo(text="西湖区文三路")), config)["address_string"]
        == "西湖区文三路"
    )
    nowhere = request_form(_ticket(), config)
    assert nowhere["address_string"] == "示例市" and "lat" not in nowhere and "phone" not in nowhere
    no_fallback = Open311Config(url="http://p/", api_key=API_KEY, default_service_code="001")
    assert not {"address_string", "lat", "long", "jurisdiction_id"} & set(
        request_form(_ticket(), no_fallback)
    )
    same_datum = Open311Config(
        url="http://p/", api_key=API_KEY, default_service_code="001", map_datum="wgs84"
    )
    assert request_form(located, same_datum)["lat"] == "30.2741000"


def test_description_carries_what_georeport_has_no_field_for() -> None:
    config = Open311Config(url="http://p/", api_key=API_KEY, default_service_code="001")
    ticket = _ticket(title="路灯不亮", urgent=True, request_type="投诉", location=LocationInfo(text="文三路"))
    assert request_form(ticket, config)["description"] == (
        "【紧急】【投诉】路灯不亮\n小区门口路灯坏了一个星期\n地点：文三路\n（12345热线工单 12345-20261127-000001）"
    )
    long = request_form(_ticket(description="很" * 9000), config)["description"]
    assert len(long) <= MAX_DESCRIPTION and long.endswith("（12345热线工单 12345-20261127-000001）")


def test_service_code_follows_the_most_specific_category() -> None:
    config = Open311Config(
        url="http://p/",
        api_key=API_KEY,
        default_service_code="001",
        service_codes={"城乡建设": "002", "城乡建设/城市建设和市政管理": "003"},
    )
    assert config.service_code(["城乡建设", "城市建设和市政管理", "路灯"]) == "003"
    assert config.service_code(["城乡建设", "住房保障"]) == "002"
    assert config.service_code(["环境保护"]) == "001"
    assert config.service_code([]) == "001"


async def test_refused_filing_is_permanent_and_says_why(open311: Open311Client, platform: Platform) -> None:
    platform.refuse = [{"code": 400, "description": "service_code 002 takes no new requests"}]
    with pytest.raises(PlatformRejected) as refused:
        await open311.file(draft(), "k")
    assert refused.value.status == 400
    assert refused.value.errors == [("400", "service_code 002 takes no new requests")]
    assert "takes no new requests" in str(refused.value)
    (mine,) = await open311.list_for("web:alice")  # kept in the mirror, not on the platform
    assert mine.platform_request_id is None and platform.requests == {}
    platform.refuse = None  # fixed on the platform's side: a supervisor retries the dead letter
    ref = await open311.file(draft(), "k")
    assert ref.created and ref.ticket_id == mine.ticket_id and len(platform.requests) == 1


async def test_a_filing_given_up_is_forgotten_only_where_the_platform_cannot_have_it(
    mirror_url: str, platform: Platform
) -> None:
    async with Open311Client(LocalLedger(mirror_url), config_for(platform, timeout_s=0.5)) as client:
        platform.refuse = [{"code": 400, "description": "service_code 002 takes no new requests"}]
        with pytest.raises(PlatformRejected):
            await client.file(draft("web:refused"), "refused")
        (refused,) = await client.list_for("web:refused")
        assert await client.abandon("refused") == refused.ticket_id
        assert await client.list_for("web:refused") == []  # not at 已受理 for ever
        with pytest.raises(TicketNotFound):
            await client.get(refused.ticket_id)

        platform.refuse = None
        platform.slow_posts = 1  # the platform takes it, its answer comes too late
        with pytest.raises(PlatformUnavailable):
            await client.file(draft("web:lost"), "lost")
        assert await client.abandon("lost") is None  # it may be on the platform: kept, to be found
        assert len(await client.list_for("web:lost")) == 1
        ref = await client.file(draft("web:lost"), "lost")
        assert len(platform.posts) == 2 and (await client.get(ref.ticket_id)).platform_request_id
        assert await client.abandon("lost") is None  # filed: never forgotten
        assert await client.abandon("no-such-key") is None


async def test_a_wrong_api_key_is_refused(mirror_url: str, platform: Platform) -> None:
    async with Open311Client(LocalLedger(mirror_url), config_for(platform, api_key="not-the-key")) as client:
        with pytest.raises(PlatformRejected) as refused:
            await client.file(draft(), "k")
    assert refused.value.status == 403 and refused.value.errors == [("403", "Invalid api_key")]


async def test_set_status_is_refused_the_platform_owns_the_workflow(
    open311: Open311Client, platform: Platform
) -> None:
    ref = await open311.file(draft(), "k")
    request_id, _ = platform.only()
    with pytest.raises(StatusManagedByPlatform) as refused:
        await open311.set_status(ref.ticket_id, "accepted", "已派单")
    assert isinstance(refused.value, InvalidTransition)  # the gateway answers 409
    assert str(refused.value) == f"工单状态由工单平台管理，请在平台上办理（平台编号 {request_id}）"
    assert history(await open311.get(ref.ticket_id)) == [("received", "")]
    with pytest.raises(TicketNotFound):
        await open311.set_status("12345-20261127-999999", "accepted")


async def test_logs_carry_neither_the_phone_nor_the_api_key(
    open311: Open311Client, platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The module's real log lines through the gateway's own processor chain (gateway.logging):
    the contact is never logged, and what a platform echoes back of it is masked."""
    import structlog
    from structlog.testing import CapturingLogger

    from gateway.logging import mask_processor
    from ticket_client import open311 as module

    captured = CapturingLogger()
    chain = [mask_processor, structlog.processors.JSONRenderer(ensure_ascii=False)]
    monkeypatch.setattr(module, "log", structlog.wrap_logger(captured, processors=chain))
    phone = "13812345678"
    platform.refuse = [{"code": 400, "description": f"phone {phone} is not a valid number"}]
    with pytest.raises(PlatformRejected):
        await open311.file(draft(contact=phone), "k")
    platform.refuse = None
    ref = await open311.file(draft(contact=phone), "k")
    platform.update(platform.only()[0], "closed", "已回电")
    await open311.changes_since(0)
    lines = [str(call.args) for call in captured.calls]
    assert {"open311_refused", "open311_filed", "open311_status"} <= {
        json.loads(call.args[0])["event"] for call in captured.calls
    }
    assert any(ref.ticket_id in line for line in lines)
    assert not any(phone in line or API_KEY in line for line in lines), lines


async def test_rating_is_kept_in_the_mirror(open311: Open311Client, platform: Platform) -> None:
    ref = await open311.file(draft(), "k")
    calls = len(platform.calls)
    assert (await open311.rate(ref.ticket_id, "基本满意", "处理及时")).rating == "基本满意"
    assert len(platform.calls) == calls  # GeoReport has no rating: nothing is sent



async def test_search_finds_a_ticket_by_the_platforms_number_too(
    open311: Open311Client, platform: Platform
) -> None:
    ref = await open311.file(draft(), "k")
    request_id = (await open311.get(ref.ticket_id)).platform_request_id
    assert request_id
    for text in (request_id, ref.ticket_id, "路灯"):
        found = await open311.search(TicketQuery(text=text))
        assert [t.ticket_id for t in found] == [ref.ticket_id]
        assert found[0].platform_request_id == request_id
    assert await open311.search(TicketQuery(text="no-such-number")) == []


async def test_the_time_limit_filters_answer_from_the_mirror(open311: Open311Client, platform: Platform) -> None:
    """超期 and 即将超期 (the console's cards) count the mirror's tickets, the platform's included."""
    ref = await open311.file(draft(), "k")
    filed = (await open311.get(ref.ticket_id)).created_at
    soon = TicketQuery(due_soon=True, time_limits=[TimeLimit(due_before=filed, soon_before=filed + timedelta(seconds=1))])
    assert [t.ticket_id for t in await open311.search(soon)] == [ref.ticket_id]
    assert await open311.count(soon) == 1
    assert await open311.count(soon.model_copy(update={"due_soon": False, "overdue": True})) == 0
    late = TicketQuery(overdue=True, time_limits=[TimeLimit(due_before=filed + timedelta(seconds=1))])
    assert await open311.count(late) == 1


# -- status back ------------------------------------------------------------------------------


async def test_status_changes_come_back_with_the_platforms_notes(
    open311: Open311Client, platform: Platform
) -> None:
    ref = await open311.file(draft(), "k")
    request_id, _ = platform.only()
    changes = await open311.changes_since(0)
    assert [(c.ticket_id, c.status, c.note) for c in changes] == [
        (ref.ticket_id, "received", ""),
        (ref.ticket_id, "accepted", ""),  # "open": the platform has it in its queue
    ]
    assert changes[-1].conversation_key == "web:alice" and changes[-1].channel == "web"
    platform.update(request_id, "in_progress", "已派至A3区城管局")
    step = await open311.changes_since(changes[-1].seq)
    assert [(c.status, c.note) for c in step] == [("processing", "已派至A3区城管局")]
    platform.update(request_id, "closed", "路灯已修复，感谢您的反映")
    done = await open311.changes_since(step[-1].seq)
    assert [(c.status, c.note) for c in done] == [("resolved", "路灯已修复，感谢您的反映")]
    assert await open311.changes_since(done[-1].seq) == []  # seen again: nothing new
    ticket = await open311.get(ref.ticket_id)
    assert ticket.status == "resolved"
    assert history(ticket) == [
        ("received", ""),
        ("accepted", ""),
        ("processing", "已派至A3区城管局"),
        ("resolved", "路灯已修复，感谢您的反映"),
    ]
    asked = platform.queried("/requests.json")
    assert asked and all("updated_after" in query for query in asked)


async def test_a_restart_does_not_replay(mirror_url: str, platform: Platform) -> None:
    async with Open311Client(LocalLedger(mirror_url), config_for(platform)) as first:
        ref = await first.file(draft(), "k")
        request_id, _ = platform.only()
        platform.update(request_id, "in_progress")
        seen = await first.changes_since(0)
        mark = await first.mirror.platform_state(UPDATED_AFTER)
    assert [c.status for c in seen] == ["received", "accepted", "processing"]
    assert datetime.fromisoformat(mark) == datetime.fromisoformat(
        platform.requests[request_id]["updated_datetime"]
    )
    async with Open311Client(LocalLedger(mirror_url), config_for(platform)) as second:
        assert await second.changes_since(seen[-1].seq) == []
        since = datetime.fromisoformat(platform.queried("/requests.json")[-1]["updated_after"])
        assert since == datetime.fromisoformat(mark) - OVERLAP  # from the kept cursor, not from scratch
        assert len((await second.get(ref.ticket_id)).history) == 3


async def test_a_jump_is_recorded_as_a_walk_so_the_citizen_hears_resolved(
    open311: Open311Client, platform: Platform
) -> None:
    ref = await open311.file(draft(), "k")
    request_id, _ = platform.only()
    platform.update(request_id, "fixed", "已修复")  # open → fixed before the gateway looked
    changes = await open311.changes_since(0)
    assert [(c.status, c.note) for c in changes] == [
        ("received", ""),
        ("accepted", ""),
        ("resolved", "已修复"),
    ]
    platform.update(request_id, "open", "市民反映仍未修好")  # reopened on the platform
    again = await open311.changes_since(changes[-1].seq)
    assert [(c.status, c.note) for c in again] == [("reopened", ""), ("accepted", "市民反映仍未修好")]
    assert (await open311.get(ref.ticket_id)).status == "accepted"


async def test_the_mirror_judges_what_the_platform_did_against_the_centres_limits(
    mirror_url: str, platform: Platform
) -> None:
    """响应 and 办结 on the platform come back as steps, and the mirror judges them as the local
    ledger would (taken on in time; finished past a 办理时限 already gone), judged again in the mirror
    by ``rejudge``; reopened clears 办结."""
    due = [-1.0]  # hours after filing
    limits = Limits(respond=lambda t: t.created_at + timedelta(hours=1), due=lambda t: t.created_at + timedelta(hours=due[0]))
    async with Open311Client(LocalLedger(mirror_url, limits=limits), config_for(platform)) as client:
        ref = await client.file(draft(), "k")
        request_id, _ = platform.only()
        platform.update(request_id, "fixed", "已修复")
        await client.changes_since(0)
        ticket = await client.get(ref.ticket_id)
        assert (ticket.responded_late, ticket.done_late) == (False, True)
        assert ticket.responded_at is not None and ticket.done_at is not None
        due[0] = 1  # the 办理时限 as the centre knows it now: finished in time
        found = await client.rejudge(ticket.created_at)
        assert (found.done, found.done_late_before, found.done_late, found.changed) == (1, 1, 0, 1)
        assert (await client.get(ref.ticket_id)).done_late is False
        platform.update(request_id, "open", "市民反映仍未修好")
        await client.changes_since(0)
        again = await client.get(ref.ticket_id)
        assert (again.done_at, again.responded_at) == (None, ticket.responded_at)  # taken on once


async def test_moves_without_a_walk_or_a_mapping_are_not_recorded(
    open311: Open311Client, platform: Platform
) -> None:
    ref = await open311.file(draft(), "k")
    request_id, _ = platform.only()
    platform.update(request_id, "In Progress")  # spelled as FixMyStreet does
    changes = await open311.changes_since(0)
    assert [c.status for c in changes] == ["received", "accepted", "processing"]
    platform.update(request_id, "open")  # put back in the queue: no walk back without a 退回
    assert await open311.changes_since(changes[-1].seq) == []
    platform.update(request_id, "awaiting_parts")  # a status nobody mapped
    assert await open311.changes_since(changes[-1].seq) == []
    assert (await open311.get(ref.ticket_id)).status == "processing"
    assert (await open311.mirror.link(ref.ticket_id)).platform_status == "awaiting_parts"


async def test_others_requests_on_the_platform_are_ignored(
    open311: Open311Client, platform: Platform
) -> None:
    ref = await open311.file(draft(), "k")
    platform.requests["999001"] = {
        **fixture("request__closed.json")[0],
        "service_request_id": 999001,
        "updated_datetime": platform.now(),
    }
    changes = await open311.changes_since(0)
    assert {c.ticket_id for c in changes} == {ref.ticket_id}


async def test_each_mode_asks_per_ticket(mirror_url: str, platform: Platform) -> None:
    """For platforms without updated_after: GET requests/{id}.json per followed ticket."""
    platform.no_updated_after = True
    async with Open311Client(LocalLedger(mirror_url), config_for(platform, poll_mode="each")) as client:
        a = await client.file(draft(), "a")
        b = await client.file(draft("web:bob"), "b")
        (ra, _), (rb, _) = list(platform.requests.items())
        platform.update(rb, "closed", "已办结")
        changes = await client.changes_since(0)
        assert [(c.ticket_id, c.status, c.note) for c in changes if c.status != "received"] == [
            (a.ticket_id, "accepted", ""),
            (b.ticket_id, "accepted", ""),
            (b.ticket_id, "resolved", "已办结"),
        ]
        assert {query.get("updated_after") for query in platform.queried("/requests.json")} <= {None}
        assert platform.queried(f"/requests/{ra}.json") and platform.queried(f"/requests/{rb}.json")


def kinds(ticket: Ticket) -> list[tuple[str, str, str]]:
    return [(h.status, h.kind, h.note) for h in ticket.history]


async def test_a_platform_note_without_a_status_change_is_a_progress_note_once(
    open311: Open311Client, platform: Platform
) -> None:
    """The platform's staff comment while the request stays in progress: the note becomes one
    progress note, not again at the next polls (each looks 5 minutes behind, so sees it again),
    nor when the request is touched with the same note; a note carried by a status change is
    that change's note, not a progress note as well."""
    ref = await open311.file(draft(), "k")
    request_id, _ = platform.only()
    platform.update(request_id, "in_progress", "已派至A3区城管局")
    seen = await open311.changes_since(0)
    assert [(c.status, c.kind, c.note) for c in seen][-1] == ("processing", "status", "已派至A3区城管局")
    platform.update(request_id, "in_progress", "已联系物业，预计周五前修复")
    noted = await open311.changes_since(seen[-1].seq)
    assert [(c.status, c.kind, c.note) for c in noted] == [("processing", "note", "已联系物业，预计周五前修复")]
    assert await open311.changes_since(noted[-1].seq) == []  # listed again by the overlap: nothing new
    platform.update(request_id, "in_progress", "已联系物业，预计周五前修复")  # touched, same words
    assert await open311.changes_since(noted[-1].seq) == []
    platform.update(request_id, "closed", "路灯已修复")
    done = await open311.changes_since(noted[-1].seq)
    assert [(c.status, c.kind, c.note) for c in done] == [("resolved", "status", "路灯已修复")]
    assert await open311.changes_since(done[-1].seq) == []
    platform.update(request_id, "closed", "")  # the words taken away: nothing to tell
    assert await open311.changes_since(done[-1].seq) == []
    assert kinds(await open311.get(ref.ticket_id)) == [
        ("received", "status", ""),
        ("accepted", "status", ""),
        ("processing", "status", "已派至A3区城管局"),
        ("processing", "note", "已联系物业，预计周五前修复"),
        ("resolved", "status", "路灯已修复"),
    ]


async def test_each_mode_relays_a_platform_note_once_however_often_it_asks(
    mirror_url: str, platform: Platform
) -> None:
    platform.no_updated_after = True
    async with Open311Client(LocalLedger(mirror_url), config_for(platform, poll_mode="each")) as client:
        ref = await client.file(draft(), "k")
        request_id, _ = platform.only()
        platform.update(request_id, "open", "已受理，正在核实")  # the status the mirror has after the first poll
        first = await client.changes_since(0)
        assert [(c.status, c.kind, c.note) for c in first] == [
            ("received", "status", ""),
            ("accepted", "status", "已受理，正在核实"),  # with the change: not a note as well
        ]
        platform.update(request_id, "open", "已约定周三上门查看")
        for _ in range(3):
            await client.changes_since(0)
        notes = [h for h in (await client.get(ref.ticket_id)).history if h.kind == "note"]
        assert [(h.status, h.note) for h in notes] == [("accepted", "已约定周三上门查看")]


async def test_a_closed_mirror_or_an_unfollowed_status_takes_no_platform_note(
    mirror_url: str, platform: Platform
) -> None:
    config = config_for(platform, status_map={**DEFAULT_STATUS_MAP, "archived": "closed"})
    async with Open311Client(LocalLedger(mirror_url), config) as client:
        ref = await client.file(draft(), "k")
        request_id, _ = platform.only()
        platform.update(request_id, "awaiting_parts", "等待配件")  # nobody mapped it: not recorded
        seen = await client.changes_since(0)
        assert [c.status for c in seen] == ["received"]
        platform.update(request_id, "archived", "已归档")
        closed = await client.changes_since(seen[-1].seq)
        assert [(c.status, c.kind) for c in closed] == [("closed", "status")]  # received → closed
        platform.update(request_id, "archived", "归档后的补充说明")
        assert await client.changes_since(closed[-1].seq) == []
        assert all(h.kind == "status" for h in (await client.get(ref.ticket_id)).history)


async def test_add_note_is_refused_the_platform_owns_the_notes(
    open311: Open311Client, platform: Platform
) -> None:
    ref = await open311.file(draft(), "k")
    request_id, _ = platform.only()
    with pytest.raises(NotesManagedByPlatform) as refused:
        await open311.add_note(ref.ticket_id, "已联系物业")
    # a StatusManagedByPlatform like set_status's, and a NoteRefused: the gateway answers 409
    assert isinstance(refused.value, StatusManagedByPlatform) and isinstance(refused.value, NoteRefused)
    assert str(refused.value) == f"办理进展由工单平台管理，请在平台上填写（平台编号 {request_id}）"
    assert history(await open311.get(ref.ticket_id)) == [("received", "")]
    assert [m for m, _, _ in platform.calls if m == "POST"] == ["POST"]  # the filing only
    with pytest.raises(TicketNotFound):
        await open311.add_note("12345-20261127-999999", "已联系物业")
    helped = await open311.file(draft(departments=["城管局", "供电公司"]), "k2")
    ticket = await open311.assist(helped.ticket_id, "供电公司", "线路正常，系灯具损坏")  # kept in the mirror
    assert [(f.kind, f.unit) for f in ticket.followups] == [("assist", "供电公司")]
    assert [(f.kind, f.unit) for f in (await open311.get(helped.ticket_id)).followups] == [("assist", "供电公司")]
    assert [m for m, _, _ in platform.calls if m == "POST"] == ["POST", "POST"]  # the two filings only


async def test_a_reclassification_is_kept_in_the_mirror_and_a_redispatch_is_the_platforms(
    open311: Open311Client, platform: Platform
) -> None:
    ref = await open311.file(draft(category=["环境保护"]), "k")
    request_id, _ = platform.only()
    with pytest.raises(CorrectionRefused) as refused:
        await open311.correct(ref.ticket_id, Correction(by="op1", category=["城乡建设"], departments=["水务局"]))
    assert isinstance(refused.value, InvalidTransition)  # the gateway answers 409
    assert str(refused.value) == f"派单由工单平台管理，请在平台上改派（平台编号 {request_id}）"
    assert (await open311.get(ref.ticket_id)).revisions == []
    ticket = await open311.correct(ref.ticket_id, Correction(by="op1", category=["城乡建设"], request_type="举报"))
    assert ticket.category == ["城乡建设"] and ticket.request_type == "举报" and len(ticket.revisions) == 1
    assert [m for m, _, _ in platform.calls if m == "POST"] == ["POST"]  # the filing only
    with pytest.raises(TicketNotFound):
        await open311.correct("12345-20261127-999999", Correction(by="op1", departments=["水务局"]))
    other = await open311.file(draft(category=["环境保护"]), "k2")
    with pytest.raises(MergeRefused, match="并单由工单平台管理"):  # the platform owns the workflow
        await open311.merge(other.ticket_id, ref.ticket_id)
    with pytest.raises(MergeRefused):
        await open311.unmerge(other.ticket_id)
    assert (await open311.get(other.ticket_id)).merged_into is None
    with pytest.raises(WithdrawRefused, match=f"撤单由工单平台管理，请在平台上办理（平台编号 {request_id}）"):
        await open311.withdraw(ref.ticket_id, "市民表示问题已自行解决")
    assert (await open311.get(ref.ticket_id)).status == "received"  # unchanged: the platform has it
    with pytest.raises(TicketNotFound):
        await open311.withdraw("12345-20261127-999999", "不需要了")
    later = datetime.now(UTC) + timedelta(days=30)
    for ask in (open311.extend(ref.ticket_id, later, "需协调"),  # the platform keeps the 办理时限
                open311.ask_extension(ref.ticket_id, later, "需协调", "城管局"),
                open311.decide_extension(ref.ticket_id, approve=True, by="boss")):
        with pytest.raises(ExtendRefused, match=f"延期由工单平台管理，请在平台上办理（平台编号 {request_id}）"):
            await ask
    assert (await open311.get(ref.ticket_id)).extension_requests == []
    with pytest.raises(TicketNotFound):
        await open311.ask_extension("12345-20261127-999999", later, "需协调", "城管局")


async def test_a_category_corrected_before_the_platform_has_the_ticket_picks_its_service_code(
    open311: Open311Client, platform: Platform
) -> None:
    """The platform down at filing: the ticket waits in the mirror, an operator corrects its
    category meanwhile, and the POST that gets through carries the corrected category's code."""
    platform.unavailable = 1
    with pytest.raises(PlatformUnavailable):
        await open311.file(draft(category=["环境保护"]), "k")
    (waiting,) = await open311.search(TicketQuery())
    assert waiting.platform_request_id is None and platform.posts == []
    await open311.correct(waiting.ticket_id, Correction(by="op1", reason="分类有误", category=["城乡建设", "市政"]))
    ref = await open311.file(draft(category=["环境保护"]), "k")  # the outbox hands it over again
    assert ref.ticket_id == waiting.ticket_id and ref.created
    (posted,) = platform.posts
    assert posted["service_code"] == "002"  # 城乡建设's, not the default 001 of 环境保护
    assert (await open311.get(ref.ticket_id)).category == ["城乡建设", "市政"]


async def test_a_platform_note_is_logged_without_its_words(
    open311: Open311Client, platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A note may name the citizen or their number: the log says a note came, not what it said."""
    import structlog
    from structlog.testing import CapturingLogger

    from gateway.logging import mask_processor
    from ticket_client import open311 as module

    captured = CapturingLogger()
    chain = [mask_processor, structlog.processors.JSONRenderer(ensure_ascii=False)]
    monkeypatch.setattr(module, "log", structlog.wrap_logger(captured, processors=chain))
    ref = await open311.file(draft(), "k")
    request_id, _ = platform.only()
    seen = await open311.changes_since(0)
    platform.update(request_id, "open", "王先生您好，维修师傅电话13812345678，明早到")
    assert [c.kind for c in await open311.changes_since(seen[-1].seq)] == ["note"]
    [line] = [json.loads(c.args[0]) for c in captured.calls if json.loads(c.args[0])["event"] == "open311_note"]
    assert (line["ticket_id"], line["request_id"], line["chars"]) == (ref.ticket_id, request_id, 27)
    text = " ".join(str(c.args) for c in captured.calls)
    assert "13812345678" not in text and "王先生" not in text


async def test_a_platform_without_updated_after_is_named_in_the_error(
    open311: Open311Client, platform: Platform
) -> None:
    await open311.file(draft(), "k")
    platform.no_updated_after = True
    with pytest.raises(PlatformUnavailable, match="HOTLINE_OPEN311_POLL_MODE=each"):
        await open311.changes_since(0)


async def test_a_platform_down_is_asked_again_after_poll_s(mirror_url: str, platform: Platform) -> None:
    async with Open311Client(LocalLedger(mirror_url), config_for(platform, poll_s=60)) as client:
        await client.file(draft(), "k")
        platform.unavailable = 1
        with pytest.raises(PlatformUnavailable):
            await client.changes_since(0)
        calls = len(platform.calls)
        # within poll_s the mirror answers alone: what was recorded still reaches the citizens
        assert [c.status for c in await client.changes_since(0)] == ["received"]
        assert len(platform.calls) == calls


async def test_httpx_errors_become_platform_unavailable(mirror_url: str, platform: Platform) -> None:
    async with Open311Client(LocalLedger(mirror_url), config_for(platform)) as client:
        await client.file(draft(), "k")
        platform.garbage = True  # a proxy's HTML page instead of the platform
        with pytest.raises(PlatformUnavailable, match="no JSON"):
            await client.changes_since(0)
        platform.garbage = False
    nowhere = Open311Config(
        url=f"http://127.0.0.1:{closed_port()}/open311/v2",
        api_key=API_KEY,
        default_service_code="001",
        poll_s=0,
        timeout_s=1,
    )
    async with Open311Client(LocalLedger(mirror_url), nowhere) as client:
        assert not (await client.file(draft(), "k")).created  # linked already: the platform is not needed
        with pytest.raises(PlatformUnavailable, match="ConnectError"):
            await client.file(draft(), "other")
        with pytest.raises(PlatformUnavailable, match="ConnectError"):  # the look-up before sending again
            await client.file(draft(), "other")
        with pytest.raises(PlatformUnavailable, match="HOTLINE_OPEN311_URL"):
            await client.ping()
        with pytest.raises(PlatformUnavailable):  # "k" is linked: there is something to ask about
            await client.changes_since(0)


# -- start-up and settings --------------------------------------------------------------------


async def test_startup_check_names_the_setting_of_a_code_not_offered(
    mirror_url: str, platform: Platform
) -> None:
    async with Open311Client(LocalLedger(mirror_url), config_for(platform)) as client:
        await client.ping()
        platform.unavailable = 5
        await client.ping()  # checked once: a platform down later does not make the gateway unhealthy
    unknown = config_for(platform, service_codes={"城乡建设": "002", "环境保护": "404"})
    async with Open311Client(LocalLedger(mirror_url), unknown) as client:
        platform.unavailable = 0
        with pytest.raises(PlatformMisconfigured) as wrong:
            await client.ping()
    message = str(wrong.value)
    assert "HOTLINE_OPEN311_SERVICE_CODES 环境保护 → '404'" in message and "'002'" not in message
    assert "001 (Cans left out 24x7)" in message
    async with Open311Client(
        LocalLedger(mirror_url), config_for(platform, default_service_code="9")
    ) as client:
        with pytest.raises(PlatformMisconfigured, match="HOTLINE_OPEN311_DEFAULT_SERVICE_CODE='9'"):
            await client.ping()
    async with Open311Client(
        LocalLedger(mirror_url), config_for(platform, url=platform.url + "/v3")
    ) as client:
        with pytest.raises(PlatformMisconfigured, match="HTTP 404.*services.json"):
            await client.ping()
    moved = config_for(platform, url=platform.url.replace(BASE_PATH, "/moved"))
    async with Open311Client(LocalLedger(mirror_url), moved) as client:
        with pytest.raises(
            PlatformMisconfigured, match=f"HTTP 301 to {BASE_PATH}/services.json: set HOTLINE_OPEN311_URL"
        ):
            await client.ping()


def open311_settings(settings: Settings, platform: Platform, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "ticket_backend": "open311",
        "open311_url": platform.url,
        "open311_api_key": SecretStr(API_KEY),
        "open311_default_service_code": "001",
        "open311_service_codes": {"城乡建设": "002"},
        "open311_poll_s": 0.2,
        "open311_timeout_s": 2.0,
    }
    values.update(overrides)
    return settings.model_copy(update=values)


@pytest.fixture
async def application(settings: Settings, platform: Platform) -> AsyncIterator[Any]:
    """The gateway with the open311 backend on the stand-in platform, workers running."""
    from gateway.app import create_app

    started = create_app(open311_settings(settings, platform))
    await started.state.runtime.start()
    try:
        yield started
    finally:
        await started.state.runtime.stop()


async def test_the_gateway_does_not_start_with_a_code_the_platform_lacks(
    settings: Settings, platform: Platform
) -> None:
    from gateway.app import create_app

    application = create_app(open311_settings(settings, platform, open311_service_codes={"城乡建设": "777"}))
    with pytest.raises(StartupError, match="HOTLINE_OPEN311_SERVICE_CODES 城乡建设 → '777'"):
        await application.state.runtime.start(workers=False)
    await application.state.runtime.stop()


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOTLINE_TICKET_BACKEND", "open311")
    monkeypatch.setenv("HOTLINE_OPEN311_URL", "https://311.example.gov.cn/open311/v2")
    monkeypatch.setenv("HOTLINE_OPEN311_API_KEY", API_KEY)
    monkeypatch.setenv("HOTLINE_OPEN311_DEFAULT_SERVICE_CODE", "001")
    monkeypatch.setenv("HOTLINE_OPEN311_SERVICE_CODES", '{"城乡建设": "002", "城乡建设/住房保障": "003"}')
    monkeypatch.setenv(
        "HOTLINE_OPEN311_STATUS_MAP", '{"Waiting For Parts": "processing", "closed": "closed"}'
    )
    monkeypatch.setenv("HOTLINE_OPEN311_POLL_MODE", "each")
    settings = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    client = make_client(settings)
    assert isinstance(client, Open311Client)
    config = client.config
    assert config.service_codes == {"城乡建设": "002", "城乡建设/住房保障": "003"}
    assert config.status_map["waiting_for_parts"] == "processing" and config.status_map["closed"] == "closed"
    assert config.status_map["in_progress"] == "processing"  # the defaults stay under the city's own
    assert config.poll_mode == "each" and config.api_key == API_KEY
    assert API_KEY not in json.dumps(settings.model_dump(mode="json"))  # what `hotline settings` prints
    assert API_KEY not in repr(settings)


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"open311_url": ""}, "HOTLINE_OPEN311_URL"),
        ({"open311_url": "311.example.gov.cn/open311"}, "HOTLINE_OPEN311_URL"),
        ({"open311_api_key": "changeme"}, "HOTLINE_OPEN311_API_KEY"),
        ({"open311_default_service_code": " "}, "HOTLINE_OPEN311_DEFAULT_SERVICE_CODE"),
    ],
)
def test_incomplete_settings_name_the_variable(overrides: dict[str, Any], named: str) -> None:
    values = {
        "ticket_backend": "open311",
        "open311_url": "https://311.example.gov.cn/open311/v2",
        "open311_api_key": API_KEY,
        "open311_default_service_code": "001",
        **overrides,
    }
    with pytest.raises(ValueError, match=named) as refused:
        Settings(_env_file=None, **values)  # type: ignore[call-arg]
    assert API_KEY not in str(refused.value)


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"open311_service_codes": {"城建": "002"}}, "HOTLINE_OPEN311_SERVICE_CODES: '城建'"),
        ({"open311_service_codes": {"城乡建设": ""}}, "HOTLINE_OPEN311_SERVICE_CODES"),
        ({"open311_status_map": {"closed": "done"}}, "HOTLINE_OPEN311_STATUS_MAP: 'closed' → 'done'"),
        ({"open311_status_map": {"open": "received"}}, "HOTLINE_OPEN311_STATUS_MAP"),
    ],
)
def test_wrong_mappings_name_the_variable(overrides: dict[str, Any], named: str) -> None:
    settings = Settings(
        _env_file=None,
        ticket_backend="open311",
        open311_url="https://311.example.gov.cn/v2",  # type: ignore[call-arg]
        open311_api_key=API_KEY,
        open311_default_service_code="001",
        **overrides,
    )
    with pytest.raises(ValueError, match=re.escape(named)):
        make_client(settings)


# -- through the whole gateway ----------------------------------------------------------------


async def test_end_to_end_a_web_citizen_hears_the_platforms_answer_and_rates_it(
    application: Any, platform: Platform
) -> None:
    """A widget citizen files a request; the platform, down for a while, gets it once with the
    mapped service code; the platform closes it with a note; the citizen hears the note, is
    surveyed, answers 满意, and the rating lands in the mirror."""

    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://test") as c:
        platform.unavailable = 3  # the first POST and the two look-ups before the next one
        session = await new_session(c)
        phone = "13812345678"
        await say(c, session, f"A3区联丰路米兰春天小区门口的路灯坏了一个星期了，晚上很黑，我的电话{phone}")
        _, cursor = await wait_for_events(c, session, lambda e: e["type"] == "reply" and "确认" in e["text"])
        await say(c, session, "确认")
        events, cursor = await wait_for_events(
            c, session, lambda e: e["type"] == "ticket_filed", after=cursor, timeout=20
        )
        filed = next(e for e in events if e["type"] == "ticket_filed")
        ticket_id = filed["ticket_id"]
        assert re.fullmatch(r"12345-\d{8}-\d{6}", ticket_id)

        request_id, request = platform.only()
        assert request["service_code"] == "002"  # 城乡建设
        assert ticket_id in request["description"] and "路灯" in request["description"]
        assert [p["phone"] for p in platform.posts] == [phone]
        assert sum(m == "POST" for m, _, _ in platform.calls) == 2  # one refused by the outage, one taken

        events, cursor = await wait_for_events(
            c,
            session,
            lambda e: e["type"] == "status_update" and e["ticket_id"] == ticket_id,
            after=cursor,
        )
        platform.update(request_id, "closed", "路灯已修复，感谢您的反映")
        events, cursor = await wait_for_events(
            c, session, lambda e: e["type"] == "survey", after=cursor, timeout=15
        )
        update = next(e for e in events if e["type"] == "status_update" and "已办结" in e["text"])
        assert "路灯已修复，感谢您的反映" in update["text"] and update["ticket_id"] == ticket_id
        assert sum(e["type"] == "survey" for e in events) == 1

        await say(c, session, "满意")
        await wait_for_events(
            c, session, lambda e: e["type"] == "reply" and "感谢您的评价" in e["text"], after=cursor
        )
        r = await c.get(f"/api/admin/tickets/{ticket_id}", headers=admin)
        ticket = r.json()
        assert (ticket["rating"], ticket["status"], ticket["platform_request_id"]) == (
            "满意",
            "resolved",
            request_id,
        )
        assert [h["status"] for h in ticket["history"]] == ["received", "accepted", "resolved"]

        r = await c.post(
            f"/api/admin/tickets/{ticket_id}/status", json={"status": "closed", "note": ""}, headers=admin
        )
        assert r.status_code == 409
        assert (
            r.json()["detail"]
            == f"状态变更不允许：工单状态由工单平台管理，请在平台上办理（平台编号 {request_id}）"
        )
        assert len(platform.requests) == 1


async def test_end_to_end_a_web_citizen_hears_the_platforms_progress_note_once(
    application: Any, platform: Platform
) -> None:
    """The platform's staff add a note while the request stays in progress: the citizen hears it
    once as 办理进展, with no survey; the gateway's own admin API cannot add one (409)."""
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://test") as c:
        session = await new_session(c)
        await say(c, session, "A3区联丰路米兰春天小区门口的路灯坏了一个星期了，晚上很黑")
        _, cursor = await wait_for_events(c, session, lambda e: e["type"] == "reply" and "确认" in e["text"])
        await say(c, session, "确认")
        events, cursor = await wait_for_events(
            c, session, lambda e: e["type"] == "ticket_filed", after=cursor, timeout=20
        )
        ticket_id = next(e for e in events if e["type"] == "ticket_filed")["ticket_id"]
        request_id, _ = platform.only()
        platform.update(request_id, "in_progress", "已派至A3区城管局")
        _, cursor = await wait_for_events(
            c, session, lambda e: e["type"] == "status_update" and "A3区城管局" in e["text"], after=cursor
        )
        platform.update(request_id, "in_progress", "已联系物业，预计周五前修复")
        events, progress_cursor = await wait_for_events(
            c, session, lambda e: e["type"] == "status_update" and "办理进展" in e["text"], after=cursor
        )
        progress = next(e for e in events if "办理进展" in e["text"])
        assert progress["text"] == f"您的工单 {ticket_id} 有新的办理进展：已联系物业，预计周五前修复"
        assert (progress["fields"]["progress"], progress["fields"]["status"]) == ("1", "processing")

        r = await c.post(f"/api/admin/tickets/{ticket_id}/notes", json={"note": "补充"}, headers=admin)
        assert r.status_code == 409
        assert r.json()["detail"] == f"不能添加办理进展：办理进展由工单平台管理，请在平台上填写（平台编号 {request_id}）"

        platform.update(request_id, "closed", "路灯已修复")
        events, _ = await wait_for_events(
            c, session, lambda e: e["type"] == "survey", after=progress_cursor, timeout=15
        )
        assert not [e for e in events if "办理进展" in e["text"]]  # polled many times: heard once
        assert sum(e["type"] == "survey" for e in events) == 1
        assert [h["kind"] for h in (await c.get(f"/api/admin/tickets/{ticket_id}", headers=admin)).json()[
            "history"]] == ["status", "status", "status", "note", "status"]


async def test_a_refused_filing_is_dead_lettered_with_the_platforms_reason(
    application: Any, platform: Platform
) -> None:
    """How a 4xx surfaces: a dead letter at once (asking again would be refused again), which a
    supervisor sees with the platform's own words as the reason, and retries once it is fixed."""

    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://test") as c:
        platform.refuse = [{"code": 400, "description": "address_string outside our jurisdiction"}]
        session = await new_session(c)
        await say(c, session, "A3区联丰路米兰春天小区门口的路灯坏了一个星期了")
        _, cursor = await wait_for_events(c, session, lambda e: e["type"] == "reply" and "确认" in e["text"])
        await say(c, session, "确认")
        dead: list[dict[str, Any]] = []
        for _ in range(300):
            dead = (await c.get("/api/admin/dead-letters", headers=admin)).json()["dead_letters"]
            if dead:
                break
            await asyncio.sleep(0.1)
        assert len(dead) == 1 and "outside our jurisdiction" in dead[0]["reason"]
        assert platform.requests == {} and len(platform.posts) == 1  # asked once, not five times
        await wait_for_events(c, session, lambda e: "已转交工作人员" in e["text"], after=cursor)  # not left waiting
        platform.refuse = None
        r = await c.post(
            "/api/admin/dead-letters/settle", json={"ref": dead[0]["ref"], "retry": True}, headers=admin
        )
        assert r.status_code == 200
        events, _ = await wait_for_events(
            c, session, lambda e: e["type"] == "ticket_filed", after=cursor, timeout=20
        )
        assert sum(e["type"] == "ticket_filed" for e in events) == 1 and len(platform.requests) == 1


async def test_a_refused_filing_goes_to_a_person_who_files_it_by_hand(application: Any, platform: Platform) -> None:
    """The citizen was told 正在为您登记: when the platform refuses, they hear that a person
    follows it up, the conversation waits in the queue with the form filled, and the operator's
    filing settles the dead letter, so that a retry cannot file it twice; the refused filing's
    mirror ticket, which the platform never had, is forgotten."""
    from gateway import keys
    from gateway.console import keys as ck
    from tests.console.conftest import PASSWORD, Operator

    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    transport = httpx.ASGITransport(app=application)
    rt = application.state.runtime
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://test") as c,
        httpx.AsyncClient(transport=transport, base_url="http://test") as desk,
    ):
        platform.refuse = [{"code": 400, "description": "address_string outside our jurisdiction"}]
        session = await new_session(c)
        key = f"web:{session['session_id']}"
        await say(c, session, "A3区联丰路米兰春天小区门口的路灯坏了一个星期了")
        _, cursor = await wait_for_events(c, session, lambda e: e["type"] == "reply" and "确认" in e["text"])
        await say(c, session, "确认")
        events, cursor = await wait_for_events(
            c, session, lambda e: e["type"] == "reply" and "未能登记成功" in e["text"], after=cursor, timeout=20
        )
        assert not any(e["type"] == "ticket_filed" for e in events)
        (refused,) = await rt.tickets.list_for(key)  # the mirror's, never on the platform
        (dead,) = (await c.get("/api/admin/dead-letters", headers=admin)).json()["dead_letters"]

        await application.state.console.users.create("zhou", "operator", PASSWORD)
        r = await desk.post("/api/console/login", json={"username": "zhou", "password": PASSWORD})
        op = Operator(desk, "zhou", r.json()["csrf"])
        (row,) = [q for q in (await op.get("/queue")).json()["conversations"] if q["key"] == key]
        assert row["mode"] == "waiting" and row["reason"] == "filing_failed"
        conv = (await op.get(f"/conversation?key={key}")).json()
        assert "路灯" in conv["form"]["description"] and conv["form"]["location_text"]
        assert any(m["kind"] == "filing_failed" and m["from"] == "system" for m in conv["history"])
        assert await rt.redis.hget(keys.conversation(key), "mode") == "waiting"

        platform.refuse = None
        await op.post("/takeover", {"key": key})
        form = {**conv["form"], "location_text": "A3区联丰路米兰春天小区东门"}  # what the platform needed
        r = await op.post("/ticket", {"key": key, "form": form, "request_id": "by-hand"})
        assert r.status_code == 200, r.text
        filed = r.json()["ticket_id"]
        assert (await c.get("/api/admin/dead-letters", headers=admin)).json()["dead_letters"] == []
        assert [t.ticket_id for t in await rt.tickets.list_for(key)] == [filed]  # the refused one is gone
        assert filed != refused.ticket_id and len(platform.requests) == 1
        retry = await c.post("/api/admin/dead-letters/settle", json={"ref": dead["ref"], "retry": True}, headers=admin)
        assert retry.status_code == 404  # settled by the operator's filing: nothing to file twice
        entries = [json.loads(e["detail"]) | {"action": e["action"]}
                   for _, e in await rt.redis.xrevrange(ck.AUDIT, count=20)]
        assert {"action": "dead.discard", "replaced_by": filed}.items() <= next(
            e for e in entries if e["action"] == "dead.discard").items()


async def test_the_console_surfaces_a_refusal_and_the_platforms_workflow(
    application: Any, platform: Platform
) -> None:
    """The operator console files synchronously: a platform's 4xx is a 502 naming its reason, and
    变更状态 is a 409 saying where the status is changed."""
    from tests.console.conftest import PASSWORD, Operator
    from tests.console.test_api import waiting_conversation

    transport = httpx.ASGITransport(app=application)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://test") as c,
        httpx.AsyncClient(transport=transport, base_url="http://test") as desk,
    ):
        _, key, _ = await waiting_conversation(c)
        await application.state.console.users.create("zhou", "operator", PASSWORD)
        r = await desk.post("/api/console/login", json={"username": "zhou", "password": PASSWORD})
        op = Operator(desk, "zhou", r.json()["csrf"])
        await op.post("/takeover", {"key": key})
        form = {
            "title": "路灯不亮",
            "description": "小区门口路灯坏了一周",
            "category": ["城乡建设"],
            "request_type": "投诉",
            "urgent": False,
            "location_text": "A3区联丰路米兰春天小区",
            "contact": "",
            "departments": [],
        }
        platform.refuse = [{"code": 400, "description": "address_string outside our jurisdiction"}]
        r = await op.post("/ticket", {"key": key, "form": form, "request_id": "req1"})
        assert r.status_code == 502
        assert r.json()["detail"] == "工单平台拒绝登记该工单：400 address_string outside our jurisdiction"
        platform.refuse = None
        r = await op.post("/ticket", {"key": key, "form": form, "request_id": "req1"})  # the operator retries
        assert r.status_code == 200, r.text
        request_id, request = platform.only()
        assert request["service_code"] == "002"
        r = await op.post(f"/tickets/{r.json()['ticket_id']}/status", {"status": "accepted", "note": ""})
        assert r.status_code == 409
        assert (
            "工单状态由工单平台管理，请在平台上办理" in r.json()["detail"]
            and request_id in r.json()["detail"]
        )
        shown = (await op.get("/conversation", params={"key": key})).json()
        assert shown["status_by_platform"] is True  # the console hides 变更状态
        assert [t["platform_request_id"] for t in shown["tickets"]] == [request_id]
        assert (await op.get("/queue")).json()["returned"] is None  # no 待改派 here: the platform routes


def test_a_ticket_with_photos_gives_the_platform_a_signed_link_to_each() -> None:
    from ticket_client import media_link

    key = media_link.key_from("admin-token-for-tests")
    config = Open311Config(
        url="http://p/",
        api_key=API_KEY,
        default_service_code="001",
        public_url="https://12345.example.gov.cn/",
        media_key=key,
        media_link_s=3600,
    )
    form = request_form(_ticket(attachments=["upload:abc", "upload:def"]), config)
    url = httpx.URL(form["media_url"])
    assert form["media_url"].startswith("https://12345.example.gov.cn/media/upload%3Aabc?expires=")
    expires, sig = int(url.params["expires"]), url.params["sig"]
    assert media_link.valid(key, "upload:abc", expires, sig) and not media_link.valid(
        key, "upload:def", expires, sig
    )
    # the others by their links in the description, before the 12345 number, which stays last
    lines = form["description"].splitlines()
    assert lines[-2].startswith("其他附件2：https://12345.example.gov.cn/media/upload%3Adef?expires=")
    other = httpx.URL(lines[-2].split("：", 1)[1])
    assert media_link.valid(key, "upload:def", int(other.params["expires"]), other.params["sig"])
    assert lines[-1].startswith("（12345热线工单 ")
    assert "其他附件" not in request_form(_ticket(attachments=["upload:abc"]), config)["description"]
    assert "media_url" not in request_form(_ticket(), config)  # no photo, no link
    without_public_url = Open311Config(url="http://p/", api_key=API_KEY, default_service_code="001")
    assert "media_url" not in request_form(_ticket(attachments=["upload:abc"]), without_public_url)
