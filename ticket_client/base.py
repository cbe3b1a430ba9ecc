"""The ticket client's contract and types: the bot and gateway speak only these.

``file`` is idempotent by ``idempotency_key``: filing the same draft twice returns the same ticket.

Errors, by what the caller should do::

    TicketError
    ├── TicketNotFound            no such ticket (404)
    ├── InvalidTransition         the workflow refuses the move (409); nothing was written
    │   ├── UnknownStatus         not a status name at all (a caller bug)
    │   ├── CorrectionRefused     改派 of a done ticket, or where the platform routes (open311)
    │   ├── StatusManagedByPlatform   the platform owns the workflow (open311): move it there
    │   │   └── NotesManagedByPlatform   …and its notes: post the note there (also a NoteRefused)
    │   └── NoteRefused           the ticket takes no progress note now (closed: archived)
    ├── InvalidNote               a progress note that is empty or longer than MAX_NOTE (400)
    ├── InvalidRating             not one of RATINGS
    ├── PlatformUnavailable       the platform or the ledger database is down: retry later
    ├── PlatformRejected          the platform refused a filing for good (a 4xx): retrying the same
    │                             request will not help; a person looks at it (dead letter)
    └── PlatformMisconfigured     the platform and the settings disagree (a service code it does
                                  not offer): found at start, names the setting to fix
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import AsyncGenerator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

Status = Literal["received", "accepted", "processing", "resolved", "closed", "returned", "reopened"]
STATUSES: tuple[str, ...] = ("received", "accepted", "processing", "resolved", "closed", "returned", "reopened")

# Which status may follow which: the platform's workflow, enforced by every backend.
TRANSITIONS: dict[str, frozenset[str]] = {
    "received": frozenset({"accepted", "returned", "closed"}),
    "accepted": frozenset({"processing", "returned", "resolved"}),
    "processing": frozenset({"resolved", "returned"}),
    "returned": frozenset({"accepted", "closed"}),
    "resolved": frozenset({"closed", "reopened"}),
    "reopened": frozenset({"accepted", "processing", "resolved"}),
    "closed": frozenset({"reopened"}),
}

# Statuses a walk may pass through on the way to the status a platform reports (see ``walk``):
# the ordinary steps of the work. ``returned`` and ``resolved`` tell the citizen something
# (退回, 办结 and its survey), so a walk never invents them.
_QUIET_STEPS = frozenset({"accepted", "processing", "reopened"})
_FINAL = ("resolved", "closed")


def walk(current: str, target: str) -> list[str] | None:
    """The statuses to record, in order, to bring a ticket from ``current`` to ``target`` (a status
    a platform reported) without leaving ``TRANSITIONS``: ``[]`` when there is nothing to record,
    ``None`` when no walk fits.

    A platform may jump (open → closed) where the ledger's workflow has steps between: the
    shortest walk through the quiet steps fills them in (received → accepted → resolved), and
    ``resolved`` may be passed on the way to ``closed`` (the citizen then hears 办结 and is
    surveyed). A walk that would need an invented ``returned`` or ``resolved`` (a platform putting
    a request back from in progress to open) does not fit: the ticket stays where it is. Between
    the final statuses the ledger only moves forward: resolved → closed, never back.
    """
    if current == target:
        return []
    if current in _FINAL and target in _FINAL:
        return [target] if (current, target) == ("resolved", "closed") else []
    passable = _QUIET_STEPS | ({"resolved"} if target == "closed" else set())
    came_from: dict[str, str] = {current: ""}
    queue = deque([current])
    while queue:
        status = queue.popleft()
        for following in sorted(TRANSITIONS.get(status, frozenset())):
            if following in came_from or (following != target and following not in passable):
                continue
            came_from[following] = status
            if following == target:
                steps = [target]
                while came_from[steps[-1]] != current:
                    steps.append(came_from[steps[-1]])
                return steps[::-1]
            queue.append(following)
    return None


# The longest status or progress note kept: the admin API refuses a longer one, a platform's is cut.
MAX_NOTE = 2000
# A status-history row records a status change, or a progress note (办理进展, 阶段性答复) a
# department gave while the status stayed: the citizen hears both, and only a change moves the
# workflow (the 回访 survey, the period's 办结 figures). A withdrawal (撤单) is a change to
# ``closed`` of its own kind: the citizen hears it was withdrawn at their request, not 已归档.
# A 延期 (``extend``) is a note of its own kind: the citizen hears their 办理时限 moved, and why.
ChangeKind = Literal["status", "note", "withdraw", "extend"]

Rating = Literal["满意", "基本满意", "不满意"]
RATINGS: tuple[str, ...] = ("满意", "基本满意", "不满意")
SOLVED_ANSWERS: dict[str, bool] = {"已解决": True, "未解决": False}  # 解决情况 as said and as kept


Spot = tuple[str, str]  # (LocationInfo.place, first-level category): TicketDraft.spot
PLACE_MAX = 40  # a place word longer than this (a sentence, not a place) is no key to match by
_SPACE = re.compile(r"\s+")
_ESTATE_SUFFIX = re.compile(r"(?:小区|社区)$")


class LocationInfo(BaseModel):
    text: str = ""
    parts: dict[str, str] = Field(default_factory=dict)
    lat: float | None = None
    lng: float | None = None

    def place(self) -> str:
        """The word tickets about one spot share (并单's 疑似重复): the estate or village ("米兰春天",
        also when written "米兰春天小区"), else the landmark, else the road and number, else the
        road; the place as written when nothing was read from it (an operator's 属地更正); "" when
        only a district or town is known, which many unrelated tickets share."""
        parts = self.parts
        road = parts.get("road", "")
        for word in (parts.get("community", ""), parts.get("landmark", ""),
                     road + parts["number"] if road and parts.get("number") else "", road, "" if parts else self.text):
            word = _SPACE.sub("", word)
            if len(bare := _ESTATE_SUFFIX.sub("", word)) >= 2:
                word = bare
            if 2 <= len(word) <= PLACE_MAX:
                return word
        return ""


class TicketDraft(BaseModel):
    """What the bot collected; becomes a ticket when filed."""

    channel: str
    conversation_key: str
    contact: str = ""
    title: str = ""
    description: str
    category: list[str] = Field(default_factory=list)  # first/second/third level
    request_type: str = ""
    urgent: bool = False
    location: LocationInfo = Field(default_factory=LocationInfo)
    departments: list[str] = Field(default_factory=list)
    attachments: list[str] = Field(default_factory=list)

    def spot(self) -> Spot:
        """Where and what, as 疑似重复 match it: the place word and the first level of the category
        (a lamp and a noise at one estate are two matters)."""
        return self.location.place(), self.category[0] if self.category else ""


class StatusChange(BaseModel):
    seq: int  # monotonically increasing cursor across all tickets of a backend
    ticket_id: str
    conversation_key: str
    channel: str
    status: str  # a note: the ticket's status when it was written (unchanged by it)
    note: str = ""
    at: datetime
    kind: ChangeKind = "status"


# A word on a filed ticket kept apart from its history (no step of the work, never told to the
# citizen as news): the citizen's 催办 ("urge": they pressed for it to be done) and 补充 ("info":
# more about the matter), a co-handling unit's 协办意见 ("assist": what it did or found, for
# the 主办 and the centre), and the centre's decision on a unit's 延期申请 ("decision", with the
# unit that asked: 同意延期至… or 不同意延期：…, for that unit to hear).
FollowUpKind = Literal["urge", "info", "assist", "decision"]


class FollowUp(BaseModel):
    kind: FollowUpKind
    at: datetime
    note: str = ""
    unit: str = ""  # a 协办意见's unit (the 协办 that wrote it)


class FollowUpEvent(FollowUp):
    """A recorded follow-up (催办, 补充, 协办意见) of a ticket, for whoever follows them in order
    (``seq``: a cursor across all tickets)."""

    seq: int
    ticket_id: str


# one urge a ticket a day is recorded: the next "催一下" within it is told the first stands (the
# default of LocalLedger's ``urge_quiet``: HOTLINE_URGE_QUIET_HOURS)
URGE_QUIET = timedelta(hours=24)
MAX_URGE_NOTE = 200  # the citizen's words kept with an urge (a chat turn; the rest is in the conversation)
MAX_INFO_NOTE = 1000  # a 补充 is read by whoever handles the ticket: a chat turn or two


# An operator's correction of how a ticket was read and routed (分类更正, 属地更正, 改派): the fields
# it may change. Each correction is kept as a Revision (who, when, why, the fields before and after;
# the place as its text).
CORRECTED_FIELDS: tuple[str, ...] = ("category", "request_type", "urgent", "location", "departments")
MAX_REASON = 200  # 更正说明 / 改派原因: a line for whoever reads the ticket's record
MAX_UNIT = 40  # a unit's name as 承办部门 names it (a 延期申请's applicant)

# What became of a 延期申请: waiting for the centre (at most one per ticket), granted, refused, or
# 失效 (the ticket was done, withdrawn or merged before anyone decided)
ExtensionOutcome = Literal["pending", "approved", "rejected", "lapsed"]


class ExtensionRequest(BaseModel):
    """A department's 延期申请: it asks the centre for a 办理时限 ending ``until``, for ``reason``
    (the centre's to read: the citizen hears only the reason a 延期 is granted with). A supervisor
    grants it (to ``granted_until``, which may differ) or refuses it with ``answer``."""

    at: datetime
    unit: str
    until: datetime
    reason: str
    outcome: ExtensionOutcome = "pending"
    decided_at: datetime | None = None
    decided_by: str = ""
    answer: str = ""  # 驳回理由 (rejected), or the reason the citizen heard (approved)
    granted_until: datetime | None = None


class Correction(BaseModel):
    """What an operator corrects on a filed ticket; a field left None stays as it is.

    Nothing changed is a confirmation (审核无误: the classification was right), kept like a
    correction: both are labels a person gave to a real message. ``departments`` given on a ticket
    its department 退回 (``returned``) sends it out again (改派): the ticket goes to ``accepted``
    and the citizen hears it was dispatched. ``location`` is the place as the operator writes it
    (属地有误): the parts and the map point read from the old place are dropped with it, and
    ``location_parts`` (the gateway reads them from the new text) are its parts instead.
    """

    by: str = Field(min_length=1, max_length=64)
    reason: str = Field(default="", max_length=MAX_REASON)
    category: list[str] | None = Field(default=None, max_length=3)
    request_type: str | None = Field(default=None, max_length=10)
    urgent: bool | None = None
    location: str | None = Field(default=None, max_length=200)
    location_parts: dict[str, str] = Field(default_factory=dict, max_length=12)  # of ``location``
    departments: list[str] | None = Field(default=None, max_length=6)


class Revision(BaseModel):
    """One correction as recorded: ``before`` and ``after`` hold only the fields it changed (both
    empty: a confirmation); ``dispatched`` when it sent a returned ticket out again."""

    at: datetime
    by: str
    reason: str = ""
    before: dict[str, Any] = Field(default_factory=dict)
    after: dict[str, Any] = Field(default_factory=dict)
    dispatched: bool = False

    @property
    def confirmed(self) -> bool:
        return not self.after


class CorrectionCount(BaseModel):
    """How often operators changed one reading into another in a period (更正统计): the first
    level of the category (``field="category"``), or the primary department (``"departments"``:
    派单纠错, with ``category``, the tickets' category now, 一级/二级). A pair that keeps coming back
    is a rule to fix: the NLU's training, or ``config/departments.yml``."""

    field: Literal["category", "departments"]
    before: str
    after: str
    category: str = ""
    count: int


class TicketRef(BaseModel):
    ticket_id: str
    status: str
    created: bool = True  # False when the idempotency key had already filed this ticket


class Ticket(TicketDraft):
    ticket_id: str
    status: str
    created_at: datetime
    updated_at: datetime
    history: list[StatusChange] = Field(default_factory=list)
    rating: str | None = None
    rating_comment: str = ""
    solved: bool | None = None  # 解决情况, the 回访's second answer: 已解决 / 未解决 / not given
    platform_request_id: str | None = None  # the ticket platform's own number (open311 backend)
    followups: list[FollowUp] = Field(default_factory=list)  # 催办, 补充 and 协办意见, oldest first
    revisions: list[Revision] = Field(default_factory=list)  # operators' 更正 and 改派, oldest first
    # 并单: the main ticket this one is handled with (the same matter, reported again); its status
    # and progress notes follow the main's, so its citizen hears each step on their own channel
    merged_into: str | None = None
    # 撤单: when the citizen withdrew it (then closed; None once reopened); no department's 办结
    withdrawn_at: datetime | None = None
    # 办结: when it was last resolved or closed by the work (not a 撤单; None while open), and whether
    # that came after its 办理时限 as the limits stood then (超期办结; False when it had none)
    done_at: datetime | None = None
    done_late: bool | None = None
    # 响应 (签收): when a department first took it on (accepted, or further: None until then), and
    # whether after its limit to (HOTLINE_RESPOND_HOURS, as the limit stood then)
    responded_at: datetime | None = None
    responded_late: bool | None = None
    # 延期: the 办理时限 the centre granted (the last 延期), in place of the one counted from filing
    extended_until: datetime | None = None
    extension_requests: list[ExtensionRequest] = Field(default_factory=list)  # 延期申请, oldest first

    @property
    def extension_pending(self) -> ExtensionRequest | None:
        """The 延期申请 waiting for the centre's decision, if any."""
        return next((r for r in self.extension_requests if r.outcome == "pending"), None)

    @property
    def urges(self) -> list[FollowUp]:
        return [f for f in self.followups if f.kind == "urge"]

    @property
    def additions(self) -> list[FollowUp]:
        return [f for f in self.followups if f.kind == "info"]

    @property
    def assists(self) -> list[FollowUp]:
        return [f for f in self.followups if f.kind == "assist"]

    @property
    def redispatched_at(self) -> datetime | None:
        """When it was last sent out again after a department returned it (改派), if ever."""
        return max((r.at for r in self.revisions if r.dispatched), default=None)


class Urged(BaseModel):
    """What ``urge`` did: ``recorded`` a new urge at ``at``, or found one made at ``at`` standing
    (within the ledger's quiet period, ``URGE_QUIET`` unless set). ``ticket`` as it is now, its urges included."""

    ticket: Ticket
    recorded: bool
    at: datetime


class TicketError(Exception):
    """Base of ticket-client errors."""


class TicketNotFound(TicketError):
    pass


class InvalidTransition(TicketError):
    pass


class UnknownStatus(InvalidTransition, ValueError):
    """The status name is not one of ``STATUSES`` (a caller bug, not a workflow refusal)."""


class StatusManagedByPlatform(InvalidTransition):
    """The ticket platform owns the workflow (``open311``): statuses change there, not here."""


class NoteRefused(InvalidTransition):
    """The ticket takes no progress note now (it is closed); nothing was written."""


class AssistRefused(NoteRefused):
    """A 协办意见 the ticket does not take: the unit is no 协办 of it, or it is done or merged."""


class NotesManagedByPlatform(StatusManagedByPlatform, NoteRefused):
    """The platform owns the notes as it owns the statuses (GeoReport v2 cannot take one): a
    department posts its note there, and it comes back with the next poll."""


class MergeRefused(InvalidTransition):
    """并单 refused, or a step of a merged ticket taken on it rather than on its main ticket (the
    message says which and why); nothing was written."""


class WithdrawRefused(InvalidTransition):
    """撤单 refused: the ticket is done already, other citizens' tickets are merged into it (their
    matter still wants handling), or the platform owns the workflow; nothing was written."""


class ExtendRefused(InvalidTransition):
    """延期 refused: the ticket is done already, follows a main (its 办理时限 is the main's), has no
    办理时限 to extend, the new one is not later than the one it has, or the platform owns the
    workflow; nothing was written."""


class ExtensionRequestRefused(ExtendRefused):
    """A 延期申请 the centre cannot take or decide: one waits already, or there is none to decide
    (409), besides every reason a 延期 itself is refused."""


class CorrectionRefused(InvalidTransition):
    """The ticket cannot be corrected so now: sent out again (改派) when it is done (resolved or
    closed), or where the platform does the routing (open311); nothing was written."""


class InvalidNote(TicketError, ValueError):
    """A progress note that is empty (or only spaces), or longer than ``MAX_NOTE``."""


def checked_note(note: str, what: str = "办理进展") -> str:
    """``note`` without surrounding spaces; InvalidNote, naming ``what`` it is, when nothing is
    left or it is too long (a note is read: an empty one would be a message saying nothing)."""
    cleaned = note.strip()
    if not cleaned:
        raise InvalidNote(f"{what}内容不能为空")
    if len(cleaned) > MAX_NOTE:
        raise InvalidNote(f"{what}过长（最多{MAX_NOTE}字，现有{len(cleaned)}字）")
    return cleaned


class InvalidRating(TicketError, ValueError):
    """The rating is not one of ``RATINGS``."""


class PlatformUnavailable(TicketError):
    """The platform (or ledger database) cannot be reached: retry later."""


class PlatformRejected(TicketError):
    """The platform refused a request for good (HTTP 4xx other than 408/425/429).

    ``status`` is the HTTP status, ``errors`` the platform's ``(code, description)`` pairs.
    """

    def __init__(self, message: str, *, status: int, errors: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.errors = errors or []


class PlatformMisconfigured(TicketError, ValueError):
    """The platform and the settings disagree; the message names the setting to fix."""


class Verdicts(BaseModel):
    """What citizens said in the 回访 of some tickets: their ratings and whether it was solved."""

    ratings: dict[str, int] = Field(default_factory=dict)  # 满意 / 基本满意 / 不满意 → count
    solved: int = 0  # 解决情况 said: 已解决
    unsolved: int = 0  # 未解决

    @property
    def rated(self) -> int:
        return sum(self.ratings.values())

    @property
    def satisfaction(self) -> float | None:
        """满意率: share of the ratings that are 满意 or 基本满意 (None before any rating)."""
        good = self.ratings.get("满意", 0) + self.ratings.get("基本满意", 0)
        return good / self.rated if self.rated else None

    @property
    def solved_rate(self) -> float | None:
        """解决率: share of the citizens who said whether it was solved that said 已解决 (None
        before any said)."""
        said = self.solved + self.unsolved
        return self.solved / said if said else None


# the rates 综合得分 may weigh, by the name HOTLINE_SCORE_WEIGHTS gives them (config.settings.SCORED_RATES
# names the same: a test keeps them equal, config sitting below this module)
RATES = {"响应率": "respond_rate", "解决率": "solved_rate", "满意率": "satisfaction", "按期办结率": "on_time_rate",
         "办结率": "done_rate"}


class DepartmentTally(Verdicts):
    """How one unit handled the tickets filed in a period that name it (承办单位考核): what it was
    given, what it finished, what is late or was sent back, how citizens judged it. A ticket counts
    for each unit it names, 主办 or 协办 (as 工单查询's 承办部门 finds it); a repeat merged into
    another ticket is counted once, by its main. The states are the tickets' now; ``returns``
    counts each return for the unit that made it."""

    department: str
    filed: int = 0  # 受理: tickets naming it
    primary: int = 0  # of them, those naming it first (主办)
    done: int = 0  # 办结: resolved or closed, not withdrawn (撤单)
    overdue: int = 0  # 超期未办结: still open past their 办理时限
    returned: int = 0  # 退回待改派: sent back by their department, waiting to go out again
    # 退回次数: how often it sent one of them back as its 主办 then, sent out again since or not; a
    # unit they were 改派'd away from keeps its count (a row of its own when they name it no more)
    returns: int = 0
    urged: int = 0  # 催办未办结: pressed for by the citizen and still open
    withdrawn: int = 0  # 撤单: withdrawn by their citizen (closed, but not the unit's 办结)
    done_late: int = 0  # 超期办结: of the done, those finished after their 办理时限
    responded: int = 0  # 已签收: taken on by a department (accepted, or further)
    responded_late: int = 0  # 超时签收: of them, taken on after the limit
    unanswered: int = 0  # 超时未签收: not yet taken on, past the limit (not withdrawn, not done)
    extended: int = 0  # 延期: given a later 办理时限 by the centre

    @property
    def on_time_rate(self) -> float | None:
        """按期办结率: (done - done_late) / done (None before it finished any)."""
        return (self.done - self.done_late) / self.done if self.done else None

    def score(self, weights: Mapping[str, float], least: int = 0) -> float | None:
        """综合得分, 0–100: the weighted mean of the rates ``weights`` names (响应率, 解决率, 满意率,
        按期办结率, 办结率; HOTLINE_SCORE_WEIGHTS); None when a weighed rate has no figure yet (no
        回访, nothing due), nothing is weighed, or the unit was given fewer than ``least`` tickets
        (受理 less 撤单; HOTLINE_SCORE_MIN_TICKETS): such a unit is not ranked on half its figures,
        nor on a handful of tickets."""
        weighed = [(w, getattr(self, RATES[name])) for name, w in weights.items() if w > 0]
        total = sum(w for w, _ in weighed)
        if not total or any(rate is None for _, rate in weighed) or self.filed - self.withdrawn < least:
            return None
        return 100 * sum(w * (rate or 0.0) for w, rate in weighed) / total

    @property
    def respond_rate(self) -> float | None:
        """响应率: taken on in time / (taken on + not yet, past the limit): the first of 接诉即办's
        三率 (响应率, 解决率, 满意率); None while none was due."""
        due = self.responded + self.unanswered
        return (self.responded - self.responded_late) / due if due else None

    @property
    def done_rate(self) -> float | None:
        """办结率: done / (filed - withdrawn): a ticket its citizen withdrew is neither done by the
        unit nor held against it (None for a unit given nothing else)."""
        given = self.filed - self.withdrawn
        return self.done / given if given > 0 else None


class CategoryTrend(BaseModel):
    """How often a kind of matter (its category's first two levels) came in a period, against the
    period of the same length just before (热点诉求: 环比)."""

    category: list[str]  # 一级, 二级 (one level when the ticket has no second)
    filed: int = 0
    before: int = 0  # in the period just before

    @property
    def change(self) -> float | None:
        """环比: (filed - before) / before; None for a kind the period before did not have."""
        return (self.filed - self.before) / self.before if self.before else None


class Hotspot(BaseModel):
    """A spot many of a period's tickets are about (热点诉求: 高频地点): its place and first-level
    category (``TicketDraft.spot``), every report counted, repeats merged into another included."""

    place: str
    kind: str
    filed: int = 0
    open: int = 0  # of them, open and merged into none: what is still to do there
    latest: datetime


class Summary(Verdicts):
    """How the hotline did since a moment: what came in, what was finished, how citizens judged it.

    The ratings are those of the tickets *resolved* in the period (the 回访 of that work):
    参评率 = rated / resolved, 满意率 = (满意 + 基本满意) / rated, 解决率 = 已解决 / those who said
    whether it was solved: the figures 12345 centres report.
    """

    since: datetime
    until: datetime | None = None  # the period's end (None: to the moment it was counted)
    filed: dict[str, int] = Field(default_factory=dict)  # channel → tickets filed
    resolved: int = 0
    urged: int = 0  # tickets a citizen pressed for (催办) in the period, whenever they were filed
    redispatched: int = 0  # tickets sent out again (改派) in the period after their department returned them
    withdrawn: int = 0  # 撤单: tickets their citizen withdrew in the period (and not reopened since)
    merged: int = 0  # 并单: repeats merged into another ticket in the period (and still merged)
    extended: int = 0  # 延期: tickets given a later 办理时限 in the period (counted by their last 延期)
    # 办结 in the period (the last time, each matter once: a repeat merged into another is its main's),
    # and of them 超期办结, finished after their 办理时限
    done: int = 0
    done_late: int = 0

    @property
    def on_time_rate(self) -> float | None:
        """按期办结率: share of the period's 办结 finished within their 办理时限."""
        return (self.done - self.done_late) / self.done if self.done else None

    @property
    def response_rate(self) -> float | None:
        """参评率: share of the resolved tickets whose citizen answered the survey."""
        return self.rated / self.resolved if self.resolved else None


class Rejudged(BaseModel):
    """What ``rejudge`` found: of the tickets finished (办结) in the period, how many and how many
    超期办结 before and after; of those taken on (签收) in it, the same for 超时签收; and how many
    tickets' verdicts it changed."""

    since: datetime
    until: datetime | None = None
    done: int = 0
    done_late_before: int = 0
    done_late: int = 0
    responded: int = 0
    responded_late_before: int = 0
    responded_late: int = 0
    changed: int = 0


class TimeLimit(BaseModel):
    """One 办理时限 as the ledger finds the tickets past it (超期) or close to it (即将超期): the
    tickets of one kind (urgent or not; of the ``request_types`` named, or, with ``others``, of
    every type but those, an empty one included) are late when filed before ``due_before``, due
    soon when filed from then until ``soon_before`` (None: 即将超期 is off). A kind no limit names
    is never late. The caller turns each 办理时限 into these filing moments
    (ticket_client/deadlines.py): the ledger knows no calendar."""

    urgent: bool = False
    request_types: tuple[str, ...] = ()
    others: bool = True  # with no types named: every ticket of that urgency
    due_before: datetime
    soon_before: datetime | None = None


TO_ACCEPT = ("received", "reopened")  # 待签收: filed, or reopened, and not taken on (again) yet


class TicketQuery(BaseModel):
    """What an operator looks a ticket up by (工单查询): each word of ``text`` must appear in the
    ticket's number, platform number, title, description, contact or conversation key; the other
    fields narrow it. Newest first; ``offset`` pages on."""

    text: str = Field(default="", max_length=200)
    # one of STATUSES, "withdrawn": 已撤单 (closed at the citizen's request), "open": 未办结 (any but
    # resolved, closed), or "to_accept": 待签收 (received, or reopened: to be taken on again)
    status: str = ""
    channel: str = ""  # one channel, or a prefix ending in ":" ("portal:" = every portal source)
    urgent: bool | None = None
    rating: str = ""  # 满意 / 基本满意 / 不满意, or "none": not rated yet
    # 解决情况: 已解决 / 未解决, "none": not said, or "redo": 未解决 and still resolved or closed, merged
    # into none (待重办: the citizen said the problem stays and nobody has reopened it yet)
    solved: str = ""
    since: datetime | None = None
    until: datetime | None = None  # filed before this moment (a report's period: since ≤ filed < until)
    # 超期未办结 (``overdue``): still open (not resolved nor closed) and past one of ``time_limits``;
    # 即将超期 (``due_soon``): still open and close to one. Both set: either. Neither: no narrowing.
    overdue: bool = False
    due_soon: bool = False
    urged: bool = False  # 催办未办结: urged by the citizen (any time; or a repeat merged into it, by its own) and still open
    reviewed: bool = False  # 已审核: an operator corrected or confirmed its classification
    department: str = Field(default="", max_length=40)  # 承办部门: one unit, 主办 or 协办 (a department's report)
    # 曾退回: sent back by its department at least once (改派'd since or not); with ``department``,
    # sent back by that unit as its 主办 then (承办单位考核's 退回), whatever units it names now
    returned: bool = False
    # 超期办结: resolved or closed by the work after their 办理时限 (as the limits stood then), each
    # matter once (a repeat merged into another is its main's)
    done_late: bool = False
    # 超时未签收: not yet taken on by a department (still 已受理登记 or 已退回, not withdrawn) and filed
    # before the moment below for its kind (the non-urgent / urgent limit to; None: no limit):
    # ``unanswered`` filters by them; 承办单位考核 counts by them whatever it says
    unanswered: bool = False
    unanswered_before: datetime | None = None
    unanswered_urgent_before: datetime | None = None
    # 分类: the tickets of this category or below it (["城乡建设"], ["城乡建设", "城市建设和市政管理"])
    category: list[str] = Field(default_factory=list, max_length=3)
    merged_into: str = Field(default="", max_length=64)  # 并单: the tickets merged into this one
    main_only: bool = False  # leave out the tickets merged into another (counted once, by their main)
    place: str = Field(default="", max_length=PLACE_MAX)  # about this spot (LocationInfo.place): 疑似重复
    # 疑似重复: filed since then, open (and no other's follower), and about a spot (place and first-level
    # category) another such ticket shares
    repeated_since: datetime | None = None
    time_limits: list[TimeLimit] = Field(default_factory=list)
    # a ticket given a 延期 is judged by it instead: 超期 when it ran out before ``extended_due_before``
    # (the moment judged at), 即将超期 when it runs out before ``extended_soon_before``
    extended_due_before: datetime | None = None
    extended_soon_before: datetime | None = None
    extended: bool = False  # 已延期: the tickets given a later 办理时限
    extension_pending: bool = False  # 延期待审核: open tickets whose department's 延期申请 awaits the centre
    # the limits count from the last 改派 of a ticket sent out again, not from its filing
    # (HOTLINE_RESOLVE_RESTART_ON_REDISPATCH): ``due_before`` is then a 派单 moment
    from_redispatch: bool = False
    limit: int = Field(default=50, ge=1, le=200)
    offset: int = Field(default=0, ge=0, le=100_000)

    def words(self) -> list[str]:
        """At most five words, each at most 50 characters (a pasted paragraph is not a query)."""
        return [word[:50] for word in self.text.split()][:5]


class TicketClient(Protocol):
    async def file(self, draft: TicketDraft, idempotency_key: str) -> TicketRef: ...

    async def get(self, ticket_id: str) -> Ticket: ...

    async def list_for(self, conversation_key: str, limit: int = 10) -> list[Ticket]: ...

    async def search(self, query: TicketQuery) -> list[Ticket]: ...

    def scan(self, query: TicketQuery, size: int = 500) -> AsyncGenerator[list[Ticket], None]:
        """Every ticket ``search`` finds, newest first, a page of ``size`` at a time (the export),
        without their ``history``."""
        ...

    async def count(self, query: TicketQuery) -> int:
        """How many tickets match the query's filters, not its words (the 超期 card)."""
        ...

    async def open_at(self, spots: Sequence[Spot], since: datetime) -> dict[Spot, int]:
        """How many open tickets (not resolved nor closed, nor merged into another) filed since
        ``since`` are about each of ``spots`` (``TicketDraft.spot``: the same place and first-level
        category): 疑似重复, for a whole page of 工单查询 at once. A spot with none is left out."""
        ...

    async def changes_since(self, cursor: int, limit: int = 100) -> list[StatusChange]: ...

    async def last_change(self) -> int:
        """The ``seq`` of the latest change (0 for none): where a new reader of ``changes_since``
        starts when it should not go through the past."""
        ...

    async def followups_since(self, cursor: int, kinds: Sequence[FollowUpKind] = ("urge",),
                              limit: int = 100) -> list[FollowUpEvent]:
        """The follow-ups of ``kinds`` recorded after ``cursor``, oldest first (a unit's 催办通知 and
        协办意见通知)."""
        ...

    async def last_followup(self) -> int:
        """The ``seq`` of the latest follow-up of any kind (0 for none), as ``last_change``."""
        ...

    async def last_change_before(self, at: datetime) -> int:
        """The ``seq`` of the latest change made before ``at`` (0 for none): where a reader whose
        cursor was lost everywhere resumes, going through the recent changes only."""
        ...

    async def cursor(self, reader: str) -> int | None:
        """Where ``reader`` (the status poller, the units' mail) got to in ``changes_since`` or
        ``followups_since``, kept with the tickets so that it outlives Redis's data (None: never kept)."""
        ...

    async def keep_cursor(self, reader: str, seq: int) -> None:
        """Keep ``reader``'s cursor with the tickets (see ``cursor``)."""
        ...

    async def set_status(self, ticket_id: str, status: str, note: str = "") -> Ticket: ...

    async def rate(self, ticket_id: str, rating: str, comment: str = "") -> Ticket: ...

    async def mark_solved(self, ticket_id: str, solved: bool) -> Ticket:
        """Record the 回访's second answer, whether the problem was solved (已解决 / 未解决); a later
        answer replaces an earlier one. TicketNotFound."""
        ...

    async def add_note(self, ticket_id: str, note: str) -> Ticket:
        """Record a progress note (办理进展) the citizen hears, the status unchanged: a row of the
        history with ``kind="note"``. InvalidNote (empty, too long), NoteRefused (closed, or the
        platform owns the notes: NotesManagedByPlatform), TicketNotFound."""
        ...

    async def urge(self, ticket_id: str, note: str, key: str = "") -> Urged:
        """Record the citizen's 催办 of an open ticket, in their words (cut to MAX_URGE_NOTE), unless
        one was recorded within the quiet period (URGE_QUIET unless set; then that one stands). ``key`` (the message's id): the
        same key again returns what the first call recorded, as recorded. NoteRefused when the
        ticket is resolved or closed; TicketNotFound."""
        ...

    async def add_info(self, ticket_id: str, note: str, attachments: Sequence[str] = (), key: str = "") -> Ticket:
        """Record the citizen's 补充 to an open ticket, in their words: more about the matter for
        whoever handles it; ``attachments`` (media refs, a photo sent after filing) join the
        ticket's. ``key`` (the message's id): the same key again adds nothing. InvalidNote (empty,
        longer than MAX_INFO_NOTE), NoteRefused (resolved or closed), TicketNotFound."""
        ...

    async def assist(self, ticket_id: str, unit: str, note: str) -> Ticket:
        """Record a 协办意见: ``unit``, one of the ticket's 协办 (a department after its first), tells
        the 主办 and the centre what it did or found, for the 主办's answer. Nobody outside hears
        it. InvalidNote (empty, longer than MAX_NOTE; no unit), NoteRefused (resolved, closed or
        merged into another; the unit is no 协办 of it), TicketNotFound."""
        ...

    async def correct(self, ticket_id: str, correction: Correction) -> Ticket:
        """Record an operator's 更正 (or confirmation) of the ticket's category, request type,
        urgency, place and departments, as a Revision; a ``returned`` ticket given departments goes to
        ``accepted`` (改派, a status change the citizen hears). A confirmation right after another
        records nothing. CorrectionRefused (departments of a done ticket; the platform routes),
        TicketNotFound."""
        ...

    async def withdraw(self, ticket_id: str, reason: str) -> Ticket:
        """撤单: close an open ticket at its citizen's request (the problem went away, it was filed
        twice), with the reason the citizen hears (cut to MAX_REASON); a change of kind
        ``withdraw``, no survey. A ticket merged into another leaves it (the main goes on for the
        others). WithdrawRefused (done already; other tickets merged into it; the platform owns
        the workflow), InvalidNote (no reason), TicketNotFound."""
        ...

    async def extend(self, ticket_id: str, until: datetime, reason: str) -> Ticket:
        """延期: give an open ticket a later 办理时限 (``until``), as the centre granted its department;
        a change of kind ``extend`` whose note the citizen hears (办理时限延长至…, with the reason cut to
        MAX_REASON), and so do the citizens of the tickets merged into it. ExtendRefused (done
        already; merged into another; no 办理时限; ``until`` not later than the one it has, or past;
        the platform owns the workflow), InvalidNote (no reason), TicketNotFound."""
        ...

    async def ask_extension(self, ticket_id: str, until: datetime, reason: str, unit: str) -> Ticket:
        """延期申请: ``unit`` (a department handling it) asks the centre for a 办理时限 ending ``until``;
        nobody is told until a supervisor decides (``decide_extension``). The checks of ``extend``
        apply now too. ExtensionRequestRefused (``unit`` is none of its 承办部门; one waits already; and
        all ExtendRefused reasons),
        InvalidNote (no reason or unit), TicketNotFound."""
        ...

    async def decide_extension(self, ticket_id: str, *, approve: bool, by: str, reason: str = "",
                               until: datetime | None = None) -> Ticket:
        """审核延期申请: grant the ticket's waiting 延期申请 (a 延期 to ``until``, the day asked for when
        None, with ``reason`` for the citizen, the department's when empty) or refuse it
        (``reason``: the 驳回理由, required; nobody outside the centre hears it). ``by``: the
        supervisor. ExtensionRequestRefused (none waits), ExtendRefused (a grant ``extend`` would
        refuse), InvalidNote, TicketNotFound."""
        ...

    async def abandon(self, idempotency_key: str) -> str | None:
        """Forget the ticket of a filing given up, if nobody can have heard of it (never past
        已受理, never sent to a platform); its number, or None."""
        ...

    async def merge(self, ticket_id: str, into: str) -> Ticket:
        """并单: handle ``ticket_id`` with the main ticket ``into`` (the same matter reported
        again). It is brought to the main's status (the quiet steps only) and its citizen hears it
        is handled together; from then on the main's statuses and progress notes are its own.
        MergeRefused (itself; either done or merged already; a main with tickets of its own
        merged into it cannot be merged, nor one further on than its main; the platform routes),
        TicketNotFound."""
        ...

    async def unmerge(self, ticket_id: str) -> Ticket:
        """取消并单: handle a merged ticket on its own again from where it stands (its citizen
        hears it). MergeRefused when it is merged into none, TicketNotFound."""
        ...

    async def summary(self, since: datetime, until: datetime | None = None) -> Summary:
        """How the hotline did in [since, until) (until None: to now), each figure by when its
        event came (filed, resolved, urged, 改派, merged, withdrawn, 办结)."""
        ...

    async def rejudge(self, since: datetime, until: datetime | None = None) -> Rejudged:
        """Judge again, by the limits as they stand now (the settings, the holidays file), 按期 of
        the tickets finished in [since, until) and 响应 of those taken on in it: the verdicts were
        given when it happened (a year whose 放假安排 came later was judged by its weekends). Writes
        only what changed, a batch at a time."""
        ...

    async def correction_counts(self, since: datetime) -> list[CorrectionCount]:
        """The corrections made since ``since``, counted by what was changed into what (most first)."""
        ...

    async def category_trends(self, since: datetime, until: datetime, limit: int = 15,
                              before: datetime | None = None) -> list[CategoryTrend]:
        """热点诉求: the kinds of matter (一级/二级) filed in [since, until), the most first, each with
        its count in the period just before (环比): [before, since), of the same length unless
        ``before`` says (a calendar month's is the month before)."""
        ...

    async def hotspots(self, since: datetime, limit: int = 15, until: datetime | None = None) -> list[Hotspot]:
        """热点诉求: the spots (place and first-level category) at least two tickets filed since
        ``since`` (and before ``until``) are about, the most reported first (then the latest); the
        open ones counted as they are now."""
        ...

    async def department_tallies(self, query: TicketQuery, limit: int = 100) -> list[DepartmentTally]:
        """承办单位考核: per unit named by the tickets ``query`` narrows to (its period, channel …),
        at most ``limit`` units, the busiest first. 超期 by ``query.time_limits`` (deadlines.late_filter),
        whatever its ``overdue`` says. With ``query.department``: that unit's row alone (none when the
        period gave it nothing), its 退回 counted as the whole report counts them."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
