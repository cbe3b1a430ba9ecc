"""The local ledger against SQLite and (with HOTLINE_TEST_DATABASE_URL) PostgreSQL.

Each PostgreSQL test runs in a schema of its own, selected through ``search_path``, so tests
never see each other's tickets or migrations (the ``database_url`` fixture, in conftest.py).
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from config.settings import Settings
from ticket_client import (
    MAX_NOTE,
    AssistRefused,
    Correction,
    CorrectionRefused,
    ExtendRefused,
    ExtensionRequestRefused,
    InvalidNote,
    InvalidRating,
    InvalidTransition,
    Limits,
    LocalLedger,
    LocationInfo,
    MergeRefused,
    NoteRefused,
    PlatformUnavailable,
    TicketDraft,
    TicketNotFound,
    TicketQuery,
    TimeLimit,
    UnknownStatus,
    WithdrawRefused,
    make_client,
    migrate,
)
from ticket_client import ledger as ledger_module
from ticket_client.base import MAX_URGE_NOTE
from ticket_client.db import sync_url, upgrade_database
from ticket_client.models import Base

NUMBER = re.compile(r"^12345-\d{8}-\d{6}$")


class FakeClock:
    """A settable UTC clock, so ticket dates and history times are predictable."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def draft(conversation_key: str = "web:alice", **fields: object) -> TicketDraft:
    values: dict[str, object] = {
        "channel": "web",
        "conversation_key": conversation_key,
        "description": "小区门口路灯坏了一个星期，晚上很黑",
    }
    values.update(fields)
    return TicketDraft.model_validate(values)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 27, 2, 0, tzinfo=UTC))  # 10:00 in Shanghai


@pytest.fixture
async def ledger(database_url: str, clock: FakeClock) -> AsyncIterator[LocalLedger]:
    await migrate(database_url)
    client = LocalLedger(database_url, prefix="12345", clock=clock)
    try:
        yield client
    finally:
        await client.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- migrations ---------------------------------------------------------------------------


async def test_migrate_from_empty_to_head_matches_models(database_url: str) -> None:
    await migrate(database_url)
    await migrate(database_url)  # idempotent: the gateway calls it on every start
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            assert {
                "tickets",
                "status_history",
                "ticket_counters",
                "platform_links",
                "platform_state",
                "ticket_followups",
            } <= tables
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "0015"
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
            assert diff == [], f"models and migrations disagree: {diff}"
    finally:
        engine.dispose()


async def test_upgrade_from_0001_keeps_tickets_and_adds_platform_links(
    database_url: str, clock: FakeClock
) -> None:
    """A ledger made before the open311 backend existed is upgraded in place on both databases."""
    await asyncio.to_thread(upgrade_database, database_url, "0001")
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as conn:
            assert "platform_links" not in set(inspect(conn).get_table_names())
    finally:
        engine.dispose()
    async with LocalLedger(database_url, clock=clock) as old:
        # the 0001 schema has no platform_links table: file through a session of the old shape
        async with old._write_sessions() as session, session.begin():
            await session.execute(
                text(
                    "INSERT INTO tickets (ticket_id, idempotency_key, channel, conversation_key, contact, title, "
                    "description, category, request_type, urgent, location, departments, attachments, status, "
                    "rating, rating_comment, created_at, updated_at) VALUES ('12345-20261127-000001', 'k', 'web', "
                    "'web:alice', '', '', '路灯坏了', '[]', '', false, '{}', '[]', '[]', 'received', NULL, '', "
                    ":at, :at)"
                ),
                {"at": clock.now.replace(tzinfo=None) if "sqlite" in database_url else clock.now},
            )
    await migrate(database_url)
    async with LocalLedger(database_url, clock=clock) as ledger:
        ticket = await ledger.get("12345-20261127-000001")
        assert (ticket.description, ticket.platform_request_id) == ("路灯坏了", None)
        before, claimed = await ledger.claim_sending(ticket.ticket_id, timedelta(seconds=30))
        assert claimed and not before.filed
        await ledger.end_sending(ticket.ticket_id, request_id="293944")
        assert (await ledger.get(ticket.ticket_id)).platform_request_id == "293944"


async def test_upgrade_from_0002_keeps_the_history_as_status_changes_and_the_platforms_last_note(
    database_url: str, clock: FakeClock
) -> None:
    """A ledger of 0002 (a ticket mirrored from a platform, with its history) is upgraded in place:
    its rows are status changes, and the platform's note already relayed is not relayed again as a
    progress note by the first poll after the upgrade; a new one is."""
    await asyncio.to_thread(upgrade_database, database_url, "0002")
    at = clock.now.replace(tzinfo=None) if "sqlite" in database_url else clock.now
    engine = create_engine(sync_url(database_url))
    try:
        with engine.begin() as conn:
            assert "kind" not in {c["name"] for c in inspect(conn).get_columns("status_history")}
            conn.execute(
                text(
                    "INSERT INTO tickets (ticket_id, idempotency_key, channel, conversation_key, contact, title, "
                    "description, category, request_type, urgent, location, departments, attachments, status, "
                    "rating, rating_comment, created_at, updated_at) VALUES ('12345-20261127-000001', 'k', 'web', "
                    "'web:alice', '', '', '路灯坏了', '[]', '', false, '{}', '[]', '[]', 'processing', NULL, '', "
                    ":at, :at)"
                ),
                {"at": at},
            )
            pk = conn.execute(text("SELECT id FROM tickets")).scalar_one()
            for status, note in (("received", ""), ("accepted", ""), ("processing", "已派至A3区城管局")):
                conn.execute(
                    text("INSERT INTO status_history (ticket_pk, status, note, at) VALUES (:pk, :s, :n, :at)"),
                    {"pk": pk, "s": status, "n": note, "at": at},
                )
            conn.execute(
                text(
                    "INSERT INTO platform_links (ticket_pk, request_id, linked_at, platform_status, "
                    "platform_updated) VALUES (:pk, '293944', :at, 'in_progress', '2026-11-27T10:00:00+08:00')"
                ),
                {"pk": pk, "at": at},
            )
    finally:
        engine.dispose()
    await migrate(database_url)
    async with LocalLedger(database_url, clock=clock) as ledger:
        ticket = await ledger.get("12345-20261127-000001")
        assert [(h.status, h.kind) for h in ticket.history] == [
            ("received", "status"),
            ("accepted", "status"),
            ("processing", "status"),
        ]
        assert {c.kind for c in await ledger.changes_since(0)} == {"status"}
        args = ("293944", "in_progress", "2026-11-27T10:00:00+08:00", "processing", "已派至A3区城管局", clock.now)
        assert await ledger.follow_platform(*args) is None  # what the mirror holds already: nothing new
        later = await ledger.follow_platform("293944", "in_progress", "2026-11-27T11:00:00+08:00",
                                             "processing", "已派至A3区城管局", clock.now)
        assert later is not None and not later.noted and later.recorded == []
        news = await ledger.follow_platform("293944", "in_progress", "2026-11-27T12:00:00+08:00",
                                            "processing", "已联系物业，周五前修复", clock.now)
        assert news is not None and news.noted
        assert [(c.status, c.kind, c.note) for c in await ledger.changes_since(0)][3:] == [
            ("processing", "note", "已联系物业，周五前修复")
        ]


# -- filing -------------------------------------------------------------------------------


async def test_ticket_numbers_use_shanghai_date_and_a_daily_sequence(
    ledger: LocalLedger, clock: FakeClock
) -> None:
    clock.now = datetime(2026, 11, 27, 15, 58, tzinfo=UTC)  # 23:58 on the 27th in Shanghai
    first = await ledger.file(draft(), "k1")
    second = await ledger.file(draft(), "k2")
    clock.advance(minutes=3)  # 00:01 on the 28th in Shanghai, still the 27th in UTC
    third = await ledger.file(draft(), "k3")
    assert [first.ticket_id, second.ticket_id, third.ticket_id] == [
        "12345-20261127-000001",
        "12345-20261127-000002",
        "12345-20261128-000001",
    ]
    assert all(NUMBER.match(ref.ticket_id) for ref in (first, second, third))
    assert first.status == "received" and first.created


async def test_prefix_is_configurable(database_url: str, clock: FakeClock) -> None:
    await migrate(database_url)
    async with LocalLedger(database_url, prefix="0571", clock=clock) as client:
        ref = await client.file(draft(), "k")
    assert ref.ticket_id == "0571-20261127-000001"


async def test_filed_ticket_keeps_every_field(ledger: LocalLedger, clock: FakeClock) -> None:
    location = LocationInfo(text="西湖区文三路", parts={"district": "西湖区"}, lat=30.27, lng=120.13)
    ref = await ledger.file(
        draft(
            contact="13800000000",
            title="路灯不亮",
            category=["城乡建设", "市政设施", "路灯"],
            request_type="投诉",
            urgent=True,
            location=location,
            departments=["市城管局"],
            attachments=["https://example.invalid/a.jpg"],
        ),
        "k1",
    )
    ticket = await ledger.get(ref.ticket_id)
    assert ticket.description == "小区门口路灯坏了一个星期，晚上很黑"
    assert ticket.category == ["城乡建设", "市政设施", "路灯"]
    assert ticket.location == location
    assert (ticket.urgent, ticket.request_type, ticket.contact) == (True, "投诉", "13800000000")
    assert ticket.departments == ["市城管局"] and ticket.attachments == ["https://example.invalid/a.jpg"]
    assert ticket.created_at == ticket.updated_at == clock.now
    assert ticket.created_at.tzinfo is not None
    assert [(h.status, h.note, h.at) for h in ticket.history] == [("received", "", clock.now)]
    assert ticket.rating is None


async def test_filing_is_idempotent(ledger: LocalLedger) -> None:
    first = await ledger.file(draft(), "msg-1")
    again = await ledger.file(draft(description="重复投递"), "msg-1")
    other = await ledger.file(draft(), "msg-2")
    assert first.created and not again.created and other.created
    assert again.ticket_id == first.ticket_id != other.ticket_id
    assert (await ledger.get(first.ticket_id)).description == "小区门口路灯坏了一个星期，晚上很黑"
    assert len(await ledger.changes_since(0)) == 2


async def test_concurrent_filing_with_one_key_makes_one_ticket(ledger: LocalLedger) -> None:
    refs = await asyncio.gather(*(ledger.file(draft(), "same-key") for _ in range(10)))
    assert len({ref.ticket_id for ref in refs}) == 1
    assert sum(ref.created for ref in refs) == 1
    assert len(await ledger.changes_since(0)) == 1


async def test_concurrent_filing_never_reuses_a_number(ledger: LocalLedger) -> None:
    refs = await asyncio.gather(*(ledger.file(draft(), f"key-{i}") for i in range(10)))
    numbers = sorted(int(ref.ticket_id.rsplit("-", 1)[1]) for ref in refs)
    assert numbers == list(range(1, 11))


async def test_empty_idempotency_key_is_refused(ledger: LocalLedger) -> None:
    with pytest.raises(ValueError):
        await ledger.file(draft(), "")


# -- status workflow ----------------------------------------------------------------------


async def test_history_records_each_change_with_note_and_time(ledger: LocalLedger, clock: FakeClock) -> None:
    filed_at = clock.now
    ref = await ledger.file(draft(), "k")
    steps = [
        ("accepted", "已受理"),
        ("processing", "已派单至市城管局"),
        ("resolved", "路灯已修复"),
        ("closed", ""),
    ]
    times = []
    for status, note in steps:
        times.append(clock.advance(hours=1))
        ticket = await ledger.set_status(ref.ticket_id, status, note)
        assert ticket.status == status
    ticket = await ledger.get(ref.ticket_id)
    assert [(h.status, h.note, h.at) for h in ticket.history] == [("received", "", filed_at)] + [
        (status, note, at) for (status, note), at in zip(steps, times, strict=True)
    ]
    assert ticket.updated_at == times[-1] and ticket.created_at == filed_at
    seqs = [h.seq for h in ticket.history]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    reopened = await ledger.set_status(ref.ticket_id, "reopened", "市民不认可")
    assert reopened.status == "reopened"


async def test_returned_ticket_can_be_accepted_again(ledger: LocalLedger) -> None:
    ref = await ledger.file(draft(), "k")
    await ledger.set_status(ref.ticket_id, "returned", "非本级受理范围")
    ticket = await ledger.set_status(ref.ticket_id, "accepted")
    assert [h.status for h in ticket.history] == ["received", "returned", "accepted"]


async def test_refused_transition_writes_nothing(ledger: LocalLedger) -> None:
    ref = await ledger.file(draft(), "k")
    before = await ledger.get(ref.ticket_id)
    with pytest.raises(InvalidTransition) as refused:
        await ledger.set_status(ref.ticket_id, "processing", "跳过受理")
    assert not isinstance(refused.value, UnknownStatus)
    message = str(refused.value)
    assert "'received'" in message and "'processing'" in message
    assert "accepted, closed, returned" in message
    assert await ledger.get(ref.ticket_id) == before
    assert len(await ledger.changes_since(0)) == 1


async def test_unknown_status_names_the_known_ones(ledger: LocalLedger) -> None:
    ref = await ledger.file(draft(), "k")
    with pytest.raises(UnknownStatus) as unknown:
        await ledger.set_status(ref.ticket_id, "done")
    assert isinstance(unknown.value, InvalidTransition) and isinstance(unknown.value, ValueError)
    assert "'done'" in str(unknown.value)
    assert "received, accepted, processing, resolved, closed, returned, reopened" in str(unknown.value)
    assert (await ledger.get(ref.ticket_id)).status == "received"


async def test_racing_status_changes_apply_once(ledger: LocalLedger) -> None:
    ref = await ledger.file(draft(), "k")
    results = await asyncio.gather(
        *(ledger.set_status(ref.ticket_id, "accepted", f"#{i}") for i in range(5)), return_exceptions=True
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, InvalidTransition) for r in results if isinstance(r, BaseException))
    assert [h.status for h in (await ledger.get(ref.ticket_id)).history] == ["received", "accepted"]


async def test_unknown_ticket_is_not_found(ledger: LocalLedger) -> None:
    with pytest.raises(TicketNotFound):
        await ledger.get("12345-20261127-999999")
    with pytest.raises(TicketNotFound):
        await ledger.set_status("12345-20261127-999999", "accepted")
    with pytest.raises(TicketNotFound):
        await ledger.rate("12345-20261127-999999", "满意")


# -- progress notes (办理进展) --------------------------------------------------------------


async def test_a_progress_note_keeps_the_status_and_is_a_change_of_its_own(
    ledger: LocalLedger, clock: FakeClock
) -> None:
    ref = await ledger.file(draft(), "k")
    await ledger.set_status(ref.ticket_id, "accepted", "已派至A3区城管局")
    noted_at = clock.advance(hours=2)
    ticket = await ledger.add_note(ref.ticket_id, "  已联系物业，预计周五前修复\n")
    assert (ticket.status, ticket.updated_at) == ("accepted", noted_at)
    assert [(h.status, h.kind, h.note) for h in ticket.history] == [
        ("received", "status", ""),
        ("accepted", "status", "已派至A3区城管局"),
        ("accepted", "note", "已联系物业，预计周五前修复"),  # spaces around it dropped
    ]
    changes = await ledger.changes_since(0)
    assert [(c.status, c.kind) for c in changes] == [
        ("received", "status"),
        ("accepted", "status"),
        ("accepted", "note"),
    ]
    assert (changes[-1].seq, changes[-1].at) == (ticket.history[-1].seq, noted_at)
    assert changes[-1].conversation_key == "web:alice" and changes[-1].channel == "web"
    moved = await ledger.set_status(ref.ticket_id, "processing")  # the workflow goes on from the status
    assert [(h.status, h.kind) for h in moved.history][-1] == ("processing", "status")


@pytest.mark.parametrize("note", ["", "   ", "\n\t　"])
async def test_an_empty_note_is_refused_and_writes_nothing(ledger: LocalLedger, note: str) -> None:
    ref = await ledger.file(draft(), "k")
    before = await ledger.get(ref.ticket_id)
    with pytest.raises(InvalidNote, match="办理进展内容不能为空") as refused:
        await ledger.add_note(ref.ticket_id, note)
    assert isinstance(refused.value, ValueError)
    assert await ledger.get(ref.ticket_id) == before


async def test_a_note_longer_than_max_note_is_refused_not_cut(ledger: LocalLedger) -> None:
    ref = await ledger.file(draft(), "k")
    with pytest.raises(InvalidNote, match=f"最多{MAX_NOTE}字"):
        await ledger.add_note(ref.ticket_id, "很" * (MAX_NOTE + 1))
    assert len(await ledger.changes_since(0)) == 1
    ticket = await ledger.add_note(ref.ticket_id, "很" * MAX_NOTE)
    assert ticket.history[-1].note == "很" * MAX_NOTE


async def test_a_closed_ticket_takes_no_note_until_it_is_reopened(ledger: LocalLedger) -> None:
    ref = await ledger.file(draft(), "k")
    await ledger.set_status(ref.ticket_id, "closed")
    with pytest.raises(NoteRefused, match="已归档") as refused:
        await ledger.add_note(ref.ticket_id, "补充说明")
    assert isinstance(refused.value, InvalidTransition)  # the gateway answers 409
    assert len((await ledger.get(ref.ticket_id)).history) == 2
    await ledger.set_status(ref.ticket_id, "reopened", "市民反映仍未解决")
    ticket = await ledger.add_note(ref.ticket_id, "已再次派单")
    assert [(h.status, h.kind) for h in ticket.history][-1] == ("reopened", "note")
    with pytest.raises(TicketNotFound):
        await ledger.add_note("12345-20261127-999999", "已派单")


async def test_a_note_on_a_resolved_ticket_does_not_resolve_it_again_in_the_summary(
    ledger: LocalLedger, clock: FakeClock
) -> None:
    ref = await ledger.file(draft(), "k")
    for status in ("accepted", "resolved"):
        await ledger.set_status(ref.ticket_id, status)
    since = clock.advance(days=1)
    ticket = await ledger.add_note(ref.ticket_id, "已复查，路灯正常")  # a word after the 答复
    assert (ticket.status, ticket.history[-1].kind) == ("resolved", "note")
    assert (await ledger.summary(since)).resolved == 0


# -- reading ------------------------------------------------------------------------------


async def test_changes_since_pages_through_all_tickets_in_seq_order(ledger: LocalLedger) -> None:
    a = await ledger.file(draft("web:alice"), "a")
    b = await ledger.file(draft("tg:bob", channel="telegram"), "b")
    await ledger.set_status(a.ticket_id, "accepted", "a1")
    await ledger.set_status(b.ticket_id, "returned", "b1")
    await ledger.set_status(a.ticket_id, "processing", "a2")

    everything = await ledger.changes_since(0)
    assert [(c.ticket_id, c.status) for c in everything] == [
        (a.ticket_id, "received"),
        (b.ticket_id, "received"),
        (a.ticket_id, "accepted"),
        (b.ticket_id, "returned"),
        (a.ticket_id, "processing"),
    ]
    seqs = [c.seq for c in everything]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5
    bob = everything[3]
    assert (bob.conversation_key, bob.channel, bob.note) == ("tg:bob", "telegram", "b1")

    page = await ledger.changes_since(0, limit=2)
    assert page == everything[:2]
    rest = await ledger.changes_since(page[-1].seq)
    assert rest == everything[2:]
    assert await ledger.changes_since(everything[-1].seq) == []

    await ledger.set_status(b.ticket_id, "closed", "")
    newer = await ledger.changes_since(everything[-1].seq)
    assert [(c.ticket_id, c.status) for c in newer] == [(b.ticket_id, "closed")]


async def test_list_for_returns_only_that_conversation(ledger: LocalLedger) -> None:
    mine = [await ledger.file(draft("web:alice"), f"alice-{i}") for i in range(3)]
    await ledger.file(draft("web:bob"), "bob-1")
    listed = await ledger.list_for("web:alice")
    assert [t.ticket_id for t in listed] == [ref.ticket_id for ref in reversed(mine)]  # newest first
    assert all(t.conversation_key == "web:alice" for t in listed)
    assert len(await ledger.list_for("web:alice", limit=2)) == 2
    assert await ledger.list_for("web:nobody") == []


async def test_search_finds_a_ticket_by_any_part_of_what_an_operator_knows(
    ledger: LocalLedger, clock: FakeClock
) -> None:
    lamp = await ledger.file(
        draft("web:alice", title="联丰路路灯不亮", contact="13800138000", urgent=False), "s-1"
    )
    gas = await ledger.file(
        draft("email:wang@example.cn", channel="email", title="燃气泄漏", urgent=True,
              description="米兰春天G2栋楼道里有很重的煤气味"),
        "s-2",
    )
    board = await ledger.file(
        draft("portal:liuyanban:UU008729", channel="portal:liuyanban", title="噪音扰民",
              description="工地夜间施工 100% 影响休息", location={"text": "K2区书院路在水一方大厦旁工地"}),
        "s-3",
    )

    async def found(**query: object) -> list[str]:
        return [t.ticket_id for t in await ledger.search(TicketQuery.model_validate(query))]

    assert await found() == [board.ticket_id, gas.ticket_id, lamp.ticket_id]  # newest first
    assert await found(text=lamp.ticket_id) == [lamp.ticket_id]
    assert await found(text=gas.ticket_id[-6:]) == [gas.ticket_id]  # the number's tail
    assert await found(text=gas.ticket_id[-15:]) == [gas.ticket_id]  # without its prefix, as read out
    assert await found(text="0013800") == [lamp.ticket_id]  # part of the phone number
    assert await found(text="WANG@example") == [gas.ticket_id]  # the sender, any case
    assert await found(text="煤气味") == [gas.ticket_id]  # the description
    assert await found(text="路灯 联丰路") == [lamp.ticket_id]  # every word must match
    assert await found(text="路灯 煤气") == []
    assert await found(text="100%") == [board.ticket_id]  # a wildcard is a character
    assert await found(text="在水一方 施工") == [board.ticket_id]  # the place as filed, not in the words
    assert await found(text="_") == []
    assert await found(urgent=True) == [gas.ticket_id]
    assert await found(channel="portal:") == [board.ticket_id]  # every portal source
    assert await found(channel="web") == [lamp.ticket_id]

    await ledger.set_status(lamp.ticket_id, "accepted")
    assert await found(status="accepted") == [lamp.ticket_id]
    assert await found(status="received") == [board.ticket_id, gas.ticket_id]

    assert await found(limit=2) == [board.ticket_id, gas.ticket_id]
    assert await found(limit=2, offset=2) == [lamp.ticket_id]
    clock.advance(days=2)
    later = await ledger.file(draft("web:carol"), "s-4")
    assert await found(since=clock.now - timedelta(days=1)) == [later.ticket_id]
    assert await found(until=clock.now - timedelta(days=1)) == [board.ticket_id, gas.ticket_id, lamp.ticket_id]

    quoted = await ledger.file(draft("web:dave", description="邻居13800138000一直在楼道堆放杂物"), "s-5")
    assert await found(text="13800138000") == [lamp.ticket_id]  # a whole phone: the contact's, at once
    assert await found(text="0013800") == [quoted.ticket_id, lamp.ticket_id]  # a part: anywhere
    assert await found(text="13800138000", offset=1) == []  # past the exact matches: nothing more
    assert await found(text="0013800", limit=1, offset=1) == [lamp.ticket_id]  # 加载更多 on a part reads on
    assert await found(text="13800138000", since=clock.now - timedelta(days=1)) == [quoted.ticket_id]


async def test_scan_pages_through_every_match_newest_first_by_key(ledger: LocalLedger) -> None:
    """The export's read: pages below the last one's key, so a ticket filed meanwhile neither
    repeats nor shifts a page; ``search``'s conditions, its page size and offset aside."""
    refs = [await ledger.file(draft(f"web:{i}", title=f"井盖缺失{i}" if i % 2 else f"噪音{i}"), f"k{i}")
            for i in range(7)]
    lamps = [r.ticket_id for r in reversed(refs) if "井盖" in (await ledger.get(r.ticket_id)).title]
    query = TicketQuery(text="井盖", limit=1, offset=3)
    pages, newer = [], None
    async for page in ledger.scan(query, size=2):
        pages.append([t.ticket_id for t in page])
        if newer is None:
            newer = await ledger.file(draft("web:late", title="井盖又丢了"), "late")  # mid-export
    assert pages == [lamps[0:2], lamps[2:3]]
    assert [[t.ticket_id for t in page] async for page in ledger.scan(TicketQuery(text="井盖"), size=2)] == [
        [newer.ticket_id, lamps[0]], lamps[1:3]]  # a full last page: one more read, no empty page
    assert [page async for page in ledger.scan(TicketQuery(text="没有这个词"))] == []
    assert [[t.ticket_id for t in page] async for page in ledger.scan(TicketQuery(text=refs[4].ticket_id))] == [
        [refs[4].ticket_id]]  # a whole number: its ticket, not every number holding it


async def test_scan_reads_each_ticket_as_get_does_but_its_history(ledger: LocalLedger) -> None:
    """``scan`` builds its tickets from plain rows: every field, follow-up and revision as ``get``
    has them (the platform's number too), the history left out."""
    full = await ledger.file(draft("web:full", title="路灯不亮", contact="13912345678", category=["城乡建设", "市政"],
                                   request_type="投诉", urgent=True, departments=["城管局", "街道"],
                                   attachments=["upload:a", "upload:b"],
                                   location=LocationInfo(text="米兰春天", parts={"estate": "米兰春天"}, lat=28.1, lng=112.9)),
                             "full")
    await ledger.urge(full.ticket_id, "催一下")
    await ledger.add_info(full.ticket_id, "在南门")
    await ledger.correct(full.ticket_id, Correction(by="op1", reason="归供电", departments=["供电公司"]))
    await ledger.correct(full.ticket_id, Correction(by="qa"))
    await ledger.set_status(full.ticket_id, "accepted")
    await ledger.rate(full.ticket_id, "满意", "很快")
    await ledger.claim_sending(full.ticket_id, timedelta(seconds=30))
    await ledger.end_sending(full.ticket_id, request_id="REQ-9")
    bare = await ledger.file(draft("web:bare"), "bare")
    scanned = [t async for page in ledger.scan(TicketQuery()) for t in page]
    assert [t.ticket_id for t in scanned] == [bare.ticket_id, full.ticket_id]
    for ticket in scanned:
        assert ticket == (await ledger.get(ticket.ticket_id)).model_copy(update={"history": []})
    assert scanned[1].platform_request_id == "REQ-9" and len(scanned[1].revisions) == 2 and len(scanned[1].urges) == 1


async def test_overdue_tickets_are_the_open_ones_past_their_time_limit(ledger: LocalLedger, clock: FakeClock) -> None:
    old = await ledger.file(draft("web:a"), "old")  # 20 days ago
    old_done = await ledger.file(draft("web:b"), "old-done")
    await ledger.set_status(old_done.ticket_id, "accepted")
    await ledger.set_status(old_done.ticket_id, "resolved")
    old_returned = await ledger.file(draft("web:c"), "old-returned")
    await ledger.set_status(old_returned.ticket_id, "returned")  # back for re-dispatch: still open
    clock.advance(days=18)
    urgent = await ledger.file(draft("web:d", urgent=True), "urgent")  # two days ago
    clock.advance(days=2)
    await ledger.file(draft("web:e"), "fresh")
    await ledger.file(draft("web:f", urgent=True), "fresh-urgent")
    ordinary = TimeLimit(urgent=False, due_before=clock.now - timedelta(days=15))
    pressing = TimeLimit(urgent=True, due_before=clock.now - timedelta(hours=24))
    late = TicketQuery(overdue=True, time_limits=[ordinary, pressing])

    found = [t.ticket_id for t in await ledger.search(late)]
    assert found == [urgent.ticket_id, old_returned.ticket_id, old.ticket_id]
    assert await ledger.count(late) == 3
    assert await ledger.count(late.model_copy(update={"time_limits": [ordinary]})) == 2  # no limit for urgent ones
    assert await ledger.count(late.model_copy(update={"time_limits": []})) == 0
    assert await ledger.count(late.model_copy(update={"urgent": False})) == 2
    assert await ledger.count(TicketQuery()) == 6  # no filter: every ticket
    await ledger.set_status(old_done.ticket_id, "closed")
    await ledger.rate(old_done.ticket_id, "不满意")
    assert [t.ticket_id for t in await ledger.search(TicketQuery(rating="不满意"))] == [old_done.ticket_id]
    assert await ledger.count(TicketQuery(rating="none")) == 5 and await ledger.count(TicketQuery(rating="满意")) == 0


async def test_a_redispatched_ticket_can_be_held_to_its_last_dispatch(ledger: LocalLedger, clock: FakeClock) -> None:
    """With ``from_redispatch`` the limits count from the last 改派 of a ticket sent out again:
    its filing moment no longer makes it late, its 派单 does (the same rule as deadlines.due_at)."""
    start = clock.now
    returned = await ledger.file(draft("web:a"), "returned")
    await ledger.set_status(returned.ticket_id, "returned")
    corrected = await ledger.file(draft("web:b"), "corrected")
    await ledger.correct(corrected.ticket_id, Correction(by="op1", departments=["城管局"]))  # open: not sent out
    plain = await ledger.file(draft("web:c"), "plain")
    clock.advance(days=10)
    await ledger.correct(returned.ticket_id, Correction(by="op1", reason="非本单位职责", departments=["供电公司"]))
    assert (await ledger.get(returned.ticket_id)).redispatched_at == clock.now
    assert (await ledger.get(corrected.ticket_id)).redispatched_at is None
    late = TicketQuery(overdue=True, time_limits=[TimeLimit(urgent=False, due_before=start + timedelta(days=1))])
    again = late.model_copy(update={"from_redispatch": True})

    assert {t.ticket_id for t in await ledger.search(late)} == {returned.ticket_id, corrected.ticket_id, plain.ticket_id}
    assert {t.ticket_id for t in await ledger.search(again)} == {corrected.ticket_id, plain.ticket_id}
    assert await ledger.count(again) == 2
    soon = TimeLimit(urgent=False, due_before=start + timedelta(days=9), soon_before=start + timedelta(days=11))
    soon_query = TicketQuery(due_soon=True, time_limits=[soon], from_redispatch=True)
    assert [t.ticket_id for t in await ledger.search(soon_query)] == [returned.ticket_id]
    assert await ledger.count(soon_query.model_copy(update={"from_redispatch": False})) == 0


async def test_due_soon_tickets_are_the_open_ones_not_late_yet_but_soon(ledger: LocalLedger, clock: FakeClock) -> None:
    """即将超期: still open and filed in [due_before, soon_before) (urgent ones: their own limit);
    asked with 超期 as well, either. The filing moments come from the console (deadlines.py)."""
    start = clock.now
    old = await ledger.file(draft("web:a"), "old")
    clock.advance(days=1)
    soon = await ledger.file(draft("web:b"), "soon")
    soon_done = await ledger.file(draft("web:c"), "soon-done")
    await ledger.set_status(soon_done.ticket_id, "accepted")
    await ledger.set_status(soon_done.ticket_id, "resolved")
    clock.advance(days=1)
    await ledger.file(draft("web:d"), "fresh")
    urgent_soon = await ledger.file(draft("web:e", urgent=True), "urgent-soon")
    clock.advance(hours=1)
    await ledger.file(draft("web:f", urgent=True), "urgent-fresh")
    ordinary = TimeLimit(urgent=False, due_before=start + timedelta(hours=12), soon_before=start + timedelta(hours=36))
    pressing = TimeLimit(urgent=True, due_before=start + timedelta(hours=47), soon_before=start + timedelta(hours=48.5))
    query = TicketQuery(due_soon=True, time_limits=[ordinary, pressing])

    assert [t.ticket_id for t in await ledger.search(query)] == [urgent_soon.ticket_id, soon.ticket_id]
    assert await ledger.count(query) == 2
    either = query.model_copy(update={"overdue": True})
    assert [t.ticket_id for t in await ledger.search(either)] == [urgent_soon.ticket_id, soon.ticket_id, old.ticket_id]
    assert [t.ticket_id for t in await ledger.search(query.model_copy(update={"due_soon": False, "overdue": True}))] \
        == [old.ticket_id]
    assert await ledger.count(query.model_copy(update={"time_limits": [ordinary]})) == 1  # no limit: never late
    no_soon = [x.model_copy(update={"soon_before": None}) for x in (ordinary, pressing)]
    assert await ledger.count(query.model_copy(update={"time_limits": no_soon})) == 0


async def test_an_extended_ticket_is_held_to_the_time_limit_granted(database_url: str, clock: FakeClock) -> None:
    """延期: an open ticket gets a later 办理时限 with a reason its citizen hears (and those of the
    tickets merged into it); 超期, 即将超期, 承办单位考核's 超期 and 按期办结 read it instead of the
    filing's. Refused when it would not be an extension, or the ticket is done, merged or has none."""
    await migrate(database_url)
    start = clock.now
    # as deadlines.due_at: the 办理时限 granted, or two days from filing
    limits = Limits(due=lambda t: t.extended_until or t.created_at + timedelta(days=2))
    async with LocalLedger(database_url, clock=clock, limits=limits) as ledger:
        hard = (await ledger.file(draft("web:a", departments=["城管局"]), "a")).ticket_id
        repeat = (await ledger.file(draft("web:b", departments=["城管局"]), "b")).ticket_id
        plain = (await ledger.file(draft("web:c", departments=["城管局"]), "c")).ticket_id
        await ledger.merge(repeat, hard)
        clock.advance(days=1)
        until = start + timedelta(days=7)
        with pytest.raises(InvalidNote, match="延期原因不能为空"):
            await ledger.extend(hard, until, "  ")
        with pytest.raises(ExtendRefused, match="须晚于现在的办理时限"):
            await ledger.extend(hard, start + timedelta(days=2), "需协调多个部门")
        with pytest.raises(ExtendRefused, match="今后一年之内"):
            await ledger.extend(hard, start + timedelta(days=400), "需协调多个部门")
        with pytest.raises(ExtendRefused, match="随主单办理"):
            await ledger.extend(repeat, until, "需协调多个部门")
        with pytest.raises(TicketNotFound):
            await ledger.extend("12345-20990101-000001", until, "需协调多个部门")
        seq = (await ledger.changes_since(0))[-1].seq

        extended = await ledger.extend(hard, until, " 需协调 多个部门联合处置 ")
        assert extended.extended_until == until
        note = "办理时限延长至2026年12月4日 10:00（需协调 多个部门联合处置）"  # 10:00 Beijing: a limit in clock time
        assert [(c.ticket_id, c.kind, c.note) for c in await ledger.changes_since(seq)] == [
            (hard, "extend", note), (repeat, "extend", note)]  # its citizen, and the repeat's
        assert (extended.history[-1].kind, extended.status) == ("extend", "received")  # the status stays
        with pytest.raises(ExtendRefused, match="须晚于现在的办理时限（2026年12月4日 10:00）"):
            await ledger.extend(hard, until, "再次延期")

        clock.advance(days=3)  # filed 4 days ago: plain is late, hard within the time granted

        def at(now: datetime, **asked: bool) -> TicketQuery:
            return TicketQuery(**asked, time_limits=[TimeLimit(due_before=now - timedelta(days=2),
                                                               soon_before=now - timedelta(days=1))],
                               extended_due_before=now, extended_soon_before=now + timedelta(days=1))

        assert [t.ticket_id for t in await ledger.search(at(clock.now, overdue=True))] == [plain]
        assert await ledger.count(at(clock.now, due_soon=True)) == 0
        assert await ledger.count(at(clock.now + timedelta(days=2.5), due_soon=True)) == 1  # hard, due within a day
        assert {t.ticket_id for t in await ledger.search(at(clock.now + timedelta(days=3.5), overdue=True))} == {hard, plain}
        assert await ledger.count(at(clock.now, overdue=True).model_copy(update={"extended_due_before": None})) == 1
        [unit] = await ledger.department_tallies(at(clock.now).model_copy(update={"since": start}))
        assert (unit.overdue, unit.extended) == (1, 1)  # plain only; the repeat is its main's
        assert (await ledger.summary(start)).extended == 1  # 延期工单 of the period
        assert (await ledger.summary(start + timedelta(days=2))).extended == 0  # granted on day 1

        await ledger.set_status(hard, "accepted")
        done = await ledger.set_status(hard, "resolved")  # day 4 of 7 granted: 按期办结
        assert (done.done_late, (await ledger.get(repeat)).status) == (False, "resolved")
        with pytest.raises(ExtendRefused, match="已办结或已归档"):
            await ledger.extend(hard, start + timedelta(days=9), "需协调多个部门")
    async with LocalLedger(database_url, clock=clock) as bare:  # a ledger given no 办理时限
        with pytest.raises(ExtendRefused, match="没有办理时限"):
            await bare.extend(plain, start + timedelta(days=9), "需协调多个部门")


async def test_a_departments_extension_request_waits_for_the_centre(database_url: str, clock: FakeClock) -> None:
    """延期申请: a unit asks for a later 办理时限; nobody hears of it, and 延期待审核 lists it, until a
    supervisor grants it (the citizen hears the reason given then) or refuses it (nobody outside
    the centre hears); one waits at a time, and it lapses when the ticket is done, withdrawn or
    merged. The checks of a 延期 apply when asked and when granted."""
    await migrate(database_url)
    start = clock.now
    limits = Limits(due=lambda t: t.extended_until or t.created_at + timedelta(days=2))
    async with LocalLedger(database_url, clock=clock, limits=limits) as ledger:
        hard, other, gone, repeat, main = [
            (await ledger.file(draft(f"web:{k}", departments=["城管局", "供电公司"]), k)).ticket_id for k in "abcde"]
        until = start + timedelta(days=7)
        waiting = TicketQuery(extension_pending=True)
        with pytest.raises(ExtensionRequestRefused, match="水务局不是工单 .* 的承办单位（城管局、供电公司）"):
            await ledger.ask_extension(hard, until, "需协调", "水务局")
        with pytest.raises(InvalidNote, match="延期申请原因不能为空"):
            await ledger.ask_extension(hard, until, " ", "城管局")
        with pytest.raises(InvalidNote, match="承办单位不能为空"):
            await ledger.ask_extension(hard, until, "需协调", "  ")
        with pytest.raises(ExtendRefused, match="须晚于现在的办理时限"):
            await ledger.ask_extension(hard, start + timedelta(days=1), "需协调", "城管局")
        seq = (await ledger.changes_since(0))[-1].seq

        asked = await ledger.ask_extension(hard, until, "需 协调住建、供电等多个部门", " 城管局 ")
        [request] = asked.extension_requests
        assert (request.unit, request.until, request.reason, request.outcome) == (
            "城管局", until, "需 协调住建、供电等多个部门", "pending")
        assert asked.extension_pending == request and asked.extended_until is None
        assert await ledger.changes_since(seq) == []  # the citizen hears nothing yet
        with pytest.raises(ExtensionRequestRefused, match="已有待审核的延期申请（城管局，申请延至2026年12月"):
            await ledger.ask_extension(hard, until + timedelta(days=1), "再次申请", "城管局")
        await ledger.ask_extension(other, until, "需现场勘查", "供电公司")
        assert [t.ticket_id for t in await ledger.search(waiting)] == [other, hard]
        assert await ledger.count(waiting) == 2

        with pytest.raises(InvalidNote, match="驳回理由不能为空"):
            await ledger.decide_extension(other, approve=False, by="lead", reason=" ")
        refused = await ledger.decide_extension(other, approve=False, by="lead", reason="现场勘查可在时限内完成")
        assert [(r.outcome, r.decided_by, r.answer, r.granted_until) for r in refused.extension_requests] == [
            ("rejected", "lead", "现场勘查可在时限内完成", None)]
        assert refused.extended_until is None and await ledger.changes_since(seq) == []
        assert [(f.kind, f.unit, f.note) for f in refused.followups] == [  # for the unit that asked
            ("decision", "供电公司", "不同意延期：现场勘查可在时限内完成")]
        with pytest.raises(ExtensionRequestRefused, match="没有待审核的延期申请"):
            await ledger.decide_extension(other, approve=True, by="lead")
        await ledger.ask_extension(other, until, "仍需现场勘查", "供电公司")  # asked again after a refusal

        with pytest.raises(ExtendRefused, match="须晚于现在的办理时限"):  # a grant is checked as a 延期
            await ledger.decide_extension(hard, approve=True, by="lead", until=start + timedelta(days=1))
        shorter = start + timedelta(days=5)  # the centre grants less than asked, in its own words
        granted = await ledger.decide_extension(hard, approve=True, by="lead", until=shorter, reason="需协调多个部门")
        assert granted.extended_until == shorter and granted.extension_pending is None
        assert [(r.outcome, r.decided_by, r.answer, r.granted_until) for r in granted.extension_requests] == [
            ("approved", "lead", "需协调多个部门", shorter)]
        assert [(c.ticket_id, c.kind, c.note) for c in await ledger.changes_since(seq)] == [
            (hard, "extend", "办理时限延长至2026年12月2日 10:00（需协调多个部门）")]
        assert [t.ticket_id for t in await ledger.search(waiting)] == [other]
        assert [(f.kind, f.unit, f.note) for f in granted.followups] == [
            ("decision", "城管局", "同意延期，办理时限延至2026年12月2日 10:00")]

        await ledger.ask_extension(hard, until, "仍需协调", "城管局")  # a direct 延期 grants it too
        direct = await ledger.extend(hard, until + timedelta(days=1), "需协调多个部门")
        assert [(r.outcome, r.decided_by, r.granted_until) for r in direct.extension_requests][-1] == (
            "approved", "", until + timedelta(days=1))
        assert direct.followups[-1].kind == "decision" and len(direct.followups) == 2
        unasked = await ledger.extend(hard, until + timedelta(days=2), "需协调多个部门")  # none waiting: no decision
        assert len(unasked.followups) == 2
        said = await ledger.decide_extension(other, approve=True, by="lead")  # as asked, in the unit's words
        assert said.history[-1].note.endswith("（仍需现场勘查）") and said.extended_until == until

        await ledger.ask_extension(gone, until, "需协调", "城管局")
        await ledger.ask_extension(repeat, until, "需协调", "城管局")
        await ledger.ask_extension(main, until, "需协调", "城管局")
        await ledger.withdraw(gone, "问题已自行解决")
        await ledger.merge(repeat, main)
        await ledger.set_status(main, "accepted")
        assert await ledger.count(waiting) == 1  # main's, still open
        await ledger.set_status(main, "resolved")
        assert await ledger.count(waiting) == 0
        for ticket_id in (gone, repeat, main):  # each lapsed, with the moment it did
            [lapsed] = (await ledger.get(ticket_id)).extension_requests
            assert (lapsed.outcome, lapsed.decided_at) == ("lapsed", clock.now)
        with pytest.raises(ExtensionRequestRefused, match="没有待审核的延期申请"):
            await ledger.decide_extension(main, approve=True, by="lead")
        with pytest.raises(ExtendRefused, match="已办结或已归档"):
            await ledger.ask_extension(main, until, "需协调", "城管局")


async def test_each_request_type_is_held_to_its_own_time_limit(ledger: LocalLedger, clock: FakeClock) -> None:
    """One TimeLimit per limit: 咨询 (3 days here) and 求助 (5) by name, every other type, the
    empty one included, by ``others`` (15 days); 表扬 named by none (no limit) is never late."""
    start = clock.now
    filed = {}
    for request_type in ("咨询", "求助", "投诉", "表扬", ""):
        filed[request_type] = await ledger.file(draft(f"web:{request_type or 'none'}", request_type=request_type),
                                                f"k-{request_type}")
    clock.advance(days=20)
    urgent_consult = await ledger.file(draft("web:urgent", request_type="咨询", urgent=True), "k-urgent")
    named = ("咨询", "求助", "表扬")

    def query(at: datetime, overdue: bool = False, due_soon: bool = False) -> TicketQuery:
        return TicketQuery(overdue=overdue, due_soon=due_soon, time_limits=[
            TimeLimit(urgent=False, request_types=("咨询",), others=False, due_before=at - timedelta(days=3),
                      soon_before=at - timedelta(days=2)),
            TimeLimit(urgent=False, request_types=("求助",), others=False, due_before=at - timedelta(days=5),
                      soon_before=at - timedelta(days=4)),
            TimeLimit(urgent=False, request_types=named, others=True, due_before=at - timedelta(days=15),
                      soon_before=at - timedelta(days=14)),
            TimeLimit(urgent=True, due_before=at - timedelta(hours=24), soon_before=at - timedelta(hours=23)),
        ])

    async def found(q: TicketQuery) -> set[str]:
        assert await ledger.count(q) == len(hits := [t.ticket_id for t in await ledger.search(q)])
        return set(hits)

    name = {ref.ticket_id: kind for kind, ref in filed.items()} | {urgent_consult.ticket_id: "urgent 咨询"}
    at = start + timedelta(days=4, hours=12)  # 咨询 late, 求助 due soon, the others neither
    assert {name[x] for x in await found(query(at, overdue=True))} == {"咨询"}
    assert {name[x] for x in await found(query(at, due_soon=True))} == {"求助"}
    at = start + timedelta(days=14, hours=12)  # 求助 late too; 投诉 and the untyped one due soon
    assert {name[x] for x in await found(query(at, overdue=True))} == {"咨询", "求助"}
    assert {name[x] for x in await found(query(at, due_soon=True))} == {"投诉", ""}
    at = clock.now + timedelta(hours=24, minutes=1)  # everything late but 表扬; the urgent 咨询 by its hours
    assert {name[x] for x in await found(query(at, overdue=True, due_soon=True))} == {
        "咨询", "求助", "投诉", "", "urgent 咨询"}
    await ledger.set_status(filed["投诉"].ticket_id, "accepted")
    await ledger.set_status(filed["投诉"].ticket_id, "resolved")
    assert {name[x] for x in await found(query(at, overdue=True))} == {"咨询", "求助", "", "urgent 咨询"}


def test_a_ticket_query_keeps_five_short_words() -> None:
    query = TicketQuery(text="一 二 三 四 五 六 " + "长" * 80)
    assert query.words() == ["一", "二", "三", "四", "五"]
    assert TicketQuery(text="长" * 80).words() == ["长" * 50]


async def test_a_filing_given_up_is_forgotten_while_nobody_can_have_heard_of_it(ledger: LocalLedger) -> None:
    unheard = await ledger.file(draft("web:alice"), "given-up")
    moved = await ledger.file(draft("web:alice"), "moved")
    await ledger.set_status(moved.ticket_id, "accepted")
    assert await ledger.abandon("given-up") == unheard.ticket_id
    with pytest.raises(TicketNotFound):
        await ledger.get(unheard.ticket_id)
    assert [t.ticket_id for t in await ledger.list_for("web:alice")] == [moved.ticket_id]
    assert await ledger.abandon("given-up") is None  # once
    assert await ledger.abandon("moved") is None  # a ticket that moved on is somebody's work
    assert (await ledger.get(moved.ticket_id)).status == "accepted"
    assert (await ledger.summary(datetime(2000, 1, 1, tzinfo=UTC))).filed == {"web": 1}
    again = await ledger.file(draft("web:alice"), "given-up")  # the key files afresh, a new number
    assert again.created and again.ticket_id != unheard.ticket_id


async def test_rate(ledger: LocalLedger, clock: FakeClock) -> None:
    ref = await ledger.file(draft(), "k")
    rated_at = clock.advance(days=1)
    ticket = await ledger.rate(ref.ticket_id, "基本满意", "处理及时")
    assert (ticket.rating, ticket.rating_comment, ticket.updated_at) == ("基本满意", "处理及时", rated_at)
    assert (await ledger.rate(ref.ticket_id, "满意")).rating == "满意"
    with pytest.raises(InvalidRating):
        await ledger.rate(ref.ticket_id, "很好")
    assert (await ledger.get(ref.ticket_id)).rating == "满意"


async def test_ping(ledger: LocalLedger) -> None:
    await ledger.ping()


# -- failures and wiring ------------------------------------------------------------------


async def test_unreachable_postgres_is_platform_unavailable() -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/test"
    async with LocalLedger(url) as client:
        with pytest.raises(PlatformUnavailable):
            await client.ping()
        with pytest.raises(PlatformUnavailable):
            await client.file(draft(), "k")
        with pytest.raises(PlatformUnavailable):
            await client.get("12345-20261127-000001")
        with pytest.raises(PlatformUnavailable):
            await client.changes_since(0)
    with pytest.raises(PlatformUnavailable):
        await migrate(url)


async def test_unopenable_sqlite_is_platform_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    async with LocalLedger(f"sqlite+aiosqlite:///{blocker / 'ledger.sqlite3'}") as client:
        with pytest.raises(PlatformUnavailable):
            await client.ping()
    with pytest.raises(PlatformUnavailable):
        await migrate(f"sqlite+aiosqlite:///{blocker / 'ledger.sqlite3'}")


async def test_make_client_builds_the_local_ledger(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", ticket_prefix="0571",  # type: ignore[call-arg]
                        urge_quiet_hours=0)
    await migrate(settings.effective_database_url)
    assert (tmp_path / "data" / "ledger.sqlite3").exists()
    client = make_client(settings)
    try:
        assert isinstance(client, LocalLedger)
        ref = await client.file(draft(), "k")
        assert ref.ticket_id.startswith("0571-")
        await client.urge(ref.ticket_id, "催一下")  # HOTLINE_URGE_QUIET_HOURS=0: each urge recorded
        assert (await client.urge(ref.ticket_id, "再催一下")).recorded
    finally:
        await client.close()


async def test_the_summary_counts_intake_by_channel_and_the_survey_of_the_work_resolved(
    ledger: LocalLedger, clock: FakeClock
) -> None:
    async def resolve(ticket_id: str, rating: str | None = None) -> None:
        for status in ("accepted", "resolved"):
            await ledger.set_status(ticket_id, status)
        if rating:
            await ledger.rate(ticket_id, rating)

    old = await ledger.file(draft("web:old", channel="web"), "k-old")
    stale = await ledger.file(draft("web:stale", channel="web"), "k-stale")
    await ledger.urge(stale.ticket_id, "催一下")  # urged before the period: not counted
    await resolve(old.ticket_id, "不满意")  # resolved before the period: not counted
    since = clock.advance(days=1)
    await ledger.urge(stale.ticket_id, "还没人来")  # filed before, urged in the period: counted
    clock.advance(hours=25)
    assert (await ledger.urge(stale.ticket_id, "快点")).recorded  # the same ticket again: one ticket
    refs = [
        await ledger.file(draft(f"{channel}:{i}", channel=channel), f"k-{channel}-{i}")
        for i, channel in enumerate(["web", "web", "wechat_oa", "portal:liuyanban", "email"])
    ]
    clock.advance(hours=2)
    await resolve(refs[0].ticket_id, "满意")
    await resolve(refs[1].ticket_id, "基本满意")
    await resolve(refs[2].ticket_id, "不满意")
    await resolve(refs[3].ticket_id)  # the citizen did not answer the survey
    await ledger.set_status(refs[0].ticket_id, "reopened", "市民反映仍未修好")
    await resolve(refs[0].ticket_id)  # resolved twice in the period: one ticket resolved
    await ledger.set_status(old.ticket_id, "closed")  # moving on is not resolving again

    await ledger.urge(refs[4].ticket_id, "怎么还没处理")
    await ledger.add_info(refs[4].ticket_id, "补充一下")  # a 补充 is no urge
    found = await ledger.summary(since)
    assert found.urged == 2
    assert found.filed == {"web": 2, "wechat_oa": 1, "portal:liuyanban": 1, "email": 1}
    assert found.resolved == 4 and found.ratings == {"满意": 1, "基本满意": 1, "不满意": 1}
    assert found.rated == 3 and found.response_rate == 0.75
    assert found.satisfaction == pytest.approx(2 / 3)
    nothing = await ledger.summary(clock.advance(days=1))
    assert nothing.filed == {} and nothing.resolved == 0 and nothing.urged == 0
    assert nothing.satisfaction is None and nothing.response_rate is None


async def test_an_urge_is_recorded_once_a_day_and_never_told_as_news(ledger: LocalLedger, clock: FakeClock) -> None:
    ref = await ledger.file(draft("web:alice"), "urged")
    cursor = max((c.seq for c in await ledger.changes_since(0)), default=0)
    first = await ledger.urge(ref.ticket_id, "  怎么还没人来修  ")
    assert first.recorded and first.at == clock.now
    assert [(u.note, u.at) for u in first.ticket.urges] == [("怎么还没人来修", clock.now)]
    clock.advance(hours=23, minutes=59)
    again = await ledger.urge(ref.ticket_id, "催一下")
    assert not again.recorded and again.at == first.at and len(again.ticket.urges) == 1  # the first stands
    clock.advance(minutes=1)
    third = await ledger.urge(ref.ticket_id, "催" * 500)
    assert third.recorded and len(third.ticket.urges) == 2 and len(third.ticket.urges[-1].note) == MAX_URGE_NOTE
    assert await ledger.changes_since(cursor) == []  # the citizen is never "told" their own urge
    ticket = await ledger.get(ref.ticket_id)
    assert ticket.history[-1].kind == "status" and len(ticket.urges) == 2  # the last step stays the last
    assert await ledger.abandon("urged") is None  # an urged ticket is known: never forgotten


async def test_the_urge_quiet_period_is_the_centres(database_url: str, clock: FakeClock) -> None:
    """HOTLINE_URGE_QUIET_HOURS: 12 hours lets the second urge of the day count; 0, every one."""
    await migrate(database_url)
    async with LocalLedger(database_url, clock=clock, urge_quiet=timedelta(hours=12)) as ledger:
        ref = await ledger.file(draft("web:q"), "quiet")
        assert (await ledger.urge(ref.ticket_id, "催一下")).recorded
        clock.advance(hours=11, minutes=59)
        assert not (await ledger.urge(ref.ticket_id, "再催一下")).recorded
        clock.advance(minutes=1)
        assert (await ledger.urge(ref.ticket_id, "还没人来")).recorded
    async with LocalLedger(database_url, clock=clock, urge_quiet=timedelta(0)) as ledger:
        assert (await ledger.urge(ref.ticket_id, "又催")).recorded
        assert len((await ledger.urge(ref.ticket_id, "又催")).ticket.urges) == 4


async def test_whether_it_was_solved_is_kept_and_counted_for_the_work_of_the_period(
    ledger: LocalLedger, clock: FakeClock
) -> None:
    """解决情况, the 回访's second answer: kept on the ticket (a later answer replaces it) and counted,
    as the ratings are, for the tickets resolved in the period (解决率)."""
    start = clock.now
    refs = [await ledger.file(draft(f"web:s{i}"), f"s{i}") for i in range(4)]
    for ref in refs[:3]:
        for status in ("accepted", "resolved"):
            await ledger.set_status(ref.ticket_id, status)
    assert (await ledger.get(refs[0].ticket_id)).solved is None  # not asked yet
    assert (await ledger.mark_solved(refs[0].ticket_id, False)).solved is False
    assert (await ledger.mark_solved(refs[0].ticket_id, True)).solved is True  # said again: the later stands
    await ledger.mark_solved(refs[1].ticket_id, False)
    assert [t.ticket_id for t in await ledger.search(TicketQuery(solved="未解决"))] == [refs[1].ticket_id]
    assert [t.ticket_id for t in await ledger.search(TicketQuery(solved="已解决"))] == [refs[0].ticket_id]
    assert len(await ledger.search(TicketQuery(solved="none"))) == 2
    await ledger.mark_solved(refs[3].ticket_id, False)  # said of an open ticket (a survey of a reopened one)
    assert await ledger.count(TicketQuery(solved="redo")) == 1  # 回访未解决, still done: to reopen (重办)
    summary = await ledger.summary(start)
    assert (summary.resolved, summary.solved, summary.unsolved, summary.solved_rate) == (3, 1, 1, 0.5)
    assert (await ledger.summary(clock.now + timedelta(minutes=1))).solved_rate is None
    await ledger.set_status(refs[1].ticket_id, "reopened")  # 重办: off the card
    assert await ledger.count(TicketQuery(solved="redo")) == 0
    with pytest.raises(TicketNotFound):
        await ledger.mark_solved("12345-20200101-000001", True)


async def test_a_done_ticket_takes_no_urge(ledger: LocalLedger) -> None:
    ref = await ledger.file(draft("web:alice"), "done")
    for status in ("accepted", "resolved"):
        await ledger.set_status(ref.ticket_id, status)
    with pytest.raises(NoteRefused):
        await ledger.urge(ref.ticket_id, "催一下")
    with pytest.raises(TicketNotFound):
        await ledger.urge("12345-20201231-999999", "催一下")
    assert (await ledger.get(ref.ticket_id)).urges == []


async def test_follow_ups_are_read_in_order_from_a_cursor(ledger: LocalLedger, clock: FakeClock) -> None:
    """A unit's 催办通知 and 协办意见通知 follow them: each of the kinds asked after the cursor, oldest
    first; ``last_followup`` is where a new reader starts, and ``last_change`` the same for the history."""
    assert await ledger.last_followup() == 0 and await ledger.last_change() == 0
    one = (await ledger.file(draft("web:a"), "u1")).ticket_id
    two = (await ledger.file(draft("web:b", departments=["城管局", "交通局"]), "u2")).ticket_id
    assert await ledger.last_change() == max(c.seq for c in await ledger.changes_since(0))
    await ledger.urge(one, "催一下")
    start = await ledger.last_followup()
    await ledger.add_info(one, "补充：是南门那盏")
    await ledger.urge(two, "怎么还没修")
    await ledger.assist(two, "交通局", "已设置警示标志")
    clock.advance(days=2)
    await ledger.urge(one, "又过了两天")
    found = await ledger.followups_since(start)
    assert [(u.ticket_id, u.kind, u.note) for u in found] == [(two, "urge", "怎么还没修"), (one, "urge", "又过了两天")]
    both = await ledger.followups_since(start, ("urge", "assist"))
    assert [(u.kind, u.unit, u.note) for u in both] == [
        ("urge", "", "怎么还没修"), ("assist", "交通局", "已设置警示标志"), ("urge", "", "又过了两天")]
    assert [u.ticket_id for u in await ledger.followups_since(0, limit=1)] == [one]
    assert await ledger.followups_since(found[-1].seq) == [] and await ledger.last_followup() == found[-1].seq


async def test_a_readers_cursor_is_kept_with_the_tickets(ledger: LocalLedger, clock: FakeClock) -> None:
    """The status poller's and the units' mail's cursors outlive Redis's data: kept per reader in
    the ledger; ``last_change_before`` is where a reader with none resumes."""
    assert await ledger.cursor("status") is None and await ledger.last_change_before(clock()) == 0
    one = (await ledger.file(draft("web:a"), "c1")).ticket_id
    await ledger.set_status(one, "accepted")
    old = await ledger.last_change()
    clock.advance(minutes=30)
    await ledger.set_status(one, "resolved", "已修复")
    assert await ledger.last_change_before(clock() - timedelta(minutes=10)) == old < await ledger.last_change()
    await ledger.keep_cursor("status", 7)
    await ledger.keep_cursor("unit_dispatch", 3)
    await ledger.keep_cursor("status", old)
    assert (await ledger.cursor("status"), await ledger.cursor("unit_dispatch")) == (old, 3)


async def test_a_supplement_is_kept_beside_the_history_until_the_ticket_is_done(
    ledger: LocalLedger, clock: FakeClock
) -> None:
    ref = await ledger.file(draft("web:alice"), "more")
    cursor = max((c.seq for c in await ledger.changes_since(0)), default=0)
    ticket = await ledger.add_info(ref.ticket_id, "  是南门口那盏  ")
    assert [(f.kind, f.note, f.at) for f in ticket.followups] == [("info", "是南门口那盏", clock.now)]
    assert ticket.additions == ticket.followups and ticket.urges == []
    assert await ledger.changes_since(cursor) == []
    assert (await ledger.urge(ref.ticket_id, "催一下")).recorded  # a 补充 is no urge: the day's first
    assert await ledger.count(TicketQuery(urged=True)) == 1
    with pytest.raises(InvalidNote):
        await ledger.add_info(ref.ticket_id, "  ")
    with pytest.raises(InvalidNote):
        await ledger.add_info(ref.ticket_id, "长" * 1001)
    for status in ("accepted", "resolved"):
        await ledger.set_status(ref.ticket_id, status)
    with pytest.raises(NoteRefused):
        await ledger.add_info(ref.ticket_id, "还有一点")
    assert await ledger.count(TicketQuery(urged=True)) == 0  # done: no longer 催办未办结
    assert len((await ledger.get(ref.ticket_id)).followups) == 2


async def test_a_main_pressed_for_through_its_repeat_is_urged(ledger: LocalLedger) -> None:
    """催办未办结 of a main counts its repeats' 催办 too: the matter is handled on the main, where the
    unit's 催办 list and the centre's card look (main_only), and 承办单位考核 counts it."""
    main = (await ledger.file(draft("web:a", departments=["城管局"]), "m")).ticket_id
    repeat = (await ledger.file(draft("web:b", departments=["城管局"]), "r")).ticket_id
    quiet = (await ledger.file(draft("web:c", departments=["城管局"]), "q")).ticket_id
    await ledger.merge(repeat, main)
    pressed = TicketQuery(urged=True, main_only=True, department="城管局")
    assert await ledger.count(pressed) == 0
    await ledger.urge(repeat, "我也反映过，催一下")
    assert [t.ticket_id for t in await ledger.search(pressed)] == [main] and quiet != main
    [tally] = await ledger.department_tallies(TicketQuery(main_only=True))
    assert (tally.department, tally.urged) == ("城管局", 1)
    for status in ("accepted", "resolved"):
        await ledger.set_status(main, status)
    assert await ledger.count(pressed) == 0  # done: no longer 催办未办结


async def test_a_co_handling_unit_writes_its_opinion_for_the_primary_unit(ledger: LocalLedger, clock: FakeClock) -> None:
    """协办意见: only a 协办 of the ticket writes one, beside the history (the citizen hears
    nothing), with its unit; not once the ticket is done or merged into another."""
    ref = await ledger.file(draft("web:alice", departments=["城管局", "供电公司", "K2区人民政府"]), "co")
    other = await ledger.file(draft("web:bob", departments=["城管局", "供电公司"]), "co2")
    cursor = max((c.seq for c in await ledger.changes_since(0)), default=0)
    ticket = await ledger.assist(ref.ticket_id, " 供电公司 ", "  已核实，线路无故障，系灯具损坏  ")
    assert [(f.kind, f.unit, f.note, f.at) for f in ticket.assists] == [
        ("assist", "供电公司", "已核实，线路无故障，系灯具损坏", clock.now)]
    assert ticket.additions == [] and ticket.urges == [] and len(ticket.history) == 1
    assert await ledger.changes_since(cursor) == []  # no step of the work: nobody outside is told
    [found] = [t for t in await ledger.search(TicketQuery(department="供电公司")) if t.ticket_id == ref.ticket_id]
    assert found.assists[0].unit == "供电公司"  # read back by the list too
    with pytest.raises(AssistRefused, match="城管局不是工单 .* 的协办单位"):
        await ledger.assist(ref.ticket_id, "城管局", "主办不写协办意见")
    with pytest.raises(AssistRefused, match="水务局不是工单"):
        await ledger.assist(ref.ticket_id, "水务局", "不相干的单位")
    with pytest.raises(InvalidNote, match="协办意见内容不能为空"):
        await ledger.assist(ref.ticket_id, "供电公司", " ")
    with pytest.raises(InvalidNote, match="协办意见过长"):
        await ledger.assist(ref.ticket_id, "供电公司", "长" * 2001)
    with pytest.raises(InvalidNote, match="协办单位不能为空"):
        await ledger.assist(ref.ticket_id, " ", "已核实")
    await ledger.merge(other.ticket_id, ref.ticket_id)
    with pytest.raises(AssistRefused, match="请在主单上填写"):
        await ledger.assist(other.ticket_id, "供电公司", "已核实")
    for status in ("accepted", "resolved"):
        await ledger.set_status(ref.ticket_id, status)
    with pytest.raises(AssistRefused, match="已办结"):
        await ledger.assist(ref.ticket_id, "K2区人民政府", "已到场")
    with pytest.raises(TicketNotFound):
        await ledger.assist("12345-20201231-999999", "供电公司", "已核实")
    assert len((await ledger.get(ref.ticket_id)).assists) == 1


# -- 更正 and 改派 -------------------------------------------------------------------------


async def test_a_correction_keeps_who_when_why_and_only_the_fields_it_changed(
    ledger: LocalLedger, clock: FakeClock
) -> None:
    ref = await ledger.file(draft(category=["环境保护", "噪音污染"], request_type="投诉",
                                  departments=["生态环境局", "公安局"]), "fix")
    cursor = max(c.seq for c in await ledger.changes_since(0))
    clock.advance(minutes=5)
    ticket = await ledger.correct(ref.ticket_id, Correction(
        by="op1", reason="  施工噪音归城管  ", category=["城乡建设", "城市建设和市政管理", ""],
        request_type="投诉", departments=[" 城市管理和综合执法局", "", "生态环境局", "城市管理和综合执法局"],
    ))
    assert ticket.category == ["城乡建设", "城市建设和市政管理"]
    assert ticket.departments == ["城市管理和综合执法局", "生态环境局"]
    assert ticket.request_type == "投诉" and ticket.status == "received"
    [rev] = ticket.revisions
    assert (rev.at, rev.by, rev.reason, rev.dispatched, rev.confirmed) == (clock.now, "op1", "施工噪音归城管", False, False)
    assert rev.before == {"category": ["环境保护", "噪音污染"], "departments": ["生态环境局", "公安局"]}
    assert rev.after == {"category": ["城乡建设", "城市建设和市政管理"],
                         "departments": ["城市管理和综合执法局", "生态环境局"]}
    assert await ledger.changes_since(cursor) == []  # no step of the work: the citizen is told nothing
    assert (await ledger.get(ref.ticket_id)).revisions == [rev]


async def test_a_place_corrected_is_written_anew_and_found_by_its_words(ledger: LocalLedger) -> None:
    """属地更正: the place as the operator writes it; the parts and map point read from the old
    one go with it, the revision keeps both texts, and 工单查询 finds the ticket by the new place."""
    ref = await ledger.file(draft(location=LocationInfo(text="联丰路", parts={"road": "联丰路"}, lat=28.1, lng=112.9)),
                            "place")
    ticket = await ledger.correct(ref.ticket_id, Correction(by="op1", reason="属地有误",
                                                            location="  A4区联丰北路米兰春天G2栋 "))
    assert ticket.location == LocationInfo(text="A4区联丰北路米兰春天G2栋")
    [rev] = ticket.revisions
    assert (rev.before, rev.after) == ({"location": "联丰路"}, {"location": "A4区联丰北路米兰春天G2栋"})
    assert [t.ticket_id for t in await ledger.search(TicketQuery(text="米兰春天G2栋"))] == [ref.ticket_id]
    same = await ledger.correct(ref.ticket_id, Correction(by="qa", location="A4区联丰北路米兰春天G2栋"))
    assert same.revisions[-1].confirmed and same.location.text == "A4区联丰北路米兰春天G2栋"


async def test_a_confirmation_is_recorded_once_and_changes_nothing(ledger: LocalLedger) -> None:
    ref = await ledger.file(draft(category=["交通运输"], urgent=True), "ok")
    assert await ledger.count(TicketQuery(reviewed=True)) == 0
    same = Correction(by="op1", category=["交通运输"], urgent=True)
    ticket = await ledger.correct(ref.ticket_id, same)
    assert [r.confirmed for r in ticket.revisions] == [True]
    assert ticket.category == ["交通运输"] and ticket.urgent
    assert len((await ledger.correct(ref.ticket_id, same)).revisions) == 1  # pressed twice
    assert len((await ledger.correct(ref.ticket_id, same.model_copy(update={"by": "qa"}))).revisions) == 2
    assert [t.ticket_id for t in await ledger.search(TicketQuery(reviewed=True))] == [ref.ticket_id]


async def test_redispatching_a_returned_ticket_sends_it_out_again(ledger: LocalLedger, clock: FakeClock) -> None:
    ref = await ledger.file(draft(departments=["住房和城乡建设局"]), "back")
    await ledger.set_status(ref.ticket_id, "accepted")
    await ledger.set_status(ref.ticket_id, "returned", "非本单位职责")
    cursor = max(c.seq for c in await ledger.changes_since(0))
    with pytest.raises(CorrectionRefused, match="须指定承办部门"):  # sent out again to nobody
        await ledger.correct(ref.ticket_id, Correction(by="op1", departments=[" ", ""]))
    ticket = await ledger.correct(ref.ticket_id, Correction(by="op1", reason="退单：属供水", departments=["水务局", "供水公司"]))
    assert ticket.status == "accepted" and ticket.departments == ["水务局", "供水公司"]
    assert [r.dispatched for r in ticket.revisions] == [True]
    assert (await ledger.summary(clock.now - timedelta(hours=1))).redispatched == 1
    [told] = await ledger.changes_since(cursor)
    assert (told.status, told.note, told.kind) == ("accepted", "已改派至水务局", "status")
    # returned again by the new department, and insisted on: sent to the same department once more
    await ledger.set_status(ref.ticket_id, "returned")
    again = await ledger.correct(ref.ticket_id, Correction(by="op1", departments=["水务局", "供水公司"]))
    assert again.status == "accepted" and again.revisions[-1].dispatched and again.revisions[-1].after == {}
    # a correction of an open ticket's departments is no dispatch: the status stays
    moved = await ledger.correct(ref.ticket_id, Correction(by="op1", departments=["供水公司"]))
    assert moved.status == "accepted" and not moved.revisions[-1].dispatched
    assert (await ledger.summary(clock.now - timedelta(hours=1))).redispatched == 1  # one ticket, twice
    assert (await ledger.summary(clock.now + timedelta(seconds=1))).redispatched == 0


async def test_a_done_ticket_is_reclassified_but_never_redispatched(ledger: LocalLedger) -> None:
    ref = await ledger.file(draft(category=["卫生计生"], departments=["卫生健康委员会"]), "done")
    for status in ("accepted", "resolved"):
        await ledger.set_status(ref.ticket_id, status)
    with pytest.raises(CorrectionRefused):
        await ledger.correct(ref.ticket_id, Correction(by="qa", category=["商贸旅游"], departments=["商务局"]))
    assert (await ledger.get(ref.ticket_id)).revisions == []  # refused: nothing written
    ticket = await ledger.correct(ref.ticket_id, Correction(by="qa", category=["商贸旅游"], departments=["卫生健康委员会"]))
    assert ticket.category == ["商贸旅游"] and ticket.status == "resolved"
    with pytest.raises(TicketNotFound):
        await ledger.correct("12345-20201231-999999", Correction(by="qa"))
    assert await ledger.abandon("done") is None


async def test_a_corrected_filing_is_never_forgotten(ledger: LocalLedger) -> None:
    ref = await ledger.file(draft(category=["民政"]), "kept")
    await ledger.correct(ref.ticket_id, Correction(by="op1", category=["农村农业"]))
    assert await ledger.abandon("kept") is None
    assert (await ledger.get(ref.ticket_id)).category == ["农村农业"]


async def test_corrections_are_counted_by_what_was_changed_into_what(ledger: LocalLedger, clock: FakeClock) -> None:
    start = clock.now
    refs = [await ledger.file(draft(f"web:{i}", category=["环境保护", "噪音污染"], departments=["生态环境局", "公安局"]),
                              f"k{i}") for i in range(4)]
    for ref in refs[:3]:  # three noise tickets that were building sites: category and department corrected
        await ledger.correct(ref.ticket_id, Correction(by="op1", category=["城乡建设", "城市建设和市政管理"],
                                                       departments=["城市管理和综合执法局", "生态环境局"]))
    await ledger.correct(refs[3].ticket_id, Correction(by="op1", departments=["生态环境局"]))  # co-handler dropped: same primary
    await ledger.correct(refs[3].ticket_id, Correction(by="qa"))  # a confirmation changes nothing
    await ledger.correct(refs[0].ticket_id, Correction(by="op1", category=["城乡建设", "住房保障"]))  # level 1 stays
    assert [c.model_dump() for c in await ledger.correction_counts(start)] == [
        {"field": "category", "before": "环境保护", "after": "城乡建设", "category": "", "count": 3},
        {"field": "departments", "before": "生态环境局", "after": "城市管理和综合执法局",
         "category": "城乡建设/城市建设和市政管理", "count": 2},
        {"field": "departments", "before": "生态环境局", "after": "城市管理和综合执法局",
         "category": "城乡建设/住房保障", "count": 1},
    ]
    clock.advance(minutes=1)
    assert await ledger.correction_counts(clock.now) == []


async def test_a_department_finds_the_tickets_it_handles_as_primary_or_co_handler(ledger: LocalLedger) -> None:
    primary = await ledger.file(draft("web:a", departments=["城市管理和综合执法局", "属地街道办事处"]), "a")
    helping = await ledger.file(draft("web:b", departments=["生态环境局", "城市管理和综合执法局"]), "b")
    longer = await ledger.file(draft("web:c", departments=["A3区城市管理和综合执法局"]), "c")  # another unit
    await ledger.file(draft("web:d", departments=["100%_局"]), "d")
    found = await ledger.search(TicketQuery(department=" 城市管理和综合执法局 "))
    assert [t.ticket_id for t in found] == [helping.ticket_id, primary.ticket_id]
    assert [t.ticket_id for t in await ledger.search(TicketQuery(department="A3区城市管理和综合执法局"))] == [longer.ticket_id]
    assert await ledger.search(TicketQuery(department="100%")) == []  # wildcards are words
    assert await ledger.count(TicketQuery(department="属地街道办事处")) == 1
    await ledger.correct(primary.ticket_id, Correction(by="op1", departments=["供电公司"]))
    assert await ledger.search(TicketQuery(department="属地街道办事处")) == []  # as it is now


async def test_department_tallies_count_each_unit_a_ticket_names_with_what_it_is_now(
    ledger: LocalLedger, clock: FakeClock
) -> None:
    """承办单位考核: per unit (主办 or 协办) of the period's tickets, a repeat merged into another
    counted once by its main, the busiest unit first."""
    start = clock.now
    city, street, green = "城市管理和综合执法局", "洞井街道办事处", "生态环境局"
    lamp = await ledger.file(draft("web:a", departments=[city, street]), "a")
    noise = await ledger.file(draft("web:b", departments=[green, city]), "b")
    late = await ledger.file(draft("web:c", departments=[street]), "c")
    repeat = await ledger.file(draft("web:d", departments=[city, street]), "d")
    await ledger.file(draft("web:e", departments=[]), "e")  # none named: no row
    await ledger.merge(repeat.ticket_id, lamp.ticket_id)
    for status in ("accepted", "resolved"):
        await ledger.set_status(lamp.ticket_id, status)
    await ledger.rate(lamp.ticket_id, "基本满意")
    await ledger.mark_solved(lamp.ticket_id, False)
    await ledger.set_status(noise.ticket_id, "returned")
    await ledger.urge(late.ticket_id, "怎么还没人来")
    clock.advance(days=20)
    limits = [TimeLimit(urgent=False, due_before=start + timedelta(minutes=1))]  # filed before: past due
    tallies = await ledger.department_tallies(TicketQuery(since=start, time_limits=limits))
    assert [t.department for t in tallies] == [city, street, green]  # 2, 2, 1: ties by name
    by = {t.department: t for t in tallies}
    assert (by[city].filed, by[city].primary, by[city].done, by[city].returned) == (2, 1, 1, 1)
    assert by[city].ratings == {"基本满意": 1} and by[city].satisfaction == 1.0
    assert (by[city].solved, by[city].unsolved, by[city].solved_rate) == (0, 1, 0.0)  # 解决率
    assert by[green].solved_rate is None  # nobody said
    assert (by[street].filed, by[street].primary, by[street].overdue, by[street].urged) == (2, 1, 1, 1)
    assert by[city].overdue == 1  # the returned noise is open and late; the resolved lamp is not
    assert (by[green].filed, by[green].primary, by[green].returned, by[green].rated) == (1, 1, 1, 0)
    # no time limit: nothing is late; a period after them: nothing at all; the limit cuts the list
    assert all(t.overdue == 0 for t in await ledger.department_tallies(TicketQuery(since=start)))
    assert await ledger.department_tallies(TicketQuery(since=clock.now)) == []
    assert [t.department for t in await ledger.department_tallies(TicketQuery(since=start), limit=1)] == [city]
    # one unit's own figures (承办单位工作台): its row alone, as the whole report has it
    [own] = await ledger.department_tallies(TicketQuery(since=start, time_limits=limits, department=street), limit=1)
    assert own == by[street]  # second in the table: its own row all the same
    assert await ledger.department_tallies(TicketQuery(since=start, department="水务局")) == []


async def test_each_return_is_credited_to_the_unit_that_made_it(ledger: LocalLedger, clock: FakeClock) -> None:
    """退回次数: a ticket returned twice and 改派'd each time counts one return for each unit that
    was its 主办 then, though it names neither now; one sent out again without a 改派 (the same
    departments) counts for its 主办; a unit that never returned one counts none."""
    start = clock.now
    pipe = (await ledger.file(draft("web:a", departments=["城管局", "洞井街道办事处"]), "a")).ticket_id
    lamp = (await ledger.file(draft("web:b", departments=["供电公司"]), "b")).ticket_id
    await ledger.file(draft("web:c", departments=["城管局"]), "c")
    for then in (["水务局", "洞井街道办事处"], ["供水公司"]):  # 城管局 returns it, then 水务局
        clock.advance(hours=1)
        await ledger.set_status(pipe, "returned", "非本单位职责")
        clock.advance(hours=1)
        await ledger.correct(pipe, Correction(by="op1", departments=then, reason="承办单位退回：非本单位职责"))
    await ledger.set_status(lamp, "returned", "请补充具体位置")
    await ledger.set_status(lamp, "accepted", "已补充位置，重新派出")
    tallies = {t.department: t for t in await ledger.department_tallies(TicketQuery(since=start))}
    assert {unit: t.returns for unit, t in tallies.items()} == {
        "城管局": 1, "水务局": 1, "供电公司": 1, "供水公司": 0}
    assert (tallies["城管局"].filed, tallies["水务局"].filed) == (1, 0)  # the 城管局 row is the third ticket's
    assert tallies["水务局"].returned == 0  # none waits to go out again
    for unit in ("城管局", "水务局"):  # one unit's own figures count its returns of tickets 改派'd away too
        [own] = await ledger.department_tallies(TicketQuery(since=start, department=unit))
        assert own == tallies[unit]

    async def found(**query: object) -> set[str]:  # 工单查询's 曾退回: the tickets behind each count
        return {t.ticket_id for t in await ledger.search(TicketQuery(returned=True, **query))}  # type: ignore[arg-type]

    assert await found() == {pipe, lamp}
    assert await found(department="城管局") == {pipe} and await found(department="水务局") == {pipe}
    assert await found(department="供电公司") == {lamp} and await found(department="供水公司") == set()
    assert await ledger.count(TicketQuery(returned=True, department="洞井街道办事处")) == 0  # 协办: none returned


async def test_category_trends_count_a_period_against_the_one_before(ledger: LocalLedger, clock: FakeClock) -> None:
    """热点诉求: the kinds of matter of a week, the most first, each with the week before's count (环比)."""
    lamps, noise, wage = ["城乡建设", "城市建设和市政管理"], ["环境保护", "噪音污染"], ["劳动和社会保障", "劳动关系"]
    week = timedelta(days=7)
    start = clock.now
    for i, category in enumerate([noise, noise, lamps]):  # the week before
        await ledger.file(draft(f"web:b{i}", category=category), f"b{i}")
    clock.advance(days=7)
    for i, category in enumerate([lamps, lamps, lamps, noise, wage, ["城乡建设"]]):  # this week
        await ledger.file(draft(f"web:t{i}", category=category), f"t{i}")
    await ledger.file(draft("web:none"), "none")  # no category: not a kind
    trends = await ledger.category_trends(start + week, start + 2 * week)
    assert [(t.category, t.filed, t.before) for t in trends] == [
        (lamps, 3, 1), (wage, 1, 0), (["城乡建设"], 1, 0), (noise, 1, 2)]  # ties by name
    assert trends[0].change == 2.0 and trends[3].change == -0.5 and trends[2].change is None  # new: no 环比
    assert [t.category for t in await ledger.category_trends(start + week, start + 2 * week, limit=1)] == [lamps]
    # 工单查询 by a kind: that category or one below it
    assert len(await ledger.search(TicketQuery(category=["城乡建设"]))) == 5  # 2 before, 3 this week (lamps + 1)
    assert len(await ledger.search(TicketQuery(category=lamps))) == 4
    assert len(await ledger.search(TicketQuery(category=["城乡建设", "住房保障"]))) == 0
    assert await ledger.category_trends(start + 2 * week, start + 3 * week) == []  # nothing filed yet: not the week before's


async def test_hotspots_are_the_spots_reported_again_and_again(ledger: LocalLedger, clock: FakeClock) -> None:
    """热点诉求: spots two or more of the period's tickets are about, every report counted (a repeat
    merged into another too), with how many are still to do there."""
    def at(place: str, kind: str = "城乡建设") -> TicketDraft:
        return draft("web:x", category=[kind], location=LocationInfo(text=place, parts={"community": place}))

    start = clock.now
    await ledger.file(at("米兰春天"), "old")  # before the period
    clock.advance(days=2)
    lamp = [await ledger.file(at("米兰春天"), f"lamp{i}") for i in range(3)]
    await ledger.file(at("米兰春天", "环境保护"), "noise")  # the same estate, another matter: once only
    road = [await ledger.file(at("书院路"), f"road{i}") for i in range(2)]
    await ledger.file(at("融城苑"), "once")
    await ledger.merge(lamp[1].ticket_id, lamp[0].ticket_id)
    for status in ("accepted", "resolved"):
        await ledger.set_status(road[0].ticket_id, status)
    spots = await ledger.hotspots(start + timedelta(days=1))
    assert [(h.place, h.kind, h.filed, h.open) for h in spots] == [("米兰春天", "城乡建设", 3, 2), ("书院路", "城乡建设", 2, 1)]
    assert spots[1].latest == (await ledger.get(road[1].ticket_id)).created_at
    assert len(await ledger.hotspots(start)) == 2 and (await ledger.hotspots(start))[0].filed == 4  # the old one too
    assert await ledger.hotspots(clock.now + timedelta(minutes=1)) == []
    assert await ledger.hotspots(start, until=start + timedelta(days=1)) == []  # the old one alone before then


async def test_a_closed_period_counts_only_what_happened_within_it(ledger: LocalLedger, clock: FakeClock) -> None:
    """A calendar month's report: [since, until) bounds every event of the summary (filed,
    resolved with its ratings, urged, 办结), and 环比 compares with the period ``before`` names."""
    lamps = ["城乡建设", "城市建设和市政管理"]
    start = clock.now
    early = (await ledger.file(draft("web:a", category=lamps), "a")).ticket_id  # the month before
    clock.advance(days=31)
    inside = (await ledger.file(draft("web:b", category=lamps), "b")).ticket_id
    await ledger.urge(inside, "怎么还没修")
    for status in ("accepted", "resolved"):
        await ledger.set_status(inside, status)
    await ledger.rate(inside, "满意")
    month_end = clock.advance(days=10)
    await ledger.file(draft("web:c", category=lamps), "c")  # after the month
    await ledger.urge(early, "还是没修")
    for status in ("accepted", "resolved"):
        await ledger.set_status(early, status)
    month = await ledger.summary(start + timedelta(days=30), month_end)
    assert (month.until, month.filed, month.resolved, month.ratings) == (month_end, {"web": 1}, 1, {"满意": 1})
    assert (month.urged, month.done, month.done_late) == (1, 1, 0)
    assert (await ledger.summary(start + timedelta(days=30))).filed == {"web": 2}  # to now: the later one too
    [kind] = await ledger.category_trends(start + timedelta(days=30), month_end, before=start)
    assert (kind.category, kind.filed, kind.before) == (lamps, 1, 1)


# -- 并单 ----------------------------------------------------------------------------------------


async def test_a_merged_ticket_follows_its_main_and_its_citizen_hears_each_step(
    ledger: LocalLedger, clock: FakeClock
) -> None:
    """并单: the same burst pipe reported twice. The second is brought to the main's status with
    a word to its citizen, then takes each of the main's steps and notes (改派 included) while
    the main's citizen hears only their own; counted once, by the main, among the late and the
    returned; rated by its own citizen; handled alone again after 取消并单."""
    main = await ledger.file(draft("web:a", departments=["水务局"]), "main")
    again = await ledger.file(draft("web:b"), "again")
    await ledger.set_status(main.ticket_id, "accepted")
    await ledger.set_status(main.ticket_id, "processing", "抢修人员已出发")
    cursor = max(c.seq for c in await ledger.changes_since(0))
    merged = await ledger.merge(again.ticket_id, main.ticket_id)
    assert merged.merged_into == main.ticket_id and merged.status == "processing"
    assert (await ledger.summary(clock.now)).merged == 1  # 并单工单 of the period
    assert (await ledger.summary(clock.now + timedelta(seconds=1))).merged == 0
    told = await ledger.changes_since(cursor)
    assert [(c.ticket_id, c.status, c.kind) for c in told] == [
        (again.ticket_id, "accepted", "status"), (again.ticket_id, "processing", "status")]
    assert told[-1].note == f"您反映的问题与工单{main.ticket_id}为同一事项，已合并办理，办理进展和结果将一并告知您"
    assert [t.ticket_id for t in await ledger.search(TicketQuery(merged_into=main.ticket_id))] == [again.ticket_id]
    assert [t.ticket_id for t in await ledger.search(TicketQuery(main_only=True))] == [main.ticket_id]

    cursor = told[-1].seq
    await ledger.add_note(main.ticket_id, "已关闭上游阀门")
    await ledger.set_status(main.ticket_id, "returned", "非本单位职责")
    assert await ledger.count(TicketQuery(status="returned", main_only=True)) == 1
    late = TicketQuery(overdue=True, time_limits=[TimeLimit(urgent=False, due_before=clock.now + timedelta(days=1))])
    assert [t.ticket_id for t in await ledger.search(late)] == [main.ticket_id]  # counted once
    await ledger.correct(main.ticket_id, Correction(by="op1", departments=["供水公司"]))  # 改派
    await ledger.set_status(main.ticket_id, "resolved", "已修复")
    steps = [(c.ticket_id, c.status, c.kind, c.note) for c in await ledger.changes_since(cursor)]
    for who in (main.ticket_id, again.ticket_id):  # the same steps, each to its own citizen
        assert [s[1:] for s in steps if s[0] == who] == [
            ("processing", "note", "已关闭上游阀门"), ("returned", "status", "非本单位职责"),
            ("accepted", "status", "已改派至供水公司"), ("resolved", "status", "已修复")]
    followed = await ledger.get(again.ticket_id)
    assert followed.status == "resolved" and followed.departments == []  # its own record stays its own
    await ledger.rate(again.ticket_id, "满意")
    assert (await ledger.get(main.ticket_id)).rating is None

    with pytest.raises(MergeRefused, match="请在主单上办理"):
        await ledger.set_status(again.ticket_id, "closed")
    with pytest.raises(MergeRefused, match="请在主单上办理"):
        await ledger.add_note(again.ticket_id, "再看看")
    with pytest.raises(CorrectionRefused, match="承办部门随主单"):
        await ledger.correct(again.ticket_id, Correction(by="op1", departments=["城管局"]))
    assert (await ledger.correct(again.ticket_id, Correction(by="op1", category=["城乡建设"]))).category == ["城乡建设"]
    cursor = max(c.seq for c in await ledger.changes_since(0))
    alone = await ledger.unmerge(again.ticket_id)
    assert alone.merged_into is None and alone.status == "resolved"
    assert (await ledger.summary(clock.now - timedelta(days=1))).merged == 0  # taken back: no repeat
    [word] = await ledger.changes_since(cursor)
    assert (word.ticket_id, word.kind, word.note) == (again.ticket_id, "note", "该工单改为单独办理，办理进展将继续告知您")
    await ledger.set_status(main.ticket_id, "closed")
    assert (await ledger.get(again.ticket_id)).status == "resolved"  # no longer follows
    await ledger.set_status(again.ticket_id, "closed")


async def test_a_merge_is_refused_where_it_would_not_hold(ledger: LocalLedger) -> None:
    """Not into itself, nor into a ticket merged or done, nor a done one, nor a main, nor one
    further on than the main (merge the other way round); a refusal writes nothing."""
    a = (await ledger.file(draft("web:a"), "a")).ticket_id
    b = (await ledger.file(draft("web:b"), "b")).ticket_id
    c = (await ledger.file(draft("web:c"), "c")).ticket_id
    done = (await ledger.file(draft("web:d"), "d")).ticket_id
    for status in ("accepted", "resolved"):
        await ledger.set_status(done, status)
    with pytest.raises(MergeRefused, match="不能并入自身"):
        await ledger.merge(a, a)
    with pytest.raises(TicketNotFound):
        await ledger.merge(a, "12345-20201231-999999")
    with pytest.raises(MergeRefused, match="已办结，不能作为主单"):
        await ledger.merge(a, done)
    with pytest.raises(MergeRefused, match="已办结，不能再并入"):
        await ledger.merge(done, a)
    await ledger.set_status(b, "accepted")
    with pytest.raises(MergeRefused, match=f"可将工单 {a} 并入工单 {b}"):  # b is further on than a
        await ledger.merge(b, a)
    assert (await ledger.merge(a, b)).status == "accepted"
    with pytest.raises(MergeRefused, match=f"请并入工单 {b}"):
        await ledger.merge(c, a)
    with pytest.raises(MergeRefused, match=f"已并入工单 {b}"):
        await ledger.merge(a, c)
    with pytest.raises(MergeRefused, match="只能作为主单"):
        await ledger.merge(b, c)
    with pytest.raises(MergeRefused, match="未并入"):
        await ledger.unmerge(c)
    assert (await ledger.get(c)).history[-1].status == "received" and len((await ledger.get(c)).history) == 1
    e = (await ledger.file(draft("web:e"), "e")).ticket_id
    assert (await ledger.merge(e, c)).history[-1].kind == "note"  # at the main's status already: a word only
    assert await ledger.abandon("c") is None  # untouched itself, but a main: kept for those that follow it


async def test_a_withdrawn_ticket_is_closed_with_its_reason_and_counted_apart(
    ledger: LocalLedger, clock: FakeClock
) -> None:
    """撤单: closed from where it stands (outside the department's workflow), told to its citizen
    as a change of its own kind, found and counted as 已撤单, no unit's 办结; reopened, it is
    handled again and no longer withdrawn."""
    start = clock.now
    city = "城市管理和综合执法局"
    gone = (await ledger.file(draft("web:a", departments=[city]), "a")).ticket_id
    done = (await ledger.file(draft("web:b", departments=[city]), "b")).ticket_id
    await ledger.file(draft("web:c", departments=[city]), "c")
    for status in ("accepted", "processing"):
        await ledger.set_status(gone, status)
    for status in ("accepted", "resolved"):
        await ledger.set_status(done, status)
    cursor = max(c.seq for c in await ledger.changes_since(0))
    clock.advance(hours=1)
    ticket = await ledger.withdraw(gone, "  市民表示问题\n已自行解决 ")
    assert (ticket.status, ticket.withdrawn_at) == ("closed", clock.now)
    [told] = await ledger.changes_since(cursor)
    assert (told.ticket_id, told.status, told.kind, told.note) == (gone, "closed", "withdraw", "市民表示问题 已自行解决")
    assert (await ledger.get(gone)).history[-1].kind == "withdraw"
    assert [t.ticket_id for t in await ledger.search(TicketQuery(status="withdrawn"))] == [gone]
    assert {t.ticket_id for t in await ledger.search(TicketQuery(status="closed"))} == {gone}  # 已归档 holds it too
    assert (await ledger.summary(start)).withdrawn == 1
    assert (await ledger.summary(clock.now + timedelta(seconds=1))).withdrawn == 0
    assert (await ledger.summary(start)).resolved == 1  # the other one: a withdrawal is no 办结
    [unit] = await ledger.department_tallies(TicketQuery(since=start))
    assert (unit.filed, unit.done, unit.withdrawn, unit.done_rate) == (3, 1, 1, 0.5)  # 1 of the 2 it had to do

    with pytest.raises(WithdrawRefused, match="已办结或已归档"):
        await ledger.withdraw(done, "不需要了")
    with pytest.raises(WithdrawRefused, match="已办结或已归档"):
        await ledger.withdraw(gone, "又说一次")
    with pytest.raises(InvalidNote, match="撤单原因不能为空"):
        await ledger.withdraw(done, " \n ")
    with pytest.raises(TicketNotFound):
        await ledger.withdraw("12345-20201231-999999", "不需要了")
    reopened = await ledger.set_status(gone, "reopened", "市民反映问题再次出现")
    assert reopened.withdrawn_at is None and await ledger.count(TicketQuery(status="withdrawn")) == 0
    assert (await ledger.summary(start)).withdrawn == 0


async def test_a_repeat_withdrawn_leaves_its_main_and_a_main_is_not_withdrawn(ledger: LocalLedger) -> None:
    """并单 and 撤单: a repeat's citizen may withdraw theirs (the main goes on for the others); the
    main's citizen may not, while others' tickets follow it."""
    main = (await ledger.file(draft("web:a"), "a")).ticket_id
    repeat = (await ledger.file(draft("web:b"), "b")).ticket_id
    other = (await ledger.file(draft("web:c"), "c")).ticket_id
    await ledger.merge(repeat, main)
    await ledger.merge(other, main)
    with pytest.raises(WithdrawRefused, match="已有 2 件工单并入"):
        await ledger.withdraw(main, "不需要了")
    assert (await ledger.get(main)).status == "received"  # nothing written
    left = await ledger.withdraw(repeat, "重复提交")
    assert (left.status, left.merged_into) == ("closed", None)
    assert [t.ticket_id for t in await ledger.search(TicketQuery(merged_into=main))] == [other]
    await ledger.set_status(main, "accepted")
    assert (await ledger.get(repeat)).status == "closed"  # no longer follows
    await ledger.unmerge(other)
    assert (await ledger.withdraw(main, "已自行解决")).status == "closed"


def test_a_tickets_spot_is_its_most_telling_place_word() -> None:
    """疑似重复 match by ``LocationInfo.place``: an estate or landmark before a road; a district or
    town alone is too wide to say two tickets are about one spot."""
    def place(text: str = "", **parts: str) -> str:
        return LocationInfo(text=text, parts=parts).place()

    assert place("A3区联丰路米兰春天小区", district="A3区", road="联丰路", community="米兰春天小区") == "米兰春天"
    assert place(landmark="在水一方大厦", road="书院路") == "在水一方大厦"
    assert place(road="联丰路", number="128号") == "联丰路128号"
    assert place(road="联丰路") == "联丰路"
    assert place(number="128号") == ""  # a number of no road is nowhere
    assert place("K2区", district="K2区") == "" and place("L4县安坪镇", district="L4县", town="安坪镇") == ""
    assert place("米兰春天 小区") == "米兰春天"  # written anew by an operator: nothing read from it
    assert place("小区") == "小区" and place("") == "" and place("路" * 41) == ""


async def test_open_tickets_about_one_spot_are_counted_once_each_for_a_page(ledger: LocalLedger, clock: FakeClock) -> None:
    """``open_at``: the open tickets at each spot (place and first-level category) since a moment,
    merged ones counted by their main and done ones not at all; a 属地更正 moves a ticket to the
    spot it names (by its parts, else as written). ``repeated_since`` finds those sharing one."""
    at_estate = LocationInfo(text="联丰路米兰春天小区", parts={"road": "联丰路", "community": "米兰春天小区"})
    lamp = ["城乡建设", "市政设施", "路灯"]
    a = (await ledger.file(draft("web:a", location=at_estate, category=lamp), "a")).ticket_id
    b = (await ledger.file(draft("web:b", location=at_estate, category=lamp[:1]), "b")).ticket_id
    noise = (await ledger.file(draft("web:n", location=at_estate, category=["环境保护"]), "n")).ticket_id
    c = (await ledger.file(draft("web:c", location=LocationInfo(text="书院路", parts={"road": "书院路"}),
                                 category=lamp), "c")).ticket_id
    since = clock.now - timedelta(days=30)
    estate, road = ("米兰春天", "城乡建设"), ("书院路", "城乡建设")
    assert await ledger.open_at([estate, road, ("米兰春天", "环境保护"), ("人民路", "城乡建设"), ("", "")], since) == {
        estate: 2, road: 1, ("米兰春天", "环境保护"): 1}
    assert await ledger.open_at([], since) == {}
    assert await ledger.open_at([estate], clock.now + timedelta(seconds=1)) == {}  # filed before it
    assert [t.ticket_id for t in await ledger.search(TicketQuery(place="米兰春天"))] == [noise, b, a]
    repeated = TicketQuery(repeated_since=since)  # 工单查询's 疑似重复: the noise is another matter
    assert [t.ticket_id for t in await ledger.search(repeated)] == [b, a] and await ledger.count(repeated) == 2
    assert await ledger.search(TicketQuery(repeated_since=clock.now + timedelta(seconds=1))) == []  # filed before
    await ledger.correct(c, Correction(by="op1", location="A3区米兰春天"))  # 属地有误, its parts unread
    assert await ledger.open_at([estate, road, ("A3区米兰春天", "城乡建设")], since) == {
        estate: 2, ("A3区米兰春天", "城乡建设"): 1}
    parts = {"district": "A3区", "community": "米兰春天"}  # as the gateway reads them
    fixed = await ledger.correct(c, Correction(by="op1", location="A3区米兰春天小区", location_parts=parts))
    assert fixed.location == LocationInfo(text="A3区米兰春天小区", parts=parts)
    assert await ledger.open_at([estate, road], since) == {estate: 3}
    assert [t.ticket_id for t in await ledger.search(repeated)] == [c, b, a]
    await ledger.merge(b, a)
    assert [t.ticket_id for t in await ledger.search(repeated)] == [c, a]
    await ledger.set_status(c, "accepted")
    await ledger.set_status(c, "resolved")
    assert await ledger.open_at([estate], since) == {estate: 1}
    assert await ledger.search(repeated) == []  # one open ticket there: no repeat


async def test_upgrade_from_0008_gives_each_filed_ticket_its_spot(database_url: str, clock: FakeClock) -> None:
    """0009 reads each ticket's place as filed into the indexed column 疑似重复 are counted by."""
    await asyncio.to_thread(upgrade_database, database_url, "0008")
    at = clock.now.replace(tzinfo=None) if "sqlite" in database_url else clock.now
    engine = create_engine(sync_url(database_url))
    try:
        with engine.begin() as conn:
            for n, location in enumerate(('{"text": "联丰路米兰春天小区", "parts": {"community": "米兰春天小区"}}',
                                          '{"text": "K2区", "parts": {"district": "K2区"}}', '{}',
                                          '{"text": 3, "parts": null}'), start=1):  # (no place: skipped)
                conn.execute(text(
                    "INSERT INTO tickets (ticket_id, idempotency_key, channel, conversation_key, contact, title, "
                    "description, category, request_type, urgent, location, departments, attachments, status, "
                    "rating, rating_comment, created_at, updated_at) VALUES (:id, :id, 'web', 'web:a', '', '', "
                    "'路灯坏了', '[]', '', false, :loc, '[]', '[]', 'received', NULL, '', :at, :at)"),
                    {"id": f"12345-20261127-00000{n}", "loc": location, "at": at})
    finally:
        engine.dispose()
    await migrate(database_url)
    async with LocalLedger(database_url, clock=clock) as ledger:
        assert await ledger.open_at([("米兰春天", ""), ("K2区", "")], clock.now - timedelta(days=1)) == {("米兰春天", ""): 1}
        assert [t.ticket_id for t in await ledger.search(TicketQuery(place="米兰春天"))] == ["12345-20261127-000001"]


async def test_a_ticket_finished_is_judged_on_time_or_late_once_and_counted(
    database_url: str, clock: FakeClock
) -> None:
    """按期办结: the moment the work brings a ticket to resolved or closed is kept and judged against
    its 办理时限 (two days here); 归档 after 办结 keeps it, reopening clears it and the next 办结 is
    judged again; a 撤单 is no 办结; a repeat merged into a main is counted once, by its main."""
    await migrate(database_url)
    start = clock.now
    city, street = "城市管理和综合执法局", "洞井街道办事处"
    two_days = Limits(due=lambda t: t.created_at + timedelta(days=2))
    async with LocalLedger(database_url, clock=clock, limits=two_days) as ledger:
        quick = (await ledger.file(draft("web:a", departments=[city]), "a")).ticket_id
        slow = (await ledger.file(draft("web:b", departments=[city, street]), "b")).ticket_id
        repeat = (await ledger.file(draft("web:c", departments=[city]), "c")).ticket_id
        gone = (await ledger.file(draft("web:d", departments=[city]), "d")).ticket_id
        await ledger.merge(repeat, slow)
        clock.advance(days=1)
        await ledger.set_status(quick, "accepted")
        finished = await ledger.set_status(quick, "resolved")
        assert (finished.done_at, finished.done_late) == (clock.now, False)
        await ledger.withdraw(gone, "已自行解决")
        clock.advance(days=2)
        assert (await ledger.set_status(quick, "closed")).done_at == start + timedelta(days=1)  # 归档 keeps it
        await ledger.set_status(slow, "accepted")
        late = await ledger.set_status(slow, "resolved", "已修复")
        assert (late.done_at, late.done_late) == (clock.now, True)
        assert (await ledger.get(repeat)).done_late is True  # it followed its main
        assert (await ledger.get(gone)).done_at is None  # withdrawn: no 办结

        summary = await ledger.summary(start)
        assert (summary.done, summary.done_late, summary.on_time_rate) == (2, 1, 0.5)  # the repeat: by its main
        assert (await ledger.summary(clock.now - timedelta(hours=1))).done == 1
        assert [t.ticket_id for t in await ledger.search(TicketQuery(done_late=True))] == [slow]
        by = {t.department: t for t in await ledger.department_tallies(TicketQuery(since=start))}
        assert (by[city].done, by[city].done_late, by[city].on_time_rate) == (2, 1, 0.5)
        assert (by[street].done, by[street].done_late, by[street].on_time_rate) == (1, 1, 0.0)

        reopened = await ledger.set_status(slow, "reopened", "市民反映仍未修好")
        assert (reopened.done_at, reopened.done_late) == (None, None)
        assert await ledger.count(TicketQuery(done_late=True)) == 0
        assert (await ledger.get(repeat)).done_at is None
        clock.advance(days=1)
        await ledger.set_status(slow, "accepted")
        again = await ledger.set_status(slow, "resolved")
        assert (again.done_at, again.done_late) == (clock.now, True)  # still against its first limit


async def test_rejudge_judges_the_period_again_by_the_limits_as_they_are_now(
    database_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """按期 and 响应 were judged when they happened; after the limits change (a year's 放假安排
    added), ``rejudge`` judges those of a period again: both ways, only in the period, paging
    through, and leaving each ticket's moments and ``updated_at`` as they were."""
    await migrate(database_url)
    monkeypatch.setattr(ledger_module, "REJUDGE_BATCH", 2)  # pages of two
    limit = {"days": 2.0, "hours": 12.0}
    limits = Limits(due=lambda t: t.created_at + timedelta(days=limit["days"]),
                    respond=lambda t: t.created_at + timedelta(hours=limit["hours"]))
    start = clock.now
    async with LocalLedger(database_url, clock=clock, limits=limits) as ledger:
        async def finish(key: str, taken_hours: float, done_days: float | None) -> str:
            number = (await ledger.file(draft(f"web:{key}"), key)).ticket_id
            clock.advance(hours=taken_hours)
            await ledger.set_status(number, "accepted")
            if done_days is not None:
                clock.advance(days=done_days)
                await ledger.set_status(number, "resolved")
            clock.now = start
            return number

        early = await finish("early", 6, 0.5)  # on time either way
        slow = await finish("slow", 20, 2.5)  # both late; taken on in time within 24 hours
        still = await finish("still", 30, None)  # taken on late either way, still open
        quick = await finish("quick", 1, 1.5)  # on time; finished late within 1.25 days
        kept = {t: await ledger.get(t) for t in (early, slow, still, quick)}
        assert [(kept[t].done_late, kept[t].responded_late) for t in kept] == [
            (False, False), (True, True), (None, True), (False, False)]

        limit.update(days=1.25, hours=24)
        clock.advance(days=10)
        found = await ledger.rejudge(start)
        assert found.model_dump(exclude={"since", "until"}) == {
            "done": 3, "done_late_before": 1, "done_late": 2,  # slow still late, quick late now
            "responded": 4, "responded_late_before": 2, "responded_late": 1, "changed": 2}
        now = {t: await ledger.get(t) for t in kept}
        assert [(now[t].done_late, now[t].responded_late) for t in now] == [
            (False, False), (True, False), (None, True), (True, False)]
        assert all((now[t].done_at, now[t].responded_at, now[t].updated_at)
                   == (kept[t].done_at, kept[t].responded_at, kept[t].updated_at) for t in kept)
        assert (await ledger.summary(start)).done_late == 2
        assert {t.ticket_id for t in await ledger.search(TicketQuery(done_late=True))} == {slow, quick}

        limit.update(days=10, hours=100)  # only what came in [1.5 days, 2 days) after the start: quick's 办结
        window = await ledger.rejudge(start + timedelta(days=1, hours=12), start + timedelta(days=2))
        assert (window.done, window.responded, window.changed) == (1, 0, 1)
        assert (await ledger.get(quick)).done_late is False
        assert (await ledger.get(slow)).done_late is True  # 2.5 days: outside
        later = await ledger.rejudge(start + timedelta(days=1))  # slow's 办结 and still's 签收; quick's is on time
        assert (later.done, later.responded, later.changed) == (2, 1, 2)
        assert [(t.done_late, t.responded_late) for t in [await ledger.get(slow), await ledger.get(still)]] == [
            (False, False), (None, False)]


async def test_without_a_time_limit_nothing_finished_is_late(ledger: LocalLedger, clock: FakeClock) -> None:
    """A ledger given no 办理时限 (or a ticket of a kind without one) is finished on time."""
    t = (await ledger.file(draft(), "a")).ticket_id
    clock.advance(days=400)
    await ledger.set_status(t, "accepted")
    assert (await ledger.set_status(t, "resolved")).done_late is False
    assert (await ledger.summary(clock.now - timedelta(days=1))).on_time_rate == 1.0


async def test_upgrade_from_0011_judges_the_tickets_finished_already(
    database_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """0012 reads each finished ticket's 办结 from its history (the last time it came to resolved or
    closed from an open status; a 撤单 none) and when a department first took each on, and judges
    both by the settings the upgrade runs with."""
    monkeypatch.setenv("HOTLINE_RESOLVE_WORKDAYS", "false")
    monkeypatch.setenv("HOTLINE_RESOLVE_DAYS", "3")
    monkeypatch.setenv("HOTLINE_RESOLVE_URGENT_HOURS", "24")
    monkeypatch.setenv("HOTLINE_RESPOND_HOURS", "12")  # taken on within 12 hours, urgent 2
    await asyncio.to_thread(upgrade_database, database_url, "0011")
    sqlite = "sqlite" in database_url

    def at(days: float) -> datetime:
        moment = clock.now + timedelta(days=days)
        return moment.replace(tzinfo=None) if sqlite else moment

    tickets = {  # number → (status, urgent, withdrawn, the steps after 已受理 as (status, days after filing))
        1: ("closed", False, False, [("accepted", 0.5), ("resolved", 2), ("closed", 5)]),  # on time, kept at 2
        2: ("resolved", False, False, [("accepted", 1), ("resolved", 1.5), ("reopened", 2), ("resolved", 4)]),  # late
        3: ("resolved", True, False, [("accepted", 0.1), ("resolved", 1.5)]),  # urgent: 24 hours, late
        4: ("closed", False, True, [("closed", 1)]),  # withdrawn
        5: ("processing", False, False, [("accepted", 1), ("processing", 2)]),  # open
    }
    engine = create_engine(sync_url(database_url))
    try:
        with engine.begin() as conn:
            for n, (status, urgent, withdrawn, steps) in tickets.items():
                pk = conn.execute(text(
                    "INSERT INTO tickets (ticket_id, idempotency_key, channel, conversation_key, contact, title, "
                    "description, category, request_type, urgent, location, departments, attachments, status, "
                    "rating, rating_comment, created_at, updated_at, place, withdrawn_at) VALUES (:id, :id, 'web', "
                    "'web:a', '', '', '路灯坏了', '[]', '', :urgent, '{}', '[]', '[]', :status, NULL, '', :at, :at, '', "
                    ":gone) RETURNING id"),
                    {"id": f"12345-20261127-00000{n}", "urgent": urgent, "status": status, "at": at(0),
                     "gone": at(1) if withdrawn else None}).scalar_one()
                for step, days in [("received", 0), *steps]:
                    conn.execute(text("INSERT INTO status_history (ticket_pk, status, note, at, kind) "
                                      "VALUES (:pk, :status, '', :at, :kind)"),
                                 {"pk": pk, "status": step, "at": at(days),
                                  "kind": "withdraw" if withdrawn and step == "closed" else "status"})
            conn.execute(text("INSERT INTO status_history (ticket_pk, status, note, at, kind) "  # a note resolves nothing
                              "VALUES (1, 'closed', '回访结束', :at, 'note')"), {"at": at(6)})
    finally:
        engine.dispose()
    await migrate(database_url)
    async with LocalLedger(database_url, clock=clock) as ledger:
        found = {n: await ledger.get(f"12345-20261127-00000{n}") for n in tickets}
    assert {n: (t.done_at, t.done_late) for n, t in found.items()} == {
        1: (clock.now + timedelta(days=2), False), 2: (clock.now + timedelta(days=4), True),
        3: (clock.now + timedelta(days=1.5), True), 4: (None, None), 5: (None, None)}
    assert {n: (t.responded_at, t.responded_late) for n, t in found.items()} == {  # the first step taken on
        1: (clock.now + timedelta(days=0.5), False), 2: (clock.now + timedelta(days=1), True),
        3: (clock.now + timedelta(days=0.1), True), 4: (None, None), 5: (clock.now + timedelta(days=1), True)}


async def test_a_ticket_taken_on_is_judged_in_time_or_late_once_and_counted(
    database_url: str, clock: FakeClock
) -> None:
    """响应 (签收): the first time a department takes a ticket on (accepted, or further) is kept and
    judged against its time to respond (a day here, an hour if urgent); a 改派 of a ticket never
    taken on counts as taken on then; one still not taken on past its time is 超时未签收 (found,
    and counted per unit) until it is, or is withdrawn; 响应率 = in time / (taken on + 超时未签收)."""
    await migrate(database_url)
    start = clock.now
    city, street = "城市管理和综合执法局", "洞井街道办事处"
    limits = Limits(respond=lambda t: t.created_at + (timedelta(hours=1) if t.urgent else timedelta(days=1)))
    async with LocalLedger(database_url, clock=clock, limits=limits) as ledger:
        quick = (await ledger.file(draft("web:a", departments=[city]), "a")).ticket_id
        slow = (await ledger.file(draft("web:b", departments=[city, street]), "b")).ticket_id
        waiting = (await ledger.file(draft("web:c", departments=[city]), "c")).ticket_id
        gas = (await ledger.file(draft("web:d", departments=[street], urgent=True), "d")).ticket_id
        bounced = (await ledger.file(draft("web:e", departments=[street]), "e")).ticket_id
        gone = (await ledger.file(draft("web:f", departments=[city]), "f")).ticket_id
        clock.advance(minutes=30)
        taken = await ledger.set_status(quick, "accepted")
        assert (taken.responded_at, taken.responded_late) == (clock.now, False)
        clock.advance(hours=1)  # the urgent one is late now, the others not yet
        query = TicketQuery(unanswered=True, unanswered_before=clock.now - timedelta(days=1),
                            unanswered_urgent_before=clock.now - timedelta(hours=1))
        assert [t.ticket_id for t in await ledger.search(query)] == [gas]
        await ledger.set_status(bounced, "returned", "非本单位职责")
        await ledger.withdraw(gone, "已自行解决")
        clock.advance(days=1)
        await ledger.set_status(slow, "accepted")
        assert (await ledger.get(slow)).responded_late is True
        await ledger.set_status(slow, "processing")
        assert (await ledger.get(slow)).responded_at == clock.now  # the first time only
        query = query.model_copy(update={"unanswered_before": clock.now - timedelta(days=1),
                                         "unanswered_urgent_before": clock.now - timedelta(hours=1)})
        assert {t.ticket_id for t in await ledger.search(query)} == {waiting, gas, bounced}  # never taken on
        by = {t.department: t for t in await ledger.department_tallies(query.model_copy(update={"since": start}))}
        assert (by[city].responded, by[city].responded_late, by[city].unanswered) == (2, 1, 1)
        assert by[city].respond_rate == 1 / 3  # quick in time; slow late; waiting not yet
        assert (by[street].responded, by[street].responded_late, by[street].unanswered) == (1, 1, 2)
        assert by[street].respond_rate == 0.0
        await ledger.correct(bounced, Correction(by="op1", departments=["供水公司"], reason="承办单位退回：非本单位职责"))
        assert (await ledger.get(bounced)).responded_at == clock.now  # sent out again: taken on now
        await ledger.set_status(waiting, "accepted")
        assert await ledger.count(query) == 1  # the urgent one alone
        no_limit = query.model_copy(update={"unanswered_before": None, "unanswered_urgent_before": None})
        assert await ledger.count(no_limit) == 0
