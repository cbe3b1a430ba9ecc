"""WeChat pushes (XML or JSON) into ``InboundMessage``s: pure functions, no I/O.

XML is parsed by lxml with entities left unresolved, no network and no DTD loading, and any
document type (hence any entity declaration) is refused: WeChat never sends one. Passive-reply XML is built here too, with citizen text made safe for CDATA.
"""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime
from typing import Any

from lxml import etree

from channels.base import Attachment, BadRequest, GeoLocation, IgnoredEvent, InboundMessage

Push = dict[str, Any]

# Events a citizen causes (the customer-service window opens) but the bot does not act on.
USER_ACTIONS = {"CLICK", "VIEW", "SCAN", "view_miniprogram", "scancode_push", "scancode_waitmsg"}
# Consent events of subscribe messages (mini-program and official account 订阅通知).
CONSENT_EVENTS = {"subscribe_msg_popup_event", "subscribe_msg_change_event"}
EVENT_NAMES = {"subscribe": "subscribe", "user_enter_tempsession": "enter_session", "CLICK": "click"}
MENU_KEY_PREFIX = "hotline:"  # the bot's own menu buttons (channels/wechat/menu.py): clicks it answers
VOICE_MIME = {"amr": "audio/amr", "speex": "audio/speex", "mp3": "audio/mpeg"}
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def channel_of(kind: str) -> str:
    return f"wechat_{kind}"


def sender_of(account: str, openid: str) -> str:
    """The sender carries the account, so replies find their way back with one channel string."""
    return f"{account}/{openid}"


def split_sender(sender: str) -> tuple[str, str]:
    account, _, openid = sender.partition("/")
    return account, openid


_parsers = threading.local()  # an lxml parser must not be shared between threads


def _parser() -> etree.XMLParser:
    parser: etree.XMLParser | None = getattr(_parsers, "parser", None)
    if parser is None:
        parser = _parsers.parser = etree.XMLParser(
            resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
            huge_tree=False, remove_comments=True, remove_pis=True,
        )
    return parser


def parse_xml(body: bytes | str) -> Push:
    """A WeChat XML document (``<xml>…</xml>``) as a dict; repeated elements become lists."""
    data = body.encode() if isinstance(body, str) else body
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise BadRequest("XML 中不允许出现 DTD 或实体声明")
    try:
        root = etree.fromstring(data, _parser())
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise BadRequest("XML 格式不正确") from exc
    docinfo = root.getroottree().docinfo
    if docinfo.internalDTD is not None or docinfo.doctype:  # e.g. hidden from the scan by UTF-16
        raise BadRequest("XML 中不允许出现 DTD 或实体声明")
    if root.tag != "xml":
        raise BadRequest("XML 根元素应为 <xml>")
    value = _element(root)
    return value if isinstance(value, dict) else {}


def _element(el: etree._Element) -> Any:
    children = list(el)
    if not children:
        return (el.text or "").strip()
    out: dict[str, Any] = {}
    for child in children:
        value = _element(child)
        if child.tag in out:
            prev = out[child.tag]
            out[child.tag] = [*prev, value] if isinstance(prev, list) else [prev, value]
        else:
            out[child.tag] = value
    return out


def parse_json(body: bytes | str) -> Push:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise BadRequest("JSON 格式不正确") from exc
    if not isinstance(data, dict):
        raise BadRequest("JSON 消息应为对象")
    return data


def parse_body(body: bytes | str) -> Push:
    """XML or JSON (the mini-program may push either), told apart by the first character."""
    head = body.lstrip()[:1]
    return parse_json(body) if head in (b"{", "{") else parse_xml(body)


def _str(push: Push, key: str) -> str:
    value = push.get(key, "")
    if isinstance(value, (dict, list)):
        raise BadRequest(f"字段 {key} 格式不正确")
    return str(value).strip()


def _float(push: Push, key: str) -> float:
    try:
        return float(_str(push, key))
    except ValueError as exc:
        raise BadRequest(f"字段 {key} 应为数字") from exc


def event_of(push: Push) -> str:
    return _str(push, "Event") if _str(push, "MsgType") == "event" else ""


def menu_click(push: Push) -> bool:
    """A click on one of the bot's menu buttons (我要反映, 进度查询 …): a message for the bot to
    answer; a click on any other button only opens the customer-service window."""
    return event_of(push) == "CLICK" and _str(push, "EventKey").startswith(MENU_KEY_PREFIX)


def dedupe_id(push: Push) -> str:
    """``MsgId`` for messages; ``FromUserName:CreateTime:Event`` for events (they have none), and
    a click's ``EventKey``: two menu buttons tapped within a second are two taps."""
    if msg_id := _str(push, "MsgId"):
        return msg_id
    event = event_of(push)
    tapped = f":{_str(push, 'EventKey')}" if event == "CLICK" else ""
    return f"{_str(push, 'FromUserName')}:{_str(push, 'CreateTime')}:{event}{tapped}"


def accepted_templates(push: Push) -> list[str]:
    """Template ids the citizen consented to in a subscribe-message event (XML or JSON shape)."""
    if event_of(push) not in CONSENT_EVENTS:
        return []
    holder = push.get("SubscribeMsgPopupEvent") or push.get("SubscribeMsgChangeEvent") or push
    items = holder.get("List", []) if isinstance(holder, dict) else []
    items = items if isinstance(items, list) else [items]
    return [
        str(item.get("TemplateId", ""))
        for item in items
        if isinstance(item, dict) and item.get("TemplateId") and item.get("SubscribeStatusString") == "accept"
    ]


def to_inbound(push: Push, account: str, kind: str, max_chars: int = 2000) -> InboundMessage:
    """The citizen's message in a push; ``IgnoredEvent`` for what the bot does not act on."""
    openid = _str(push, "FromUserName")
    if not openid:
        raise BadRequest("缺少 FromUserName")
    msg_type = _str(push, "MsgType")
    try:
        received_at = datetime.fromtimestamp(int(_str(push, "CreateTime")), UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise BadRequest("CreateTime 应为时间戳") from exc
    text = ""
    attachments: list[Attachment] = []
    location: GeoLocation | None = None
    event: str | None = None
    meta = {"account": account, "msg_type": msg_type}

    def media(kind_: str, mime: str) -> Attachment:
        media_id = _str(push, "MediaId")
        if not media_id:
            raise BadRequest("缺少 MediaId")
        return Attachment(kind=kind_, mime=mime, ref=f"wechat:{account}:{media_id}")  # type: ignore[arg-type]

    if msg_type == "text":
        text = _str(push, "Content")
    elif msg_type == "image":
        attachments.append(media("image", "image/jpeg"))
        if pic_url := _str(push, "PicUrl"):
            meta["pic_url"] = pic_url
    elif msg_type == "voice":
        text = _str(push, "Recognition")
        fmt = _str(push, "Format").lower()
        attachments.append(media("audio", VOICE_MIME.get(fmt, f"audio/{fmt or 'amr'}")))
    elif msg_type in ("video", "shortvideo"):
        attachments.append(media("video", "video/mp4"))
    elif msg_type == "location":
        lat, lng = _float(push, "Location_X"), _float(push, "Location_Y")
        if not (-90 <= lat <= 90 and -180 <= lng <= 180):
            raise BadRequest("坐标超出范围")
        location = GeoLocation(lat=lat, lng=lng, label=_str(push, "Label"), datum="gcj02")  # Tencent's maps
    elif msg_type == "link":
        text = "\n".join(x for x in (_str(push, "Title"), _str(push, "Description"), _str(push, "Url")) if x)
    elif msg_type == "miniprogrampage":
        text = _str(push, "Title")
    elif msg_type == "event":
        name = _str(push, "Event")
        event = EVENT_NAMES.get(name)
        if event is None:
            raise IgnoredEvent(f"事件 {name or '(空)'} 无需处理")
        if key := _str(push, "EventKey"):
            meta["event_key"] = key
        if session_from := _str(push, "SessionFrom"):
            meta["session_from"] = session_from
    else:
        raise IgnoredEvent(f"消息类型 {msg_type or '(空)'} 暂不支持")
    return InboundMessage(
        channel=channel_of(kind),
        channel_message_id=dedupe_id(push),
        sender=sender_of(account, openid),
        received_at=received_at,
        text=text[:max_chars],
        attachments=attachments,
        location=location,
        event=event,
        meta=meta,
    )


def cdata(text: str) -> str:
    """``text`` as CDATA that no ``]]>`` in it can end early; characters XML forbids are dropped."""
    return "<![CDATA[" + _XML_INVALID.sub("", text).replace("]]>", "]]]]><![CDATA[>") + "]]>"


def text_reply(to_user: str, from_user: str, content: str, create_time: int) -> str:
    """A passive text reply (the answer body of a push) with every string escaped."""
    return (
        f"<xml><ToUserName>{cdata(to_user)}</ToUserName><FromUserName>{cdata(from_user)}</FromUserName>"
        f"<CreateTime>{int(create_time)}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content>{cdata(content)}</Content></xml>"
    )
