"""A short ticket title (≤ 20 characters) saying what and where, like a citizen's 留言主题."""

from __future__ import annotations

import re

from .base import Location

MAX_LEN = 20
_CLAUSE = re.compile(r"[^，,。.！!？?；;：:\n]+")
_OPENERS = re.compile(
    r"^(?:尊敬的[^，,。]{0,12}(?:领导|书记|市长|县长|区长|局长|主任|同志|工作人员)?(?:[，,：:]?(?:你们|您)?好)?|"
    r"(?:各位)?领导(?:你们|您)?好|(?:你们|您|你)好|我是[^，,。]{0,20}|本人[^，,。]{0,10}|我们是[^，,。]{0,20}|"
    r"现(?:向|将)?.{0,6}反映.{0,6}|特此反映|在此|今天|昨天|最近|近日|近期|目前|现在)"
)
_PROBLEM = re.compile(
    r"投诉|举报|反映|咨询|建议|求助|请求|问题|乱|违|噪|扰民|污染|拖欠|不|没有|未|无法|难|坏|破|堵|漏|臭|脏|占|"
    r"收费|补贴|补偿|工资|社保|医保|公积金|学校|入学|户口|拆迁|物业|停车|施工|垃圾|油烟|安全|隐患|怎么|如何|能否|是否"
)
_FILLER = re.compile(r"^(?:请问|你好|您好|我想|我要|想|关于|有关)|(?:的问题|问题|的情况|情况|一事|事宜)$")


def _clauses(text: str) -> list[str]:
    return [c.strip() for c in _CLAUSE.findall(text) if len(c.strip()) >= 4]


def first_clause(text: str) -> str:
    """The baseline: the first clause of the detail, cut to 20 characters."""
    cs = _clauses(text)
    return (cs[0] if cs else text.strip())[:MAX_LEN]


def make_subject(text: str, location: Location | None = None, title: str = "") -> str:
    """Title if the channel gave one; else where (short) + the first clause that states a problem."""
    if title and title.strip():
        return title.strip()[:MAX_LEN]
    text = (text or "").strip()[:2000]
    if not text:
        return ""
    clauses = []
    for c in _clauses(text)[:8]:
        c2 = _OPENERS.sub("", c).strip()
        if len(c2) >= 4:
            clauses.append(c2)
    if not clauses:
        return text[:MAX_LEN]
    what = next((c for c in clauses if _PROBLEM.search(c)), clauses[0])
    what = _FILLER.sub("", what).strip() or what
    where = ""
    if location and location.found:
        where = location.district or location.city
        place = location.community or location.landmark or location.road or location.town
        if place and place not in what:
            where = (where + place) if where and len(where + place) <= 10 else place
        elif where in what:
            where = ""
    subj = what if (not where or where in what) else where + what
    return subj[:MAX_LEN]
