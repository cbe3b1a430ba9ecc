"""Exact rules for the dialogue acts a chat turn carries: ticket numbers as people type them,
satisfaction ratings in their own words, progress questions without a number, corrections.

Round 12: turns written by people who never saw this code (``nlu/data/eval/intent_written_*``)
showed the classifier alone missing these. Citizens copy a ticket number with spaces, dashes of
another width or no separators at all; answer the satisfaction survey with 还行吧, 👍 or 糊弄谁呢
rather than the three words offered; ask 昨天报的那个有人接了没 without a number; and correct a
draft with 不是3栋 是5栋, which opens like a "no".
"""

from __future__ import annotations

import re

# prefix (the hotline's, e.g. 12345), a date, a serial: 12345-20261127-000123
_DATE = r"20\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
_SEP = r"[ \t]*[-—–_－][ \t]*|[ \t]+"
_TICKET_PARTS = re.compile(
    rf"(?<![A-Za-z0-9])([A-Za-z0-9]{{2,10}}?)(?:{_SEP})({_DATE})(?:{_SEP})(\d{{3,8}})(?![A-Za-z0-9])"
)
# the same without separators needs the whole serial (an ID number holds a date too: 6 + 8 + 4)
_TICKET_RUN = re.compile(rf"(?<![A-Za-z0-9])([A-Za-z0-9]{{2,10}}?)({_DATE})(\d{{6}})(?![A-Za-z0-9])")
# a number with the ticket's shape but a mistyped date: kept as typed, so the bot can say it was
# not found instead of listing every ticket
_TICKET_LIKE = re.compile(r"(?<![A-Za-z0-9])[A-Za-z0-9]{2,10}[-—–_－]\d{6,9}[-—–_－]\d{3,8}(?![A-Za-z0-9])")
# a run of digits that the words around it call a ticket number ("工单号123452026112000031查询",
# "我的工单000123"): kept as typed; a bare ID or phone number is never read as one
_TICKET_WORDED = re.compile(
    r"(?<![订运递证账])(?:工单|单号|编号)(?:号|编号)?[:：]?\s*([A-Za-z0-9]{6,22})(?![A-Za-z0-9])|"
    r"(?<![A-Za-z0-9])([A-Za-z0-9]{6,22})\s*(?:号)?(?:查询|的进度|的办理)"
)


# letters typed for the digits they look like (O for 0, I and l for 1), inside a run of digits
# that holds no other letter: "2026II27", "OOO123"; a word such as "Hello" is left alone
_LOOKALIKE_RUN = re.compile(r"(?<![A-Za-z])[0-9OoIl]*[0-9][0-9OoIl]*(?![A-Za-z])")
_LOOKALIKE = str.maketrans("OoIl", "0011")


def digits_for_lookalikes(text: str) -> str:
    """``text`` with O/o and I/l read as 0 and 1 inside runs of digits (same length, so positions
    still point into the text as typed)."""
    if not any(c in text for c in "OoIl"):
        return text
    return _LOOKALIKE_RUN.sub(lambda m: m.group().translate(_LOOKALIKE), text)


def ticket_ids(text: str) -> list[tuple[str, int, int]]:
    """(value, start, end) of each ticket number; the value in the ledger's form P-YYYYMMDD-NNN.
    Letters typed for look-alike digits count as those digits ("12345-2026II27-OOO123")."""
    found: list[tuple[str, int, int]] = []
    taken: list[tuple[int, int]] = []
    text = digits_for_lookalikes(text)
    for pattern in (_TICKET_PARTS, _TICKET_RUN, _TICKET_LIKE):
        for m in pattern.finditer(text):
            if any(m.start() < e and s < m.end() for s, e in taken):
                continue
            value = "-".join(m.groups()) if m.groups() else re.sub(r"[—–_－]", "-", m.group())
            found.append((value, m.start(), m.end()))
            taken.append((m.start(), m.end()))
    for m in _TICKET_WORDED.finditer(text):
        g = 1 if m.group(1) else 2
        s, e = m.start(g), m.end(g)
        if not any(s < e2 and s2 < e for s2, e2 in taken) and any(ch.isdigit() for ch in m.group(g)):
            found.append((m.group(g), s, e))
            taken.append((s, e))
    return sorted(found, key=lambda f: f[1])


def ticket_key(number: str) -> str:
    """A ticket number without its separators: how two spellings of it compare."""
    return re.sub(r"[^A-Za-z0-9]", "", number)


def same_ticket(a: str, b: str) -> bool:
    return ticket_key(a) == ticket_key(b)


# The three answers the survey offers, with the negations and typos people use (唔/冇: Cantonese).
_RATING_WORDS = re.compile(
    r"非常满意|很满意|基本满意|基本上满意|很不满意|非常不满意|不太满意|不怎么满意|不大满意|"
    r"不满意|唔满意|冇满意|没满意|满意|满义|满以"
)
# Said in answer to the survey only (the bot is expecting a rating): 不满意 is tried first, since
# its cues hold words of the others (不好 holds 好).
_SOFT_RATINGS = (
    (
        "不满意",
        re.compile(
            r"差评|不行|不咋地|不咋样|不怎么样|不好|太差|很差|真差|没解决|没有解决|冇解决|没修好|冇搞掂|"
            r"没人来|冇人嚟|糊弄|敷衍|应付|一星|1星|零分|0分|太垃圾|真垃圾|垃圾效率|👎|形式主义|白报|没用|冇用"
        ),
    ),
    ("基本满意", re.compile(r"还行|还可以|还好吧|一般|凑合|马马虎虎|差不多|还中|过得去|勉强|将就|还算")),
    (
        "满意",
        re.compile(
            r"好评|点赞|👍|非常好|很好|好得很|挺好|真好|不错|五星|5星|⭐|棒|给力|赞|谢谢你们|感谢|解决了|修好了|搞掂"
        ),
    ),
)


def rating_of(text: str, expecting: bool) -> tuple[str, int, int] | None:
    """(满意 | 基本满意 | 不满意, start, end) of the rating a turn gives, if it gives one. Without
    the survey pending only the survey's own words count; with it, words of judgement count where
    they open the turn or make up most of it, so that a new complaint sent meanwhile ("楼下油烟
    熏得人不行") is not taken for a verdict on the old ticket."""
    m = _RATING_WORDS.search(text)
    if m:
        v = m.group()
        value = "不满意" if re.search("不|唔|冇|没", v) else "基本满意" if "基本" in v else "满意"
        return value, m.start(), m.end()
    if expecting:
        lead = len(text) - len(text.lstrip())
        if short := SHORTHAND_RATINGS.get(text.strip().lower()):  # "jbmy"
            return short, lead, len(text.rstrip())
        for soft, pattern in _SOFT_RATINGS:
            sm = pattern.search(text)
            if sm and (sm.start() - lead <= SOFT_LEAD or len(text.strip()) <= SOFT_WHOLE):
                return soft, sm.start(), sm.end()
    return None


SOFT_LEAD = 4  # characters before a word of judgement that still open the turn ("根本没人来")
SOFT_WHOLE = 10  # a turn this short is all answer


# A question about something reported before: a reference to it and a question about its state.
_EARLIER = re.compile(
    r"上次|之前|以前|前几天|前两天|前天|昨天|昨儿|上周|上礼拜|上星期|上个礼拜|上个星期|上个月|上月|早前|先前|说好|"
    r"那个单|单子|工单|我那个|俺那个|我嘅|我的那个|报的|报嘅|报过|反映的|反应的|投诉的|提交的|留言的|登记的|"
    # the days waited since: "都三天了", "都三日啦"
    r"都[一二三四五六七八九十两几\d]+[天日]"
)
_STATE_QUESTION = re.compile(
    r"咋样了|怎么样了|怎样了|如何了|点样|进展|进度|有信儿|有信没|有消息|有结果|有回复|有回音|回复了没|"
    r"处理了没|处理没|办了没|办好没|解决了没|到哪|哪一步|边一步|有人接|转给谁|谁在管|啥情况|什么情况|"
    r"怎么还没|咋还没|还没人|冇人理|仲未|有动静|没动静|一点动静|有人管没|有没有人管|有没有人处理|有人处理|"
    r"修了没|能查|查一下|查下|转到哪|派给|谁负责|是否已|处理了伐|处理中|在处理|还在办|"
    # Cantonese "… yet?": "派咗单未", "办咗未", "搞掂未"; and who follows it up
    r"咗[^，,。]{0,3}未|掂未|有冇人跟进|有没有人跟进|有人跟进|跟进了没|跟进没"
)


def asks_progress(compact: str) -> bool:
    """A progress question without a ticket number ("昨天报的那个有人接了没")."""
    if not _STATE_QUESTION.search(compact):
        return False
    return bool(_EARLIER.search(compact)) or len(compact) <= 8


# 催办: the citizen presses for a ticket to be done, not only asks how it stands: impatience
# ("怎么还没人来", "都一个星期了", "石沉大海") or the asking itself ("催一下", "尽快处理").
_URGE = re.compile(
    r"催办|催[一1]?下|催[一1]催|催催|帮我催|给我催|再催|催促|"
    r"尽快|赶紧|赶快|抓紧|快点|快些|加快|早点|"
    r"怎么还没|咋还没|为什么还没|为啥还没|怎么到现在|到现在还|到现在都|至今还|至今没|还是没|"
    r"还没人|还没有人|没人理|没人管|不理人|有没有人管|没动静|一点动静|没有动静|石沉大海|没下文|没有下文|"
    r"拖了|拖着|一直没|一直不|[一二三四五六七八九十两几半\d]+(?:个)?(?:天|日|周|星期|礼拜|月)(?:了|啦|多了)"
)
# …but not a neutral question about its state ("到哪一步了", "有进展吗")
_NOT_URGE = re.compile(r"^(?:请问|麻烦问一下|问一下|想问下?)?[^，,]{0,6}(?:进展|进度|到哪|哪一步)[^，,]{0,4}$")


def urges(compact: str) -> bool:
    """A push for a ticket already filed (催办), not just a question about it: the caller knows
    the turn is about the citizen's own ticket (a progress question, or its number)."""
    return bool(_URGE.search(compact)) and not _NOT_URGE.match(compact)


# 补充: more about a matter already reported, as the turn opens ("补充一下，是南门口那盏", "忘了说
# 晚上才停"); 补充 alone must stand apart ("补充医疗保险怎么报销" asks about an insurance)
_SUPPLEMENT = re.compile(
    r"^(?:我|俺)?(?:再|还|还要|还想|想|要|需要)?(?:补充(?:一下|一点|几句|两句|一句|说明|个情况|下|(?=[，,。：:！!\s]|$))|补(?:一句|两句|几句))"
    r"|^(?:刚才|刚刚|之前)?(?:忘了|忘记|漏了)(?:说|讲|写)(?:一下|了)?"
)
_LEAD = re.compile(r"^[，,。：:！!、\s]+")


def supplements(text: str) -> str | None:
    """What a 补充 adds ("" when it only announces one: "我想补充一下"), or None when the turn
    does not open as one."""
    found = _SUPPLEMENT.match(text.strip())
    if found is None:
        return None
    return _LEAD.sub("", text.strip()[found.end():]).strip()


# Only the wish to report, nothing of the matter yet: "我要反映问题", "我想投诉", "我要举报一个情况",
# "反映个事", "有个问题想反映一下" (the menu's 我要反映 says the same).
_WANTS_TO_REPORT = re.compile(
    r"^(?:你好|您好)?(?:我|俺|我们)?(?:要|想|想要|需要|来)?(?:反映|反馈|投诉|举报|报告|上报|报修|求助|提(?:个|一个|点)?建议|建议)"
    r"(?:一下|一个|个|点|几个|一些)?(?:问题|情况|事情?|事儿)?"
    r"|^(?:我|俺)?有(?:个|一个|点|件)(?:问题|情况|事情?|事儿)(?:想|要|需要)?(?:反映|反馈|投诉|举报|求助)(?:一下)?"
)


# How to use the bot, asked in so many words: "帮助", "怎么用", "你能做什么", "有什么功能", "菜单".
_HELP = re.compile(
    r"(?:使用)?帮助|使用说明|说明|菜单|功能|(?:这个)?(?:怎么|如何|咋)(?:用|使用|操作)|"
    r"(?:你|您|机器人)?(?:能|会|可以)(?:做|干|帮我做|帮我干|办)(?:些|点)?(?:什么|啥)(?:事|事情)?|(?:有|都有)(?:什么|哪些|啥)功能|help|\?|？"
)


def asks_for_help(compact: str) -> bool:
    """The turn asks how to use the bot, and nothing else: the bot says what it does."""
    return bool(_HELP.fullmatch(compact.strip("。.!！~～，, ").lower()))


# The menu's 常见问题 typed (or sent by the web widget's menu): the list of common questions.
_FAQ = re.compile(r"(?:看看)?(?:常见|热门|常问)(?:问题|问答)(?:列表)?|问题列表|faq", re.I)


def asks_for_faq(compact: str) -> bool:
    """The turn asks for the list of common questions (常见问题), and nothing else."""
    return bool(_FAQ.fullmatch(compact.strip("。.!！~～，, ")))


def wants_to_report(compact: str) -> bool:
    """The turn only says the citizen wants to report something: the bot asks what, instead of
    drafting "我要反映问题" as the matter."""
    return bool(_WANTS_TO_REPORT.fullmatch(compact.strip("。.!！~～?？，, ")))


# Giving a draft up, as the turn opens: "算了不报了", "不用了 我自己找物业去吧", "唔使啦 取消".
GIVE_UP = re.compile(
    r"^(?:算了|算啦|算球了?|不用了|不要了|唔要了|不报了|先不报|不想报了|不反映了|不登记了|不弄了|不搞了|唔报|唔搞|唔使|"
    r"别报|不要登记|不用登记|取消)"
)


# A correction of a draft: "not X but Y", a changed word, a number.
_CORRECTION = re.compile(
    r"不是.{0,20}是|是.{1,20}不是|改成|改为|改到|改下|改一下|应该是|写上|加上|补充|再加|打错|写错|\d"
)


def corrects(compact: str) -> bool:
    return bool(_CORRECTION.search(compact))


# A new matter raised while another is being drafted ("另外想问问…", "还有个事…").
_ANOTHER = re.compile(
    r"^(?:哦?对了)?(?:另外(?:想|问|我想|我要|还有个|一个|一件)|还有个事|还有一个事|还有一件事|还有件事|还有个问题|"
    r"顺便问|再问|另一个|先别管|先不说|先放一|这个等会|等会再说|等阵|等一下我想|先问)"
    r"|还有个事|还有一个事|还有一件事|还有件事|我再反映"
    # "还有 我家门口那个废品站…": another place, another matter
    r"|^还有(?=我家|我们|咱|俺|楼[上下道]|小区|家门口)"
)


def raises_another_matter(compact: str) -> bool:
    return bool(_ANOTHER.search(compact)) and len(compact) >= 8


# The words that open another matter, which do not belong in its ticket ("另外想问问 楼下垃圾站…")
_OPENER = re.compile(
    r"^\s*(?:哦?对了[，,\s]*)?(?:"
    r"另外(?:还有)?一?[个件]事(?:情)?|另外我?(?:还)?(?:想|要)?(?:问问|问一下|问一问|问个事|说一下|说说|反映一下|反映)|"
    r"还有一?[个件](?:事情|事|问题)|顺便问(?:一下|问)?|我再反映(?:一下)?(?:个事)?|另外|还有(?=\s*(?:我家|我们|咱|俺|楼[上下道]|小区|家门口))"
    r")[，,。：:！!、\s]*"
)


def without_opener(text: str) -> str:
    """``text`` without the words that open another matter, when a description is left."""
    rest = _OPENER.sub("", text, count=1)
    return rest if len(rest) >= 4 else text


# Pinyin initials people type for the bot's own words (查询, 转人工, 谢谢, 不满意 …).
SHORTHAND = {
    "cx": "query_progress",
    "zrg": "ask_human",
    "rg": "ask_human",
    "qr": "affirm",
    "qx": "deny",
    "xx": "thanks_bye",
    "xxn": "thanks_bye",
    "nh": "greet",
}
SHORTHAND_RATINGS = {"my": "满意", "fcmy": "满意", "jbmy": "基本满意", "bmy": "不满意"}

# An opening greeting, and whatever follows it is the request ("你好，请问公租房咋申请").
_GREETING = re.compile(
    r"^(?:你好|您好|你们好|hi|hello|哈喽|喂|在吗|在不在|有人吗|早上好|下午好|晚上好|nh)[啊呀呢]?(?:请问)?",
    re.I,
)


def after_greeting(compact: str) -> str:
    return _GREETING.sub("", compact, count=1)


# "请问这是12345吗", "这里是市长热线吗": who answers, asked before the matter; the greeting tells
_WHO = re.compile(
    r"^(?:请问)?(?:这|这里|这边|你们?|您)?(?:是不是|是)(?:不是)?(?:12345|一二三四五|市长热线|市民热线|便民热线|"
    r"政务(?:服务)?(?:便民)?热线|热线|政府|机器人|真人)[^，,。.]{0,4}?(?:吗|嘛|么|吧|不|呢|啊)?$"
)


def asks_who(compact: str) -> bool:
    return bool(_WHO.match(after_greeting(compact)))
