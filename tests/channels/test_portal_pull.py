"""Pulling a portal source: the gateway asks a source's list API for the posts after its cursor.

The source (``ListSource``) is an aiohttp server on 127.0.0.1 standing in for a board's list API:
it checks the gateway's signature on every request, answers pages of real board posts
(``fixtures/portal/``) signed with the source's secret, and can be told to fail. The letters land
on the real inbound stream in real Redis.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from aiohttp import web

from channels import portal
from channels.base import ChannelContext, InboundMessage
from channels.portal.post import MEDIA_QUEUE, url_key
from channels.portal.pull import Puller, PullFailed, rejected_key, state_key
from config.settings import PortalSource, Settings
from gateway import keys
from gateway.streams import Streams
from tests.channels.test_portal import SECRET, post_fixture, signed_by_gateway
from tests.conftest import serve_local

BOARD = [
    post_fixture(f"post__{name}", "https://127.0.0.1")
    for name in ("streetlight", "light_pollution_photo", "consult")
]


@dataclass
class ListSource:
    """A board's list API: ``posts`` in order, the cursor is the index after the last one sent."""

    posts: list[dict[str, Any]] = field(default_factory=list)
    page_size: int = 2
    requests: list[dict[str, Any]] = field(default_factory=list)
    scripted: list[web.Response] = field(default_factory=list)  # answered next, instead of a page
    sign_with: str = SECRET
    bad_signatures: int = 0
    url: str = ""
    runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/list", self.list)
        self.runner, self.url = await serve_local(app)

    async def list(self, request: web.Request) -> web.Response:
        body = await signed_by_gateway(request)  # what a source does first: check that the gateway asks
        if body is None:
            self.bad_signatures += 1
            return web.Response(status=403)
        asked = json.loads(body)
        self.requests.append(asked)
        if self.scripted:
            return self.scripted.pop(0)
        start = int(asked.get("cursor") or 0)
        posts = self.posts[start : start + min(asked["limit"], self.page_size)]
        return self.page(
            {"posts": posts, "cursor": str(start + len(posts)), "more": start + len(posts) < len(self.posts)}
        )

    def page(self, content: dict[str, Any]) -> web.Response:
        raw = json.dumps(content, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", **portal.sign(self.sign_with, raw)}
        return web.Response(body=raw, headers=headers)


@pytest.fixture
async def source() -> AsyncIterator[ListSource]:
    server = ListSource(posts=[dict(p) for p in BOARD])
    await server.start()
    try:
        yield server
    finally:
        assert server.runner is not None
        await server.runner.cleanup()


@pytest.fixture
def settings(settings: Settings, source: ListSource) -> Settings:
    """One source that is pulled (its replies go to an address these tests never reach)."""
    board = PortalSource(
        secret=SECRET,
        reply_url="http://127.0.0.1:9/api/replies",
        pull_url=f"{source.url}/api/list",
        name="市政府网站留言板",
    )
    return settings.model_copy(update={"portal": {"liuyanban": board}, "portal_pull_s": 0.2})


@dataclass
class Pulling:
    puller: Puller
    ctx: ChannelContext
    redis: Any

    async def letters(self) -> list[InboundMessage]:
        entries = await self.redis.xrange(keys.INBOUND)
        return [InboundMessage.model_validate_json(fields["data"]) for _, fields in entries]

    async def state(self) -> dict[str, str]:
        return dict(await self.redis.hgetall(state_key("liuyanban")))


@pytest.fixture
async def pulling(settings: Settings) -> AsyncIterator[Pulling]:
    redis = aioredis.Redis.from_url(settings.redis_url, decode_responses=True)
    streams = Streams(redis, settings.dedupe_ttl_s)
    async with httpx.AsyncClient(timeout=5.0) as http:
        ctx = ChannelContext(redis=redis, enqueue=streams.enqueue, settings=settings, http=http)
        yield Pulling(Puller(ctx, "liuyanban", settings.portal["liuyanban"]), ctx, redis)
    await redis.aclose()


async def test_the_first_pull_asks_for_recent_posts_then_pages_on_by_the_cursor(
    pulling: Pulling, source: ListSource
) -> None:
    assert await pulling.puller.pull_once() is True  # two of three: more waiting
    assert await pulling.puller.pull_once() is False
    first, second = source.requests
    assert "cursor" not in first and first["limit"] == 50
    since = datetime.fromisoformat(first["since"])
    assert abs(since - (datetime.now(UTC) - timedelta(days=3))) < timedelta(minutes=1)
    assert second == {"cursor": "2", "limit": 50}
    letters = await pulling.letters()
    assert [m.channel_message_id for m in letters] == [p["id"] for p in BOARD]
    assert all(m.letter and m.channel == "portal:liuyanban" for m in letters)
    assert letters[0].title == BOARD[0]["title"] and letters[0].sender == BOARD[0]["user"]
    photo = letters[1].attachments[0]  # its photo is fetched in the background, as a pushed post's
    assert await pulling.redis.lrange(MEDIA_QUEUE, 0, -1) == [photo.ref]
    assert await pulling.redis.get(url_key(photo.ref)) == BOARD[1]["attachments"][0]["url"]
    state = await pulling.state()
    assert state["cursor"] == "3" and state["posts"] == "3" and state["error"] == ""
    assert await pulling.puller.pull_once() is False  # nothing new: the same cursor, no letter
    assert source.requests[-1] == {"cursor": "3", "limit": 50} and len(await pulling.letters()) == 3
    source.scripted.append(source.page({"posts": []}))  # an empty page may leave its cursor out
    await pulling.puller.pull_once()
    assert (await pulling.state())["cursor"] == "3"


async def test_a_post_served_again_is_one_letter(pulling: Pulling, source: ListSource) -> None:
    source.page_size = 3
    await pulling.puller.pull_once()
    await pulling.redis.hdel(state_key("liuyanban"), "cursor")  # the source's list is read from the start
    await pulling.puller.pull_once()
    assert len(source.requests) == 2 and len(await pulling.letters()) == 3
    assert (await pulling.state())["posts"] == "3"


async def test_a_page_the_gateway_could_not_hand_over_is_asked_for_again(
    pulling: Pulling, source: ListSource
) -> None:
    """Redis (or the gateway) fails after the first post of a page: the cursor stays, the page is
    read again, the post already handed over is not doubled and the other one is not lost."""
    real = pulling.ctx.enqueue
    calls = 0

    async def fails_on_the_second(msg: InboundMessage, then: Any = None) -> bool:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise ConnectionError("redis went away")
        return bool(await real(msg, then=then))

    pulling.ctx.enqueue = fails_on_the_second
    with pytest.raises(ConnectionError):
        await pulling.puller.pull_once()
    assert [m.channel_message_id for m in await pulling.letters()] == [BOARD[0]["id"]]
    assert "cursor" not in await pulling.state()
    assert await pulling.puller.pull_once() is True
    assert "cursor" not in source.requests[1]  # the same page again
    assert [m.channel_message_id for m in await pulling.letters()] == [BOARD[0]["id"], BOARD[1]["id"]]


@pytest.mark.parametrize(
    "answer, error",
    [
        (
            lambda s: ListSource(sign_with="x" * 20).page({"posts": BOARD, "cursor": "3"}),
            "signature mismatch",
        ),
        (
            lambda s: web.Response(body=b'{"posts": []}', headers={"Content-Type": "application/json"}),
            "not signed",
        ),
        (lambda s: s.page({"posts": BOARD}), "needs the cursor"),
        (lambda s: s.page({"items": "nope", "posts": "nope", "cursor": "9"}), "malformed page: posts"),
        (lambda s: web.Response(status=404), "answered 404"),
    ],
    ids=["wrong-secret", "unsigned", "no-cursor", "not-a-page", "404"],
)
async def test_an_answer_that_is_not_a_signed_page_moves_nothing(
    pulling: Pulling, source: ListSource, answer: Callable[[ListSource], web.Response], error: str
) -> None:
    source.scripted.append(answer(source))
    with pytest.raises(PullFailed, match=error):
        await pulling.puller.pull_once()
    assert await pulling.letters() == [] and "cursor" not in await pulling.state()


async def test_a_busy_source_is_asked_again_after_its_retry_after(
    pulling: Pulling, source: ListSource
) -> None:
    source.scripted.append(web.Response(status=503, headers={"Retry-After": "120"}))
    with pytest.raises(PullFailed) as failed:
        await pulling.puller.pull_once()
    assert failed.value.retry_after == 120.0
    assert pulling.puller._backoff(failed.value.retry_after) == 120.0  # not the 0.2 s interval
    assert pulling.puller._backoff(None) == pytest.approx(0.4)  # otherwise doubling from the interval


async def test_an_unreachable_source_is_a_pull_failure(pulling: Pulling, settings: Settings) -> None:
    pulling.puller.config = settings.portal["liuyanban"].model_copy(
        update={"pull_url": "http://127.0.0.1:9/x"}
    )
    with pytest.raises(PullFailed, match="unreachable"):
        await pulling.puller.pull_once()


async def test_a_malformed_post_is_set_aside_and_the_others_go_on(
    pulling: Pulling, source: ListSource
) -> None:
    source.posts.insert(1, {"id": "40999", "user": "UU1", "title": "", "body": ""})  # neither title nor body
    source.page_size = 4
    assert await pulling.puller.pull_once() is False
    assert [m.channel_message_id for m in await pulling.letters()] == [p["id"] for p in BOARD]
    state = await pulling.state()
    assert state["cursor"] == "4" and state["rejected"] == "1" and state["posts"] == "3"
    kept = json.loads((await pulling.redis.lrange(rejected_key("liuyanban"), 0, -1))[0])
    assert kept["post"]["id"] == "40999" and "title or a body" in kept["error"]


async def test_one_process_pulls_a_source_at_a_time(pulling: Pulling, source: ListSource) -> None:
    other = Puller(pulling.ctx, "liuyanban", pulling.puller.config)
    both = await asyncio.gather(pulling.puller.pull_once(), other.pull_once())
    assert sorted(both) == [False, True] and len(source.requests) == 1  # the other one held back
    assert await other.pull_once() is False and len(source.requests) == 2  # the lease was given back


async def wait_until(check: Callable[[], Awaitable[bool]], within_s: float = 10.0) -> None:
    deadline = time.monotonic() + within_s
    while not await check():
        assert time.monotonic() < deadline, "not within the time"
        await asyncio.sleep(0.05)


async def test_the_channel_pulls_on_its_own_and_records_a_failure(
    settings: Settings, pulling: Pulling, source: ListSource
) -> None:
    """Started with the channel: posts become letters without anyone asking, a failing source is
    noted for the IT team and asked again, and the channel stops promptly."""
    source.scripted.append(web.Response(status=500))
    channel = portal.PortalChannel(pulling.ctx)
    assert [p.source for p in channel.pullers] == ["liuyanban"]
    await channel.start()
    try:
        await wait_until(lambda: _error_noted(pulling))
        await wait_until(lambda: _count(pulling, 3))
        assert (await pulling.state())["error"] == ""
        source.posts.append(
            {"id": "41000", "user": "UU2", "title": "雨后小区积水", "body": "A3区米兰春天小区门口积水严重"}
        )
        await wait_until(lambda: _count(pulling, 4))
    finally:
        started = time.monotonic()
        await channel.stop()
        assert time.monotonic() - started < 2


async def _error_noted(pulling: Pulling) -> bool:
    return "answered 500" in (await pulling.state()).get("error", "")


async def _count(pulling: Pulling, n: int) -> bool:
    return len(await pulling.letters()) == n


def test_a_pull_url_is_set_per_source_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTLINE_PORTAL__SHEQING__SECRET", "Vd8-Tq2mX6bLr0Ys4Kc9Hn1Wz5Pe7Ju3")
    monkeypatch.setenv("HOTLINE_PORTAL__SHEQING__REPLY_URL", "https://sq.example.gov.cn/api/replies")
    monkeypatch.setenv("HOTLINE_PORTAL__SHEQING__PULL_URL", "https://sq.example.gov.cn/api/posts")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.portal["sheqing"].pull_url == "https://sq.example.gov.cn/api/posts"
    assert settings.portal["sheqing"].allowed_hosts() == {"sq.example.gov.cn"}
    monkeypatch.setenv("HOTLINE_PORTAL__SHEQING__PULL_URL", "https://list.example.gov.cn/api/posts")
    assert Settings(_env_file=None).portal["sheqing"].allowed_hosts() == {  # type: ignore[call-arg]
        "sq.example.gov.cn",
        "list.example.gov.cn",
    }
    monkeypatch.setenv("HOTLINE_PORTAL__SHEQING__PULL_URL", "ftp://sq.example.gov.cn/posts")
    with pytest.raises(ValueError, match="pull_url"):
        Settings(_env_file=None)  # type: ignore[call-arg]
