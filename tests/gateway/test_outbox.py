"""The ticket platform down: filings wait and retry with back-off, then land once; or dead-letter."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from config.settings import Settings
from gateway import keys
from tests.conftest import ADMIN_TOKEN, wait_for_events
from tests.gateway.test_web_e2e import new_session, say
from ticket_client.base import PlatformUnavailable, TicketDraft, TicketRef


class Unreachable:
    """The real ledger behind a link that is down for the first ``failures`` filings."""

    def __init__(self, ledger: Any, failures: int) -> None:
        self.ledger = ledger
        self.failures = failures
        self.attempts = 0

    async def file(self, draft: TicketDraft, idempotency_key: str) -> TicketRef:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise PlatformUnavailable("connection refused")
        ref: TicketRef = await self.ledger.file(draft, idempotency_key)
        return ref

    def __getattr__(self, name: str) -> Any:
        return getattr(self.ledger, name)


async def run_with_platform(settings: Settings, failures: int, max_attempts: int = 8) -> tuple[Any, Unreachable]:
    from gateway.app import create_app

    application = create_app(settings.model_copy(update={"outbox_max_attempts": max_attempts}), workers=False)
    rt = application.state.runtime
    await rt.start(workers=False)
    flaky = Unreachable(rt.tickets, failures)
    rt.tickets = flaky
    rt.start_workers(1)
    return application, flaky


async def confirm_request(c: httpx.AsyncClient) -> tuple[dict[str, str], str]:
    session = await new_session(c)
    await say(c, session, "A3区联丰路米兰春天小区门口的路灯坏了一个星期了")
    _, cursor = await wait_for_events(c, session, lambda e: e["type"] == "reply" and "确认" in e["text"])
    await say(c, session, "确认")
    return session, cursor


async def test_filing_waits_for_the_platform(settings: Settings) -> None:
    application, flaky = await run_with_platform(settings, failures=3)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://t") as c:
            session, cursor = await confirm_request(c)
            events, _ = await wait_for_events(c, session, lambda e: e["type"] == "ticket_filed", after=cursor, timeout=20)
            assert sum(e["type"] == "ticket_filed" for e in events) == 1
            assert flaky.attempts == 4  # three refusals, then filed
            mine = await flaky.ledger.list_for(f"web:{session['session_id']}")
            assert len(mine) == 1
    finally:
        await application.state.runtime.stop()


async def test_filing_that_keeps_failing_is_dead_lettered(settings: Settings) -> None:
    application, flaky = await run_with_platform(settings, failures=100, max_attempts=2)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://t") as c:
            session, cursor = await confirm_request(c)
            import asyncio

            for _ in range(100):
                r = await c.get("/api/admin/dead-letters", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
                if r.json()["dead_letters"]:
                    break
                await asyncio.sleep(0.1)
            dead = r.json()["dead_letters"]
            assert [d["stream"] for d in dead] == [keys.OUTBOX]
            assert "connection refused" in dead[0]["reason"]
            assert flaky.attempts == 2
            # told 正在登记 before, the citizen now hears that a person follows it up, and is queued
            events, _ = await wait_for_events(c, session, lambda e: "未能登记成功" in e["text"], after=cursor)
            assert not any(e["type"] == "ticket_filed" for e in events)
            conv = await application.state.runtime.redis.hgetall(keys.conversation(f"web:{session['session_id']}"))
            assert (conv["mode"], conv["handoff_reason"]) == ("waiting", "filing_failed")
            # The platform is back; IT (or a supervisor in the console) retries it: filed once.
            flaky.failures = 0
            admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            r = await c.post("/api/admin/dead-letters/settle", json={"ref": dead[0]["ref"], "retry": True}, headers=admin)
            assert r.status_code == 200
            events, _ = await wait_for_events(c, session, lambda e: e["type"] == "ticket_filed", after=cursor, timeout=20)
            assert sum(e["type"] == "ticket_filed" for e in events) == 1 and flaky.attempts == 3
            assert (await c.get("/api/admin/dead-letters", headers=admin)).json()["dead_letters"] == []
            r = await c.post("/api/admin/dead-letters/settle", json={"ref": dead[0]["ref"], "retry": True}, headers=admin)
            assert r.status_code == 404
    finally:
        await application.state.runtime.stop()


@pytest.fixture(autouse=True)
def _quick_retries(settings: Settings) -> None:
    assert settings.outbox_base_delay_s <= 0.2  # the conftest keeps back-off short


def test_the_dead_letters_command_lists_retries_and_discards(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio
    import json

    import redis.asyncio as aioredis
    from typer.testing import CliRunner

    from config.settings import get_settings
    from gateway.cli import app as cli
    from gateway.streams import Streams

    async def in_redis(work: Any) -> Any:
        client = aioredis.from_url(settings.redis_url, decode_responses=True)
        try:
            return await work(client)
        finally:
            await client.aclose()

    async def put(client: Any) -> None:
        await Streams(client).dead_letter(keys.OUTBOUND, "1-1", '{"text": "已办结"}', "channel refused")
        await Streams(client).dead_letter(keys.OUTBOX, "1-2", '{"key": "k", "attempt": 8}', "platform down")

    async def ledger_with_unsent_filing() -> str:
        # the gateway ran here: its ledger holds the mirror of the dead-lettered filing "k"
        from ticket_client import make_client, migrate

        await migrate(settings.effective_database_url)
        client = make_client(settings)
        try:
            draft = TicketDraft(channel="web", conversation_key="web:alice", description="小区门口路灯坏了")
            return (await client.file(draft, "k")).ticket_id
        finally:
            await client.close()

    async def ledger_has(ticket_id: str) -> bool:
        from ticket_client import make_client
        from ticket_client.base import TicketNotFound

        client = make_client(settings)
        try:
            await client.get(ticket_id)
            return True
        except TicketNotFound:
            return False
        finally:
            await client.close()

    asyncio.run(in_redis(put))
    unsent = asyncio.run(ledger_with_unsent_filing())
    monkeypatch.setenv("HOTLINE_REDIS_URL", settings.redis_url)
    monkeypatch.setenv("HOTLINE_DATA_DIR", str(settings.data_dir))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        listed = runner.invoke(cli, ["admin", "dead-letters"])
        assert listed.exit_code == 0, listed.output
        items = [json.loads(line) for line in listed.stdout.splitlines()]
        assert [(i["ref"], i["reason"]) for i in items] == [
            (f"{keys.OUTBOUND}/1-1", "channel refused"),
            (f"{keys.OUTBOX}/1-2", "platform down"),
        ]
        retried = runner.invoke(cli, ["admin", "dead-letters", "--retry", f"{keys.OUTBOUND}/1-1"])
        assert retried.exit_code == 0 and "retried" in retried.stdout
        assert runner.invoke(cli, ["admin", "dead-letters", "--retry", f"{keys.OUTBOUND}/1-1"]).exit_code == 1
        assert runner.invoke(cli, ["admin", "dead-letters", "--retry", "a", "--discard", "b"]).exit_code == 2
        assert asyncio.run(ledger_has(unsent))
        assert runner.invoke(cli, ["admin", "dead-letters", "--discard", f"{keys.OUTBOX}/1-2"]).exit_code == 0
        assert not asyncio.run(ledger_has(unsent))  # the discarded filing's unsent ticket is forgotten
        assert runner.invoke(cli, ["admin", "dead-letters"]).stdout == ""
    finally:
        get_settings.cache_clear()

    async def streams_now(client: Any) -> tuple[int, int]:
        return await client.xlen(keys.OUTBOUND), await client.xlen(keys.OUTBOX)

    assert asyncio.run(in_redis(streams_now)) == (1, 0)  # the retried one is back on its stream


async def dead_lettered(c: httpx.AsyncClient) -> dict[str, Any]:
    import asyncio

    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    for _ in range(300):
        if dead := (await c.get("/api/admin/dead-letters", headers=admin)).json()["dead_letters"]:
            return dict(dead[0])
        await asyncio.sleep(0.05)
    raise AssertionError("no dead letter")


async def test_a_retry_and_a_filing_by_hand_make_one_ticket(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """A supervisor retries a given-up filing while an operator files the same request by hand:
    one ticket. Right after the retry the console asks the operator to wait for its outcome; past
    that, the operator's ticket answers the retried filing, which the outbox then drops."""
    import asyncio

    from gateway import filing
    from tests.console.conftest import PASSWORD, Operator

    # back-off long enough that the retried filing is between attempts when the operator files
    slow = settings.model_copy(update={"outbox_base_delay_s": 1.5})
    application, flaky = await run_with_platform(slow, failures=100, max_attempts=2)
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    rt = application.state.runtime
    transport = httpx.ASGITransport(app=application)
    try:
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://t") as c,
            httpx.AsyncClient(transport=transport, base_url="http://t") as desk,
        ):
            session, cursor = await confirm_request(c)
            key = f"web:{session['session_id']}"
            dead = await dead_lettered(c)
            await application.state.console.users.create("zhou", "operator", PASSWORD)
            r = await desk.post("/api/console/login", json={"username": "zhou", "password": PASSWORD})
            op = Operator(desk, "zhou", r.json()["csrf"])
            assert (await op.post("/takeover", {"key": key})).status_code == 200
            form = (await op.get(f"/conversation?key={key}")).json()["form"]

            r = await c.post("/api/admin/dead-letters/settle", json={"ref": dead["ref"], "retry": True}, headers=admin)
            assert r.status_code == 200
            refused = await op.post("/ticket", {"key": key, "form": form, "request_id": "by-hand"})
            assert refused.status_code == 409 and "重试" in refused.json()["detail"]  # its outcome is due

            for _ in range(100):  # the retried filing failed once more and waits for its next attempt
                if flaky.attempts >= 3:
                    break
                await asyncio.sleep(0.02)
            monkeypatch.setattr(filing, "RETRY_HOLD_S", 0)  # …longer than the console waits
            flaky.failures = 0  # the platform is back, for the operator and the retried filing's next attempt
            r = await op.post("/ticket", {"key": key, "form": form, "request_id": "by-hand"})
            assert r.status_code == 200, r.text
            by_hand = r.json()["ticket_id"]
            for _ in range(100):
                if not await rt.redis.xlen(keys.OUTBOX) and not await rt.redis.zcard(keys.DELAYED):
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)
            assert [t.ticket_id for t in await flaky.ledger.list_for(key)] == [by_hand]
            assert flaky.attempts == 4  # the operator's; the retried filing was dropped, not filed
            conv = await rt.redis.hgetall(keys.conversation(key))
            assert not [f for f in conv if f.startswith(filing.GIVEN_UP)]
            events, _ = await wait_for_events(c, session, lambda e: e["type"] == "ticket_filed", after=cursor)
            assert [e["ticket_id"] for e in events if e["type"] == "ticket_filed"] == [by_hand]
    finally:
        await rt.stop()
