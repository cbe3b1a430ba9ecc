"""The citizen web chat widget, driven end to end in real headless Chromium.

Needs ``/usr/bin/chromium`` (Debian package ``chromium``; Playwright's own browser downloads are not
used) and the ``live_gateway`` fixture from ``tests/conftest.py``: the base URL of a fully running
gateway with its workers, serving the demo page at ``/`` and the widget under ``/static/widget/``.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.conftest import ADMIN_TOKEN, CHROMIUM, CHROMIUM_ARGS, photo

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
# Screenshots refresh docs/ only when asked (HOTLINE_UPDATE_SCREENSHOTS=1): a test run leaves the tree clean.
SCREENSHOT = (
    REPO / "docs" if os.environ.get("HOTLINE_UPDATE_SCREENSHOTS") else Path(tempfile.gettempdir()) / "hotline-screenshots"
) / "widget.png"
TICKET_RE = re.compile(r"12345-\d{8}-\d{6}")
XSS = "<img src=x onerror=alert(1)>"
REQUEST = "A3区联丰路米兰春天小区门口的路灯坏了一个星期了，晚上很黑"
TIMEOUT_MS = 30_000  # the bot goes through the queue, NLU and the ticket system

MESSAGES = "#hotline-widget-messages"
CITIZEN = f"{MESSAGES} > [data-from='citizen']"
BOT_TYPES = ("reply", "operator", "survey", "status_update", "ticket_filed")
BOT = ", ".join(f"{MESSAGES} > [data-type='{t}']" for t in BOT_TYPES)
UPLOAD_REF = re.compile(r"upload:[0-9a-f]{32}")
NOT_AN_IMAGE = "不支持的图片格式，请发送 JPG、PNG、WebP、GIF 或 HEIC 图片"  # channels/media.py
HANGZHOU = {"latitude": 30.274151, "longitude": 120.155151}


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    sync_api.expect.set_options(timeout=TIMEOUT_MS)
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page_errors() -> list[str]:
    return []


def _new_page(browser, page_errors: list[str], dialogs: list[str], **context_kw):
    context = browser.new_context(locale="zh-CN", **context_kw)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)

    def on_dialog(dialog) -> None:
        dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda exc: page_errors.append(str(exc)))
    return context, page


@pytest.fixture
def big_photo(tmp_path: Path) -> Path:
    """A 3000 x 2000 camera JPEG: larger than the widget's 1600 px and the server's 2560 px."""
    path = tmp_path / "路灯.jpg"
    path.write_bytes(photo(3000, 2000))
    return path


@pytest.fixture
def fake_photo(tmp_path: Path) -> Path:
    """A text file named like a photo: no browser can decode it, so the server has to refuse it."""
    path = tmp_path / "notes.jpg"
    path.write_text("这不是图片，只是一段文字。\n" * 20, encoding="utf-8")
    return path


def _open_widget(page, base: str) -> None:
    from playwright.sync_api import expect

    page.goto(base + "/")
    page.locator("#hotline-widget-toggle").click()
    expect(page.locator(".hw-status")).to_have_attribute("data-state", "connected")


def _admin_media(base: str, ref: str) -> httpx.Response:
    return httpx.get(
        f"{base}/api/admin/media",
        params={"ref": ref},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=10,
    )


def _send(page, text: str) -> None:
    box = page.locator("#hotline-widget-input")
    box.fill(text)
    page.locator("#hotline-widget-send").click()


def _wait_more(page, selector: str, before: int) -> None:
    page.wait_for_function(
        "([sel, n]) => document.querySelectorAll(sel).length > n", arg=[selector, before], timeout=TIMEOUT_MS
    )


def test_citizen_files_a_ticket_through_the_widget(live_gateway: str, browser, page_errors) -> None:
    from playwright.sync_api import expect

    base = live_gateway.rstrip("/")
    dialogs: list[str] = []
    context, page = _new_page(browser, page_errors, dialogs, viewport={"width": 1280, "height": 900})
    try:
        page.goto(base + "/")
        expect(page).to_have_title(re.compile("12345"))
        # exactly one script tag embeds the widget, and it found its own stylesheet
        assert page.locator("script[src$='/static/widget/widget.js']").count() == 1
        expect(page.locator("link[href$='/static/widget/widget.css']")).to_have_count(1)

        toggle = page.locator("#hotline-widget-toggle")
        expect(toggle).to_be_visible()
        expect(toggle).to_have_attribute("aria-expanded", "false")
        toggle.click()
        panel = page.locator("#hotline-widget-panel")
        expect(panel).to_be_visible()
        expect(toggle).to_have_attribute("aria-expanded", "true")
        expect(page.locator("#hotline-widget-input")).to_be_focused()
        expect(page.locator("#hotline-widget-input")).to_have_attribute("placeholder", re.compile("请描述"))
        expect(page.locator(".hw-status")).to_have_attribute("data-state", "connected")

        # 1. the request, with a location: the citizen's copy shows once, and the bot answers
        bots = page.locator(BOT).count()
        _send(page, REQUEST)
        expect(page.locator("#hotline-widget-input")).to_have_value("")
        mine = page.locator(CITIZEN).filter(has_text=REQUEST)
        expect(mine).to_have_count(1)
        _wait_more(page, BOT, bots)
        expect(page.locator(f"{MESSAGES} > [data-type='reply']").last).to_be_visible()
        expect(mine).to_have_count(1)  # the server's echo merged into the local copy

        # 2. the bot asks to confirm: press its 确认 quick reply if it offers one, else type it
        if page.locator(f"{MESSAGES} > [data-type='ticket_filed']").count() == 0:
            bots = page.locator(BOT).count()
            confirm = page.locator(f"{MESSAGES} button.hw-quick-btn:enabled", has_text="确认")
            if confirm.count():
                confirm.last.click()
            else:
                _send(page, "确认")
            expect(page.locator(CITIZEN).filter(has_text="确认")).to_have_count(1)
            _wait_more(page, BOT, bots)

        # 3. the ticket card, with a ticket number the citizen can read and copy
        card = page.locator(f"{MESSAGES} > [data-type='ticket_filed'][data-ticket-id]").first
        expect(card).to_be_visible()
        ticket_id = card.get_attribute("data-ticket-id") or ""
        assert TICKET_RE.fullmatch(ticket_id), ticket_id
        expect(card.locator(".hw-ticket-no")).to_have_text(ticket_id)
        expect(card).to_contain_text("工单编号")
        expect(card.locator("button.hw-copy")).to_be_visible()
        page.wait_for_timeout(800)  # let follow-up events (status, survey) settle for the picture
        card.scroll_into_view_if_needed()
        page.mouse.move(10, 10)
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT))

        # 3b. another matter with no place of its own: the bot offers the last ticket's place as
        # quick replies (是 / 不是); 是 takes it, and the second ticket is filed there
        bots = page.locator(BOT).count()
        _send(page, "还有楼道里的声控灯也坏了，晚上上楼黑乎乎的")
        _wait_more(page, BOT, bots)
        offer = page.locator(f"{MESSAGES} > [data-type='reply']").filter(has_text="上一件").last
        expect(offer).to_contain_text("米兰春天")
        yes = page.locator(f"{MESSAGES} button.hw-quick-btn:enabled", has_text=re.compile("^是$")).last
        expect(page.locator(f"{MESSAGES} button.hw-quick-btn:enabled", has_text=re.compile("^不是$")).last).to_be_visible()
        bots = page.locator(BOT).count()
        yes.click()
        _wait_more(page, BOT, bots)
        expect(page.locator(f"{MESSAGES} > [data-type='reply']").last).to_contain_text("发生地点：A3区联丰路米兰春天")
        page.locator(f"{MESSAGES} button.hw-quick-btn:enabled", has_text="确认").last.click()
        expect(page.locator(f"{MESSAGES} > [data-type='ticket_filed'][data-ticket-id]")).to_have_count(2)

        # 4. markup from the citizen is text, never HTML
        _send(page, XSS)
        xss = page.locator(CITIZEN).filter(has_text=XSS)
        expect(xss).to_have_count(1)
        expect(xss.locator(".hw-bubble")).to_have_text(XSS)
        expect(xss).to_have_attribute("data-status", re.compile("^(sent|delivered)$"))
        assert page.locator(f"{MESSAGES} img").count() == 0
        page.wait_for_timeout(1500)  # give a would-be onerror (and any bot reply) time to fire
        assert page.locator(f"{MESSAGES} img").count() == 0
        assert dialogs == []
        expect(xss).to_have_count(1)

        # 5. a reload continues the same conversation
        page.reload()
        page.locator("#hotline-widget-toggle").click()
        expect(
            page.locator(f"{MESSAGES} > [data-type='ticket_filed'][data-ticket-id='{ticket_id}']")
        ).to_have_count(1)
        expect(page.locator(CITIZEN).filter(has_text=REQUEST)).to_have_count(1)
        expect(page.locator(".hw-status")).to_have_attribute("data-state", "connected")
        assert page.locator(f"{MESSAGES} img").count() == 0
        assert dialogs == []
        assert page_errors == []
    finally:
        context.close()


def test_the_menu_row_lists_tickets_and_offers_common_questions(live_gateway: str, browser, page_errors) -> None:
    """我要反映 · 进度查询 · 常见问题 · 人工客服 above the input: each sends the words the bot answers
    as the WeChat account's menu buttons (docs/bot.md, Menu); a common question tapped is answered."""
    from playwright.sync_api import expect

    from config.settings import Settings
    from nlu.knowledge import knowledge_for

    kb = knowledge_for(Settings())
    assert kb is not None  # (its first question asks after progress: the citizen's own tickets answer it)
    first = next(e for e in kb.entries[:5] if e.id == "scope")
    dialogs: list[str] = []
    context, page = _new_page(browser, page_errors, dialogs)
    try:
        _open_widget(page, live_gateway.rstrip("/"))
        menu = page.get_by_role("group", name="常用功能")
        expect(menu.get_by_role("button")).to_have_text(["我要反映", "进度查询", "常见问题", "人工客服"])
        menu.get_by_role("button", name="进度查询").click()
        expect(page.locator(CITIZEN).last).to_contain_text("查询我的工单")
        expect(page.locator(BOT).last).to_contain_text("还没有登记过工单")
        menu.get_by_role("button", name="常见问题").click()
        question = page.locator(f"{MESSAGES} button.hw-quick-btn:enabled", has_text=first.question)
        expect(question).to_be_visible()
        question.click()
        expect(page.locator(BOT).last).to_contain_text(first.answer.strip().splitlines()[0][:20])
        menu.get_by_role("button", name="我要反映").click()
        expect(page.locator(BOT).last).to_contain_text("请直接描述您要反映的问题")
        assert dialogs == [] and page_errors == []
    finally:
        context.close()


def test_widget_on_a_phone_is_full_screen_and_checks_length(live_gateway: str, browser, page_errors) -> None:
    from playwright.sync_api import expect

    dialogs: list[str] = []
    context, page = _new_page(
        browser, page_errors, dialogs, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    try:
        page.goto(live_gateway.rstrip("/") + "/")
        page.locator("#hotline-widget-toggle").click()
        panel = page.locator("#hotline-widget-panel")
        expect(panel).to_be_visible()
        box = panel.bounding_box()
        assert box is not None and box["width"] >= 389 and box["height"] >= 800, box
        # the photo and location buttons sit in the row under the input and push nothing off-screen
        field = page.locator("#hotline-widget-input").bounding_box()
        assert field is not None and field["x"] >= 0 and field["width"] >= 300, field
        assert field["x"] + field["width"] <= 390, field
        menu = page.locator("#hotline-widget-menu").bounding_box()  # one line, within the screen
        assert menu is not None and menu["x"] >= 0 and menu["x"] + menu["width"] <= 390 and menu["height"] < 40, menu
        for sel in ("#hotline-widget-photo", "#hotline-widget-location", "#hotline-widget-send"):
            expect(page.locator(sel)).to_be_visible()
            b = page.locator(sel).bounding_box()
            assert b is not None and b["x"] >= 0 and b["x"] + b["width"] <= 390 and b["width"] >= 32, (sel, b)

        box_input = page.locator("#hotline-widget-input")
        box_input.press_sequentially("路灯")
        box_input.press("Shift+Enter")  # a new line, not a send
        box_input.press_sequentially("不亮")
        expect(box_input).to_have_value("路灯\n不亮")
        expect(page.locator("#hotline-widget-counter")).to_have_text("5/2000")
        box_input.fill("灯" * 2001)
        expect(page.locator("#hotline-widget-counter")).to_have_text("2001/2000")
        expect(page.locator("#hotline-widget-send")).to_be_disabled()
        box_input.press("Enter")
        expect(page.locator("#hotline-widget-error")).to_have_text("消息过长（最多2000字）")
        assert page.locator(CITIZEN).count() == 0

        page.locator(".hw-close").click()
        expect(panel).to_be_hidden()
        expect(page.locator("#hotline-widget-toggle")).to_be_focused()
        assert dialogs == []
        assert page_errors == []
    finally:
        context.close()


def test_widget_falls_back_to_long_poll_when_websocket_fails(live_gateway: str, browser, page_errors) -> None:
    from playwright.sync_api import expect

    dialogs: list[str] = []
    context, page = _new_page(browser, page_errors, dialogs, viewport={"width": 1280, "height": 900})
    polls: list[str] = []
    sockets: list[str] = []
    try:

        def refuse(ws) -> None:
            sockets.append(ws.url)
            ws.close(code=1011, reason="blocked by a proxy")

        page.route_web_socket(re.compile(r"/channels/web/sessions/.+/ws"), refuse)
        page.on("request", lambda r: polls.append(r.url) if "/events?" in r.url else None)
        page.goto(live_gateway.rstrip("/") + "/")
        page.locator("#hotline-widget-toggle").click()

        bots = page.locator(BOT).count()
        _send(page, "你好，我想咨询一下怎么查询工单办理进度")
        mine = page.locator(CITIZEN).filter(has_text="查询工单办理进度")
        expect(mine).to_have_attribute("data-status", "delivered")  # the echo came back by long-poll
        _wait_more(page, BOT, bots)
        expect(page.locator(".hw-status")).to_have_attribute("data-state", "connected")
        assert len(sockets) >= 3, sockets
        assert any("wait=" in u for u in polls), polls
        expect(mine).to_have_count(1)
        assert dialogs == []
        assert page_errors == []
    finally:
        context.close()


def test_citizen_sends_a_photo_shrunk_in_the_browser(
    live_gateway: str, browser, page_errors, big_photo
) -> None:
    from playwright.sync_api import expect

    base = live_gateway.rstrip("/")
    dialogs: list[str] = []
    context, page = _new_page(browser, page_errors, dialogs, viewport={"width": 1280, "height": 900})
    uploads: list[tuple[str, int]] = []
    posted: list[dict] = []

    def record(request) -> None:
        if request.method == "POST" and request.url.endswith("/media"):
            uploads.append((request.headers.get("content-type", ""), len(request.post_data_buffer or b"")))
        elif request.method == "POST" and request.url.endswith("/messages"):
            posted.append(request.post_data_json)

    page.on("request", record)
    try:
        _open_widget(page, base)
        # a second tab of the same conversation sees the photo only as the server's echo
        other = context.new_page()
        other.on("pageerror", lambda exc: page_errors.append(str(exc)))
        _open_widget(other, base)
        photo_btn = page.get_by_role("button", name="发送图片")
        expect(photo_btn).to_be_visible()
        bots = page.locator(BOT).count()
        with page.expect_file_chooser() as chooser:
            photo_btn.click()  # the button opens the picker of the hidden <input type=file>
        chooser.value.set_files(str(big_photo))

        mine = page.locator(CITIZEN)
        expect(mine).to_have_count(1)
        expect(mine.locator("img.hw-photo-img")).to_be_visible()  # the local thumbnail, at once
        expect(mine).to_have_attribute("data-status", "delivered")  # the server's echo came back
        ref = mine.locator(".hw-photo").get_attribute("data-ref") or ""
        assert UPLOAD_REF.fullmatch(ref), ref

        # one upload of a JPEG the browser shrank, and one message that only names the photo
        assert len(uploads) == 1 and uploads[0][0] == "image/jpeg", uploads
        assert uploads[0][1] < big_photo.stat().st_size, (uploads, big_photo.stat().st_size)
        cmid = mine.get_attribute("data-client-message-id")
        assert posted == [{"text": "", "client_message_id": cmid, "attachments": [{"ref": ref}]}], posted

        # the gateway keeps what the browser sent: at most 1600 px (the server alone stops at 2560)
        stored = _admin_media(base, ref)
        assert stored.status_code == 200, stored.text
        assert Image.open(io.BytesIO(stored.content)).size == (1600, 1067)

        # the bot saw a photo-only message and asks what the problem is
        _wait_more(page, BOT, bots)
        expect(page.locator(f"{MESSAGES} > [data-type='reply']").last).to_contain_text("已收到您发送的图片")
        expect(mine).to_have_count(1)  # the echo merged into the local bubble
        echo = other.locator(f"{MESSAGES} > [data-type='echo']")
        expect(echo.locator(f".hw-photo[data-ref='{ref}'] img.hw-photo-img")).to_be_visible()
        other.close()

        # localStorage keeps the reference only, never the image
        saved = page.evaluate("() => Object.values(localStorage).join('')")
        assert ref in saved and "blob:" not in saved and "base64" not in saved and len(saved) < 20_000

        # after a reload the photo comes back through the authenticated GET
        fetched: list[int] = []
        page.on("response", lambda r: fetched.append(r.status) if "/media/" in r.url else None)
        page.reload()
        page.locator("#hotline-widget-toggle").click()
        again = page.locator(CITIZEN).filter(has=page.locator(f".hw-photo[data-ref='{ref}']"))
        expect(again).to_have_count(1)
        expect(again.locator("img.hw-photo-img")).to_be_visible()
        assert again.locator("img.hw-photo-img").evaluate("img => img.naturalWidth") == 1600
        assert fetched == [200], fetched
        expect(page.locator(".hw-status")).to_have_attribute("data-state", "connected")
        expect(page.locator(CITIZEN)).to_have_count(1)  # replayed events don't duplicate it
        assert dialogs == []
        assert page_errors == []
    finally:
        context.close()


def test_a_file_that_is_not_a_photo_is_refused_with_the_servers_words(
    live_gateway: str, browser, page_errors, fake_photo
) -> None:
    from playwright.sync_api import expect

    base = live_gateway.rstrip("/")
    dialogs: list[str] = []
    context, page = _new_page(browser, page_errors, dialogs, viewport={"width": 1280, "height": 900})
    uploads: list[int] = []
    messages: list[str] = []
    page.on("response", lambda r: uploads.append(r.status) if r.url.endswith("/media") else None)
    page.on("request", lambda r: messages.append(r.url) if r.url.endswith("/messages") else None)
    try:
        _open_widget(page, base)
        page.locator("#hotline-widget-file").set_input_files(str(fake_photo))

        expect(page.locator("#hotline-widget-error")).to_have_text(NOT_AN_IMAGE)
        mine = page.locator(CITIZEN)
        expect(mine).to_have_count(1)
        expect(mine).to_have_attribute("data-status", "refused")
        expect(mine.locator(".hw-send-state")).to_have_text("未发送：" + NOT_AN_IMAGE)
        expect(mine.locator(".hw-photo-alt")).to_have_text("［图片］")  # the browser can't show it either
        assert mine.locator("button.hw-retry").count() == 0  # the same bytes would be refused again
        assert uploads == [400], uploads
        assert messages == []

        # the citizen carries on with words; the refused photo was never saved
        _send(page, "小区门口的路灯不亮")
        expect(page.locator(CITIZEN).last).to_have_attribute("data-status", "delivered")
        assert len(messages) == 1
        page.reload()
        page.locator("#hotline-widget-toggle").click()
        expect(page.locator(CITIZEN).filter(has_text="小区门口的路灯不亮")).to_have_count(1)
        expect(page.locator(f"{CITIZEN}[data-status='refused']")).to_have_count(0)
        assert dialogs == []
        assert page_errors == []
    finally:
        context.close()


def test_the_photo_past_a_sessions_quota_is_refused_for_good(
    live_gateway: str, browser, page_errors, settings, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    settings.web_media_per_session = 1  # the running gateway reads it per upload
    small = tmp_path / "井盖.jpg"
    small.write_bytes(photo(640, 480))
    dialogs: list[str] = []
    context, page = _new_page(browser, page_errors, dialogs, viewport={"width": 1280, "height": 900})
    uploads: list[int] = []
    page.on("response", lambda r: uploads.append(r.status) if r.url.endswith("/media") else None)
    try:
        _open_widget(page, live_gateway.rstrip("/"))
        page.locator("#hotline-widget-file").set_input_files(str(small))
        expect(page.locator(CITIZEN).first).to_have_attribute("data-status", "delivered")
        page.locator("#hotline-widget-file").set_input_files(str(small))
        second = page.locator(CITIZEN).nth(1)
        expect(second).to_have_attribute("data-status", "refused")
        expect(second.locator(".hw-send-state")).to_contain_text("本次会话最多发送1张图片")
        assert second.locator("button.hw-retry").count() == 0  # trying again cannot help
        assert uploads == [201, 403], uploads
        assert dialogs == [] and page_errors == []
    finally:
        context.close()


def test_citizen_shares_the_browsers_location(live_gateway: str, browser, page_errors) -> None:
    from playwright.sync_api import expect

    base = live_gateway.rstrip("/")
    dialogs: list[str] = []
    context, page = _new_page(
        browser,
        page_errors,
        dialogs,
        viewport={"width": 1280, "height": 900},
        permissions=["geolocation"],
        geolocation=HANGZHOU,
    )
    posted: list[dict] = []
    page.on("request", lambda r: posted.append(r.post_data_json) if r.url.endswith("/messages") else None)
    try:
        _open_widget(page, base)
        bots = page.locator(BOT).count()
        page.get_by_role("button", name="发送位置").click()

        place = "［位置：30.27415,120.15515］"
        mine = page.locator(CITIZEN)
        expect(mine).to_have_count(1)
        expect(mine.locator(".hw-bubble")).to_have_text(place)
        expect(mine).to_have_attribute("data-status", "delivered")
        assert posted == [
            {
                "text": "",
                "client_message_id": posted[0]["client_message_id"],
                "location": {"lat": 30.274151, "lng": 120.155151, "label": ""},
            }
        ]
        # the bot keeps the place and asks what happened there
        _wait_more(page, BOT, bots)
        reply = page.locator(f"{MESSAGES} > [data-type='reply']").last
        # (its coordinates are converted to the map's datum: the citizen is not shown other numbers)
        expect(reply).to_contain_text("已收到您分享的定位")

        page.reload()
        page.locator("#hotline-widget-toggle").click()
        expect(page.locator(CITIZEN).locator(".hw-place")).to_have_text([place])
        assert dialogs == []
        assert page_errors == []
    finally:
        context.close()


def test_location_refused_or_missing(live_gateway: str, browser, page_errors) -> None:
    from playwright.sync_api import expect

    base = live_gateway.rstrip("/")
    dialogs: list[str] = []
    # no geolocation permission granted: the browser refuses, the citizen is told what to do instead
    context, page = _new_page(browser, page_errors, dialogs, viewport={"width": 1280, "height": 900})
    try:
        _open_widget(page, base)
        button = page.get_by_role("button", name="发送位置")
        button.focus()
        page.keyboard.press("Enter")  # a real <button>: the keyboard works
        expect(page.locator("#hotline-widget-error")).to_contain_text("无法获取位置")
        expect(page.locator("#hotline-widget-error")).to_contain_text("请在输入框中描述问题地点")
        expect(button).to_be_enabled()
        assert page.locator(CITIZEN).count() == 0
    finally:
        context.close()

    # a browser without geolocation: no button that can only fail
    context, page = _new_page(browser, page_errors, dialogs, viewport={"width": 1280, "height": 900})
    try:
        page.add_init_script("delete Navigator.prototype.geolocation")
        _open_widget(page, base)
        expect(page.locator("#hotline-widget-location")).to_be_hidden()
        expect(page.get_by_role("button", name="发送图片")).to_be_visible()
        assert dialogs == []
        assert page_errors == []
    finally:
        context.close()


def test_a_busy_server_gets_the_photo_again(live_gateway: str, browser, page_errors, tmp_path: Path) -> None:
    """503s are retried with back-off; when they last, the server's words and a 重试 button are
    shown, and 重试 uploads the photo (still in memory) again."""
    from playwright.sync_api import expect

    small = tmp_path / "井盖.png"
    small.write_bytes(photo(640, 480, "PNG"))
    busy_detail = "图片暂时无法接收，请稍后重试，或先用文字描述问题"  # channels/media.py, disk nearly full
    dialogs: list[str] = []
    context, page = _new_page(browser, page_errors, dialogs, viewport={"width": 1280, "height": 900})
    statuses: list[int] = []
    page.on("response", lambda r: statuses.append(r.status) if r.url.endswith("/media") else None)
    busy = {"left": 4}  # the widget's UPLOAD_MAX_ATTEMPTS

    def busy_for_a_while(route) -> None:
        if busy["left"]:
            busy["left"] -= 1
            route.fulfill(status=503, json={"detail": busy_detail})
        else:
            route.continue_()

    try:
        page.route(re.compile(r"/channels/web/sessions/[^/]+/media$"), busy_for_a_while)
        _open_widget(page, live_gateway.rstrip("/"))
        page.locator("#hotline-widget-file").set_input_files(str(small))
        mine = page.locator(CITIZEN)
        expect(mine).to_have_attribute("data-status", "failed")
        expect(page.locator("#hotline-widget-error")).to_have_text(busy_detail)
        assert statuses == [503] * 4, statuses
        expect(mine.locator("img.hw-photo-img")).to_be_visible()  # the local preview stays

        mine.get_by_role("button", name="重试发送此消息").click()
        expect(mine).to_have_attribute("data-status", "delivered")
        assert statuses == [503] * 4 + [201], statuses
        assert UPLOAD_REF.fullmatch(mine.locator(".hw-photo").get_attribute("data-ref") or "")
        expect(mine).to_have_count(1)
        assert dialogs == []
        assert page_errors == []
    finally:
        context.close()
