"""工单查询's CSV export for the centre's reports, written out a page at a time.

A month of a city taking 1.33 million requests a year is over 100,000 tickets: the file streams
from the ledger's keyset pages (``TicketClient.scan``) as it is written, so memory stays flat and
the first bytes leave at once, however long the period. It stops at ``LIMIT`` rows, under the
1,048,576 rows Excel opens, with a last line saying so; a ledger that fails mid-file ends it with
a line saying how far it got, instead of a file that looks whole. 疑似重复 is counted a page at a
time (one grouped count of its spots), as 工单查询 shows it. No phone numbers, descriptions
or senders: a report needs what and where and how it went, not who.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import anyio
import structlog
from fastapi.responses import Response, StreamingResponse

from config.workdays import BEIJING
from gateway.console import merging
from gateway.console.conversations import STATUS_LABELS
from ticket_client import deadlines
from ticket_client.base import (
    RATINGS,
    DepartmentTally,
    PlatformUnavailable,
    Ticket,
    TicketClient,
    TicketQuery,
)

if TYPE_CHECKING:
    from config.settings import Settings

log = structlog.get_logger(__name__)

COLUMNS = ("工单编号", "平台编号", "受理时间", "渠道", "标题", "分类", "诉求类型", "紧急", "地点",
           "承办部门", "状态", "签收时间", "办理时限", "延期", "超期", "即将超期", "办结时间", "超期办结", "催办次数", "评价", "并入工单",
           "疑似重复", "解决情况")
LIMIT = 1_000_000  # rows of one export: Excel opens at most 1,048,576
PAGE = 500  # tickets read from the ledger at a time
CUT = "（仅导出了最新的{n}条：请缩小受理时间或筛选条件后分次导出）"
BROKEN = "（导出中断：工单系统暂不可用，以上为已导出的{n}条，请稍后重新导出）"


@dataclass
class Tally:
    """How an export went, for its audit entry."""

    rows: int = 0
    cut: bool = False  # stopped at LIMIT with more left
    broken: bool = False  # the ledger failed part-way


def channel_names(settings: Settings) -> dict[str, str]:
    """What the centre calls each portal source (市政府网站留言板, 市长信箱), not "portal:liuyanban"."""
    return {f"portal:{n}": s.name for n, s in settings.portal.items() if s.name}


def beijing(at: datetime) -> str:
    return at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")


def row(t: Ticket, settings: Settings, names: dict[str, str], now: datetime, repeats: int = 0) -> list[object]:
    """One ticket as a line of the report, its 超期 flags at ``now`` (the same for the whole file),
    ``repeats`` its 疑似重复 (the other open tickets of 30 days at its spot, as 工单查询 shows them)."""
    due = deadlines.due_at(t, settings)
    return [
        t.ticket_id, t.platform_request_id or "", beijing(t.created_at), names.get(t.channel, t.channel),
        t.title, "/".join(t.category), t.request_type, "是" if t.urgent else "", t.location.text,
        "、".join(t.departments), STATUS_LABELS.get("withdrawn" if t.withdrawn_at else t.status, t.status),
        beijing(t.responded_at) if t.responded_at else "", beijing(due) if due else "", "是" if t.extended_until else "",
        "是" if deadlines.overdue(t, due, now) else "", "是" if deadlines.due_soon(t, due, now, settings) else "",
        beijing(t.done_at) if t.done_at else "", "是" if t.done_late else "",
        len(t.urges) or "", t.rating or "", t.merged_into or "", repeats or "",
        "" if t.solved is None else "已解决" if t.solved else "未解决",
    ]


def _csv(rows: Iterable[Sequence[object]]) -> str:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue()


Repeats = Callable[[list[Ticket]], Awaitable[dict[str, int]]]  # a page's 疑似重复 by ticket number


DEPARTMENT_COLUMNS = ("承办单位", "受理", "主办", "办结", "办结率", "超期办结", "按期办结率", "超期未办结", "退回次数",
                      "退回待改派", "催办未办结", "撤单", "延期", "已签收", "超时签收", "超时未签收", "响应率",
                      "回访参评", "满意", "基本满意", "不满意", "满意率", "已解决", "未解决", "解决率", "综合得分")


def _rate(x: float | None) -> str:
    return "" if x is None else f"{x * 100:.1f}%"


def _score(x: float | None) -> str:
    return "" if x is None else f"{x:.1f}"


def department_file(tallies: Sequence[DepartmentTally], days: int, now: datetime,
                    weights: Mapping[str, float], least: int = 0) -> Response:
    """承办单位考核 as a CSV file (a few hundred rows at most: written at once), for the centre's
    monthly 考核 report; the period in its name, 综合得分 by ``weights`` (HOTLINE_SCORE_WEIGHTS) of
    the units given ``least`` tickets or more (HOTLINE_SCORE_MIN_TICKETS)."""
    rows: list[Sequence[object]] = [DEPARTMENT_COLUMNS]
    rows += [[t.department, t.filed, t.primary, t.done, _rate(t.done_rate), t.done_late, _rate(t.on_time_rate),
              t.overdue, t.returns, t.returned, t.urged, t.withdrawn, t.extended,
              t.responded, t.responded_late, t.unanswered, _rate(t.respond_rate),
              t.rated, *(t.ratings.get(r, 0) for r in RATINGS), _rate(t.satisfaction),
              t.solved, t.unsolved, _rate(t.solved_rate), _score(t.score(weights, least))] for t in tallies]
    stamp = now.astimezone(BEIJING).strftime("%Y%m%d-%H%M")
    return Response("\ufeff" + _csv(rows), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="departments-{days}d-{stamp}.csv"',
                             "Cache-Control": "no-store"})


async def lines(
    first: list[Ticket], rest: AsyncIterator[list[Ticket]], settings: Settings, names: dict[str, str],
    now: datetime, tally: Tally, repeats: Repeats | None = None,
) -> AsyncIterator[str]:
    """The file: a byte-order mark (Excel reads UTF-8 only with it), the header, then one chunk
    per page, ``first`` (read before the response started, so a ledger that is down is a 503)
    and then the pages of ``rest``, each page's 疑似重复 counted at once (``repeats``)."""
    yield "\ufeff" + _csv([COLUMNS])
    none: list[Ticket] = []
    page = first
    try:
        while page:
            taken = page[: LIMIT - tally.rows]
            found = await repeats(taken) if repeats is not None else {}
            yield _csv(row(t, settings, names, now, found.get(t.ticket_id, 0)) for t in taken)
            tally.rows += len(taken)
            if tally.rows >= LIMIT:
                if page[len(taken):] or await anext(rest, none):  # more than LIMIT: say so
                    tally.cut = True
                    yield _csv([[CUT.format(n=LIMIT)]])
                return
            page = await anext(rest, none)
    except PlatformUnavailable as err:
        tally.broken = True
        log.warning("export_broken", rows=tally.rows, error=str(err))
        yield _csv([[BROKEN.format(n=tally.rows)]])


async def response(
    tickets: TicketClient, query: TicketQuery, settings: Settings, now: datetime,
    done: Callable[[Tally], Awaitable[None]],
) -> StreamingResponse:
    """The export of ``query`` as a streamed CSV download. The first page is read before the
    response starts (a ledger that is down is a 503, not an empty file); ``done`` hears how it
    went when the file ends, however it ends (a download cancelled part-way included)."""
    pages = tickets.scan(query, PAGE)
    first: list[Ticket] = await anext(pages, [])
    tally = Tally()

    async def body() -> AsyncIterator[str]:
        try:
            async for chunk in lines(first, pages, settings, channel_names(settings), now, tally,
                                     lambda page: merging.repeats(tickets, page, now)):
                yield chunk
        finally:
            with anyio.CancelScope(shield=True):
                await pages.aclose()
                await done(tally)

    stamp = now.astimezone(BEIJING).strftime("%Y%m%d-%H%M")
    return StreamingResponse(body(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="tickets-{stamp}.csv"',
                                      "Cache-Control": "no-store"})
