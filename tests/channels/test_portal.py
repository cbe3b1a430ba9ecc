"""Portal sources: signed posts through the real route into real Redis, replies to a source server.

The source (``Source``) is an aiohttp server on 127.0.0.1 standing in for a portal's reply API and
its attachment store: it checks the gateway's signature on every reply, records it, and can be
told to fail. Posts are real message-board posts (``fixtures/portal/``).
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from fastapi import FastAPI
from PIL import Image

from channels import portal
from channels.base import (
    ChannelContext,
    DeliveryError,
    Forbidden,
    InboundMessage,
    OutboundMessage,
    Unauthorized,
)
from channels.media import load_record
from config.settings import PortalSource, Settings
from gateway import errors, keys
from gateway.streams import Streams
from tests.channels.test_media import exif_rotated_with_gps
from tests.conftest import ADMIN_TOKEN, serve_local

FIXTURES = Path(__file__).parent / "fixtures" / "portal"
SECRET = "liuyanban-secret-0123456789"
TICKET = re.compile(r"12345-\d{8}-\d{6}")
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def signed(post: dict[str, Any], secret: str = SECRET) -> dict[str, Any]:
    """``post`` as a source pushes it: the keyword arguments of an httpx ``post``."""
    body = json.dumps(post, ensure_ascii=False).encode()
    return {"content": body, "headers": {"content-type": "application/json", **portal.sign(secret, body)}}


def post_fixture(name: str, media: str = "") -> dict[str, Any]:
    return dict(json.loads((FIXTURES / f"{name}.json").read_text().replace("{media}", media)))


async def signed_by_gateway(request: web.Request) -> bytes | None:
    """The body of a request the gateway signed with the source's secret, else None: what a
    source checks before it believes a reply or answers a list request."""
    body = await request.read()
    try:
        portal.verify(
            SECRET,
            body,
            request.headers.get(portal.TIMESTAMP_HEADER),
            request.headers.get(portal.SIGNATURE_HEADER),
            300,
        )
    except (Unauthorized, Forbidden):
        return None
    return body


# --- the source: reply API and attachment store ------------------------------------------------
@dataclass
class Source:
    replies: list[dict[str, Any]] = field(default_factory=list)
    scripted: list[tuple[int, dict[str, str]]] = field(
        default_factory=list
    )  # (status, headers) to answer next
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # path → (content, content type)
    bad_signatures: int = 0
    url: str = ""
    runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/replies", self.reply)
        app.router.add_get("/{path:.+}", self.download)
        self.runner, self.url = await serve_local(app)

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def reply(self, request: web.Request) -> web.Response:
        body = await signed_by_gateway(request)  # what a source does first with a reply
        if body is None:
            self.bad_signatures += 1
            return web.Response(status=403)
        if self.scripted:
            status, headers = self.scripted.pop(0)
            return web.Response(status=status, headers=headers)
        self.replies.append(json.loads(body))
        return web.json_response({"ok": True})

    async def download(self, request: web.Request) -> web.Response:
        found = self.files.get("/" + request.match_info["path"])
        if found is None:
            return web.Response(status=404)
        return web.Response(body=found[0], content_type=found[1])

    async def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], within_s: float = 15.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            for reply in self.replies:
                if predicate(reply):
                    return reply
            await asyncio.sleep(0.05)
        raise AssertionError(
            f"no matching reply within {within_s}s; saw {[(r['kind'], r['text'][:30]) for r in self.replies]}"
        )


@pytest.fixture
async def source() -> AsyncIterator[Source]:
    server = Source()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def settings(settings: Settings, source: Source) -> Settings:
    """The shared settings with one source, the city's message board, replying to the test source."""
    board = PortalSource(secret=SECRET, reply_url=f"{source.url}/api/replies", name="市政府网站留言板")
    return settings.model_copy(update={"portal": {"liuyanban": board}, "portal_media_retry_s": 0.2})


# --- the channel on real Redis, behind its real route ------------------------------------------
@dataclass
class Harness:
    channel: portal.PortalChannel
    client: httpx.AsyncClient
    redis: Any

    async def push(
        self,
        post: dict[str, Any] | bytes,
        source: str = "liuyanban",
        secret: str = SECRET,
        timestamp: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        body = post if isinstance(post, bytes) else json.dumps(post, ensure_ascii=False).encode()
        signed = portal.sign(secret, body, timestamp) if headers is None else headers
        return await self.client.post(
            f"/channels/portal/{source}", content=body, headers={"content-type": "application/json", **signed}
        )

    async def inbound(self) -> list[InboundMessage]:
        entries = await self.redis.xrange(keys.INBOUND)
        return [InboundMessage.model_validate_json(fields["data"]) for _, fields in entries]


@pytest.fixture
async def harness(settings: Settings) -> AsyncIterator[Harness]:
    redis = aioredis.Redis.from_url(settings.redis_url, decode_responses=True)
    streams = Streams(redis, settings.dedupe_ttl_s)
    http = httpx.AsyncClient(timeout=5.0)
    ctx = ChannelContext(redis=redis, enqueue=streams.enqueue, settings=settings, http=http)
    channel = portal.PortalChannel(ctx)
    app = FastAPI()
    errors.install(app)
    app.include_router(channel.router(), prefix="/channels")  # type: ignore[arg-type]
    await channel.start()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        ) as client:
            yield Harness(channel, client, redis)
    finally:
        await channel.stop()
        await http.aclose()
        await redis.aclose()


# --- parsing and signatures ---------------------------------------------------------------------
def test_a_post_becomes_a_letter_with_its_title_and_beijing_time() -> None:
    post = portal.Post.model_validate(
        post_fixture("post__light_pollution_photo", "https://ly.example.gov.cn")
    )
    msg = portal.inbound("liuyanban", post)
    assert msg.channel == "portal:liuyanban" and msg.conversation_key == "portal:liuyanban:A00019729"
    assert msg.letter and msg.reply_to == "239968" and msg.channel_message_id == "239968"
    assert (
        msg.title is not None
        and msg.title.startswith("A4区培元桥25号")
        and msg.text.startswith("A4区培元桥25号，原科技")
    )
    assert msg.received_at.utcoffset() == timedelta(hours=8) and msg.received_at.hour == 14
    assert msg.meta == {"contact": "13812345678"}
    [photo] = msg.attachments
    assert (
        photo.kind == "image"
        and photo.name == "路灯夜间照片.jpg"
        and re.fullmatch(r"portal:liuyanban:[0-9a-f]{32}", photo.ref)
    )


@pytest.mark.parametrize("name", sorted(p.stem for p in FIXTURES.glob("*.json")))
def test_every_captured_post_is_a_letter_answering_its_own_post(name: str) -> None:
    post = post_fixture(name, "https://ly.example.gov.cn")
    msg = portal.inbound("liuyanban", portal.Post.model_validate(post))
    assert msg.letter and msg.reply_to == msg.channel_message_id == post["id"] and msg.text == post["body"]
    assert msg.sender == post["user"] and msg.title == post["title"]


@pytest.mark.parametrize("body", ["", "如题", "如题，谢谢！", "详见附件。"])
def test_a_post_written_in_its_title_is_its_own_text(body: str) -> None:
    msg = portal.inbound(
        "liuyanban", portal.Post(id="1", user="u", title="小区门口路灯坏了一个月", body=body)
    )
    assert msg.text == "小区门口路灯坏了一个月" and msg.title == "小区门口路灯坏了一个月"


def test_a_body_that_only_mentions_the_title_is_kept() -> None:
    msg = portal.inbound(
        "liuyanban", portal.Post(id="1", user="u", title="路灯", body="如题所说，路灯坏了一个月")
    )
    assert msg.text == "如题所说，路灯坏了一个月"


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda h: {}, "Unauthorized"),
        (lambda h: {**h, portal.SIGNATURE_HEADER: "sha256=" + "0" * 64}, "Forbidden"),
        (lambda h: {**h, portal.TIMESTAMP_HEADER: str(int(h[portal.TIMESTAMP_HEADER]) + 1)}, "Forbidden"),
        (lambda h: {**h, portal.TIMESTAMP_HEADER: "yesterday"}, "Forbidden"),
    ],
    ids=["unsigned", "wrong-signature", "timestamp-changed", "timestamp-not-a-number"],
)
def test_verify_refuses_what_the_secret_did_not_sign(
    change: Callable[[dict[str, str]], dict[str, str]], error: str
) -> None:
    body = b'{"id":"1"}'
    good = portal.sign(SECRET, body)
    portal.verify(SECRET, body, good[portal.TIMESTAMP_HEADER], good[portal.SIGNATURE_HEADER], 300)
    bad = change(good)
    with pytest.raises(Exception) as caught:
        portal.verify(SECRET, body, bad.get(portal.TIMESTAMP_HEADER), bad.get(portal.SIGNATURE_HEADER), 300)
    assert type(caught.value).__name__ == error


def test_the_signature_is_the_documented_hmac() -> None:
    """The vector docs/portal.md gives sources to check their own signing against (computed with
    `openssl dgst -sha256 -hmac`)."""
    headers = portal.sign("liuyanban-secret-0123456789", b'{"id":"1"}', 1764300000)
    assert headers == {
        portal.TIMESTAMP_HEADER: "1764300000",
        portal.SIGNATURE_HEADER: "sha256=ebaab2b6a4434da80ffe70d8cec73a9c83e1c9a612743ea1fb4e64f5147a214f",
    }


# --- the route ----------------------------------------------------------------------------------
async def test_a_signed_post_is_enqueued_once(harness: Harness) -> None:
    post = post_fixture("post__streetlight")
    r = await harness.push(post)
    assert r.status_code == 200 and r.json()["duplicate"] is False
    r = await harness.push(post)  # the source's retry after a lost answer
    assert r.status_code == 200 and r.json()["duplicate"] is True
    [msg] = await harness.inbound()
    assert msg.letter and msg.title == post["title"] and "桂花名城" in msg.text


async def test_refusals_name_what_is_wrong(harness: Harness) -> None:
    post = post_fixture("post__streetlight")
    r = await harness.push(post, source="weibo")
    assert r.status_code == 404
    r = await harness.push(post, headers={})
    assert r.status_code == 401 and portal.SIGNATURE_HEADER in r.text
    r = await harness.push(post, secret="another-secret-0123456789")
    assert r.status_code == 403 and "signature" in r.text
    r = await harness.push(post, timestamp=int(time.time()) - 3600)
    assert r.status_code == 403 and "replay window" in r.text
    r = await harness.push(b"{not json")
    assert r.status_code == 400
    r = await harness.push({"id": "1", "user": "u", "title": " ", "body": ""})
    assert r.status_code == 400 and "title or a body" in r.text
    r = await harness.push({**post, "attachments": [{"url": "file:///etc/passwd"}]})
    assert r.status_code == 400 and "attachments.0.url" in r.text
    assert await harness.inbound() == []


async def test_an_attachment_is_fetched_from_the_source_without_its_exif(
    harness: Harness, source: Source
) -> None:
    source.files["/upload/2019/04/25/ly239968_1.jpg"] = (exif_rotated_with_gps(), "image/jpeg")
    r = await harness.push(post_fixture("post__light_pollution_photo", source.url))
    assert r.status_code == 200
    [msg] = await harness.inbound()
    ref = msg.attachments[0].ref
    record = None
    for _ in range(100):
        record = await load_record(harness.redis, ref)
        if record is not None:
            break
        await asyncio.sleep(0.05)
    assert record is not None and record.path and record.mime == "image/jpeg"
    image = Image.open(io.BytesIO(await asyncio.to_thread(Path(record.path).read_bytes)))
    assert not image.getexif() and image.size == (600, 800)  # turned upright, no GPS position kept


async def test_attachments_come_only_from_the_sources_own_hosts(harness: Harness, source: Source) -> None:
    post = post_fixture("post__light_pollution_photo", "http://127.0.0.2:9")  # not the reply URL's host
    r = await harness.push(post)
    assert r.status_code == 200
    [msg] = await harness.inbound()
    record = None
    for _ in range(100):
        record = await load_record(harness.redis, msg.attachments[0].ref)
        if record is not None:
            break
        await asyncio.sleep(0.05)
    assert record is not None and not record.path and "media hosts" in record.error


# --- replies ------------------------------------------------------------------------------------
def outbound(kind: str, text: str, ticket_id: str | None = None, **fields: str) -> OutboundMessage:
    return OutboundMessage(
        conversation_key="portal:liuyanban:UU008729",
        channel="portal:liuyanban",
        kind=kind,  # type: ignore[arg-type]
        text=text,
        ticket_id=ticket_id,
        fields=fields,
    )


async def test_news_of_a_ticket_answers_the_post_it_came_from(harness: Harness, source: Source) -> None:
    ticket = "12345-20261128-000001"
    await harness.channel.send(
        outbound("ticket_filed", f"已受理，工单编号{ticket}", ticket, reply_to="40956", status="received")
    )
    await harness.channel.send(outbound("status_update", "已办结（路灯已修复）", ticket, status="resolved"))
    receipt, news = source.replies
    assert receipt["post_id"] == news["post_id"] == "40956" and news["ticket_id"] == ticket
    assert (
        receipt["kind"] == "ticket_filed" and news["kind"] == "status_update" and news["status"] == "resolved"
    )
    assert (
        news["user"] == "UU008729" and news["text"] == "已办结（路灯已修复）" and source.bad_signatures == 0
    )


async def test_a_progress_note_is_posted_as_progress_never_as_the_answer(harness: Harness, source: Source) -> None:
    """A source takes a resolved ``status_update``'s note as the 答复: an interim word said after
    it (a re-inspection) comes as a kind of its own, so it cannot replace the answer."""
    ticket = "12345-20261128-000001"
    await harness.channel.send(
        outbound("ticket_filed", f"已受理，工单编号{ticket}", ticket, reply_to="40956", status="received")
    )
    text = f"您的工单 {ticket} 有新的办理进展：已复查，路灯正常"
    await harness.channel.send(
        outbound("status_update", text, ticket, status="resolved", progress="1", note="已复查，路灯正常")
    )
    _, progress = source.replies
    assert (progress["kind"], progress["status"], progress["note"]) == ("progress", "resolved", "已复查，路灯正常")
    assert progress["post_id"] == "40956" and progress["text"] == text


@pytest.mark.parametrize(
    ("status", "headers", "retry_after"),
    [(503, {}, 30.0), (429, {"Retry-After": "7"}, 7.0), (404, {}, None), (400, {}, None)],
)
async def test_the_sources_answer_decides_whether_to_retry(
    harness: Harness, source: Source, status: int, headers: dict[str, str], retry_after: float | None
) -> None:
    source.scripted.append((status, headers))
    with pytest.raises(DeliveryError) as caught:
        await harness.channel.send(outbound("reply", "来信已收到"))
    assert caught.value.retry_after == retry_after


async def test_an_unreachable_source_is_retried(settings: Settings) -> None:
    board = PortalSource(secret=SECRET, reply_url="http://127.0.0.1:9/api/replies")
    ctx = ChannelContext(
        redis=None,
        enqueue=None,
        settings=settings.model_copy(update={"portal": {"liuyanban": board}}),
        http=httpx.AsyncClient(timeout=2.0),
    )
    try:
        with pytest.raises(DeliveryError) as caught:
            await portal.PortalChannel(ctx).send(outbound("reply", "来信已收到"))
        assert caught.value.retry_after == 30.0
    finally:
        await ctx.http.aclose()


# --- settings -----------------------------------------------------------------------------------
def test_sources_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTLINE_PORTAL__LiuYanBan__SECRET", SECRET)
    monkeypatch.setenv("HOTLINE_PORTAL__LiuYanBan__REPLY_URL", "https://ly.example.gov.cn/api/replies")
    monkeypatch.setenv("HOTLINE_PORTAL__LiuYanBan__NAME", "市政府网站留言板")
    board = Settings(_env_file=None).portal["liuyanban"]  # type: ignore[call-arg]
    assert board.name == "市政府网站留言板" and board.allowed_hosts() == {"ly.example.gov.cn"}


@pytest.mark.parametrize(
    "portal_setting",
    [
        {"liuyanban": {"secret": "changeme", "reply_url": "https://ly.example.gov.cn/r"}},
        {"liuyanban": {"secret": SECRET}},
        {"liuyanban": {"secret": SECRET, "reply_url": "ly.example.gov.cn/r"}},
        {"留言板": {"secret": SECRET, "reply_url": "https://ly.example.gov.cn/r"}},
    ],
    ids=["weak-secret", "no-reply-url", "reply-url-not-http", "name-not-ascii"],
)
def test_a_source_set_up_wrong_is_refused_at_start(portal_setting: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="portal"):
        Settings(_env_file=None, portal=portal_setting)  # type: ignore[call-arg]


# --- end to end ---------------------------------------------------------------------------------
async def test_a_post_is_filed_answered_and_its_reply_posted_back(
    client: httpx.AsyncClient, source: Source
) -> None:
    post = post_fixture("post__streetlight")
    r = await client.post("/channels/portal/liuyanban", **signed(post))
    assert r.status_code == 200, r.text
    receipt = await source.wait_for(lambda x: x["kind"] == "ticket_filed")
    assert receipt["post_id"] == "40956" and receipt["user"] == "UU008729" and TICKET.search(receipt["text"])
    ticket_id = receipt["ticket_id"]
    ticket = (await client.get(f"/api/admin/tickets/{ticket_id}", headers=ADMIN)).json()
    assert ticket["title"] == post["title"] and ticket["channel"] == "portal:liuyanban"
    assert "桂花名城" in ticket["location"]["text"] and ticket["departments"]
    assert not [x for x in source.replies if x["kind"] == "reply"]  # nobody asked "where?" or "确认?"

    for status, note in (("accepted", ""), ("resolved", "已安装路灯4盏，破损路面已修补")):
        r = await client.post(
            f"/api/admin/tickets/{ticket_id}/status", json={"status": status, "note": note}, headers=ADMIN
        )
        assert r.status_code == 200, r.text
    answer = await source.wait_for(lambda x: x["kind"] == "status_update" and x["status"] == "resolved")
    assert answer["post_id"] == "40956" and "已安装路灯4盏" in answer["text"]
    assert answer["note"] == "已安装路灯4盏，破损路面已修补"  # the 答复 as the department wrote it
    survey = await source.wait_for(lambda x: x["kind"] == "survey")
    assert survey["options"] == ["满意", "基本满意", "不满意"] and survey["post_id"] == "40956"

    follow_up = {
        "id": "40956-1",
        "user": "UU008729",
        "body": "满意",
    }  # the writer's answer, relayed by the board
    r = await client.post("/channels/portal/liuyanban", **signed(follow_up))
    assert r.status_code == 200
    await source.wait_for(lambda x: x["kind"] == "reply" and "满意" in x["text"])
    assert (await client.get(f"/api/admin/tickets/{ticket_id}", headers=ADMIN)).json()["rating"] == "满意"
    assert source.bad_signatures == 0


async def test_a_post_adding_to_an_earlier_one_adds_to_its_ticket(client: httpx.AsyncClient, source: Source) -> None:
    """追问 / 追加留言: a post naming the writer's earlier one (``parent_id``) is a 补充 on the
    ticket that one became, answered on the board, not a second ticket; one naming a post the
    gateway never filed, or somebody else's, is filed as a matter of its own."""
    r = await client.post("/channels/portal/liuyanban", **signed(post_fixture("post__streetlight")))
    assert r.status_code == 200, r.text
    ticket_id = (await source.wait_for(lambda x: x["kind"] == "ticket_filed"))["ticket_id"]
    more = {"id": "40957", "user": "UU008729", "parent_id": "40956", "title": "追加留言",
            "body": "补充一下：路口东侧还有两盏路灯也不亮，晚上电动车经常在这里摔倒。"}
    r = await client.post("/channels/portal/liuyanban", **signed(more))
    assert r.status_code == 200, r.text
    answer = await source.wait_for(lambda x: x["kind"] == "reply" and x["post_id"] == "40957")
    assert ticket_id in answer["text"] and "补充" in answer["text"]
    ticket = (await client.get(f"/api/admin/tickets/{ticket_id}", headers=ADMIN)).json()
    assert [f["kind"] for f in ticket["followups"]] == ["info"] and "两盏路灯" in ticket["followups"][0]["note"]

    for post in ({"id": "40958", "user": "UU008729", "parent_id": "no-such-post", "body": "小区门口的垃圾站三天没人清运了，臭味很大"},
                 {"id": "40959", "user": "UU000001", "parent_id": "40956", "body": "我也住这附近，桂花名城门口的路灯也坏了很久了"}):
        r = await client.post("/channels/portal/liuyanban", **signed(post))
        assert r.status_code == 200, r.text
        filed = await source.wait_for(lambda x, post_id=post["id"]: x["kind"] == "ticket_filed" and x["post_id"] == post_id)
        assert filed["ticket_id"] != ticket_id
    assert len((await client.get(f"/api/admin/tickets/{ticket_id}", headers=ADMIN)).json()["followups"]) == 1


async def test_a_progress_note_reaches_the_board_between_the_status_changes(
    client: httpx.AsyncClient, source: Source
) -> None:
    r = await client.post("/channels/portal/liuyanban", **signed(post_fixture("post__streetlight")))
    assert r.status_code == 200, r.text
    ticket_id = (await source.wait_for(lambda x: x["kind"] == "ticket_filed"))["ticket_id"]
    r = await client.post(f"/api/admin/tickets/{ticket_id}/status", json={"status": "accepted"}, headers=ADMIN)
    assert r.status_code == 200
    await source.wait_for(lambda x: x["kind"] == "status_update")  # deliveries run in parallel: one at a time
    r = await client.post(
        f"/api/admin/tickets/{ticket_id}/notes", json={"note": "已联系施工单位，本周内安装路灯"}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    progress = await source.wait_for(lambda x: x["kind"] == "progress")
    assert (progress["status"], progress["note"], progress["post_id"]) == ("accepted", "已联系施工单位，本周内安装路灯", "40956")
    r = await client.post(
        f"/api/admin/tickets/{ticket_id}/status", json={"status": "resolved", "note": "已安装路灯4盏"}, headers=ADMIN
    )
    assert r.status_code == 200
    await source.wait_for(lambda x: x["kind"] == "survey")
    await source.wait_for(lambda x: x["kind"] == "status_update" and x["status"] == "resolved")
    said = [(x["kind"], x["status"], x["note"]) for x in source.replies]
    assert said[:3] == [
        ("ticket_filed", "received", ""),
        ("status_update", "accepted", ""),
        ("progress", "accepted", "已联系施工单位，本周内安装路灯"),
    ]
    # the 答复 is the resolution's note alone (the survey, published with it, may overtake it)
    assert sorted(said[3:]) == [("status_update", "resolved", "已安装路灯4盏"), ("survey", "", "")]


def test_hotline_settings_hides_the_sources_secrets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from config.settings import get_settings
    from gateway.cli import app

    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    monkeypatch.setenv("HOTLINE_PORTAL__LIUYANBAN__SECRET", SECRET)
    monkeypatch.setenv("HOTLINE_PORTAL__LIUYANBAN__REPLY_URL", "https://ly.example.gov.cn/api/replies")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["settings"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output and json.loads(result.output)["portal"]["liuyanban"]["secret"] == "***"


async def test_redis_down_answers_503_so_the_source_retries(settings: Settings) -> None:
    from gateway.errors import ServiceUnavailable

    async def enqueue(_: InboundMessage, side: Any = None, then: Any = None) -> bool:
        raise ServiceUnavailable("服务暂时繁忙，请稍后重试")

    channel = portal.PortalChannel(ChannelContext(redis=None, enqueue=enqueue, settings=settings))
    app = FastAPI()
    errors.install(app)
    app.include_router(channel.router(), prefix="/channels")  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        r = await client.post("/channels/portal/liuyanban", **signed(post_fixture("post__streetlight")))
    assert r.status_code == 503 and "繁忙" in r.text


async def test_redis_down_while_a_follow_up_is_looked_up_answers_503(settings: Settings) -> None:
    import redis.asyncio as aioredis

    from tests.conftest import free_port

    async def enqueue(_: InboundMessage, side: Any = None, then: Any = None) -> bool:
        raise AssertionError("nothing is enqueued without knowing the ticket it adds to")

    down = aioredis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1)
    channel = portal.PortalChannel(ChannelContext(redis=down, enqueue=enqueue, settings=settings))
    app = FastAPI()
    errors.install(app)
    app.include_router(channel.router(), prefix="/channels")  # type: ignore[arg-type]
    more = {"id": "40957", "user": "UU008729", "parent_id": "40956", "body": "路口东侧还有两盏路灯也不亮"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        r = await client.post("/channels/portal/liuyanban", **signed(more))
    await down.aclose()
    assert r.status_code == 503 and "繁忙" in r.text and r.headers["retry-after"] == "5"
