"""How long the console's 工单查询 takes on a ledger of a city's size.

    python bench/ticket_search.py [--tickets 200000] [--database-url URL] [--repeat 5]

Fills a new ledger (a SQLite file in a temporary folder, or a fresh schema of the PostgreSQL
database at URL) with N tickets spread over the last year, oldest first as they would have been
filed, their titles and descriptions taken in turn from the real messages of
``../shared/data/messages.csv`` (made-up lines when it is not there), each with a made-up phone
number. Then it times ``LocalLedger.search`` the way operators use it and prints, per query, the
median of ``--repeat`` runs and how many tickets the first page held (for the 疑似重复 counts
of a page: how many of its spots hold more than one open ticket; for 承办单位考核: how many units;
first, 承办单位工作台 for a busy department and a street office).
Each ticket names three units (two of 14 departments and one of 40 street offices) and one of
eight kinds of 城乡建设 (for 热点诉求), with its steps in the history (受理, 签收, 办结, 归档); of the done ones
four in five were rated (满意, 基本满意, 不满意), a third said 已解决 and one in fifty 未解决, and one in
eight was finished late (超期办结) and one in ten taken on late (超时签收); one in
thirty was returned by its 主办 a day after filing and 改派'd to another unit (承办单位考核's 退回). Each ticket is about one of
N/4 made-up estates, so about one in seven of a month's tickets shares its spot with another. The 12345 centre of our
source material took 1.33 million requests in a year: ``--tickets 1330000`` is that year.

A word is matched anywhere in six columns (``ILIKE '%word%'``), which no ordinary index serves:
the newest-first order lets a common word stop at the first page, while a word that matches
nothing reads every ticket in the period; the period (``days``) bounds that.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, insert, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from config.settings import Settings  # noqa: E402
from gateway.console.unit import COUNTED  # noqa: E402
from ticket_client import deadlines  # noqa: E402
from ticket_client.base import TicketQuery  # noqa: E402
from ticket_client.db import sync_url, upgrade_database  # noqa: E402
from ticket_client.ledger import Limits, LocalLedger  # noqa: E402
from ticket_client.models import RevisionRow, StatusHistoryRow, TicketRow  # noqa: E402

MESSAGES = ROOT.parent / "shared" / "data" / "messages.csv"
BATCH = 10_000
CHANNELS = ("wechat_oa", "wechat_mp", "web", "email", "portal:liuyanban", "telegram")
UNITS = ("城市管理和综合执法局", "住房和城乡建设局", "生态环境局", "市场监督管理局", "交通运输局", "公安局",
         "人力资源和社会保障局", "教育局", "水务局", "供电公司", "燃气公司", "民政局", "卫生健康委员会", "自然资源和规划局")
STREETS = 40  # the street offices and townships a ticket's 属地 unit is one of
# second levels of 城乡建设 (the first level stays one, so the 疑似重复 spots are as before)
RATED = ("满意", "满意", "基本满意", "不满意", None)  # the 回访 of a done ticket, or none given
KINDS = ("城市建设和市政管理", "住房保障", "城乡规划", "安全生产", "国有土地上房屋征收与补偿", "建筑市场", "房地产管理", "")


def texts() -> list[tuple[str, str]]:
    """(title, description) pairs: the real board messages, or made-up ones without the data."""
    if MESSAGES.exists():
        with open(MESSAGES, encoding="utf-8-sig", newline="") as fh:
            rows = [(r["留言主题"].strip(), r["留言详情"].strip()[:1000]) for r in csv.DictReader(fh)]
        return [row for row in rows if row[0] and row[1]]
    places = ["联丰路", "书院路", "安坪镇", "米兰春天小区", "在水一方大厦"]
    matters = ["路灯不亮", "夜间施工噪音扰民", "垃圾未及时清运", "小区停水", "占道经营"]
    return [(f"{p}{m}", f"{p}附近{m}，已经好几天了，请尽快处理。") for p in places for m in matters]


def fill(database_url: str, n: int, seed: int = 1) -> list[tuple[str, str]]:
    """N tickets straight into the tables (filing them one by one would take an hour); returns
    (ticket number, phone) of a few, to look up."""
    rng = random.Random(seed)
    pairs = texts()
    url = sync_url(database_url)
    engine = create_engine(url)
    end = datetime.now(UTC)
    start = end - timedelta(days=365)
    step = timedelta(days=365) / n
    picked: list[tuple[str, str]] = []
    daily: dict[str, int] = {}  # each day's numbers start again at 000001, as the ledger's do
    spots = max(n // 4, 1)
    with engine.begin() as conn:
        for first in range(0, n, BATCH):
            tickets, history, revisions = [], [], []
            for i in range(first, min(n, first + BATCH)):
                at = start + step * i
                day = at.strftime("%Y%m%d")
                daily[day] = daily.get(day, 0) + 1
                number = f"12345-{day}-{daily[day]:06d}"
                phone = f"1{rng.choice('3578')}{rng.randrange(10**9):09d}"
                title, description = pairs[i % len(pairs)]
                spot = f"小区{rng.randrange(spots)}"  # a month's tickets: about one in seven shares its spot
                status = "closed" if at < start + timedelta(days=330) else rng.choice(["accepted", "processing", "resolved"])
                # 办结 within 12 days, or (one in eight) after 20 to 30: 超期办结 past 15 working days
                took = timedelta(days=rng.uniform(20, 30) if i % 8 == 3 else rng.uniform(0.5, 12))
                done = status in ("resolved", "closed")
                tickets.append({
                    "id": i + 1, "ticket_id": number, "idempotency_key": f"bench:{i}",
                    "channel": CHANNELS[i % len(CHANNELS)], "conversation_key": f"web:bench{i}", "contact": phone,
                    "title": title[:60], "description": description, "category": ["城乡建设", kind] if (kind := rng.choice(KINDS)) else ["城乡建设"],
                    "request_type": "投诉",
                    "urgent": i % 50 == 0, "location": {"text": spot, "parts": {"community": spot}}, "place": spot,
                    "departments": [rng.choice(UNITS), rng.choice(UNITS), f"街道{rng.randrange(STREETS)}办事处"],
                    "attachments": [],
                    "status": status, "rating": rng.choice(RATED) if done else None, "rating_comment": "", "created_at": at, "updated_at": at,
                    "done_at": min(at + took, end) if done else None, "done_late": took > timedelta(days=21) if done else None,
                    # 签收 within the hour, or (one in ten) after 30 hours: 超时签收
                    "responded_at": at + timedelta(hours=30 if i % 10 == 5 else 1), "responded_late": i % 10 == 5,
                    # 回访: a third of the done ones said 已解决, one in fifty 未解决 (the 回访未解决 card)
                    "solved": (None if status not in ("resolved", "closed") or (roll := rng.random()) >= 0.353
                               else roll >= 0.02),
                })
                history.append({"ticket_pk": i + 1, "status": "received", "note": "", "at": at})
                # its steps: taken on; a done one's 办结 (and 归档 a day after) follow below, as 服务质量 reads them
                history.append({"ticket_pk": i + 1, "status": "accepted", "note": "", "at": tickets[-1]["responded_at"]})
                if i % 30 == 7:  # returned by its 主办 the next day, then 改派'd to another unit
                    units = tickets[-1]["departments"]
                    after = UNITS[(UNITS.index(units[0]) + 1) % len(UNITS)]
                    tickets[-1]["departments"] = [after, *units[1:]]
                    back = at + timedelta(days=1)
                    history += [{"ticket_pk": i + 1, "status": "returned", "note": "非本单位职责", "at": back},
                                {"ticket_pk": i + 1, "status": "accepted", "note": f"已改派至{after}",
                                 "at": back + timedelta(hours=1)}]
                    revisions.append({"ticket_pk": i + 1, "at": back + timedelta(hours=1), "by": "bench",
                                      "reason": "承办单位退回：非本单位职责", "dispatched": True,
                                      "before": {"departments": units}, "after": {"departments": tickets[-1]["departments"]}})
                if done:  # after the return and the 改派, if any
                    history.append({"ticket_pk": i + 1, "status": "resolved", "note": "", "at": tickets[-1]["done_at"]})
                if status == "closed":
                    history.append({"ticket_pk": i + 1, "status": "closed", "note": "",
                                    "at": tickets[-1]["done_at"] + timedelta(days=1)})
                if i % (n // 5 or 1) == 0:
                    picked.append((number, phone))
            conn.execute(insert(TicketRow), tickets)
            conn.execute(insert(StatusHistoryRow), history)
            conn.execute(insert(RevisionRow), revisions)
            print(f"\r  filled {min(n, first + BATCH):,} / {n:,}", end="", file=sys.stderr, flush=True)
        if url.get_backend_name() == "postgresql":
            conn.execute(text("ANALYZE"))
    print(file=sys.stderr)
    engine.dispose()
    return picked


async def measure(database_url: str, picked: list[tuple[str, str]], repeat: int) -> None:
    number, phone = picked[len(picked) // 2]
    queries: list[tuple[str, TicketQuery]] = [
        ("latest page, no words", TicketQuery()),
        ("whole number", TicketQuery(text=number)),
        ("number's tail (one a day)", TicketQuery(text=number[-6:])),
        ("date and tail", TicketQuery(text=number[-15:])),
        ("whole phone number", TicketQuery(text=phone)),
        ("common word 噪音", TicketQuery(text="噪音")),
        ("two words 小区 物业", TicketQuery(text="小区 物业")),
        ("status 已办结 only", TicketQuery(status="resolved")),
        ("word found nowhere, all time", TicketQuery(text="无此词语")),
        ("word found nowhere, 90 days", TicketQuery(text="无此词语", since=datetime.now(UTC) - timedelta(days=90))),
        ("phone, 90 days", TicketQuery(text=phone, since=datetime.now(UTC) - timedelta(days=90))),
        ("承办部门 街道7办事处, 90 days", TicketQuery(department="街道7办事处", since=datetime.now(UTC) - timedelta(days=90))),
        ("超期办结 only, 90 days", TicketQuery(done_late=True, since=datetime.now(UTC) - timedelta(days=90))),
        ("疑似重复 only (30 days)", TicketQuery(repeated_since=datetime.now(UTC) - timedelta(days=30))),
        ("疑似重复 only, 90 days", TicketQuery(repeated_since=datetime.now(UTC) - timedelta(days=30),
                                              since=datetime.now(UTC) - timedelta(days=90))),
    ]
    ledger = LocalLedger(database_url)
    try:
        print(f"{'query':34} {'median ms':>10} {'found':>6}")
        await measure_unit(ledger, repeat)
        for name, query in queries:
            times, found = [], 0
            for _ in range(repeat):
                began = time.perf_counter()
                found = len(await ledger.search(query))
                times.append((time.perf_counter() - began) * 1000)
            print(f"{name:34} {statistics.median(times):10.1f} {found:6d}")
        # 疑似重复 on a page of the newest tickets: one grouped count of their spots (open_at)
        page = await ledger.search(TicketQuery(limit=50))
        times = []
        for _ in range(repeat):
            began = time.perf_counter()
            counts = await ledger.open_at([t.spot() for t in page], datetime.now(UTC) - timedelta(days=30))
            times.append((time.perf_counter() - began) * 1000)
        name = "疑似重复 counts of a 50-row page"
        print(f"{name:34} {statistics.median(times):10.1f} {sum(n > 1 for n in counts.values()):6d}")
        # 承办单位考核: every unit of a period's tickets, counted in one pass (found: units), 超期 and
        # 超时未签收 by the default limits, as the console asks
        settings = Settings()
        for days in (30, 90):
            times = []
            for _ in range(repeat):
                began = time.perf_counter()
                now = datetime.now(UTC)
                tallies = await ledger.department_tallies(TicketQuery(
                    since=now - timedelta(days=days), **deadlines.late_filter(settings, now, overdue=True, due_soon=False),
                    **deadlines.unanswered_filter(settings, now)))
                times.append((time.perf_counter() - began) * 1000)
            name = f"承办单位考核, {days} days"
            print(f"{name:34} {statistics.median(times):10.1f} {len(tallies):6d}")
        # 回访未解决 (a card of the 班长视图, counted at each refresh): said 未解决, still done (found: count)
        times, redo = [], 0
        for _ in range(repeat):
            began = time.perf_counter()
            redo = await ledger.count(TicketQuery(solved="redo"))
            times.append((time.perf_counter() - began) * 1000)
        name = "回访未解决 card (count)"
        print(f"{name:34} {statistics.median(times):10.1f} {redo:6d}")
        # 超期未办结 and 即将超期 (班长视图 cards, counted at each refresh, by the default limits)
        for card, late in (("超期未办结", True), ("即将超期", False)):
            times, n = [], 0
            for _ in range(repeat):
                began = time.perf_counter()
                n = await ledger.count(TicketQuery(**deadlines.late_filter(settings, datetime.now(UTC), overdue=late,
                                                                           due_soon=not late)))
                times.append((time.perf_counter() - began) * 1000)
            name = f"{card} card (count)"
            print(f"{name:34} {statistics.median(times):10.1f} {n:6d}")
        # 服务质量 (the 班长视图 reads today's, 7 days' and 30 days' at each refresh; found: 超期办结)
        for days in (7, 30):
            times, late = [], 0
            for _ in range(repeat):
                began = time.perf_counter()
                late = (await ledger.summary(datetime.now(UTC) - timedelta(days=days))).done_late
                times.append((time.perf_counter() - began) * 1000)
            name = f"服务质量 summary, {days} days"
            print(f"{name:34} {statistics.median(times):10.1f} {late:6d}")
        # 热点诉求: a week's or a month's kinds against the period before, and its spots (found: rows)
        for days in (7, 30):
            since = datetime.now(UTC) - timedelta(days=days)
            for what in ("kinds", "spots"):
                times, rows = [], 0
                for _ in range(repeat):
                    began = time.perf_counter()
                    rows = len(await ledger.category_trends(since, datetime.now(UTC)) if what == "kinds"
                               else await ledger.hotspots(since))
                    times.append((time.perf_counter() - began) * 1000)
                name = f"热点诉求 {what}, {days} days"
                print(f"{name:34} {statistics.median(times):10.1f} {rows:6d}")
    finally:
        await ledger.close()
    # hotline admin rejudge of a month by the default limits (once: it writes what it changes; found:
    # changed), after a year's 放假安排 was added
    settings = Settings()
    judging = LocalLedger(database_url, limits=Limits(due=lambda t: deadlines.due_at(t, settings),
                                                      respond=lambda t: deadlines.respond_by(t, settings)))
    try:
        began = time.perf_counter()
        found = await judging.rejudge(datetime.now(UTC) - timedelta(days=30))
        name = "rejudge 30 days (once)"
        print(f"{name:34} {(time.perf_counter() - began) * 1000:10.1f} {found.changed:6d}")
    finally:
        await judging.close()


async def measure_unit(ledger: LocalLedger, repeat: int) -> None:
    """承办单位工作台 for a busy department (one in seven of the tickets name it) and a street office
    (one in forty): its lists' counts (six, as the page asks), its newest page of all and of the
    open ones, and 本单位考核 of 30 and 90 days (its tickets only; found: its 受理)."""
    for unit, short in ((UNITS[0], "busy unit"), ("街道7办事处", "street office")):
        await measure_one_unit(ledger, repeat, unit, short)


async def measure_one_unit(ledger: LocalLedger, repeat: int, unit: str, short: str) -> None:
    settings = Settings()

    async def timed(name: str, work: Any) -> None:
        times, found = [], 0
        for _ in range(repeat):
            began = time.perf_counter()
            found = await work()
            times.append((time.perf_counter() - began) * 1000)
        print(f"{name:34} {statistics.median(times):10.1f} {found:6d}")

    def query(**narrowed: Any) -> TicketQuery:
        now = datetime.now(UTC)
        late = deadlines.late_filter(settings, now, overdue=bool(narrowed.pop("overdue", False)),
                                     due_soon=bool(narrowed.pop("due_soon", False)))
        return TicketQuery(department=unit, main_only=True, **narrowed, **late)

    async def counts() -> int:
        return sum([await ledger.count(query(**v)) for v in COUNTED.values()])

    async def page(**narrowed: Any) -> int:
        return len(await ledger.search(query(**narrowed).model_copy(update={"limit": 51})))

    async def own(days: int) -> int:
        now = datetime.now(UTC)
        found = await ledger.department_tallies(TicketQuery(
            since=now - timedelta(days=days), department=unit,
            **deadlines.late_filter(settings, now, overdue=True, due_soon=False),
            **deadlines.unanswered_filter(settings, now)), 1)
        return found[0].filed if found else 0

    await timed(f"工作台 {short}: {len(COUNTED)} list counts", counts)
    await timed(f"工作台 {short}: 全部, first page", page)
    await timed(f"工作台 {short}: 未办结, first page", lambda: page(status="open"))
    for days in (30, 90):
        await timed(f"工作台 {short}: 本单位考核 {days} days", lambda days=days: own(days))


@contextmanager
def ledger_database(postgres_url: str) -> Iterator[str]:
    """A new, migrated ledger: a fresh schema of the PostgreSQL database at ``postgres_url``
    (dropped afterwards), or a SQLite file in a temporary folder when it is empty."""
    with tempfile.TemporaryDirectory() as folder:
        if not postgres_url:
            database_url = f"sqlite+aiosqlite:///{Path(folder) / 'ledger.sqlite3'}"
            upgrade_database(database_url)
            yield database_url
            return
        schema = f"bench_{uuid4().hex[:12]}"
        admin = create_engine(sync_url(postgres_url))
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            url = make_url(postgres_url).update_query_dict({"options": f"-csearch_path={schema}"})
            database_url = url.render_as_string(hide_password=False)
            upgrade_database(database_url)
            yield database_url
        finally:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=200_000, help="tickets in the ledger (default 200,000)")
    parser.add_argument("--database-url", default="", help="PostgreSQL URL (a fresh schema is made and dropped); "
                        "default: a SQLite file in a temporary folder")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each query (the median is printed)")
    args = parser.parse_args()
    with ledger_database(args.database_url) as database_url:
        began = time.perf_counter()
        picked = fill(database_url, args.tickets)
        print(f"{args.tickets:,} tickets ({'PostgreSQL' if args.database_url else 'SQLite'}) filled in "
              f"{time.perf_counter() - began:.0f} s; {args.repeat} runs per query")
        asyncio.run(measure(database_url, picked, args.repeat))


if __name__ == "__main__":
    main()
