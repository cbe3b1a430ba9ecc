"""WeChat pushes through the real app: fixture in, expected InboundMessage out (workers off).

Also: URL verification, the official safe-mode vector, forged/replayed/oversized/entity-laden
requests refused with nothing enqueued, WeChat's retries de-duplicated, settings from HOTLINE_*.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from channels.base import Attachment, BadRequest, GeoLocation, InboundMessage
from channels.wechat.crypto import Cipher, sign_push, signature
from channels.wechat.parse import cdata, parse_xml, text_reply
from config.settings import Settings, WechatAccount

FIXTURES = Path(__file__).parent / "fixtures" / "wechat"
VECTORS = json.loads((FIXTURES / "official_vectors.json").read_text())
KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
OA = WechatAccount(kind="oa", appid="wx3f2a1b0c9d8e7f6a", secret="oa-secret", token="oa-token", aes_key=KEY)
PLAIN = WechatAccount(kind="oa", appid="wx0000000000plain0", secret="s", token="plain-token")
MP = WechatAccount(
    kind="mp", appid="wx7c1d2e3f4a5b6c7d", secret="mp-secret", token="mp-token", aes_key=KEY,
    subscribe_template_id="TPL_STATUS_UPDATE",
)
VECTOR = WechatAccount(
    kind="oa", appid=VECTORS["receive_id"], token=VECTORS["token"], aes_key=VECTORS["encoding_aes_key"]
)
ACCOUNTS = {"oa": OA, "plain": PLAIN, "mp": MP, "vector": VECTOR}
CITIZEN = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
MP_CITIZEN = "o7esq5OI1Ls4BHLZ1qCAEK0QtmTo"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.wechat = dict(ACCOUNTS)
    settings.embedded_workers = False  # the stream keeps what the webhook enqueued
    settings.wechat_api_base = "http://127.0.0.1:9"  # never the real WeChat: media fetches fail at once
    return settings


async def eventually(check: Callable[[], Any], within: float = 15.0) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy; return that."""
    async with asyncio.timeout(within):
        while True:
            value = check()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value
            await asyncio.sleep(0.05)


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


async def push(
    client: httpx.AsyncClient, account: str, body: str, *, ts: int | None = None, json_envelope: bool = False
) -> httpx.Response:
    """POST ``body`` to ``/channels/wechat/<account>`` signed (and encrypted) as WeChat would."""
    acc = ACCOUNTS[account]
    query, data = sign_push(
        acc.token, body, aes_key=acc.aes_key, appid=acc.appid, json_envelope=json_envelope, timestamp=ts
    )
    kind = "application/json" if data.lstrip().startswith("{") else "text/xml"
    return await client.post(f"/channels/wechat/{account}", params=query, content=data.encode(),
                             headers={"content-type": kind})


async def enqueued(app: Any) -> list[InboundMessage]:
    entries = await app.state.runtime.redis.xrange("hl:in")
    return [InboundMessage.model_validate_json(fields["data"]) for _, fields in entries]


async def through_app(client: httpx.AsyncClient, app: Any, account: str, name: str) -> dict[str, Any]:
    before = len(await enqueued(app))
    r = await push(client, account, fixture(name), json_envelope=name.endswith(".json"))
    assert (r.status_code, r.text) == (200, "success")
    new = (await enqueued(app))[before:]
    assert len(new) == 1, new
    return new[0].model_dump(exclude={"id"})


def expect(account: str, openid: str, msg_id: str, created: int, msg_type: str, **kw: Any) -> dict[str, Any]:
    meta = {"account": account, "msg_type": msg_type, **kw.pop("meta", {})}
    channel = "wechat_mp" if ACCOUNTS[account].kind == "mp" else "wechat_oa"
    return InboundMessage(
        channel=channel, channel_message_id=msg_id, sender=f"{account}/{openid}",
        received_at=datetime.fromtimestamp(created, UTC), meta=meta, **kw,
    ).model_dump(exclude={"id"})


# --- one line per payload -----------------------------------------------------------------
CASES = [
    ("plain", "text__plain.xml", expect("plain", CITIZEN, "24316620133567890", 1764211200, "text",
                                        text="A3区联丰路米兰春天小区门口的路灯坏了一个星期了，晚上很黑")),
    ("oa", "text__plain.xml", expect("oa", CITIZEN, "24316620133567890", 1764211200, "text",
                                     text="A3区联丰路米兰春天小区门口的路灯坏了一个星期了，晚上很黑")),
    ("oa", "text__cdata_breaker.xml", expect("oa", CITIZEN, "24316620133567891", 1764211201, "text",
                                             text="路灯坏了]]><script>alert(1)</script>")),
    ("oa", "image.xml", expect("oa", CITIZEN, "24316620133567892", 1764211260, "image",
                               attachments=[Attachment(kind="image", mime="image/jpeg",
                                                       ref="wechat:oa:2Zq7o9WqkB3x_MEDIA_ID_EXAMPLE")],
                               meta={"pic_url": "http://mmbiz.qpic.cn/mmbiz_jpg/EXAMPLE/0"})),
    ("oa", "voice__recognition.xml", expect("oa", CITIZEN, "24316620133567893", 1764211320, "voice",
                                            text="楼下餐馆油烟太大了。",
                                            attachments=[Attachment(kind="audio", mime="audio/amr",
                                                                    ref="wechat:oa:VOICE_MEDIA_ID_EXAMPLE")])),
    ("oa", "voice__no_recognition.xml", expect("oa", CITIZEN, "24316620133567894", 1764211321, "voice",
                                               attachments=[Attachment(kind="audio", mime="audio/speex",
                                                                       ref="wechat:oa:VOICE_MEDIA_ID_EXAMPLE_2")])),
    ("oa", "location.xml", expect("oa", CITIZEN, "24316620133567895", 1764211380, "location",
                                  location=GeoLocation(lat=30.572269, lng=104.066541,
                                                       label="四川省成都市锦江区红星路三段1号", datum="gcj02"))),
    ("oa", "link.xml", expect("oa", CITIZEN, "24316620133567896", 1764211390, "link",
                              text="小区门口积水照片\n下雨后一直积水\nhttps://example.org/p/1")),
    ("oa", "event__subscribe.xml", expect("oa", CITIZEN, f"{CITIZEN}:1764211100:subscribe", 1764211100, "event",
                                          event="subscribe", meta={"event_key": "qrscene_street_notice"})),
    ("mp", "text.json", expect("mp", MP_CITIZEN, "24316620133560001", 1764211410, "text", text="小区垃圾三天没人清运了")),
    ("mp", "image.json", expect("mp", MP_CITIZEN, "24316620133560002", 1764211420, "image",
                                attachments=[Attachment(kind="image", mime="image/jpeg",
                                                        ref="wechat:mp:MP_MEDIA_ID_EXAMPLE")],
                                meta={"pic_url": "http://mmbiz.qpic.cn/mmbiz_jpg/EXAMPLE/0"})),
    ("mp", "miniprogrampage.json", expect("mp", MP_CITIZEN, "24316620133560003", 1764211430, "miniprogrampage",
                                          text="我的工单")),
    ("mp", "event__user_enter_tempsession.json",
     expect("mp", MP_CITIZEN, f"{MP_CITIZEN}:1764211400:user_enter_tempsession", 1764211400, "event",
            event="enter_session", meta={"session_from": "ticket_page"})),
]


@pytest.mark.parametrize(("account", "name", "expected"), CASES, ids=[f"{a}-{n}" for a, n, _ in CASES])
async def test_push_becomes_message(client: httpx.AsyncClient, app: Any, account: str, name: str,
                                    expected: dict[str, Any]) -> None:
    assert await through_app(client, app, account, name) == expected


async def test_xml_push_to_the_mini_program(client: httpx.AsyncClient, app: Any) -> None:
    body = fixture("text__plain.xml").replace(CITIZEN, MP_CITIZEN)
    r = await push(client, "mp", body)
    assert r.status_code == 200
    [msg] = await enqueued(app)
    assert (msg.channel, msg.sender, msg.conversation_key) == ("wechat_mp", f"mp/{MP_CITIZEN}", f"wechat_mp:mp/{MP_CITIZEN}")


# --- the official vector ------------------------------------------------------------------
async def test_official_vector_decrypts_through_the_endpoint(client: httpx.AsyncClient, app: Any) -> None:
    app.state.runtime.settings.wechat_replay_window_s = 0  # the vector was signed in 2014
    vector = VECTORS["encrypted_message"]
    r = await client.post("/channels/wechat/vector", params=vector["query"], content=vector["body"])
    assert (r.status_code, r.text) == (200, "success")
    [msg] = await enqueued(app)
    fields = vector["expected_plaintext_fields"]
    assert msg.text == fields["Content"]
    assert msg.channel_message_id == fields["MsgId"]
    assert msg.sender == f"vector/{fields['FromUserName']}"
    assert msg.received_at == datetime.fromtimestamp(int(fields["CreateTime"]), UTC)


def test_official_vector_plaintext_fields() -> None:
    vector = VECTORS["encrypted_message"]
    encrypted = parse_xml(vector["body"])["Encrypt"]
    q = vector["query"]
    assert signature(VECTORS["token"], q["timestamp"], q["nonce"], encrypted) == q["msg_signature"]
    plain = parse_xml(Cipher(VECTORS["encoding_aes_key"], VECTORS["receive_id"]).decrypt(encrypted))
    assert plain == vector["expected_plaintext_fields"]


async def test_encrypted_echostr_verification_vector(client: httpx.AsyncClient, app: Any) -> None:
    app.state.runtime.settings.wechat_replay_window_s = 0
    vector = VECTORS["url_verification_wecom_style"]
    r = await client.get("/channels/wechat/vector", params=vector["query"])
    assert (r.status_code, r.text) == (200, vector["expected_echo"])


# --- URL verification ---------------------------------------------------------------------
async def test_url_verification_echoes(client: httpx.AsyncClient) -> None:
    ts, nonce = str(int(time.time())), "1372623149"
    params = {"signature": signature("oa-token", ts, nonce), "timestamp": ts, "nonce": nonce, "echostr": "5837397"}
    r = await client.get("/channels/wechat/oa", params=params)
    assert (r.status_code, r.text) == (200, "5837397")
    r = await client.get("/channels/wechat/OA", params=params)  # names are matched lower-cased
    assert r.status_code == 200
    r = await client.get("/channels/wechat/oa", params=params | {"signature": "0" * 40})
    assert r.status_code == 403 and "5837397" not in r.text
    r = await client.get("/channels/wechat/mp", params=params)  # another account's token
    assert r.status_code == 403
    r = await client.get("/channels/wechat/nope", params=params)
    assert r.status_code == 404


# --- refused: forged, replayed, oversized, entity-laden -----------------------------------
async def test_forged_signature_refused(client: httpx.AsyncClient, app: Any) -> None:
    query, body = sign_push("oa-token", fixture("text__plain.xml"), aes_key=KEY, appid=OA.appid)
    r = await client.post("/channels/wechat/oa", params=query | {"msg_signature": "f" * 40}, content=body)
    assert r.status_code == 403
    forged, body = sign_push("guessed-token", fixture("text__plain.xml"), aes_key=KEY, appid=OA.appid)
    assert (await client.post("/channels/wechat/oa", params=forged, content=body)).status_code == 403
    query, body = sign_push("plain-token", fixture("text__plain.xml"))
    r = await client.post("/channels/wechat/plain", params=query | {"signature": "0" * 40}, content=body)
    assert r.status_code == 403
    assert await enqueued(app) == []


async def test_message_for_another_appid_refused(client: httpx.AsyncClient, app: Any) -> None:
    query, body = sign_push("oa-token", fixture("text__plain.xml"), aes_key=KEY, appid="wxsomeoneelse00000")
    assert (await client.post("/channels/wechat/oa", params=query, content=body)).status_code == 403
    assert await enqueued(app) == []


async def test_safe_mode_account_refuses_plain_push(client: httpx.AsyncClient, app: Any) -> None:
    query, body = sign_push("oa-token", fixture("text__plain.xml"))
    assert (await client.post("/channels/wechat/oa", params=query, content=body)).status_code == 403
    assert await enqueued(app) == []


@pytest.mark.parametrize("age", [305, -305, 86400])  # 5 s past the window: a loaded machine may take a second
async def test_replayed_request_outside_window_refused(client: httpx.AsyncClient, app: Any, age: int) -> None:
    r = await push(client, "oa", fixture("text__plain.xml"), ts=int(time.time()) - age)
    assert r.status_code == 403
    assert await enqueued(app) == []


async def test_same_msgid_three_times_is_one_message(client: httpx.AsyncClient, app: Any) -> None:
    for _ in range(3):  # WeChat retries after 5 s, three times; each retry has a new nonce
        r = await push(client, "oa", fixture("text__plain.xml"))
        assert (r.status_code, r.text) == (200, "success")
    assert len(await enqueued(app)) == 1


async def test_event_retries_deduplicated_by_sender_time_event(client: httpx.AsyncClient, app: Any) -> None:
    for _ in range(3):
        assert (await push(client, "oa", fixture("event__subscribe.xml"))).status_code == 200
    assert len(await enqueued(app)) == 1


@pytest.mark.parametrize("name", ["evil__entities.xml", "evil__external_entity.xml"])
async def test_entity_laden_xml_refused(client: httpx.AsyncClient, app: Any, name: str) -> None:
    r = await push(client, "plain", fixture(name))  # correctly signed, still refused
    assert r.status_code == 400
    r = await push(client, "oa", fixture(name))  # inside the encrypted envelope too
    assert r.status_code == 400
    query, _ = sign_push("oa-token", "")
    assert (await client.post("/channels/wechat/oa", params=query, content=fixture(name))).status_code in (400, 403)
    assert await enqueued(app) == []


async def test_stalled_redis_answered_503_within_wechats_5_s(client: httpx.AsyncClient, app: Any) -> None:
    redis = app.state.runtime.redis
    await redis.execute_command("CLIENT", "PAUSE", "6000", "WRITE")  # writes hang, reads still work
    try:
        started = time.monotonic()
        r = await push(client, "oa", fixture("text__plain.xml"))
        assert r.status_code == 503 and r.headers["retry-after"] == "5"
        assert time.monotonic() - started < 4.5
    finally:
        await redis.execute_command("CLIENT", "UNPAUSE")
    assert (await push(client, "oa", fixture("text__plain.xml"))).status_code == 200  # WeChat's retry
    assert len(await enqueued(app)) == 1


def test_dtd_hidden_by_another_encoding_refused() -> None:
    """A byte scan cannot see ``<!DOCTYPE`` in UTF-16; the parsed document's own DTD is checked too."""
    evil = fixture("evil__entities.xml").replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16"?>')
    with pytest.raises(BadRequest, match="DTD"):
        parse_xml(evil.encode("utf-16"))
    plain = '<?xml version="1.0" encoding="UTF-16"?><xml><Content>路灯坏了</Content></xml>'
    assert parse_xml(plain.encode("utf-16")) == {"Content": "路灯坏了"}


async def test_oversized_body_refused(client: httpx.AsyncClient, app: Any, settings: Settings) -> None:
    big = fixture("text__plain.xml").replace("晚上很黑", "很黑" * 40_000)  # ~240 KB: over the WeChat limit
    assert len(big.encode()) > settings.wechat_max_body_bytes
    assert (await push(client, "plain", big)).status_code == 413
    huge = big * 2  # over the app-wide limit: refused before the route reads it
    assert (await push(client, "plain", huge)).status_code == 413
    assert await enqueued(app) == []


async def test_garbage_refused(client: httpx.AsyncClient, app: Any) -> None:
    for body in ("<xml><unclosed></xml>", "not xml at all", "[1, 2]", "<other/>"):
        assert (await push(client, "plain", body)).status_code == 400, body
    query, _ = sign_push("oa-token", "")
    enc = "<xml><Encrypt><![CDATA[bm90IHJlYWxseSBlbmNyeXB0ZWQ=]]></Encrypt></xml>"
    query["msg_signature"] = signature("oa-token", query["timestamp"], query["nonce"], "bm90IHJlYWxseSBlbmNyeXB0ZWQ=")
    assert (await client.post("/channels/wechat/oa", params=query, content=enc)).status_code == 400
    assert await enqueued(app) == []


async def test_half_an_emoji_in_a_json_push_is_taken_not_hung(client: httpx.AsyncClient, app: Any) -> None:
    """JSON's "\\ud83d" decodes to a lone surrogate, which Redis cannot be sent: the push used to
    end the enqueue's group commit and leave its request (and every one batched with it) waiting
    past WeChat's 5 s. It is now read as U+FFFD, in the text and in the sender alike."""
    push_ = json.loads(fixture("text.json"))
    push_ |= {"FromUserName": "o7esq5OI1Ls4BHLZ1qCAEK0QtmT\ud83d", "Content": "楼道灯坏了\ud83d", "MsgId": 424242}
    async with asyncio.timeout(5):
        r = await push(client, "mp", json.dumps(push_), json_envelope=True)
    assert (r.status_code, r.text) == (200, "success")
    [msg] = await enqueued(app)
    assert msg.text == "楼道灯坏了\ufffd" and msg.sender == "mp/o7esq5OI1Ls4BHLZ1qCAEK0QtmT\ufffd"


# --- events that only change state --------------------------------------------------------
@pytest.mark.parametrize("name", ["event__templatesendjobfinish.xml", "event__click.xml", "event__unsubscribe.xml"])
async def test_events_acknowledged_not_enqueued(client: httpx.AsyncClient, app: Any, name: str) -> None:
    r = await push(client, "oa", fixture(name))
    assert (r.status_code, r.text) == (200, "success")
    assert await enqueued(app) == []


async def test_click_opens_window_and_unsubscribe_closes_it(client: httpx.AsyncClient, app: Any) -> None:
    channel = next(c for c in app.state.runtime.channels if c.name == "wechat")
    await push(client, "oa", fixture("event__click.xml"))
    assert (await channel.windows.state("oa", CITIZEN)).open
    await push(client, "oa", fixture("event__unsubscribe.xml"))
    assert not (await channel.windows.state("oa", CITIZEN)).open


async def test_a_click_on_the_bots_menu_is_a_message_and_opens_the_window(client: httpx.AsyncClient, app: Any) -> None:
    """The bot's own buttons (EventKey hotline:…, channels/wechat/menu.py) are handed on for it to
    answer; the city's other buttons (MENU_MY_TICKETS above) only open the window."""
    channel = next(c for c in app.state.runtime.channels if c.name == "wechat")
    for _ in range(2):  # WeChat retries a push it got no answer to: one message
        r = await push(client, "oa", fixture("event__click_menu.xml"))
        assert (r.status_code, r.text) == (200, "success")
    [msg] = await enqueued(app)
    assert (msg.event, msg.text, msg.meta["event_key"], msg.sender) == ("click", "", "hotline:progress", f"oa/{CITIZEN}")
    assert (await channel.windows.state("oa", CITIZEN)).open
    r = await push(client, "oa", fixture("event__click_menu.xml").replace("hotline:progress", "hotline:faq"))
    assert [m.meta["event_key"] for m in await enqueued(app)] == ["hotline:progress", "hotline:faq"]  # same second


@pytest.mark.parametrize("name", ["event__subscribe_msg_popup_event.xml", "event__subscribe_msg_popup_event.json"])
async def test_subscribe_consent_recorded_once(client: httpx.AsyncClient, app: Any, name: str) -> None:
    channel = next(c for c in app.state.runtime.channels if c.name == "wechat")
    for _ in range(2):  # a retried event counts once
        r = await push(client, "mp", fixture(name), json_envelope=name.endswith(".json"))
        assert (r.status_code, r.text) == (200, "success")
    assert await channel.windows.consents("mp", MP_CITIZEN) == {"TPL_STATUS_UPDATE": 1}
    assert await enqueued(app) == []


async def test_ack_does_not_wait_for_workers(client: httpx.AsyncClient, app: Any) -> None:
    started = time.perf_counter()
    for i in range(20):
        body = fixture("text__plain.xml").replace("24316620133567890", str(10**16 + i))
        assert (await push(client, "oa", body)).status_code == 200
    assert (time.perf_counter() - started) / 20 < 0.5  # no worker runs here: the ack never waits on one
    assert len(await enqueued(app)) == 20


# --- passive replies ----------------------------------------------------------------------
@pytest.mark.parametrize("text", ["路灯坏了]]><script>alert(1)</script>", "]]>", "a]]]]>b", "<![CDATA[x]]>", "控制\x01字符"])
def test_passive_reply_never_breaks_on_citizen_text(text: str) -> None:
    xml = text_reply(CITIZEN, "gh_3f2a1b0c9d8e", text, 1764211200)
    parsed = parse_xml(xml)
    assert parsed["Content"] == text.replace("\x01", "")
    assert parsed["ToUserName"] == CITIZEN and parsed["MsgType"] == "text"
    assert cdata("]]>").count("<![CDATA[") == 2


def test_cipher_errors_are_channel_errors() -> None:
    cipher = Cipher(KEY, OA.appid)
    for garbage in ("%%%", "", "bm90IHJlYWxseSBlbmNyeXB0ZWQ="):
        with pytest.raises(BadRequest):
            cipher.decrypt(garbage)
    assert cipher.decrypt(cipher.encrypt("你好]]>")) == "你好]]>"


# --- settings -----------------------------------------------------------------------------
def test_accounts_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOTLINE_WECHAT_OA_APPID", "wxenv0000000000001")
    monkeypatch.setenv("HOTLINE_WECHAT_OA_TOKEN", "env-token")
    monkeypatch.setenv("HOTLINE_WECHAT_OA_AES_KEY", KEY)
    monkeypatch.setenv("HOTLINE_WECHAT_OA_SECRET", "env-secret")
    monkeypatch.setenv("HOTLINE_WECHAT_CITY_MP_KIND", "mp")
    monkeypatch.setenv("HOTLINE_WECHAT_CITY_MP_APPID", "wxenv0000000000002")
    monkeypatch.setenv("HOTLINE_WECHAT_CITY_MP_TOKEN", "mp-token")
    monkeypatch.setenv("HOTLINE_WECHAT_CITY_MP_SUBSCRIBE_FIELDS", '{"thing1": "text"}')
    monkeypatch.setenv("HOTLINE_WECHAT_API_BASE", "http://127.0.0.1:9")
    env = tmp_path / ".env"
    env.write_text("HOTLINE_WECHAT_OA_TOKEN=dotenv-token\nHOTLINE_WECHAT_DOTENV_APPID=wxdotenv\n"
                   "HOTLINE_WECHAT_DOTENV_TOKEN=t\n")
    s = Settings(_env_file=env)  # type: ignore[call-arg]
    assert s.wechat["oa"] == WechatAccount(appid="wxenv0000000000001", token="env-token", aes_key=KEY, secret="env-secret")
    assert s.wechat["city_mp"].kind == "mp" and s.wechat["city_mp"].subscribe_fields == {"thing1": "text"}
    assert s.wechat["dotenv"].appid == "wxdotenv"
    assert s.wechat_api_base == "http://127.0.0.1:9"
    explicit = Settings(_env_file=None, wechat={"Town": WechatAccount(appid="a", token="t")})  # type: ignore[call-arg]
    assert explicit.wechat["town"].appid == "a"


def test_bad_aes_key_names_the_variable() -> None:
    with pytest.raises(ValueError, match="HOTLINE_WECHAT_<NAME>_AES_KEY"):
        WechatAccount(appid="a", token="t", aes_key="short")


def test_documented_env_example_loads(tmp_path: Path) -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "wechat.md").read_text(encoding="utf-8")
    block = doc.split("```dotenv", 1)[1].split("```", 1)[0]
    (tmp_path / ".env").write_text(block, encoding="utf-8")
    s = Settings(_env_file=tmp_path / ".env")  # type: ignore[call-arg]
    assert {"oa", "city_mp"} <= set(s.wechat)
    assert s.wechat["city_mp"].kind == "mp" and s.wechat["city_mp"].subscribe_fields["thing4"] == "text"
