"""The citizen web chat widget, driven end to end in real headless Chromium.

Needs ``/usr/bin/chromium`` (Debian package ``chromium``; Playwright's own browser downloads are not
used) and the ``live_gateway`` fixture from ``tests/conftest.py``: the base URL of a fully running
gateway with its workers, serving the demo page at ``/`` and the widget under ``/static/widget/``.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import CHROMIUM, CHROMIUM_ARGS

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
