"""The web API's photos at the HTTP boundary: upload, send with a message, see it again."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from channels.web import address_key
from config.settings import Settings
from gateway import keys
from tests.conftest import ADMIN_TOKEN, LiveServer, photo, wait_for_events
from tests.gateway.test_web_e2e import new_session, say


def bearer(session: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {session['token']}"}


async def upload(
    client: httpx.AsyncClient, session: dict[str, str], data: bytes, mime: str = "image/jpeg"
) -> httpx.Response:
    return await client.post(
        f"/channels/web/sessions/{session['session_id']}/media",
        content=data,
        headers={**bearer(session), "Content-Type": mime},
    )


async def test_a_photo_uploaded_then_sent_reaches_the_ticket(client: httpx.AsyncClient, app: Any) -> None:
    session = await new_session(client)
    big = photo(3000, 2000)
    assert len(big) > 256 * 1024  # more than any other request may carry
    r = await upload(client, session, big)
    assert r.status_code == 201, r.text
    attachment = r.json()["attachment"]
    assert attachment["kind"] == "image" and attachment["mime"] == "image/jpeg"
    # only the reference counts: a client cannot relabel the photo as something else
    sent = {"ref": attachment["ref"], "kind": "video", "mime": "text/html"}
    r = await say(client, session, "小区门口路灯坏了一周", client_message_id="m1", attachments=[sent])
    assert r.status_code == 202, r.text
    events, cursor = await wait_for_events(client, session, lambda e: e["type"] == "echo")
    echo = next(e for e in events if e["type"] == "echo")
    assert echo["attachments"] == [{"kind": "image", "ref": attachment["ref"]}]
    # the citizen's own page shows it again after a reload (its own photo only)
    r = await client.get(
        f"/channels/web/sessions/{session['session_id']}/media/{attachment['ref']}", headers=bearer(session)
    )
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert Image.open(io.BytesIO(r.content)).size == (2560, 1707)  # shrunk to HOTLINE_MEDIA_MAX_SIDE
    other = await new_session(client)
    r = await client.get(
        f"/channels/web/sessions/{other['session_id']}/media/{attachment['ref']}", headers=bearer(other)
    )
    assert r.status_code == 404
    # and it goes with the ticket
    _, cursor = await wait_for_events(
        client, session, lambda e: "具体地点" in e.get("text", ""), after=cursor
    )
    await say(client, session, "A3区联丰路米兰春天小区")
    _, cursor = await wait_for_events(client, session, lambda e: "确认" in e.get("text", ""), after=cursor)
    await say(client, session, "确认")
    events, _ = await wait_for_events(client, session, lambda e: e["type"] == "ticket_filed", after=cursor)
    ticket_id = next(e for e in events if e["type"] == "ticket_filed")["ticket_id"]
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    r = await client.get(f"/api/admin/tickets/{ticket_id}", headers=admin)
    assert r.json()["attachments"] == [attachment["ref"]]
    # which the ticket platform copies by its reference
    r = await client.get("/api/admin/media", params={"ref": attachment["ref"]}, headers=admin)
    assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).format == "JPEG"
    assert (await client.get("/api/admin/media", params={"ref": attachment["ref"]})).status_code == 401


async def test_a_mini_program_upload_is_multipart(client: httpx.AsyncClient) -> None:
    """``wx.uploadFile`` sends the photo as the one file of a form (name chosen by the page)."""
    session = await new_session(client)
    r = await client.post(
        f"/channels/web/sessions/{session['session_id']}/media",
        headers=bearer(session),
        files={"file": ("tmp_3a9f.jpg", photo(640, 480), "image/jpeg")},
        data={"user": "x"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["attachment"]["ref"].startswith("upload:")
    r = await client.post(
        f"/channels/web/sessions/{session['session_id']}/media",
        headers=bearer(session),
        files={"note": (None, "no file in this form")},
    )
    assert r.status_code == 400 and "图片文件" in r.json()["detail"]


async def test_what_is_not_a_photo_is_refused_with_a_reason(client: httpx.AsyncClient, app: Any) -> None:
    session = await new_session(client)
    r = await upload(client, session, b"<html><script>alert(1)</script></html>", mime="image/jpeg")
    assert r.status_code == 400 and "不支持的图片格式" in r.json()["detail"]
    r = await upload(client, session, b"")
    assert r.status_code == 400 and r.json()["detail"] == "没有收到图片"
    r = await upload(client, session, photo(400, 300)[:2000])
    assert r.status_code == 400 and "损坏" in r.json()["detail"]
    r = await say(client, session, "", attachments=[{"ref": "upload:" + "0" * 32}])
    assert r.status_code == 400 and "图片不存在或已过期" in r.json()["detail"]
    r = await client.post(
        f"/channels/web/sessions/{session['session_id']}/media",
        content=photo(),
        headers={"Content-Type": "image/jpeg"},
    )
    assert r.status_code == 401
    # nothing was accepted (the inbound stream forgets what was handled; the history does not)
    assert await app.state.runtime.redis.xlen(keys.history(f"web:{session['session_id']}")) == 0


async def test_another_citizens_photo_cannot_be_sent(client: httpx.AsyncClient) -> None:
    mine, theirs = await new_session(client), await new_session(client)
    ref = (await upload(client, theirs, photo())).json()["attachment"]["ref"]
    r = await say(client, mine, "看这张图", attachments=[{"ref": ref}])
    assert r.status_code == 400 and "图片不存在或已过期" in r.json()["detail"]


async def test_the_photo_size_limit_is_its_own(client: httpx.AsyncClient, settings: Any) -> None:
    session = await new_session(client)
    too_big = b"\xff\xd8\xff\xe0" + b"0" * (settings.web_media_max_bytes + 70 * 1024)
    r = await upload(client, session, too_big)
    assert r.status_code == 413
    r = await client.post(
        f"/channels/web/sessions/{session['session_id']}/messages",
        content=b'{"text": "' + b"a" * (300 * 1024) + b'"}',
        headers={**bearer(session), "Content-Type": "application/json"},
    )
    assert r.status_code == 413  # other routes keep HOTLINE_MAX_BODY_BYTES


async def test_a_session_may_upload_only_so_many_photos(client: httpx.AsyncClient, settings: Any) -> None:
    settings.web_media_per_session = 2
    session, small = await new_session(client), photo(64, 48)
    assert (await upload(client, session, b"not a photo")).status_code == 400  # refused: not counted
    for _ in range(2):
        assert (await upload(client, session, small)).status_code == 201
    r = await upload(client, session, small)
    assert r.status_code == 403 and "最多发送2张图片" in r.json()["detail"]  # final: not a 429 to retry
    assert (await upload(client, await new_session(client), small)).status_code == 201  # per session


async def test_uploads_stop_before_the_disk_is_full(client: httpx.AsyncClient, settings: Any) -> None:
    settings.media_min_free_mb = 1 << 40  # more free space than any disk has
    r = await upload(client, await new_session(client), photo(64, 48))
    assert r.status_code == 503 and "图片暂时无法接收" in r.json()["detail"]
    assert r.headers["retry-after"] == "5"


async def test_a_shared_place_answers_where_through_the_gateway(client: httpx.AsyncClient) -> None:
    """The gateway's bot reads other matters raised mid-draft: a place alone must not be one."""
    session = await new_session(client)
    await say(client, session, "小区门口的路灯坏了一个星期了")
    _, cursor = await wait_for_events(client, session, lambda e: "具体地点" in e.get("text", ""))
    await say(client, session, "", location={"lat": 28.19, "lng": 112.98, "label": "A市芙蓉中路一段"})
    events, _ = await wait_for_events(client, session, lambda e: "请确认" in e.get("text", ""), after=cursor)
    assert not any("记下了" in e.get("text", "") for e in events)
    assert any("A市芙蓉中路一段" in e.get("text", "") for e in events)


async def test_shared_coordinates_reach_the_bot_in_the_maps_datum(
    client: httpx.AsyncClient, app: Any, settings: Any
) -> None:
    """A browser's GPS position (WGS-84) lands where AMap or Tencent's map (GCJ-02, the default
    HOTLINE_MAP_DATUM) would show it; a mini-program's wx.chooseLocation is GCJ-02 already."""
    session = await new_session(client)
    await say(client, session, "", client_message_id="gps", location={"lat": 39.915, "lng": 116.404})
    await say(client, session, "", client_message_id="gcj",
              location={"lat": 39.915, "lng": 116.404, "datum": "gcj02"})
    r = await say(client, session, "", location={"lat": 139.9, "lng": 116.4})
    assert r.status_code == 422  # off the globe
    # (as the conversation's history keeps it: the inbound stream's entries go once handled)
    entries = await app.state.runtime.redis.xrange(keys.history(f"web:{session['session_id']}"))
    got = {m.get("channel_message_id"): m.get("geo") for m in (json.loads(f["data"]) for _, f in entries)}
    assert got["gcj"] == [39.915, 116.404]
    assert abs(got["gps"][0] - 39.916404) < 1e-6 and abs(got["gps"][1] - 116.410244) < 1e-6


# --- new sessions per client address ----------------------------------------------------------
@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        (None, "unknown"),
    ],
)
def test_addresses_are_counted_by_client_not_by_ipv6_address(address: str | None, key: str) -> None:
    assert address_key(address) == key


@pytest.fixture
def few_sessions(settings: Settings) -> Settings:
    return settings.model_copy(update={"web_sessions_per_address_per_hour": 3})


async def test_one_address_opens_only_so_many_sessions_an_hour(few_sessions: Settings) -> None:
    from gateway.app import create_app

    app = create_app(few_sessions)
    await app.state.runtime.start()
    try:

        async def opened(address: str) -> int:
            transport = httpx.ASGITransport(app=app, client=(address, 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
                r = await c.post("/channels/web/sessions")
                assert r.status_code in (201, 429), r.text
                if r.status_code == 429:
                    assert "新建会话过于频繁" in r.text and r.headers["Retry-After"]
                return r.status_code

        assert [await opened("203.0.113.7") for _ in range(4)] == [201, 201, 201, 429]
        assert await opened("198.51.100.20") == 201  # another client is not held back
        assert [await opened(f"2001:db8::{i}") for i in range(4)] == [201, 201, 201, 429]  # one /64
    finally:
        await app.state.runtime.stop()


@pytest.mark.parametrize(("trusted", "counted_apart"), [("127.0.0.1", True), ("10.9.8.7", False)])
def test_behind_a_trusted_proxy_the_client_address_counts(
    few_sessions: Settings, trusted: str, counted_apart: bool
) -> None:
    """uvicorn as `hotline serve` runs it: X-Forwarded-For is believed from HOTLINE_TRUSTED_PROXIES only."""
    settings = few_sessions.model_copy(update={"trusted_proxies": trusted})
    with LiveServer(settings) as server:

        def opened(client: str) -> int:
            url = f"{server.url}/channels/web/sessions"
            return httpx.post(url, headers={"X-Forwarded-For": client}, timeout=10).status_code

        assert [opened("198.51.100.1") for _ in range(3)] == [201, 201, 201]
        # a fourth from another client behind the same proxy: its own count, or the proxy's
        assert opened("198.51.100.2") == (201 if counted_apart else 429)


async def test_a_heic_photo_from_a_desktop_browser_is_taken(client: httpx.AsyncClient) -> None:
    """Chrome on a PC cannot decode an iPhone's HEIC to shrink it, so the widget sends it as it is."""
    session = await new_session(client)
    heic = (Path(__file__).parent / "fixtures" / "media" / "rotated_gps.heic").read_bytes()
    r = await upload(client, session, heic, "image/heic")
    assert r.status_code == 201, r.text
    assert r.json()["attachment"]["mime"] == "image/jpeg"
