"""The dialogue: one turn in, a new state and what to say out. No wire formats, no Redis.

The gateway loads the state, calls ``Bot.handle`` and commits the returned ``Turn`` atomically
(state, replies, ticket to file, acknowledgement), which is what makes a redelivered message
harmless. Filing itself goes through the ticket client's outbox: the bot never waits on it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, Field
from rapidfuzz.distance import OSA

from bot.handoff import HandoffRules, asks_for_person, asks_to_withdraw, is_angry, normalized, same_complaint
from bot.state import (
    MAX_ATTACHMENTS,
    MAX_QUEUED,
    Answered,
    ConversationState,
    Draft,
    Mode,
    Place,
    Supplement,
    Withdrawing,
)
from bot.texts import period_words, say, status_name, texts
from channels.base import InboundMessage
from config.workdays import BEIJING
from nlu.base import Location, NluBackend, Parse
from nlu.departments import DepartmentMap
from nlu.dialogue_rules import (
    GIVE_UP,
    asks_for_faq,
    asks_for_help,
    supplements,
    ticket_key,
    urges,
    wants_to_report,
    without_opener,
)
from nlu.knowledge import Hit, KnowledgeBase, asks
from nlu.subject import MAX_LEN, with_place
from ticket_client import deadlines
from ticket_client.base import (
    MAX_INFO_NOTE,
    URGE_QUIET,
    FollowUpKind,
    InvalidTransition,
    LocationInfo,
    NoteRefused,
    Ticket,
    TicketClient,
    TicketDraft,
    TicketNotFound,
    WithdrawRefused,
)

MOBILE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
TICKET_ID = re.compile(r"\d{3,8}-\d{8}-\d{6}")
RATINGS = ("基本满意", "不满意", "满意")  # longest first: 不满意 contains 满意
# giving the draft up in the citizen's words: opening the turn (nlu's GIVE_UP: "算了不报了") it is
# enough; further in ("唔使啦 取消"), the NLU must read the turn as a refusal too
CANCEL = re.compile(r"取消|不报了|唔报|不弄了|唔搞了|不用登记|不要登记|别登记了")
RESUME_WORDS = {"继续", "返回机器人", "机器人", "自助"}
# "the same place as last time", answering "还在「…」吗？": 同上, 一样, 还是那里, 就在那个小区
SAME_PLACE = re.compile(
    r"(?:是的?|对|嗯)?[，,。 ]*(?:还是|就是|也是|也在|还在|就在|同样在?)?"
    r"(?:那里|那儿|那边|那个?(?:地方|位置|小区|地址|地点)|同一个?(?:地方|位置|小区|地址|地点)"
    r"|一样的?(?:地方|位置|地址|地点)?|同上)[的了啊呀吧。！!~～ ]*"
)
# "there is no place to it", answering where: a policy question, a city-wide suggestion, a scam call
NO_PLACE = re.compile(
    r"无|不涉及(?:具体)?(?:的)?(?:地点|位置|地址)?|没有?具体(?:的)?(?:地点|位置|地址)|(?:与|和|跟)(?:具体)?地点无关"
    r"|全市(?:范围)?(?:都有|都是)?|不限(?:地点)?|不(?:知道|清楚)(?:在哪|具体地址|地址)?"
)
NO_PLACE_BUTTON = "不涉及具体地点"
# what a place written as a question still has ("就在那个什么超市旁边？"): a question asked back
# without any of these, and no place the NLU found, is no answer to "where?"
PLACE_HINT = re.compile(r"[路街道巷弄号栋幢楼层区县镇乡村屯庄院园苑城场站桥厦店口旁边侧面前后里外内附近\d]|小区|对面|隔壁")
ASKS_WHERE = re.compile(r"哪里|哪儿|哪个地方|什么地方|啥地方")  # a question's "where": no place of its own
# a correction of the place that names the wrong one first: "不是东风路 是东方路", "唔系天河 系黄埔"
NOT_BUT = re.compile(r"(?:不是|唔系|不在)(?P<wrong>.+?)[，,。\s]*(?:是|系|在)(?P<right>.+)")
# one part of the place corrected: "不是3栋 是5栋" / "是7栋不是1栋" (short tokens, either order)
_TOKEN = r"[^\s，,。是系不唔]{1,8}"
WRONG_RIGHT = re.compile(rf"(?:不是|唔系)\s*(?P<wrong>{_TOKEN})[，,。\s]*(?:是|系)\s*(?P<right>{_TOKEN})")
RIGHT_WRONG = re.compile(rf"(?:是|系)\s*(?P<right>{_TOKEN})[，,。\s]*(?:不是|唔系)\s*(?P<wrong>{_TOKEN})")
# a yes or a no that opens a longer answer to that question: "是，在3栋门口", "不是，在5栋"
YES_OPENER = re.compile(r"(?:是的?|对的?|嗯)[，,。 ]+")
NO_OPENER = re.compile(r"(?:不是的?|不对|没有)[，,。 ]*")
MIN_DESCRIPTION = 6
LETTER_NOTE = 30  # a letter this short may be a note (thanks, a rating), not a request
LETTER_TITLE = 50  # a letter's own title (留言主题, e-mail subject) is the ticket's, up to this long
SHORT_TEXT_MEMORY = timedelta(minutes=30)  # a too-short description is joined to the next words this long
# the knowledge base answers only what reads as a question (nlu.knowledge.asks), and nothing long
# (a long message is a request)
KNOWLEDGE_MAX_CHARS = 80
SURE_PROGRESS = 0.8  # a progress question this sure is about the citizen's own ticket, not a knowledge question
ANSWER_MEMORY = timedelta(minutes=30)  # "没有解决" to an answer this old still files its question
SOLVED_BUTTON, UNSOLVED_BUTTON = "已解决", "没有解决"
URGE_MAX_CHARS = 40  # a longer message that presses ("…三天了还没人修") describes a matter: it is read as one
URGE_WHICH = 3  # open tickets offered as buttons when an urge names none
# 补充 goes to an open ticket filed this recently (older ones: the citizen names the matter again);
# the default of HOTLINE_SUPPLEMENT_DAYS
SUPPLEMENT_WINDOW = timedelta(days=7)
MENU_QUESTIONS = 5  # the knowledge base's questions offered by the menu's 常见问题 (most useful first)
SUPPLEMENT_TO = re.compile(r"补充到\s*(\S+)")  # the button that says which ticket a 补充 is for
SOLVED = re.compile(r"(?:已经?|也)?解决了?|明白了?|知道了|懂了|清楚了|好的?|可以了|行了?|谢谢|感谢|多谢|ok|OK")
UNSOLVED = re.compile(r"没有?解决|未解决|不能解决|解决不了|还是不行|不行|没用|没有用|不对|帮我登记|登记|转交")


class Reply(BaseModel):
    text: str
    kind: str = "reply"
    buttons: list[str] = Field(default_factory=list)
    ticket_id: str | None = None


class Turn(BaseModel):
    state: ConversationState
    replies: list[Reply] = Field(default_factory=list)
    file: TicketDraft | None = None
    mode: Mode | None = None  # set when the conversation changes hands
    handoff_reason: str = ""
    rated: bool = False  # the pending satisfaction survey was answered
    asked_solved: str | None = None  # the ticket whose 解决情况 the citizen was just asked (回访's second question)
    # a knowledge base answer given ("answered") or judged by the citizen ("solved", "unsolved"):
    # (entry id, outcome), which the gateway counts
    knowledge: tuple[str, str] | None = None
    attachments_taken: bool = False  # the message's media went to a filed ticket (a 补充) already
    followup: FollowUpKind | None = None  # a 催办 or 补充 recorded on a filed ticket this turn (counted)
    at: datetime = Field(default_factory=lambda: datetime.now(UTC))  # when the citizen sent it: are people in?


def parse_context(
    state: ConversationState, pending_rating: str | None = None, title: str = "", conversation_key: str = ""
) -> dict[str, object]:
    """What the NLU needs to know of the conversation to read a turn: "不对" refuses a draft,
    "还行吧" answers the satisfaction survey, "铁西" answers "where?"."""
    return {
        "step": state.step,
        "conversation_key": conversation_key,
        "title": title,
        "drafting": state.step != "idle",
        "expecting": "rating" if pending_rating else "",
    }


class Bot:
    def __init__(
        self,
        tickets: TicketClient,
        nlu: NluBackend | None = None,
        knowledge: Callable[[], KnowledgeBase | None] | None = None,
        due: Callable[[Ticket], datetime | None] | None = None,
        popular: Callable[[], Sequence[str]] | None = None,
        supplement_window: timedelta = SUPPLEMENT_WINDOW,
        departments: DepartmentMap | None = None,
        urge_quiet: timedelta = URGE_QUIET,
        self_withdraw: bool = True,
        reopen_unsolved: bool = False,
    ) -> None:
        self.tickets = tickets
        self.reopen_unsolved = reopen_unsolved  # HOTLINE_REOPEN_UNSOLVED: 未解决 reopens the ticket
        # HOTLINE_SELF_WITHDRAW: a ticket not yet dispatched is withdrawn in the chat once confirmed
        self.self_withdraw = self_withdraw
        self.urge_quiet = urge_quiet  # HOTLINE_URGE_QUIET_HOURS, as the ticket client keeps it: told when standing
        # settles the 属地 units of a ticket (属地街道办事处 → 洞井街道办事处) by the place confirmed
        self.departments = departments or DepartmentMap.shipped()
        self.supplement_window = supplement_window  # HOTLINE_SUPPLEMENT_DAYS
        self.due = due  # a ticket's 办理时限 (the gateway's settings): told with its status
        self.nlu = nlu  # reads a matter the citizen raised mid-draft once its turn comes
        # the city's knowledge base (知识库) as it is now: its editors change it without a restart
        self.knowledge = knowledge
        # its entries' ids, the most useful lately first (the gateway counts them): 常见问题's order
        self.popular = popular

    async def handle(
        self,
        msg: InboundMessage,
        parse: Parse,
        state: ConversationState,
        mode: Mode = "bot",
        pending_rating: str | None = None,
        rules: HandoffRules | None = None,
        pending_solved: str | None = None,
    ) -> Turn:
        """One citizen turn. ``pending_rating``: the ticket whose 回访 survey waits for an answer;
        ``pending_solved``: the ticket whose 解决情况 the previous turn asked (answered now or never)."""
        if pending_solved and (solved := solved_answer(msg.text)) is not None:
            return await self._solved(msg, state, mode, pending_solved, solved, rules or HandoffRules())
        turn = await self._turn(msg, parse, state, mode, pending_rating, rules)
        if not turn.attachments_taken:
            _keep_attachments(turn, msg)  # whoever answers, a photo of the problem goes with its ticket
        return turn

    async def _turn(
        self,
        msg: InboundMessage,
        parse: Parse,
        state: ConversationState,
        mode: Mode,
        pending_rating: str | None,
        rules: HandoffRules | None,
    ) -> Turn:
        text = msg.text.strip()
        intent = parse.intent.name
        rules = rules or HandoffRules()
        turn = Turn(state=state.model_copy(deep=True), at=msg.received_at)

        if mode in ("waiting", "operator"):
            # A person owns (or is about to own) this conversation: the bot stays silent,
            # except that a waiting citizen may go back to self-service.
            if mode == "waiting" and text in RESUME_WORDS:
                turn.mode = "bot"
                if turn.state.draft is not None and turn.state.step != "idle":
                    turn.replies.append(_resume(turn.state))  # the draft made before the handoff goes on
                else:
                    turn.replies.append(Reply(text=say("back_to_bot")))
            return turn
        if mode == "closed":
            turn.mode = "bot"  # a closed conversation that hears from the citizen again is the bot's

        if msg.event in ("subscribe", "start", "enter_session"):
            turn.state.greeted = True
            turn.replies.append(Reply(text=say("greeting")))
            return turn
        if msg.event == "click" and not text:
            return await self._menu(turn, msg, msg.meta.get("event_key", ""), parse, rules)
        if not msg.letter and asks_for_faq(normalized(text)):  # 常见问题 typed, or the web widget's menu
            return await self._menu(turn, msg, "hotline:faq", parse, rules)
        if msg.event and not text:
            return turn  # other platform events (unsubscribe, menu clicks) are recorded, not answered
        if msg.letter:
            return await self._letter(turn, msg, parse, text, pending_rating, rules)
        if msg.attachments and not text and msg.location is None:
            # a photo (a voice note, a video) alone: kept for the ticket (see _keep_attachments)
            what = "、".join(dict.fromkeys(a.word for a in msg.attachments))
            if turn.state.draft is not None and turn.state.step != "idle":
                turn.replies.append(Reply(text=say("attachment_received", what=what)))
                turn.replies.append(_resume(turn.state))
            elif recent := (await self._open_recent(msg))[:URGE_WHICH]:
                # a photo just after filing is most often of that matter: offered, not assumed
                turn.replies.append(Reply(
                    text=say("attachment_received_idle", what=what) + say("attachment_offer_supplement", what=what),
                    buttons=[f"补充到 {t.ticket_id}" for t in recent],
                ))
            else:
                turn.replies.append(Reply(text=say("attachment_received_idle", what=what)))
            return turn

        if pending_rating and (rating := _rating_of(text, parse)):
            return await self._rate(turn, msg, pending_rating, rating, rules)

        if pending_rating and intent == "deny" and len(text) <= 10:
            # "不评了": the survey stays open for later; nothing is drafted from the refusal
            turn.replies.append(Reply(text=say("rating_later")))
            return turn

        offered, turn.state.withdrawing = turn.state.withdrawing, None
        if offered is not None and turn.state.step == "idle" and abs(msg.received_at - offered.at) <= SHORT_TEXT_MEMORY:
            if intent == "affirm" and len(text) <= 12:
                return await self._withdraw(turn, msg, offered, rules)
            if intent == "deny" and len(text) <= 12:
                turn.replies.append(Reply(text=say("withdraw_kept", ticket_id=offered.ticket_id),
                                          ticket_id=offered.ticket_id))
                return turn
            # anything else: the offer lapses and the words are read as they come

        urging = turn.state.step == "idle" and not parse.urgency and not asks_for_person(text)
        if urging and self._urging(text, parse, msg):
            reply = await self._urge(turn, msg, parse, text)
            if reply is not None:  # else no open ticket of theirs: read as anything else
                turn.state.unsure_streak = 0
                if rules.on_angry and is_angry(text):
                    turn = _handoff(turn, "angry", rules)
                    turn.replies.insert(0, reply)  # the urge is on record, and a person answers
                else:
                    turn.replies.append(reply)
                return turn

        if turn.state.step == "idle" and text and not parse.urgency:
            reply = await self._supplementing(turn, msg, parse, text)
            if reply is not None:
                turn.state.unsure_streak = 0
                turn.replies.append(reply)
                return turn

        if intent == "ask_human" or asks_for_person(text):
            if rules.on_ask:
                return _handoff(turn, "citizen_asked", rules)
            turn.replies.append(Reply(text=say("handoff_unavailable")))
            return turn

        if text:
            again = same_complaint(text, turn.state.last_text)
            turn.state.repeat_streak = turn.state.repeat_streak + 1 if again else 1
            turn.state.last_text = text[:500]
            # (asking again to withdraw a ticket is no complaint repeated: it is offered again, below)
            if rules.repeat_turns and again and turn.state.repeat_streak >= rules.repeat_turns and not asks_to_withdraw(text):
                return _handoff(turn, "repeated", rules)
        named_danger = rules.on_urgent and parse.urgency and parse.urgency_source != "model"
        if rules.on_angry and is_angry(text) and not named_danger:
            # (a danger shouted "井盖丢了！！！" goes to a person as urgent, below, with its draft)
            return _handoff(turn, "angry", rules)

        if turn.state.step == "idle" and asks_to_withdraw(text) and (mine := await self._open_tickets(msg)):
            if self.self_withdraw and (ticket := _withdrawable(mine, parse, text)) is not None:
                turn.state.withdrawing = Withdrawing(ticket_id=ticket.ticket_id, words=text[:100], at=msg.received_at)
                turn.replies.append(Reply(
                    text=say("withdraw_confirm", ticket_id=ticket.ticket_id, title=_short_title(ticket)),
                    buttons=["确认撤回", "不撤回"], ticket_id=ticket.ticket_id))
                return turn
            if rules.on_ask:
                return _handoff(turn, "withdraw", rules)
            turn.replies.append(Reply(text=say("handoff_unavailable")))
            return turn

        answered, turn.state.answered = turn.state.answered, None
        if answered is not None and turn.state.step == "idle" and msg.received_at - answered.at <= ANSWER_MEMORY:
            if (judged := _judged(text, parse)) is not None:
                return self._judge(turn, msg, answered, judged)
        # a question the knowledge base answers; unless it asks after the citizen's own ticket (a
        # number, or surely a progress question: "12345受理哪些事" may read as one, weakly)
        own_ticket = TICKET_ID.search(text) or intent == "query_progress" and parse.intent.confidence >= SURE_PROGRESS
        if turn.state.step == "idle" and not parse.urgency and not own_ticket and (hit := self._knows(text, parse)):
            turn.state.answered = Answered(entry=hit.entry.id, question=text, at=msg.received_at)
            turn.state.unsure_streak = 0
            turn.knowledge = (hit.entry.id, "answered")
            turn.replies.append(Reply(text=_answer_text(hit), buttons=[SOLVED_BUTTON, UNSOLVED_BUTTON]))
            return turn
        if self._asks_aside(turn.state, msg, text, parse) and not own_ticket and (hit := self._knows(text, parse)):
            # "这个一般多久能处理好？" while the bot waits for where or for 确认: answered, and the
            # draft's question asked again (no 已解决 buttons: they would stand in the draft's way)
            turn.knowledge = (hit.entry.id, "answered")
            turn.replies += [Reply(text=_answer_text(hit)), _resume(turn.state)]
            return turn

        if intent == "query_progress" or TICKET_ID.search(text) and text.startswith("查询"):
            turn.replies.append(await self._progress(msg, parse))
            if turn.state.draft is not None and turn.state.step != "idle":
                turn.replies.append(_resume(turn.state))  # and the matter being drafted waits
            return turn

        step = turn.state.step
        if (
            step != "idle"
            and turn.state.draft is not None
            and intent == "new_request"
            and text  # a shared place alone has no words: it answers "where?", it is no other matter
            and self.nlu is not None
        ):
            turn = self._queue(turn, msg, text)  # "另外想问问…": this draft first, that one next
        elif step == "confirming" and turn.state.draft is not None:
            turn = self._confirming(turn, msg, parse, text)
        elif step == "awaiting_location" and turn.state.draft is not None:
            turn = self._locating(turn, msg, parse, text)
        else:
            turn = self._idle(turn, msg, parse, text)
        # The draft collected so far stays in the state: the operator sees it in the console.
        # a named danger goes to a person now; the model's suspicion only flags the ticket
        if turn.file is None and named_danger:
            return _handoff(turn, "urgent", rules)
        if turn.file is None and rules.unsure_turns and turn.state.unsure_streak >= rules.unsure_turns:
            return _handoff(turn, "nlu_unsure", rules)
        return turn

    @staticmethod
    def _asks_aside(state: ConversationState, msg: InboundMessage, text: str, parse: Parse) -> bool:
        """A question put while a matter is being drafted, which is no answer to the draft's own
        question: it reads as one (nlu.knowledge.asks), names no place, shares none, cancels
        nothing and raises no danger."""
        return (state.step != "idle" and state.draft is not None and asks(text) and not parse.location.found
                and msg.location is None and not parse.urgency and not _cancels(text, parse))

    async def _menu(self, turn: Turn, msg: InboundMessage, key: str, parse: Parse, rules: HandoffRules) -> Turn:
        """A tap on one of the bot's menu buttons (``key``: a click's ``meta["event_key"]``,
        channels.base.MENU_KEYS: WeChat's custom menu, Telegram's commands). Mid-draft, what the
        button asks for is given and the draft's question follows; a key the bot does not know is
        recorded, not answered."""
        drafting = turn.state.draft is not None and turn.state.step != "idle"
        if key == "hotline:human":
            if rules.on_ask:
                return _handoff(turn, "citizen_asked", rules)
            turn.replies.append(Reply(text=say("handoff_unavailable")))
            return turn
        if key == "hotline:report":
            turn.replies.append(_resume(turn.state) if drafting else Reply(text=say("menu_report")))
            return turn
        if key == "hotline:progress":
            turn.replies.append(await self._progress(msg, parse))
        elif key == "hotline:faq":
            kb = self.knowledge() if self.knowledge is not None else None
            questions = self._common_questions(kb) if kb is not None else []
            turn.replies.append(Reply(text=say("menu_faq"), buttons=questions) if questions else Reply(text=say("help")))
        else:
            return turn
        if drafting:
            turn.replies.append(_resume(turn.state))
        return turn

    def _common_questions(self, kb: KnowledgeBase) -> list[str]:
        """常见问题: the entries citizens were answered by most lately (and did not turn down),
        then the file's first ones, MENU_QUESTIONS in all."""
        by_id = {e.id: e for e in kb.entries}
        ranked = [by_id[i] for i in (self.popular() if self.popular is not None else ()) if i in by_id]
        chosen = list({e.id: e for e in [*ranked, *kb.entries]}.values())[:MENU_QUESTIONS]
        return [e.question for e in chosen]

    def _knows(self, text: str, parse: Parse) -> Hit | None:
        """The knowledge base's answer to a short question (咨询), if it has a confident one."""
        kb = self.knowledge() if self.knowledge is not None else None
        if kb is None or not text or len(text) > KNOWLEDGE_MAX_CHARS:
            return None
        if parse.request_type != "咨询" and not asks(text):
            return None
        return kb.answer(text)

    def _judge(self, turn: Turn, msg: InboundMessage, answered: Answered, solved: bool) -> Turn:
        """The citizen says whether the knowledge base's answer solved it: if not, the question
        becomes a request filed as usual (the bot asks where, then confirms)."""
        turn.knowledge = (answered.entry, "solved" if solved else "unsolved")
        if solved:
            turn.replies.append(Reply(text=say("knowledge_solved")))
            return turn
        turn.replies.append(Reply(text=say("knowledge_unsolved")))
        question = answered.question
        parse = self.nlu.parse(question, parse_context(turn.state)) if self.nlu is not None else None
        if parse is None:
            return turn
        if parse.request_type not in ("咨询", "求助"):  # it was asked (and answered) as a question
            parse = parse.model_copy(update={"request_type": "咨询"})
        asked = msg.model_copy(update={"text": question, "location": None})
        return self._idle(turn, asked, parse, question)

    async def _letter(
        self, turn: Turn, msg: InboundMessage, parse: Parse, text: str, pending_rating: str | None,
        rules: HandoffRules,
    ) -> Turn:
        """A whole written request (a portal post, an e-mail): its writer may never read a
        question, so it is filed as written, with what the NLU found, and the receipt with the
        ticket number is the answer. A short note is read as what it says instead: "谢谢",
        "满意" to the survey, a progress question; a draft left open by a chat is not touched."""
        intent, short = parse.intent.name, len(text) <= LETTER_NOTE
        if short and pending_rating and (rating := _rating_of(text, parse)):
            return await self._rate(turn, msg, pending_rating, rating, rules)
        if short and self._urging(text, parse, msg) and (reply := await self._urge(turn, msg, parse, text)) is not None:
            turn.replies.append(reply)
            return turn
        if intent == "query_progress" and short or TICKET_ID.search(text) and text.startswith("查询"):
            turn.replies.append(await self._progress(msg, parse))
            return turn
        if await self._letter_withdraw(turn, msg, parse, text, rules):
            return turn
        if short and intent in ("greet", "thanks_bye", "affirm", "deny", "rate"):
            turn.replies.append(Reply(text=say("bye" if intent == "thanks_bye" else "letter_note")))
            return turn
        if len(text) < MIN_DESCRIPTION and not parse.location.found and not msg.attachments:
            turn.replies.append(Reply(text=say("letter_too_short")))
            return turn
        if (reply := await self._letter_supplement(turn, msg, parse, text)) is not None:
            turn.replies.append(reply)
            return turn
        draft = _draft_from(text, parse)
        _take_geo(draft, msg)
        draft.no_place = not draft.location_text  # nobody was there to ask: the operator sees it
        draft.contact = draft.contact or msg.meta.get("contact", "")  # a phone given to the portal
        title = (msg.title or "").strip()[:LETTER_TITLE]
        turn.file = _ticket_draft(msg, draft, self.departments, title=title)
        return turn

    async def _rate(
        self, turn: Turn, msg: InboundMessage, ticket_id: str, rating: str, rules: HandoffRules
    ) -> Turn:
        """The survey answered. Only by its writer: a channel that cannot vouch for its sender (an
        e-mail whose From may be forged, ``meta["sender_verified"] == "no"``) changes no ticket,
        and the writer is asked to answer the survey mail itself. 不满意 puts the conversation in
        the operators' queue (unless turned off): the citizen is told a person follows it up, and
        what they add next reaches that person."""
        if msg.meta.get("sender_verified") == "no":
            turn.replies.append(Reply(text=say("rating_unverified")))
            return turn
        await self.tickets.rate(ticket_id, rating)
        turn.rated = True
        thanks = Reply(text=say("rating_unsatisfied" if rating == "不满意" else "rating_thanks", rating=rating))
        if (said := solved_answer(msg.text)) is not None:  # "没解决" (不满意), "解决了挺满意": answered already
            await self.tickets.mark_solved(ticket_id, said)
            if not said:
                await self._reopen(ticket_id)
        else:  # the second question (解决率), in the same message (one mail, not two): its answer is
            # read first in the next turn, whoever has the conversation then
            thanks = Reply(text=thanks.text + "\n" + say("ask_solved"), buttons=list(SURVEY_BUTTONS), ticket_id=ticket_id)
            turn.asked_solved = ticket_id
        turn.replies.append(thanks)
        if rating == "不满意" and rules.on_unsatisfied:
            turn.mode, turn.handoff_reason = "waiting", "unsatisfied"
        return turn

    async def _solved(
        self, msg: InboundMessage, state: ConversationState, mode: Mode, ticket_id: str, solved: bool,
        rules: HandoffRules,
    ) -> Turn:
        """The 回访's second answer, 已解决 or 未解决, recorded on the ticket, by its writer only (as a
        rating). In a person's hands the bot says nothing (they read it); 未解决 with the bot puts
        the conversation in their queue, as 不满意 does (``HOTLINE_HANDOFF_ON_UNSATISFIED``)."""
        turn = Turn(state=state.model_copy(deep=True), at=msg.received_at)
        if msg.meta.get("sender_verified") == "no":
            turn.replies.append(Reply(text=say("rating_unverified")))
            return turn
        try:
            await self.tickets.mark_solved(ticket_id, solved)
        except TicketNotFound:  # withdrawn since: nothing to record it on
            return turn
        reopened = not solved and await self._reopen(ticket_id)
        if mode == "operator":
            return turn
        if not solved and mode != "waiting" and rules.on_unsatisfied:
            return _handoff(turn, "unsolved", rules)  # 已记录您反映的问题尚未解决。已为您转接人工客服…
        said = "solved_thanks" if solved else "unsolved_reopened" if reopened else "unsolved_noted"
        turn.replies.append(Reply(text=say(said, ticket_id=ticket_id), ticket_id=ticket_id))
        return turn

    async def _reopen(self, ticket_id: str) -> bool:
        """未解决 with HOTLINE_REOPEN_UNSOLVED: the ticket, resolved or closed, is worked again
        (重新办理, noted as the 回访's answer: its 主办 reads why); whether it was. A ticket already
        reopened, or whose status is not the ledger's to change, stays as it is."""
        if not self.reopen_unsolved:
            return False
        try:
            await self.tickets.set_status(ticket_id, "reopened", say("reopen_note"))
        except (InvalidTransition, TicketNotFound):
            return False
        return True

    # --- steps ----------------------------------------------------------------------------
    def _idle(self, turn: Turn, msg: InboundMessage, parse: Parse, text: str) -> Turn:
        intent = parse.intent.name
        if intent in ("greet",) or (not text and msg.location is None and not msg.attachments):
            turn.state.greeted = True
            turn.replies.append(Reply(text=say("greeting")))
            return turn
        if not text and msg.location is not None:
            # where first, what next (WeChat's 位置 button): kept for the draft described next
            geo = msg.location
            turn.state.pending_location = Place(text=geo.text, lat=geo.lat, lng=geo.lng, at=msg.received_at)
            if geo.label:
                turn.replies.append(Reply(text=say("location_received_idle", place=geo.label)))
            else:  # coordinates only: ask for the details a pin cannot give
                turn.replies.append(Reply(text=say("location_received_idle_unnamed")))
            return turn
        if intent == "thanks_bye":
            turn.replies.append(Reply(text=say("bye")))
            return turn
        if intent in ("affirm", "deny", "rate"):
            turn.replies.append(Reply(text=say("help")))
            return turn
        earlier, at = turn.state.pending_text, turn.state.pending_text_at
        if earlier and at is not None and abs(msg.received_at - at) <= SHORT_TEXT_MEMORY:
            # "停水了" was too short, and this says more: the two are one description
            text = f"{earlier} {text}"
            if self.nlu is not None:
                parse = self.nlu.parse(text, parse_context(turn.state))
        turn.state.pending_text, turn.state.pending_text_at = "", None
        if asks_for_help(normalized(text)) and msg.location is None and not msg.attachments:
            turn.replies.append(Reply(text=say("help")))  # "怎么用", "你能做什么"
            return turn
        if wants_to_report(normalized(text)) and msg.location is None and not msg.attachments:
            turn.replies.append(Reply(text=say("menu_report")))  # "我要反映问题": what, then
            return turn
        if len(text) < MIN_DESCRIPTION and not parse.location.found:
            turn.replies.append(Reply(text=say("too_short")))
            turn.state.unsure_streak += 1  # the bot could not make out a request
            turn.state.pending_text, turn.state.pending_text_at = text[-200:], msg.received_at
            return turn
        draft = _draft_from(text, parse)
        _take_geo(draft, msg)
        sent, turn.state.pending_location = turn.state.pending_location, None
        if sent is not None and msg.location is None and not draft.location_text:
            # (a place named in the words wins: the citizen may have shared where they are now)
            draft.lat, draft.lng, draft.location_text = sent.lat, sent.lng, sent.text
        draft.attachments, turn.state.pending_attachments = turn.state.pending_attachments, []
        turn.state.draft = draft
        turn.state.unsure_streak = turn.state.unsure_streak + 1 if parse.category.low_confidence else 0
        if parse.urgency:
            draft.urgent = True
        return self._next_question(turn, msg)

    def _locating(self, turn: Turn, msg: InboundMessage, parse: Parse, text: str) -> Turn:
        draft = turn.state.draft
        assert draft is not None
        if _cancels(text, parse):
            return self._cancel(turn, msg)
        offered = turn.state.last_place if draft.place_offer == "offered" else None
        bare = text.strip(" 。.!！~～")
        if NO_PLACE.fullmatch(bare) or (bare in ("没有", "没") and offered is None):
            draft.no_place = True  # filed without a place; the operator sees it said so
            return self._next_question(turn, msg)
        if (more := supplements(text)) is not None and not parse.location.found and msg.location is None:
            # "我再补充一点，晚上老人经常摔倒": more about the matter, not where it is
            if len(more) >= 2:
                draft.description = f"{draft.description}\n补充：{more}"
            turn.replies.append(Reply(text=say("supplement_to_draft")))
            return self._next_question(turn, msg)
        if offered is None and msg.location is None and not parse.location.found and asks(text) \
                and not PLACE_HINT.search(ASKS_WHERE.sub("", text)):
            # "这个一般要多久？", "我还想问问社保卡怎么补办" (not in the knowledge base): no place
            turn.replies.append(Reply(text=say("location_question")))
            turn.state.unsure_streak += 1
            return turn
        answer, intent = text, parse.intent.name
        if no := NO_OPENER.match(text):  # "不是，在5栋": not the place offered
            answer, offered = text[no.end() :], None
            draft.place_offer = "declined" if draft.place_offer else ""
        elif offered is not None and (yes := YES_OPENER.match(text)):
            answer = text[yes.end() :]  # "是，在3栋门口": that place, more precisely
        answer = answer.strip()
        if parse.location.found:
            draft.location_text = parse.location.text
            draft.location_parts = parse.location.parts()
        elif msg.location is not None:
            _take_geo(draft, msg)
        elif offered is not None and (not answer or intent == "affirm" or SAME_PLACE.fullmatch(answer)):
            _take_place(draft, offered)
        elif offered is not None and answer != text:
            _take_place(draft, offered)
            draft.location_text = (offered.text + answer.removeprefix("在"))[:100]
        elif intent == "deny" or no and not answer:
            if draft.place_offer:  # the citizen said it is somewhere else: ask where, plainly
                draft.place_offer = "declined"
                turn.replies.append(Reply(text=say("ask_location_again")))
                return turn
            turn.replies.append(Reply(text=say("location_not_understood")))
            turn.state.unsure_streak += 1
            return turn
        elif intent != "affirm" and len(answer) >= 2:
            # The citizen answered "where?": take the answer as written (a bare "是的" is no place).
            draft.location_text = answer.removeprefix("在")[:100]
        else:
            turn.replies.append(Reply(text=say("location_not_understood")))
            turn.state.unsure_streak += 1
            return turn
        if contact := _contact(text):
            draft.contact = contact
        return self._next_question(turn, msg)

    def _confirming(self, turn: Turn, msg: InboundMessage, parse: Parse, text: str) -> Turn:
        draft = turn.state.draft
        assert draft is not None
        intent = parse.intent.name
        if _cancels(text, parse):
            return self._cancel(turn, msg)
        if intent == "affirm":
            turn.file = _ticket_draft(msg, draft, self.departments)
            queued = turn.state.queued
            turn.state = turn.state.after_filing(turn.file.location, msg.received_at)
            turn.replies.append(Reply(text=say("filing")))
            return self._take_up(turn, msg, queued)
        if intent == "deny":
            turn.replies.append(Reply(text=say("deny_prompt"), buttons=["取消"]))
            return turn
        # Anything else is a correction: a new place, a phone number, or more detail.
        where, swap, fixed = parse.location, NOT_BUT.match(text), False
        if swap and where.found and where.start < swap.start("right"):
            # "不是东风路 是东方路": the place found first is the one denied; the other replaces it
            right = swap.group("right").strip(" ，,。")
            better = self.nlu.parse(right, parse_context(turn.state)).location if self.nlu else None
            if better is not None and better.found:
                draft.location_text, draft.location_parts = better.text, better.parts()
            else:
                draft.location_text, draft.location_parts = right[:100], {}
            draft.lat = draft.lng = None
        elif where.found:
            draft.location_text = where.text
            draft.location_parts = where.parts()
        elif msg.location is not None:
            _take_geo(draft, msg)
        else:
            fixed = _fix_in_place(text, draft)  # "不是3栋 是5栋": one part of the place written wrong
        if contact := _contact(text):
            draft.contact = contact
        if swap and where.found or fixed:
            extra = ""  # the whole turn corrected the place
        else:
            extra = text.replace(where.text, "").strip() if where.found else text
        extra = MOBILE.sub("", extra).strip(" ，,。")
        if len(extra) >= MIN_DESCRIPTION:
            draft.description = f"{draft.description}\n补充：{extra}"
        if parse.urgency:
            draft.urgent = True
        return self._next_question(turn, msg)

    def _next_question(self, turn: Turn, msg: InboundMessage) -> Turn:
        draft = turn.state.draft
        assert draft is not None
        if not draft.location_text and not draft.no_place and draft.request_type != "表扬":
            # (praise names whom it is for, not where: it is not asked where)
            turn.state.step = "awaiting_location"
            # a question or a suggestion may concern no place at all: the citizen may say so
            placeless = [NO_PLACE_BUTTON] if draft.request_type in ("咨询", "建议") else []
            place = turn.state.place_to_offer(msg.received_at) if draft.place_offer != "declined" else None
            if place is not None:  # the citizen's last ticket, filed within the day: there again?
                draft.place_offer = "offered"
                turn.replies.append(
                    Reply(
                        text=say("ask_location_same", place=_as_read(place.text, place.lat, place.lng)),
                        buttons=["是", "不是", *placeless],
                    )
                )
            elif draft.request_type == "咨询":
                turn.replies.append(Reply(text=say("ask_location_consult"), buttons=placeless))
            elif draft.request_type == "建议":
                turn.replies.append(Reply(text=say("ask_location_suggest"), buttons=placeless))
            else:
                turn.replies.append(Reply(text=say("ask_location")))
            return turn
        turn.state.step = "confirming"
        turn.replies.append(Reply(text=say("confirm", summary=_summary(draft)), buttons=["确认", "取消"]))
        return turn

    def _cancel(self, turn: Turn, msg: InboundMessage) -> Turn:
        queued = turn.state.queued
        turn.state = turn.state.afresh()
        turn.replies.append(Reply(text=say("cancelled")))
        return self._take_up(turn, msg, queued)

    def _queue(self, turn: Turn, msg: InboundMessage, text: str) -> Turn:
        """Another matter while one is being drafted: keep it, without the words that open it,
        after any kept before (the same one sent again is kept once) and ask the current draft's
        question again."""
        kept, matter = turn.state.queued, without_opener(text)[:2000]  # "另外想问问" is no part of it
        if any(same_complaint(matter, q) or matter == q for q in kept):
            turn.replies.append(Reply(text=say("queued_matter")))
        elif len(kept) >= MAX_QUEUED:
            turn.replies.append(Reply(text=say("queued_full", n=len(kept))))
        else:
            kept.append(matter)
            turn.replies.append(Reply(text=say("queued_matter")))
        return self._next_question(turn, msg)

    def _take_up(self, turn: Turn, msg: InboundMessage, queued: list[str]) -> Turn:
        """The draft is filed or cancelled: start on the first matter kept for later, if any; one
        that opens no draft (a question answered at once) is followed by the next."""
        turn.state.queued = list(queued)
        while turn.state.queued and self.nlu is not None:
            first, rest = turn.state.queued[0], turn.state.queued[1:]
            turn.state.queued = rest
            excerpt = first if len(first) <= 30 else first[:30] + "…"
            more = say("queued_more", n=len(rest)) if rest else ""
            parse = self.nlu.parse(first, parse_context(turn.state))
            if not parse.urgency and (hit := self._knows(first, parse)) is not None:
                turn.knowledge = (hit.entry.id, "answered")  # a question kept for later: answered now
                turn.replies.append(Reply(text=say("queued_answered", excerpt=excerpt) + _answer_text(hit) + more))
                continue
            turn.replies.append(Reply(text=say("queued_taken_up", excerpt=excerpt) + more))
            later = msg.model_copy(update={"text": first, "location": None, "attachments": []})
            turn = self._idle(turn, later, parse, first)
            if turn.state.step != "idle" or turn.mode is not None:
                break
        return turn

    async def _progress(self, msg: InboundMessage, parse: Parse) -> Reply:
        ticket_id = parse.entity("ticket_id")
        if not ticket_id and (m := TICKET_ID.search(msg.text)):
            ticket_id = m.group()
        if ticket_id:
            try:
                ticket: Ticket | None = await self.tickets.get(ticket_id)
            except TicketNotFound:
                ticket = None
            if ticket is not None and ticket.conversation_key == msg.conversation_key:
                return Reply(text=self._line(ticket), ticket_id=ticket.ticket_id, kind="reply")
            # someone else's ticket looks exactly like a missing one: nothing leaks, and the number
            # is read as a slip for one of the citizen's own
            mine = await self.tickets.list_for(msg.conversation_key, limit=20)
            ticket, corrected = _own_ticket_like(mine, ticket_id)
            if ticket is None:
                lines = [say("ticket_not_found", ticket_id=ticket_id)]
                if mine:  # what the citizen may have meant
                    lines += [say("your_tickets")] + [self._line(t) for t in mine[:5]]
                return Reply(text="\n".join(lines))
            line = self._line(ticket)
            if corrected:
                line = say("ticket_number_corrected", typed=ticket_id) + "\n" + line
            return Reply(text=line, ticket_id=ticket.ticket_id, kind="reply")
        mine = await self.tickets.list_for(msg.conversation_key, limit=5)
        if not mine:
            return Reply(text=say("no_tickets"))
        lines = [say("your_tickets")] + [self._line(t) for t in mine]
        return Reply(text="\n".join(lines))

    @staticmethod
    def _urging(text: str, parse: Parse, msg: InboundMessage) -> bool:
        """催办: the citizen presses for their own ticket ("怎么还没人来", "催一下", "都一周了"), in
        a progress question, with its number, or in a few words. A writer the channel cannot vouch
        for (an unauthenticated e-mail) only hears how the ticket stands: an urge is on record."""
        compact = normalized(text)
        if not compact or len(compact) > URGE_MAX_CHARS or not urges(compact):
            return False
        if msg.meta.get("sender_verified") == "no":
            return False
        named = bool(TICKET_ID.search(text) or parse.entity("ticket_id"))
        short = len(compact) <= 8 or is_angry(text) and len(compact) <= 20  # "都半个月了到底管不管"
        return named or short or parse.intent.name == "query_progress"

    async def _urge(self, turn: Turn, msg: InboundMessage, parse: Parse, text: str) -> Reply | None:
        """Record the urge on the ticket it is about and say so, with how the ticket stands. None
        when the citizen has no open ticket and names none: the words are read as a new matter."""
        mine = await self.tickets.list_for(msg.conversation_key, limit=20)
        typed = parse.entity("ticket_id") or ((m := TICKET_ID.search(text)) and m.group()) or ""
        if typed:
            ticket = next((t for t in mine if t.ticket_id == typed), None) or _own_ticket_like(mine, typed)[0]
            if ticket is None:
                return None  # not theirs, or no such number: the progress answer says so
        else:
            open_ = [t for t in mine if t.status not in deadlines.DONE]
            if not open_:
                return None
            if len(open_) > 1:
                lines = [say("urge_which", n=len(open_))] + [self._line(t) for t in open_[:URGE_WHICH]]
                return Reply(text="\n".join(lines), buttons=[f"催办 {t.ticket_id}" for t in open_[:URGE_WHICH]])
            ticket = open_[0]
        if ticket.status in deadlines.DONE:
            return Reply(text=say("urge_done") + "\n" + self._line(ticket), ticket_id=ticket.ticket_id)
        try:
            urged = await self.tickets.urge(ticket.ticket_id, text, key=msg.id)  # a turn run again: the same
        except (TicketNotFound, NoteRefused):  # withdrawn, or done since it was listed
            return Reply(text=self._line(ticket), ticket_id=ticket.ticket_id)
        if urged.recorded:
            turn.followup = "urge"
        said = say(
            "urge_recorded" if urged.recorded else "urge_standing",
            ticket_id=ticket.ticket_id,
            title=_short_title(urged.ticket),
            count=len(urged.ticket.urges),
            at=_day_and_time(urged.at),
            quiet=period_words(self.urge_quiet),
        )
        return Reply(text=said + "\n" + self._line(urged.ticket), ticket_id=ticket.ticket_id)

    async def _supplementing(self, turn: Turn, msg: InboundMessage, parse: Parse, text: str) -> Reply | None:
        """补充 to a filed ticket: "补充一下，是南门口那盏" (or "我想补充一下", then the words) goes to
        the citizen's open ticket of the last ``supplement_window``; with several, the bot asks which
        (a 补充到 <number> button each) and keeps the words meanwhile. None: not a 补充, or no open
        ticket to add it to (the words are then read as anything else, a new matter most often)."""
        pending, turn.state.supplement = turn.state.supplement, None
        if pending is not None and abs(msg.received_at - pending.at) > SHORT_TEXT_MEMORY:
            pending = None
        rest = supplements(text)
        chosen = SUPPLEMENT_TO.fullmatch(text)
        if chosen and not (pending is not None and pending.text) and turn.state.pending_attachments:
            # the button under a photo sent after filing: the media kept for the next matter go there
            ticket = next((t for t in await self._open_recent(msg) if t.ticket_id == chosen.group(1)), None)
            if ticket is None:
                return None
            media, turn.state.pending_attachments = turn.state.pending_attachments, []
            reply = await self._add_info(turn, msg, ticket, say("supplement_media_note", n=len(media)), media)
            if reply.ticket_id is None:  # refused: they stay for the next matter
                turn.state.pending_attachments = media
            return reply
        if pending is not None and pending.text and chosen:
            mine = await self._open_recent(msg)
            ticket = next((t for t in mine if t.ticket_id == chosen.group(1)), None)
            return await self._add_info(turn, msg, ticket, pending.text) if ticket is not None else None
        if pending is not None and not pending.text and rest is None:
            if _cancels(text, parse) or TICKET_ID.search(text):
                return None  # changed their mind, or asks after a ticket
            rest = text  # the words announced
        if rest is None:
            return None
        mine = await self._open_recent(msg)
        if not mine:
            return None
        if not rest:
            turn.state.supplement = Supplement(at=msg.received_at)
            return Reply(text=say("supplement_ask"))
        if len(mine) > 1:
            turn.state.supplement = Supplement(text=rest[:MAX_INFO_NOTE], at=msg.received_at)
            lines = [say("supplement_which", n=len(mine))] + [self._line(t) for t in mine[:URGE_WHICH]]
            return Reply(text="\n".join(lines), buttons=[f"补充到 {t.ticket_id}" for t in mine[:URGE_WHICH]])
        return await self._add_info(turn, msg, mine[0], rest)

    async def _letter_supplement(self, turn: Turn, msg: InboundMessage, parse: Parse, text: str) -> Reply | None:
        """A letter answering our mail about an open ticket of the writer's (an e-mail reply in the
        ticket's thread: ``meta["thread_ticket"]``, set only for a reply the gateway's own thread
        vouches for) adds to that ticket, words and attachments, instead of filing it again. A
        done ticket (or one not theirs), or a letter about another matter (``_another_matter``):
        None, and the letter is filed as a new matter."""
        ticket_id = msg.meta.get("thread_ticket", "")
        if not ticket_id or msg.meta.get("sender_verified") == "no":
            return None
        try:
            ticket = await self.tickets.get(ticket_id)
        except TicketNotFound:
            return None
        if ticket.conversation_key != msg.conversation_key or ticket.status in deadlines.DONE:
            return None
        if supplements(text) is None and _another_matter(ticket, parse, text):
            return None
        words = text if len(text) <= MAX_INFO_NOTE else text[: MAX_INFO_NOTE - 1] + "…"
        reply = await self._add_info(turn, msg, ticket, words, [a.ref for a in msg.attachments if a.ref])
        if reply.ticket_id is None:  # done meanwhile: filed as a new matter after all
            return None
        turn.attachments_taken = True
        return reply

    async def _letter_withdraw(self, turn: Turn, msg: InboundMessage, parse: Parse, text: str,
                               rules: HandoffRules) -> bool:
        """A short letter asking to withdraw (撤单) an open ticket of the writer's: a letter cannot
        be asked to confirm as a chat is, so its words go on the ticket it names (its number, the
        e-mail thread's, or the writer's only open one) and the letter to a person, who checks and
        presses 撤单; the writer hears so. False (the letter is read on): a writer the channel
        cannot vouch for, or one with no open ticket."""
        if msg.meta.get("sender_verified") == "no" or not asks_to_withdraw(text):
            return False
        mine = await self._open_tickets(msg)
        if not mine:
            return False
        typed = (parse.entity("ticket_id") or ((m := TICKET_ID.search(text)) and m.group())
                 or msg.meta.get("thread_ticket", ""))
        named = [t for t in mine if t.ticket_id == typed] if typed else mine
        said = say("letter_withdraw_which")
        if len(named) == 1 and (await self._add_info(turn, msg, named[0], text)).ticket_id is not None:
            said = say("letter_withdraw", ticket_id=named[0].ticket_id, title=_short_title(named[0]))
        if rules.on_ask:
            _handoff(turn, "withdraw", rules)
        turn.replies = [Reply(text=said)]
        return True

    async def _open_recent(self, msg: InboundMessage) -> list[Ticket]:
        mine = await self.tickets.list_for(msg.conversation_key, limit=10)
        return [t for t in mine if t.status not in deadlines.DONE and msg.received_at - t.created_at <= self.supplement_window]

    async def _add_info(
        self, turn: Turn, msg: InboundMessage, ticket: Ticket, words: str, media: list[str] | None = None
    ) -> Reply:
        try:
            added = await self.tickets.add_info(ticket.ticket_id, words[:MAX_INFO_NOTE], media or [], key=msg.id)
        except (TicketNotFound, NoteRefused):  # withdrawn, or done since it was listed
            return Reply(text=say("supplement_refused") + "\n" + self._line(ticket))
        turn.followup = "info"
        said = say("supplement_added", ticket_id=added.ticket_id, title=_short_title(added))
        return Reply(text=said, ticket_id=added.ticket_id)

    def _line(self, ticket: Ticket) -> str:
        """How a ticket stands, with its 办理时限 while it is open."""
        return _status_line(ticket, self.due(ticket) if self.due is not None else None)

    async def _withdraw(self, turn: Turn, msg: InboundMessage, offered: Withdrawing, rules: HandoffRules) -> Turn:
        """确认撤回: the ticket is withdrawn with the citizen's words as its reason; the status change
        tells them (one message, with the reason), so this turn says nothing more. Dispatched or
        merged with since: a person checks it with them, as for a dispatched one."""
        try:
            ticket = await self.tickets.get(offered.ticket_id)
            if ticket.withdrawn_at is not None:
                return turn  # this turn run again after the withdrawal went through
            if ticket.conversation_key != msg.conversation_key or ticket.status != "received" or ticket.merged_into:
                raise WithdrawRefused(f"工单 {ticket.ticket_id} 已派单")
            await self.tickets.withdraw(ticket.ticket_id, say("withdraw_reason", words=offered.words))
        except (TicketNotFound, WithdrawRefused):
            if rules.on_ask:
                return _handoff(turn, "withdraw", rules)
            turn.replies.append(Reply(text=say("handoff_unavailable")))
        return turn

    async def _open_tickets(self, msg: InboundMessage) -> list[Ticket]:
        mine = await self.tickets.list_for(msg.conversation_key, limit=20)
        return [t for t in mine if t.status not in deadlines.DONE]


# "另外反映一个问题", "另一件事": what follows is a matter of its own, in a reply to the receipt too
# ("还有一个情况" or "新问题" is as often more of the same: 灯又不亮了)
ANOTHER = re.compile(r"另外(?:再|还)?(?:想)?(?:反映|反馈|投诉|举报)|(?:再反映|另)一?(?:个|件)(?:问题|事情?)")


def _another_matter(ticket: Ticket, parse: Parse, text: str) -> bool:
    """A letter in an open ticket's thread that is about something else: it says so ("另外反映一个
    问题"), or it names another spot and the NLU reads another kind of matter there, surely (a
    photo's caption, a door number, more of the same are none of these)."""
    if ANOTHER.search(text):
        return True
    here = LocationInfo(text=parse.location.text, parts=parse.location.parts()).place()
    there, kind = ticket.spot()
    level1 = parse.category.level1
    return (bool(here) and bool(there) and here != there and not parse.category.low_confidence
            and bool(level1) and bool(kind) and level1 != kind)


def _withdrawable(mine: list[Ticket], parse: Parse, text: str) -> Ticket | None:
    """Of the citizen's open tickets (``mine``), the one they may withdraw themselves (撤单 in the
    chat): their only one, or the one they name, while it is not yet dispatched (已受理登记) nor
    merged with another. None: a person checks with them instead (a department has it already,
    or which ticket is meant is not clear)."""
    typed = parse.entity("ticket_id") or ((m := TICKET_ID.search(text)) and m.group()) or ""
    named = [t for t in mine if t.ticket_id == typed] if typed else mine
    if len(named) != 1 or named[0].status != "received" or named[0].merged_into:
        return None
    return named[0]


def _own_ticket_like(mine: list[Ticket], typed: str) -> tuple[Ticket | None, bool]:
    """The one ticket of the citizen's own (``mine``) that a number typed otherwise names, and
    whether it took a correction: the serial alone ("000123") or other separators name it as
    typed; a whole number with one slip (a digit missing, extra or wrong, two digits swapped)
    names it when no other of their tickets is as close. Only their own tickets are looked at,
    so nothing leaks."""
    want = ticket_key(typed)
    if len(want) < 3:
        return None, False
    keys = [ticket_key(t.ticket_id) for t in mine]
    like = [t for t, k in zip(mine, keys, strict=True) if k.endswith(want)]
    if like:
        return (like[0], False) if len(like) == 1 else (None, False)
    if len(want) < 12:  # a serial with a slip could be any of them
        return None, False
    near = [t for t, k in zip(mine, keys, strict=True) if OSA.distance(k, want, score_cutoff=1) <= 1]
    return (near[0], True) if len(near) == 1 else (None, False)


def _judged(text: str, parse: Parse) -> bool | None:
    """The answer to "以上答复是否解决了您的问题？": True (solved), False (not), None (something else)."""
    if text == SOLVED_BUTTON:
        return True
    if text == UNSOLVED_BUTTON or len(text) <= 12 and UNSOLVED.search(text):
        return False
    if len(text) <= 12 and (SOLVED.fullmatch(text.strip("。！!~～ ，,")) or parse.intent.name in ("affirm", "thanks_bye")):
        return True
    if len(text) <= 12 and parse.intent.name == "deny":
        return False
    return None


def _answer_text(hit: Hit) -> str:
    entry = hit.entry
    source = say("knowledge_source", source=entry.source) if entry.source else ""
    return say("knowledge_answer", answer=entry.answer.strip(), source=source)


def _resume(state: ConversationState) -> Reply:
    """Back to the draft after answering something else (a progress question) mid-way."""
    if state.step == "confirming":
        return Reply(text=say("resume_confirm"), buttons=["确认", "取消"])
    return Reply(text=say("resume_location"))


def _handoff(turn: Turn, reason: str, rules: HandoffRules) -> Turn:
    """Queue the conversation for a person and tell the citizen roughly when one will answer."""
    turn.mode = "waiting"
    turn.handoff_reason = reason
    turn.state.unsure_streak = 0
    turn.state.repeat_streak = 1
    prefix = str(texts().get("handoff_reasons", {}).get(reason, ""))
    if rules.staffed(turn.at):
        turn.replies = [Reply(text=prefix + say("handoff", eta=max(rules.eta_minutes, 1)))]
    else:  # queued for the morning: the citizen hears when, and that the phone line never closes
        when = rules.when_said(turn.at)
        turn.replies = [Reply(text=prefix + say("handoff_after_hours", hours=rules.hours_said(),
                                                when=f"将于{when}" if when else ""))]
    return turn


def _status_line(ticket: Ticket, due: datetime | None = None) -> str:
    """How a ticket stands: its status, the latest word on it, and (open) its 办理时限."""
    history = ticket.history
    note = f"，{history[-1].note}" if history and history[-1].note else ""
    at = history[-1].at if history else ticket.updated_at
    open_due = due is not None and ticket.status not in deadlines.DONE
    return say(
        "status_line",
        ticket_id=ticket.ticket_id,
        status=status_name(ticket.status, ticket.withdrawn_at is not None) + (say("status_merged", main=ticket.merged_into) if ticket.merged_into else ""),
        note=note,
        at=at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M"),  # the citizen's clock, whatever the server's
        due=say("status_due_extended" if ticket.extended_until else "status_due", due=deadlines.said(due))
        if open_due and due is not None else "",
    )


def _day_and_time(at: datetime) -> str:
    """"11月28日 09:05" in Beijing time, as a citizen writes it."""
    local = at.astimezone(BEIJING)
    return f"{local.month}月{local.day}日 {local:%H:%M}"


def _short_title(ticket: Ticket) -> str:
    """What a ticket is about, in a few words: its title, else the start of its description."""
    title = (ticket.title or ticket.description).strip()
    return title if len(title) <= MAX_LEN else title[: MAX_LEN - 1] + "…"


def _draft_from(text: str, parse: Parse) -> Draft:
    cat = parse.category
    departments = [d for d in [parse.departments.primary, *parse.departments.co_handlers] if d]
    return Draft(
        description=text,
        subject=parse.subject,
        location_text=parse.location.text,
        location_parts=parse.location.parts(),
        category=cat.path(),
        category_confidence=cat.confidence,
        category_confident=bool(cat.level1) and not cat.low_confidence,
        request_type=parse.request_type,
        urgent=parse.urgency,
        departments=departments,
        contact=_contact(text),
    )


def _ticket_draft(msg: InboundMessage, draft: Draft, departments: DepartmentMap, title: str = "") -> TicketDraft:
    """The ticket to file. The draft keeps the department map's 属地 placeholders while the place
    may still change (the citizen answers 在哪里, corrects a street): they become the offices of
    the place confirmed only now."""
    return TicketDraft(
        channel=msg.channel,
        conversation_key=msg.conversation_key,
        contact=draft.contact,
        title=title or _title(draft),
        description=draft.description,
        category=draft.category,
        request_type=draft.request_type,
        urgent=draft.urgent,
        location=LocationInfo(text=draft.location_text, parts=draft.location_parts, lat=draft.lat, lng=draft.lng),
        departments=departments.localize(draft.departments, draft.location_parts),
        attachments=draft.attachments,
    )


def _take_geo(draft: Draft, msg: InboundMessage) -> None:
    if msg.location is not None:
        draft.lat, draft.lng = msg.location.lat, msg.location.lng
        if not draft.location_text:
            draft.location_text = msg.location.text


def _cancels(text: str, parse: Parse) -> bool:
    """The citizen gives up the draft: a short turn that opens with 取消 / 算了不报了 (GIVE_UP), or
    that the NLU reads as a refusal and says so further in; "不是3栋" is a correction, not this."""
    compact = re.sub(r"[\s，,。.！!？?~～🙄]+", "", text)
    if len(compact) > 20:
        return False
    return bool(GIVE_UP.match(compact)) or parse.intent.name == "deny" and bool(CANCEL.search(compact))


def _title(draft: Draft) -> str:
    """The ticket's title: the NLU's subject, with the place in front when the citizen named it
    only when asked where ("楼下饭店的油烟…" + "K2区书院路在水一方大厦")."""
    subject = draft.subject or draft.description[:MAX_LEN]
    if not draft.location_text:
        return subject
    where = Location.model_validate({**draft.location_parts, "text": draft.location_text})
    return with_place(subject, where)


def _keep_attachments(turn: Turn, msg: InboundMessage) -> None:
    """The message's media go with the ticket being drafted (or filed this very turn); with no
    draft open they wait in the state for the next one, which the citizen is asked to describe."""
    refs = [a.ref for a in msg.attachments if a.ref]
    if not refs:
        return
    if turn.file is not None:
        turn.file.attachments = _bounded(turn.file.attachments, refs)
    elif turn.state.draft is not None:
        turn.state.draft.attachments = _bounded(turn.state.draft.attachments, refs)
    else:
        turn.state.pending_attachments = _bounded(turn.state.pending_attachments, refs)


def _bounded(kept: list[str], refs: list[str]) -> list[str]:
    return list(dict.fromkeys([*kept, *refs]))[:MAX_ATTACHMENTS]


def _fix_in_place(text: str, draft: Draft) -> bool:
    """Replace the wrong part of the place by the right one, where the place holds it (in its text
    and parts): "不是3栋 是5栋", "是7栋不是1栋", "门牌号写错了 是88号 不是86". True if it did."""
    m = WRONG_RIGHT.search(text) or RIGHT_WRONG.search(text)
    if m is None:
        return False
    wrong, right = m.group("wrong"), m.group("right")
    unit = re.search(r"[号栋幢座单元楼层室]+$", right)
    if unit and not wrong.endswith(unit.group()) and wrong.isdigit():
        wrong += unit.group()  # "是88号 不是86": 86 is the 86号 of the place
    if not wrong or wrong == right or wrong not in draft.location_text:
        return False
    draft.location_text = draft.location_text.replace(wrong, right)
    draft.location_parts = {k: v.replace(wrong, right) for k, v in draft.location_parts.items()}
    return True


def _take_place(draft: Draft, place: Place) -> None:
    draft.location_text, draft.location_parts = place.text, dict(place.parts)
    draft.lat, draft.lng = place.lat, place.lng


def _contact(text: str) -> str:
    m = MOBILE.search(text)
    return m.group() if m else ""


SURVEY_BUTTONS = ("已解决", "未解决")
# 解决情况 as citizens answer the 回访's second question, in a short turn (a long one describes the
# matter again: read as such). Not the knowledge base's SOLVED / UNSOLVED, which judge an answer.
SURVEY_UNSOLVED = re.compile(r"(没|未|沒|不)(有|能|得到|完全|彻底)*(被)?解决|(还|依然|仍然?)(存)?在|还没(修)?好|没修好|老样子|没人(管|来)"
                      r"|部分解决|解决了?(一)?部分")
SURVEY_SOLVED = re.compile(r"解决(了|啦|咯)?|修好了|处理好了|弄好了|好了")
SURVEY_MAX = 15


def solved_answer(text: str) -> bool | None:
    """已解决 (True), 未解决 (False), or no answer to 是否已经解决 (None): a turn of at most
    SURVEY_MAX characters that says so; the negative read first (没解决 holds 解决)."""
    said = re.sub(r"[\s，。！!？?、,.~～]+", "", text)
    if not said or len(said) > SURVEY_MAX:
        return None
    if SURVEY_UNSOLVED.search(said):
        return False
    return True if SURVEY_SOLVED.search(said) else None


def _rating_of(text: str, parse: Parse) -> str | None:
    value = parse.entity("rating")
    if value in RATINGS:
        return value
    for rating in RATINGS:
        if text.startswith(rating) or text == rating:
            return rating
    return None


def _as_read(place: str, lat: float | None, lng: float | None) -> str:
    """A shared place with no name is only its coordinates, converted to the map's datum: the
    citizen is told 您分享的位置, not numbers unlike the ones their phone showed (the ticket and the
    operator keep the coordinates)."""
    if lat is not None and lng is not None and place == f"{lat:.5f},{lng:.5f}":
        return say("shared_place")
    return place


def _summary(draft: Draft) -> str:
    lines = []
    if draft.category_confident and draft.category:
        lines.append(say("confirm_category", category=" / ".join(draft.category)))
    if draft.request_type:
        lines.append(say("confirm_type", request_type=draft.request_type))
    if draft.location_text:
        lines.append(say("confirm_location", location=_as_read(draft.location_text, draft.lat, draft.lng)))
    elif draft.no_place:
        lines.append(say("confirm_no_location"))
    description = draft.description if len(draft.description) <= 200 else draft.description[:200] + "…"
    lines.append(say("confirm_description", description=description))
    if draft.contact:
        lines.append(say("confirm_contact", contact=draft.contact))
    if draft.attachments:
        lines.append(say("confirm_attachments", n=len(draft.attachments)))
    if draft.urgent:
        lines.append(say("confirm_urgent"))
    return "\n".join(lines)
