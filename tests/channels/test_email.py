"""The e-mail channel (市长信箱): captured-shape mails through the parser, the poller against a real
Dovecot, replies into a real SMTP server (aiosmtpd), and a letter through the whole gateway.

Redis is real (the suite's server). Dovecot is skipped, with the reason, where it is not installed
(``make mailserver`` installs it as root).
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
import structlog
from PIL import Image
from pydantic import SecretStr
from redis.exceptions import RedisError

from bot.texts import say
from channels.base import ChannelContext, DeliveryError, InboundMessage, OutboundMessage
from channels.email import EmailChannel
from channels.email.mailbox import IGNORED, Poller, PollInterrupted
from channels.email.parse import parse_mail
from channels.email.send import TOO_LARGE, Threads
from channels.media import find, media_roots, record_key
from config.settings import Settings
from gateway import keys
from gateway.streams import Streams
from tests.channels.mailservers import Dovecot, Received, SmtpSink, dovecot_binary
from tests.conftest import ADMIN_TOKEN

FIXTURES = Path(__file__).parent / "fixtures" / "email"
OWN = "mayor@city.gov.cn"
TICKET = re.compile(r"12345-\d{8}-\d{6}")
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
GBK_LETTER = "letter__gb2312_declared_gbk_chars"
GBK_ID = "<5b3c1a7e.2f1d.18c6a2b4e1f.Coremail.wangkun1987@163.com>"
GBK_SUBJECT = "反映联丰路米兰春天小区东门路灯损坏（王堃）"


def eml(name: str) -> bytes:
    return (FIXTURES / f"{name}.eml").read_bytes()


# --- parsing: one line per captured mail ----------------------------------------------------------
PARSED: dict[str, dict[str, Any]] = {
    GBK_LETTER: dict(
        sender="wangkun1987@163.com",
        sender_name="王堃",
        subject=GBK_SUBJECT,
        message_id=GBK_ID,
        ignored="",
        text="尊敬的市长：\n您好！我是A3区联丰路米兰春天小区的居民王堃。小区东门外联丰路上的路灯坏了一个多星期了，"
        "晚上整段路漆黑一片，老人孩子出行很不安全，上周李镕阿姨就在那里摔了一跤。恳请有关部门尽快派人维修。\n"
        "联系电话：13812345678\n\n此致\n敬礼！\n王堃\n2026年11月27日",
    ),
    "letter__gb18030_base64": dict(
        sender="2851934476@qq.com",
        sender_name="龚𠮷",
        subject="幸福里社区垃圾三天未清运",
        ignored="",
        text="您好：\nB5区和平街道幸福里社区12栋楼下的垃圾桶已经三天没有清运了，气味很大，苍蝇很多。我叫龚𠮷，"
        "麻烦尽快安排清运。\n谢谢！",
    ),
    "reply__foxmail_rating_quoted": dict(
        sender="wangkun1987@163.com",
        subject="回复：Re: 反映联丰路米兰春天小区东门路灯损坏（王堃）",
        text="满意",
        ignored="",
        references=[GBK_ID, "<3f9c1e2d4b5a6978c0d1e2f3a4b5c6d7.hotline@city.gov.cn>"],
    ),
    "reply__gmail_zh_quoted": dict(
        sender="li.chenxi.bj@gmail.com",
        subject="Re: 反映联丰路路灯损坏",
        ignored="",
        text="补充一下：坏的是东门外第三根和第四根路灯，白天也一直亮着灯泡闪烁。",
    ),
    "letter__html_only": dict(
        sender="chen.xs@oa.c7.city.gov.cn",
        subject="滨江路新华路口红绿灯故障",
        ignored="",
        text="市长您好：\n\nC7区滨江路与新华路交叉口的红绿灯已经坏了两天，早晚高峰车辆&行人抢行，非常危险——昨天差点发生事故。"
        "\n\n希望交警部门尽快修复。\n\n市民 陈先生",
    ),
    "letter__photo_exif_gps": dict(
        sender="zhao.min@icloud.com",
        subject="建设路人行道上有个大坑",
        ignored="",
        text="您好，附件是坑的照片。D2区建设路88号门前人行道上有一个很深的坑，已经有人踩空扭伤了脚，请尽快填平。",
    ),
    "letter__no_message_id": dict(
        sender="laozhou1958@sina.com",
        subject="E4区光明小区噪音扰民",
        ignored="",
        has_message_id=False,
        text="E4区光明小区5栋楼下的烧烤店每天营业到凌晨两点，噪音很大，油烟直冲楼上，严重影响居民休息。希望城管部门管一管。\n老周",
    ),
    "letter__unknown_charset": dict(
        sender="hjq_2010@126.com",
        subject="F6区公交站台破损",
        ignored="",
        text="F6区人民路公交站台的顶棚玻璃碎了，下雨天乘客没地方躲雨，碎玻璃也很危险。",
    ),
    "auto_reply__outlook_out_of_office": dict(
        sender="zhangwei@xjdc.com.cn", subject="自动回复: Re: 反映联丰路路灯损坏", ignored="auto_submitted"
    ),
    "bounce__mailer_daemon_report": dict(sender="mailer-daemon@mx.city.gov.cn", ignored="report"),
    "list__newsletter": dict(sender="news@smartcity-weekly.cn", ignored="mailing_list"),
}


@pytest.mark.parametrize("name", sorted(PARSED))
def test_mail_is_parsed(name: str) -> None:
    mail = parse_mail(eml(name), OWN)
    assert {k: getattr(mail, k) for k in PARSED[name]} == PARSED[name]


def test_every_fixture_has_an_expectation() -> None:
    assert {p.stem for p in FIXTURES.glob("*.eml")} == set(PARSED)


def test_photo_attachment_is_found_with_its_utf8_name() -> None:
    mail = parse_mail(eml("letter__photo_exif_gps"), OWN)
    [part] = mail.parts
    assert (part.name, part.mime) == ("建设路坑.jpg", "image/jpeg")
    assert 0x8825 in Image.open(io.BytesIO(part.data)).getexif()  # the fixture does carry a GPS position


def test_mail_without_message_id_gets_a_stable_key() -> None:
    first, again = (
        parse_mail(eml("letter__no_message_id"), OWN),
        parse_mail(eml("letter__no_message_id"), OWN),
    )
    assert first.key == again.key and first.key.endswith("@no-message-id.invalid")
    other = parse_mail(eml("letter__no_message_id").replace("烧烤店".encode(), "火锅店".encode()), OWN)
    assert other.key != first.key


def variant(name: str, *headers: str, drop: tuple[str, ...] = ()) -> bytes:
    """A fixture with some header lines dropped and others put on top."""
    head, _, body = eml(name).partition(b"\r\n\r\n")
    lines = [
        ln for ln in head.split(b"\r\n") if not any(ln.lower().startswith(d.lower().encode()) for d in drop)
    ]
    return b"\r\n".join([h.encode() for h in headers] + lines) + b"\r\n\r\n" + body


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (variant(GBK_LETTER, "Auto-Submitted: auto-generated"), "auto_submitted"),
        (variant(GBK_LETTER, "Auto-Submitted: no"), ""),
        (variant(GBK_LETTER, "Precedence: junk"), "precedence"),
        (variant(GBK_LETTER, "List-Unsubscribe: <mailto:off@lists.example.cn>"), "mailing_list"),
        (variant(GBK_LETTER, "Return-Path: <>", drop=("Return-Path",)), "null_return_path"),
        (variant(GBK_LETTER, "From: postmaster@163.com", drop=("From:",)), "mailer_daemon"),
        (variant(GBK_LETTER, "From: 12345 <Mayor@City.gov.cn>", drop=("From:",)), "own_address"),
        (variant(GBK_LETTER, "X-Autoreply: yes"), "auto_reply_header"),
        (
            variant(
                GBK_LETTER, "Subject: =?utf-8?B?6Ieq5Yqo5Zue5aSNOiDmiJHlnKjlh7rlt64=?=", drop=("Subject",)
            ),
            "auto_reply_subject",
        ),
        (variant(GBK_LETTER, drop=("From:",)), "no_sender"),
        (variant("bounce__mailer_daemon_report", drop=("Auto-Submitted", "From:", "Return-Path")), "report"),
    ],
)
def test_robots_and_loops_are_ignored(raw: bytes, reason: str) -> None:
    assert parse_mail(raw, OWN).ignored == reason


def test_broken_mail_never_raises() -> None:
    for raw in (
        b"",
        b"\xff\xfe\x00garbage",
        b"Subject: =?gb2312?B?###?=\r\nFrom: a@b.cn\r\n\r\n\xd6\xd0",
        b"Content-Type: multipart/mixed; boundary=x\r\nFrom: a@b.cn\r\n\r\n--x\r\nContent-Type: text/plain;"
        b" charset=bogus-42\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!notbase64\r\n",
    ):
        mail = parse_mail(raw, OWN)
        assert isinstance(mail.text, str) and mail.key


# --- real servers ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    binary = dovecot_binary()
    if binary is None:
        pytest.skip(
            "Dovecot is not installed (`make mailserver` installs dovecot-imapd as root): "
            "e-mail server tests skipped"
        )
    server = Dovecot(binary)
    server.start()
    yield server
    server.stop()


def with_email(
    settings: Settings, smtp_url: str, imap_url: str = "imap://u:p@127.0.0.1:1/INBOX", **more: Any
) -> Settings:
    return settings.model_copy(
        update={
            "email_imap_url": SecretStr(imap_url),
            "email_smtp_url": SecretStr(smtp_url),
            "email_address": OWN,
            "email_poll_s": 0.2,
            "email_timeout_s": 5.0,
            **more,
        }
    )


@dataclass
class Box:
    """A poller on a fresh Dovecot user's mailbox and the suite's Redis."""

    dovecot: Dovecot
    user: str
    settings: Settings
    redis: Any
    streams: Streams
    folder: str = "INBOX"

    def poller(self, settings: Settings | None = None, enqueue: Any = None, redis: Any = None) -> Poller:
        s = settings or self.settings
        r = redis or self.redis
        ctx = ChannelContext(
            redis=r, enqueue=enqueue or self.streams.enqueue, settings=s, publish=self.streams.publish
        )
        return Poller(ctx, Threads(r, s.email_thread_days))

    def deliver(self, raw: bytes | str, when: datetime | None = None) -> int:
        return self.dovecot.append(self.user, eml(raw) if isinstance(raw, str) else raw, self.folder, when)

    async def inbound(self) -> list[InboundMessage]:
        return [
            InboundMessage.model_validate_json(f["data"]) for _, f in await self.redis.xrange(keys.INBOUND)
        ]

    async def outbound(self) -> list[OutboundMessage]:
        return [
            OutboundMessage.model_validate_json(f["data"]) for _, f in await self.redis.xrange(keys.OUTBOUND)
        ]


@pytest.fixture
async def box(settings: Settings, dovecot: Dovecot, smtp: SmtpSink) -> AsyncIterator[Box]:
    user = dovecot.new_user()
    redis = aioredis.Redis.from_url(settings.redis_url, decode_responses=True)
    s = with_email(settings, smtp.url, dovecot.url(user))
    yield Box(dovecot, user, s, redis, Streams(redis, s.dedupe_ttl_s))
    await redis.aclose()


async def closed_redis() -> Any:
    """A client of a Redis that is not there (nothing listens on the port)."""
    from tests.conftest import free_port

    return aioredis.Redis(
        host="127.0.0.1", port=free_port(), decode_responses=True, socket_connect_timeout=0.5
    )


async def test_new_mail_is_enqueued_once_as_a_letter(box: Box) -> None:
    box.deliver(GBK_LETTER)
    poller = box.poller()
    with structlog.testing.capture_logs() as logs:
        assert await poller.poll_once() == 1
    assert await poller.poll_once() == 0  # nothing new: nothing fetched
    [msg] = await box.inbound()
    assert msg.model_dump(
        include={
            "channel",
            "channel_message_id",
            "sender",
            "conversation_key",
            "title",
            "reply_to",
            "letter",
            "attachments",
        }
    ) == {
        "channel": "email",
        "channel_message_id": GBK_ID.strip("<>"),
        "sender": "wangkun1987@163.com",
        "conversation_key": "email:wangkun1987@163.com",
        "title": GBK_SUBJECT,
        "reply_to": GBK_ID,
        "letter": True,
        "attachments": [],
    }
    assert msg.text.startswith("尊敬的市长：\n您好！我是A3区联丰路米兰春天小区的居民王堃。")
    assert msg.received_at == datetime(2026, 11, 27, 1, 41, 5, tzinfo=UTC)
    logged = json.dumps(logs, ensure_ascii=False, default=str)
    assert "email_received" in logged and "13812345678" not in logged and "wangkun1987" not in logged
    # the mailbox looks untouched: nobody's "unread" mail was marked read
    assert all(b"\\Seen" not in flags for flags in box.dovecot.flags(box.user).values())


@pytest.mark.parametrize("body", [b"", b"\xe5\xa6\x82\xe9\xa2\x98"], ids=["empty", "ruti"])  # 如题
async def test_a_letter_written_in_its_subject_alone_is_its_own_text(box: Box, body: bytes) -> None:
    box.deliver(
        b"From: =?UTF-8?B?5p2O5Zub?= <lisi@qq.com>\r\nTo: mayor@city.gov.cn\r\n"
        b"Subject: =?UTF-8?B?QTPljLrogZTkuLDot6/nsbPlhbDmmKXlpKnlsI/ljLrpl6jlj6Pot6/nga/lnY/kuoY=?=\r\n"
        b"Message-ID: <subject-only@qq.com>\r\nDate: Fri, 27 Nov 2026 09:00:00 +0800\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body + b"\r\n"
    )
    assert await box.poller().poll_once() == 1
    [msg] = await box.inbound()
    assert msg.text == msg.title == "A3区联丰路米兰春天小区门口路灯坏了"


async def test_a_mail_appended_twice_is_one_message(box: Box) -> None:
    box.deliver(GBK_LETTER)
    box.deliver(GBK_LETTER)  # delivered twice (a retrying sender, a copy moved back)
    assert await box.poller().poll_once() == 2
    assert len(await box.inbound()) == 1


async def test_robots_are_skipped_and_counted_and_the_cursor_moves_past_them(box: Box) -> None:
    for name in ("bounce__mailer_daemon_report", "auto_reply__outlook_out_of_office", "list__newsletter"):
        box.deliver(name)
    last = box.deliver("letter__html_only")
    assert await box.poller().poll_once() == 4
    [msg] = await box.inbound()
    assert msg.title == "滨江路新华路口红绿灯故障"
    assert await box.redis.hgetall(IGNORED) == {"report": "1", "auto_submitted": "1", "mailing_list": "1"}
    assert await box.outbound() == []  # nothing answers a robot
    cursor = await box.redis.hgetall(box.poller().cursor_key)
    assert int(cursor["uid"]) == last


async def test_a_mail_the_parser_chokes_on_is_passed_not_retried_for_ever(
    box: Box, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug meeting one odd mail must not stop the mailbox: that mail is counted and passed."""
    from channels.email import mailbox

    def choke(raw: bytes, *args: Any, **kw: Any) -> Any:
        if b"gb18030" in raw.lower():
            raise UnicodeError("a case no rule foresaw")
        return parse_mail(raw, *args, **kw)

    monkeypatch.setattr(mailbox, "parse_mail", choke)
    box.deliver("letter__gb18030_base64")
    box.deliver(GBK_LETTER)
    assert await box.poller().poll_once() == 2
    [msg] = await box.inbound()
    assert msg.reply_to == GBK_ID and await box.redis.hgetall(IGNORED) == {"unreadable": "1"}


async def test_gateway_down_leaves_the_mail_for_later(box: Box) -> None:
    box.deliver("letter__gb18030_base64")
    box.deliver(GBK_LETTER)
    dead = await closed_redis()
    broken = box.poller(
        enqueue=Streams(dead, box.settings.dedupe_ttl_s).enqueue
    )  # the gateway's Redis is down
    with pytest.raises(PollInterrupted):
        await broken.poll_once()
    assert await box.inbound() == []
    assert await box.redis.hgetall(broken.cursor_key) == {}  # nothing handed over, nothing passed
    assert await box.redis.get(broken.lock_key) is None  # and the lock is given back
    assert await box.poller().poll_once() == 2  # back: both are read
    assert {m.title for m in await box.inbound()} == {"幸福里社区垃圾三天未清运", GBK_SUBJECT}
    await dead.aclose()


async def test_redis_down_polls_nothing_and_loses_nothing(box: Box) -> None:
    box.deliver(GBK_LETTER)
    dead = await closed_redis()
    with pytest.raises(RedisError):  # the run loop logs it and tries again
        await box.poller(redis=dead).poll_once()
    await dead.aclose()
    assert await box.poller().poll_once() == 1
    assert len(await box.inbound()) == 1


async def test_the_cursor_survives_a_restart(box: Box) -> None:
    box.deliver(GBK_LETTER)
    first = box.poller()
    assert await first.poll_once() == 1
    await first.stop()
    restarted = box.poller()  # a new process: only what the cursor in Redis says
    assert await restarted.poll_once() == 0
    box.deliver("letter__html_only")
    assert await restarted.poll_once() == 1
    assert [m.title for m in await box.inbound()] == [GBK_SUBJECT, "滨江路新华路口红绿灯故障"]


async def test_a_new_uidvalidity_rereads_the_folder_without_duplicates(box: Box) -> None:
    box.folder = "Mayor"
    box.deliver(GBK_LETTER)
    box.deliver("letter__html_only")
    poller = box.poller(with_email(box.settings, "smtp://127.0.0.1:1", box.dovecot.url(box.user, "Mayor")))
    assert await poller.poll_once() == 2
    before = await box.redis.hget(poller.cursor_key, "uidvalidity")
    box.dovecot.recreate(box.user, "Mayor")  # restored from a backup: same mail, new UIDs
    box.deliver(GBK_LETTER)
    box.deliver("letter__html_only")
    box.deliver("letter__gb18030_base64")  # and one new mail
    assert await poller.poll_once() == 3
    assert [m.title for m in await box.inbound()] == [
        GBK_SUBJECT,
        "滨江路新华路口红绿灯故障",
        "幸福里社区垃圾三天未清运",
    ]
    assert await box.redis.hget(poller.cursor_key, "uidvalidity") != before


async def test_first_start_reads_only_recent_mail(box: Box) -> None:
    box.deliver("letter__html_only", when=datetime.now(UTC) - timedelta(days=30))
    box.deliver(GBK_LETTER)
    assert await box.poller().poll_once() == 1
    assert [m.title for m in await box.inbound()] == [GBK_SUBJECT]


async def test_one_poller_at_a_time(box: Box) -> None:
    for name in (GBK_LETTER, "letter__html_only", "letter__gb18030_base64"):
        box.deliver(name)
    counts = await asyncio.gather(*(box.poller().poll_once() for _ in range(3)))
    assert sorted(counts) == [0, 0, 3]
    assert len(await box.inbound()) == 3


async def test_photo_is_stored_without_its_gps_position(box: Box) -> None:
    box.deliver("letter__photo_exif_gps")
    assert await box.poller().poll_once() == 1
    [msg] = await box.inbound()
    [att] = msg.attachments
    assert (att.kind, att.mime, att.name) == ("image", "image/jpeg", "建设路坑.jpg") and att.ref.startswith(
        "email:"
    )
    found = await find(box.redis, att.ref, media_roots(box.settings))
    assert found is not None
    path, mime = found
    assert mime == "image/jpeg" and path.is_relative_to(box.settings.media_folder.resolve() / "email")
    exif = Image.open(path).getexif()
    assert 0x8825 not in exif and exif.get(0x0110) is None  # no GPS, no phone model
    record = json.loads(await box.redis.get(record_key(att.ref)))
    assert record["owner"] == "email:zhao.min@icloud.com"


async def test_files_beyond_the_limit_are_left_out_and_a_fake_image_is_kept_as_a_file(box: Box) -> None:
    raw = eml("letter__photo_exif_gps")
    boundary = b"--Apple-Mail-3E7A1C52-9B4D-4F1E-8C2A-6D5B0E9F7A13"
    fake = (
        boundary + b'\r\nContent-Type: image/png; name="a.png"\r\nContent-Disposition: attachment; '
        b'filename="a.png"\r\n\r\n<script>alert(1)</script>\r\n'
    )
    pdf = (
        boundary + b'\r\nContent-Type: application/pdf; name="=?GBK?B?uMS9+Mnqx+u1pS5wZGY=?="\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQKJcfsj6IK\r\n"
    )
    raw = raw.replace(boundary + b"--", fake + pdf + boundary + b"--")
    s = box.settings.model_copy(update={"email_max_attachments": 2})
    box.deliver(raw)
    assert await box.poller(s).poll_once() == 1
    [msg] = await box.inbound()
    assert [(a.kind, a.mime, a.name) for a in msg.attachments] == [
        ("image", "image/jpeg", "建设路坑.jpg"),
        ("file", "application/octet-stream", "a.png"),
    ]
    assert msg.meta["attachments_dropped"] == "1"


async def test_too_large_mail_is_not_read_and_the_writer_is_told(box: Box) -> None:
    box.deliver("letter__photo_exif_gps")  # ~40 KB
    s = box.settings.model_copy(update={"email_max_bytes": 8 * 1024 * 1024 // 1024})  # 8 KiB
    assert await box.poller(s).poll_once() == 1
    assert await box.inbound() == []
    [out] = await box.outbound()
    assert out.conversation_key == "email:zhao.min@icloud.com" and out.text == TOO_LARGE.format(limit_mb=1)
    assert out.fields == {"reply_to": "<A1F3C9E2-7B6D-4E8A-9C0F-2D5B8E1A4C73@icloud.com>"}


# --- whose From is believed -------------------------------------------------------------------------
def rating_mail(message_id: str, *headers: str) -> bytes:
    """A fresh "满意" from the writer of the GBK letter, with ``headers`` on top."""
    return "\r\n".join(
        [
            *headers,
            "From: =?UTF-8?B?546L5aCD?= <wangkun1987@163.com>",
            "To: mayor@city.gov.cn",
            "Subject: =?UTF-8?B?5ruh5oSP?=",
            f"Message-ID: {message_id}",
            "Date: Sun, 29 Nov 2026 16:02:09 +0800",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "",
            "满意",
            "",
        ]
    ).encode()


async def test_a_letter_says_whether_its_sender_is_verified(box: Box) -> None:
    """Believed: a reply naming a Message-ID the gateway sent to that address, or a mail the city's
    own server vouches for; not: a fresh mail, a reply to mail sent to someone else, or a mail with
    another server's verdict."""
    threads = Threads(box.redis, 180)
    ours = await threads.message_id("survey:1", "city.gov.cn")
    await threads.sent(ours, "wangkun1987@163.com")
    theirs = await threads.message_id("survey:2", "city.gov.cn")
    await threads.sent(theirs, "someone.else@163.com")
    city_mx = "Authentication-Results: mx.12345.gov.cn; dmarc=pass header.from=163.com"
    other_mx = "Authentication-Results: mx.example.net; dmarc=pass header.from=163.com"
    cases = {
        "<fresh@x>": ([], "no"),
        "<reply@x>": ([f"In-Reply-To: {ours}", f"References: <a@163.com> {ours}"], "yes"),
        "<reply-deep@x>": ([f"References: {ours} <b@163.com>", "In-Reply-To: <b@163.com>"], "yes"),
        "<someone-elses@x>": ([f"In-Reply-To: {theirs}"], "no"),
        "<guessed@x>": (["In-Reply-To: <c4ca4238a0b923820dcc509a6f75849b.hotline@city.gov.cn>"], "no"),
        "<vouched@x>": ([city_mx], "yes"),
        "<other-server@x>": ([other_mx], "no"),
    }
    for message_id, (headers, _) in cases.items():
        box.deliver(rating_mail(message_id, *headers))
    s = box.settings.model_copy(update={"email_authserv_id": "mx.12345.gov.cn"})
    assert await box.poller(s).poll_once() == len(cases)
    got = {m.reply_to: m.meta["sender_verified"] for m in await box.inbound()}
    assert got == {message_id: verified for message_id, (_, verified) in cases.items()}


async def test_a_reply_in_a_tickets_thread_names_the_ticket(box: Box) -> None:
    """A reply to our mail about a ticket (the receipt, a status update) carries the ticket's
    number, the latest mail's when it names several; a reply to mail about none, or to mail
    sent to someone else, carries none."""
    threads = Threads(box.redis, 180)
    receipt = await threads.message_id("filed:1", "city.gov.cn")
    await threads.sent(receipt, "wangkun1987@163.com", "12345-20261129-000001")
    update = await threads.message_id("status:1", "city.gov.cn")
    await threads.sent(update, "wangkun1987@163.com", "12345-20261129-000002")
    plain = await threads.message_id("reply:1", "city.gov.cn")
    await threads.sent(plain, "wangkun1987@163.com")
    theirs = await threads.message_id("filed:2", "city.gov.cn")
    await threads.sent(theirs, "someone.else@163.com", "12345-20261129-000003")
    cases = {
        "<on-receipt@x>": ([f"In-Reply-To: {receipt}"], "12345-20261129-000001"),
        "<on-both@x>": ([f"References: {receipt} {update}", f"In-Reply-To: {update}"], "12345-20261129-000002"),
        "<on-plain@x>": ([f"In-Reply-To: {plain}"], None),
        "<on-someone-elses@x>": ([f"In-Reply-To: {theirs}"], None),
        "<fresh@x>": ([], None),
    }
    for message_id, (headers, _) in cases.items():
        box.deliver(rating_mail(message_id, *headers))
    assert await box.poller().poll_once() == len(cases)
    got = {m.reply_to: m.meta.get("thread_ticket") for m in await box.inbound()}
    assert got == {message_id: ticket for message_id, (_, ticket) in cases.items()}


async def test_our_message_ids_are_stable_but_not_guessable(settings: Settings) -> None:
    """The same outbound message gets the same id (a redelivery); the id is no plain hash of the
    outbound id (``survey:<n>``, which anyone could compute), and another installation (another
    key in Redis) makes other ids."""
    import hashlib

    redis = aioredis.Redis.from_url(settings.redis_url, decode_responses=True)
    try:
        first = await Threads(redis, 180).message_id("survey:7", "city.gov.cn")
        assert first == await Threads(redis, 180).message_id("survey:7", "city.gov.cn")
        assert first != await Threads(redis, 180).message_id("survey:8", "city.gov.cn")
        assert hashlib.sha256(b"survey:7").hexdigest()[:32] not in first
        await redis.delete("hl:email:id_key")
        assert first != await Threads(redis, 180).message_id("survey:7", "city.gov.cn")
    finally:
        await redis.aclose()


# --- IDLE -----------------------------------------------------------------------------------------
async def eventually(check: Callable[[], Any], within_s: float, what: str) -> float:
    """Wait until ``check()`` (sync or async) is true; returns how long it took."""
    started = time.monotonic()
    while time.monotonic() - started < within_s:
        found = check()
        if asyncio.iscoroutine(found):
            found = await found
        if found:
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what}: not within {within_s} s")


async def settled(box: Box, poller: Poller) -> None:
    """The poller has read the folder once and is idle (in IDLE, where it is on)."""
    await eventually(lambda: box.redis.exists(poller.cursor_key), 10, "first round")
    if poller.idle is not None:
        await eventually(poller.idle.idling.is_set, 10, "IDLE")
    await asyncio.sleep(0.5)  # the round the IDLE session's start asked for is over


async def test_with_idle_new_mail_is_read_at_once(box: Box) -> None:
    poller = box.poller(box.settings.model_copy(update={"email_poll_s": 300.0}))
    poller.start()
    try:
        await settled(box, poller)
        assert await box.inbound() == []
        box.deliver(GBK_LETTER)
        took = await eventually(lambda: box.redis.xlen(keys.INBOUND), 5, "the letter via IDLE")
        assert took < 3, took
        [msg] = await box.inbound()
        assert msg.reply_to == GBK_ID
        assert all(b"\\Seen" not in flags for flags in box.dovecot.flags(box.user).values())
    finally:
        started = time.monotonic()
        await poller.stop()
        assert time.monotonic() - started < 5
    assert poller.idle is not None and poller.idle.finished.is_set() and not poller.idle.idling.is_set()
    assert await box.redis.exists(poller.idle_lease.key) == 0  # the next process may watch at once


async def test_without_idle_new_mail_waits_for_the_poll(box: Box) -> None:
    poller = box.poller(box.settings.model_copy(update={"email_poll_s": 300.0, "email_idle": False}))
    assert poller.idle is None
    poller.start()
    try:
        await settled(box, poller)
        box.deliver(GBK_LETTER)
        await asyncio.sleep(3)
        assert await box.inbound() == []  # 300 s to the next poll
        poller.kick.set()  # what the poll's timer does
        await eventually(lambda: box.redis.xlen(keys.INBOUND), 5, "the letter at the poll")
    finally:
        await poller.stop()


async def test_idle_is_issued_again_and_still_hears(box: Box) -> None:
    poller = box.poller(box.settings.model_copy(update={"email_poll_s": 300.0}))
    assert poller.idle is not None
    poller.idle.renew_s = 0.5  # RFC 2177's 29 minutes, shortened
    poller.start()
    try:
        await settled(box, poller)
        await eventually(lambda: poller.idle is not None and poller.idle.idles >= 3, 10, "IDLE again")
        box.deliver(GBK_LETTER)
        await eventually(lambda: box.redis.xlen(keys.INBOUND), 5, "the letter via IDLE")
    finally:
        await poller.stop()


async def test_one_idle_session_across_processes(box: Box) -> None:
    s = box.settings.model_copy(update={"email_poll_s": 300.0})
    pollers = [box.poller(s), box.poller(s)]
    for p in pollers:
        p.start()
    try:
        await eventually(
            lambda: any(p.idle is not None and p.idle.idling.is_set() for p in pollers), 10, "IDLE"
        )
        await asyncio.sleep(1)
        assert sorted(p.idle.idles > 0 for p in pollers if p.idle is not None) == [False, True]
        box.deliver(GBK_LETTER)
        await eventually(lambda: box.redis.xlen(keys.INBOUND), 5, "the letter via IDLE")
    finally:
        for p in pollers:
            await p.stop()


async def test_without_idle_on_the_server_the_poll_goes_on_logged_once(
    box: Box, monkeypatch: pytest.MonkeyPatch
) -> None:
    from imapclient import IMAPClient

    has = IMAPClient.has_capability
    monkeypatch.setattr(IMAPClient, "has_capability", lambda self, cap: cap != "IDLE" and has(self, cap))
    poller = box.poller(box.settings.model_copy(update={"email_poll_s": 0.3}))
    with structlog.testing.capture_logs() as logs:
        poller.start()
        try:
            await eventually(lambda: poller.idle_task is not None and poller.idle_task.done(), 10, "gave up")
            box.deliver(GBK_LETTER)
            await eventually(lambda: box.redis.xlen(keys.INBOUND), 5, "the letter at the poll")
        finally:
            await poller.stop()
    assert [e["event"] for e in logs if e["event"].startswith("email_idle")] == ["email_idle_unsupported"]


async def test_a_failing_idle_session_is_logged_once_and_tried_again(
    box: Box, monkeypatch: pytest.MonkeyPatch
) -> None:
    from channels.email import imap, mailbox

    def broken(self: Any, stop: Any, kick: Any) -> None:
        raise imap.MailboxError("127.0.0.1 IDLE: connection reset")

    monkeypatch.setattr(imap.IdleWatcher, "_idle_once", broken)
    monkeypatch.setattr(mailbox, "IDLE_RETRY_S", 0.2)
    poller = box.poller(box.settings.model_copy(update={"email_poll_s": 0.3}))
    with structlog.testing.capture_logs() as logs:
        poller.start()
        try:
            await asyncio.sleep(1.5)  # several tries
            box.deliver(GBK_LETTER)
            await eventually(lambda: box.redis.xlen(keys.INBOUND), 5, "the letter at the poll")
        finally:
            await poller.stop()
    events = [e["event"] for e in logs if e["event"].startswith("email_idle")]
    assert events.count("email_idle_started") >= 3 and events.count("email_idle_failed") == 1


# --- sending --------------------------------------------------------------------------------------
@pytest.fixture
async def sender(settings: Settings, smtp: SmtpSink) -> AsyncIterator[EmailChannel]:
    redis = aioredis.Redis.from_url(settings.redis_url, decode_responses=True)
    channel = EmailChannel(ChannelContext(redis=redis, enqueue=None, settings=with_email(settings, smtp.url)))
    channel.threads = Threads(redis, 180)
    yield channel
    await redis.aclose()


def text_of(received: Received) -> str:
    msg = received.message
    assert msg.get_content_type() == "text/plain" and msg.get_content_charset() == "utf-8"
    return str(msg.get_content())


def out(
    kind: str = "reply", text: str = "您好", to: str = "wangkun1987@163.com", **more: Any
) -> OutboundMessage:
    return OutboundMessage(conversation_key=f"email:{to}", channel="email", kind=kind, text=text, **more)  # type: ignore[arg-type]


async def test_receipt_and_later_messages_are_replies_in_the_thread(
    sender: EmailChannel, smtp: SmtpSink
) -> None:
    assert sender.threads is not None
    await sender.threads.remember(parse_mail(eml(GBK_LETTER), OWN))
    receipt = out(
        "ticket_filed",
        "您的诉求已登记，工单编号：12345-20261127-000001。",
        ticket_id="12345-20261127-000001",
        fields={"reply_to": GBK_ID, "status": "received"},
        id="filed:x",
    )
    await sender.send(receipt)
    await sender.send(
        out(
            "status_update",
            "您的工单 12345-20261127-000001 有新进展：已办结",
            ticket_id="12345-20261127-000001",
            id="status:7",
        )
    )
    await sender.send(
        out("survey", "请评价", ticket_id="12345-20261127-000001", buttons=["满意", "基本满意", "不满意"])
    )
    first, update, survey = smtp.received
    for mail in (first, update, survey):
        msg = mail.message
        assert (mail.sender, mail.recipients) == (OWN, ["wangkun1987@163.com"])
        assert str(msg["Subject"]) == f"Re: {GBK_SUBJECT}"
        assert str(msg["In-Reply-To"]) == GBK_ID and str(msg["References"]) == GBK_ID
        assert msg["From"].addresses[0].display_name == "12345政务服务便民热线"
        assert msg["From"].addresses[0].addr_spec == OWN
        assert str(msg["X-Auto-Response-Suppress"]) == "All"
    assert str(first.message["Auto-Submitted"]) == "auto-replied"
    assert str(update.message["Auto-Submitted"]) == "auto-generated"
    assert "12345-20261127-000001" in text_of(first) and "已办结" in text_of(update)
    assert "请直接回复本邮件，正文写“满意”、“基本满意”或“不满意”即可。" in text_of(survey)
    # the Message-ID is made of the outbound id: a redelivery carries the same one
    assert re.fullmatch(r"<[0-9a-f]{32}\.hotline@city\.gov\.cn>", str(first.message["Message-ID"]))
    await sender.send(receipt)
    assert smtp.received[-1].message["Message-ID"] == first.message["Message-ID"]


async def test_a_progress_note_is_a_reply_in_the_writers_thread(sender: EmailChannel, smtp: SmtpSink) -> None:
    """A progress note (办理进展) reads like a status change: in the thread of the letter, marked
    auto-generated (no out-of-office comes back), its words in the body."""
    assert sender.threads is not None
    await sender.threads.remember(parse_mail(eml(GBK_LETTER), OWN))
    ticket = "12345-20261127-000001"
    await sender.send(out("ticket_filed", f"工单编号：{ticket}", ticket_id=ticket, fields={"reply_to": GBK_ID}))
    await sender.send(
        out(
            "status_update",
            f"您的工单 {ticket} 有新的办理进展：已联系物业，预计周五前修复",
            ticket_id=ticket,
            fields={"status": "processing", "progress": "1", "note": "已联系物业，预计周五前修复"},
            id="status:9",
        )
    )
    note = smtp.received[-1].message
    assert str(note["Subject"]) == f"Re: {GBK_SUBJECT}" and str(note["In-Reply-To"]) == GBK_ID
    assert str(note["Auto-Submitted"]) == "auto-generated"
    assert "有新的办理进展：已联系物业，预计周五前修复" in text_of(smtp.received[-1])


async def test_a_reply_to_a_reply_keeps_the_whole_thread(sender: EmailChannel, smtp: SmtpSink) -> None:
    assert sender.threads is not None
    mail = parse_mail(eml("reply__foxmail_rating_quoted"), OWN)
    await sender.threads.remember(mail)
    await sender.send(out(text="感谢您的评价（满意）！", fields={"reply_to": mail.message_id}))
    msg = smtp.received[0].message
    assert str(msg["Subject"]) == "回复：Re: 反映联丰路米兰春天小区东门路灯损坏（王堃）"  # no "Re: 回复："
    assert str(msg["References"]).split() == [*mail.references, mail.message_id]


async def test_without_a_known_thread_the_subject_names_the_ticket(
    sender: EmailChannel, smtp: SmtpSink
) -> None:
    await sender.send(
        out(
            "status_update",
            "您的工单 12345-20261127-000009 有新进展：处理中",
            ticket_id="12345-20261127-000009",
        )
    )
    await sender.send(out("operator", "您好，我是值班员小刘。"))
    update, operator = (r.message for r in smtp.received)
    assert (
        str(update["Subject"]) == "【12345】工单 12345-20261127-000009 办理进展"
        and update["In-Reply-To"] is None
    )
    assert str(operator["Subject"]) == "【12345】来信回复" and operator["Auto-Submitted"] is None
    assert b"\r\nSubject: =?utf-8?" in smtp.received[0].data  # RFC 2047 on the wire: readable by any client


async def test_a_refused_recipient_is_final_and_a_deferred_one_retried(sender: EmailChannel) -> None:
    with pytest.raises(DeliveryError) as refused:
        await sender.send(out(to="refuse-me@163.com"))
    assert refused.value.retry_after is None
    with pytest.raises(DeliveryError) as deferred:
        await sender.send(out(to="defer-me@163.com"))
    assert deferred.value.retry_after is not None and deferred.value.retry_after > 0


async def test_smtp_down_is_retried(settings: Settings) -> None:
    from tests.conftest import free_port

    redis = aioredis.Redis.from_url(settings.redis_url, decode_responses=True)
    channel = EmailChannel(
        ChannelContext(
            redis=redis, enqueue=None, settings=with_email(settings, f"smtp://127.0.0.1:{free_port()}")
        )
    )
    try:
        with pytest.raises(DeliveryError) as caught:
            await channel.send(out())
        assert caught.value.retry_after is not None and type(caught.value) is DeliveryError
        assert caught.value.__cause__ is not None  # translated from aiosmtplib's error
    finally:
        await redis.aclose()


async def test_not_an_address_is_dead_lettered(sender: EmailChannel) -> None:
    with pytest.raises(DeliveryError) as caught:
        await sender.send(out(to="not-an-address"))
    assert caught.value.retry_after is None


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("imap://u:p@mail.example.cn/INBOX", "without TLS"),
        ("imaps://mail.example.cn/INBOX", "user name"),
        ("https://u:p@mail.example.cn", "must be a URL like"),
        ("smtps://u:p@mail.example.cn", "IMAP URL"),
    ],
)
def test_bad_mail_settings_are_refused_without_the_password(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match="HOTLINE_EMAIL_IMAP_URL") as caught:
        Settings(
            _env_file=None,
            email_imap_url=url,
            email_smtp_url="smtp://127.0.0.1:25",  # type: ignore[call-arg]
            email_address=OWN,
        )
    assert problem in str(caught.value) and ":p@" not in str(caught.value)


def test_half_configured_channel_is_refused() -> None:
    with pytest.raises(ValueError, match="HOTLINE_EMAIL_SMTP_URL"):
        Settings(_env_file=None, email_imap_url="imaps://u:p@imap.exmail.qq.com/INBOX", email_address=OWN)  # type: ignore[call-arg]


def test_channel_is_off_unless_configured(settings: Settings) -> None:
    from channels import email as email_channel

    ctx = ChannelContext(redis=None, enqueue=None, settings=settings)
    assert email_channel.build(ctx) == []
    [channel] = email_channel.build(
        ChannelContext(redis=None, enqueue=None, settings=with_email(settings, "smtp://127.0.0.1:25"))
    )
    assert channel.handles("email") and not channel.handles("email:x") and channel.router() is None


# --- end to end -----------------------------------------------------------------------------------
async def wait_for(smtp: SmtpSink, predicate: Callable[[Received], bool], within_s: float = 20.0) -> Received:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        for mail in list(smtp.received):
            if predicate(mail):
                return mail
        await asyncio.sleep(0.05)
    raise AssertionError(
        f"no matching mail within {within_s}s; got {[str(r.message['Subject']) for r in smtp.received]}"
    )


async def test_letter_to_ticket_status_survey_and_rating(
    settings: Settings, dovecot: Dovecot, smtp: SmtpSink
) -> None:
    from gateway.app import create_app

    user = dovecot.new_user()
    # the city's server vouches for nothing here (no mail carries its header): only threads count
    app = create_app(with_email(settings, smtp.url, dovecot.url(user), email_authserv_id="mx.12345.gov.cn"))
    await app.state.runtime.start()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        ) as client:
            dovecot.append(user, eml(GBK_LETTER))
            receipt = await wait_for(smtp, lambda r: bool(TICKET.search(text_of(r))))
            ticket_id = TICKET.search(text_of(receipt)).group()  # type: ignore[union-attr]
            assert receipt.recipients == ["wangkun1987@163.com"]
            assert str(receipt.message["In-Reply-To"]) == GBK_ID
            assert str(receipt.message["Subject"]) == f"Re: {GBK_SUBJECT}"

            r = await client.get(f"/api/admin/tickets/{ticket_id}", headers=ADMIN)
            ticket = r.json()
            assert (
                ticket["conversation_key"] == "email:wangkun1987@163.com" and ticket["title"] == GBK_SUBJECT
            )
            assert "路灯坏了一个多星期" in ticket["description"] and "13812345678" in ticket["contact"]

            for status in ("accepted", "processing", "resolved"):
                r = await client.post(
                    f"/api/admin/tickets/{ticket_id}/status",
                    headers=ADMIN,
                    json={"status": status, "note": "路灯已更换" if status == "resolved" else ""},
                )
                assert r.status_code == 200, r.text
            survey = await wait_for(smtp, lambda r: "评价" in text_of(r) and ticket_id in text_of(r))
            resolved = await wait_for(smtp, lambda r: "路灯已更换" in text_of(r))
            for mail in (survey, resolved):
                assert str(mail.message["In-Reply-To"]) == GBK_ID
                assert str(mail.message["Subject"]) == f"Re: {GBK_SUBJECT}"

            # someone writes "满意" From the writer's address, in no thread of ours: no rating
            forged = rating_mail("<20261129160209.77@mail.example.net>")
            dovecot.append(user, forged)
            refused = await wait_for(smtp, lambda r: say("rating_unverified") in text_of(r))
            assert refused.recipients == ["wangkun1987@163.com"]  # to From, as every answer
            r = await client.get(f"/api/admin/tickets/{ticket_id}", headers=ADMIN)
            assert r.json()["rating"] is None

            # the writer answers the survey from Foxmail, quoting it: "满意"
            survey_id = str(survey.message["Message-ID"])
            answer = eml("reply__foxmail_rating_quoted").replace(
                b"<3f9c1e2d4b5a6978c0d1e2f3a4b5c6d7.hotline@city.gov.cn>", survey_id.encode()
            )
            assert parse_mail(answer, OWN).references[-1] == survey_id  # In-Reply-To: the survey
            assert "In-Reply-To: " + survey_id in answer.decode("ascii", "replace")
            dovecot.append(user, answer)
            await wait_for(smtp, lambda r: "感谢您的评价（满意）" in text_of(r))
            r = await client.get(f"/api/admin/tickets/{ticket_id}", headers=ADMIN)
            assert r.json()["rating"] == "满意"
            # receipt, 已受理, 处理中, 已办结, survey, the refusal, thanks: nothing twice
            assert len(smtp.received) == 7
    finally:
        await app.state.runtime.stop()
