"""The dialogue turn by turn, with the real NLU and a real ledger (SQLite)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.dialogue import Bot, Turn, parse_context
from bot.state import ConversationState
from bot.texts import say
from channels.base import Attachment, GeoLocation, InboundMessage
from nlu import get_backend
from nlu.dialogue_rules import without_opener
from ticket_client import LocalLedger, TicketDraft
from ticket_client.base import TicketRef


class Citizen:
    """One web conversation: says things, keeps the state the gateway would keep."""

    def __init__(self, bot: Bot, sender: str = "s1") -> None:
        self.bot = bot
        self.sender = sender
        self.state = ConversationState()
        self.pending_rating: str | None = None
        self.pending_solved: str | None = None  # the 回访's second question, asked by the last turn
        self.mode = "bot"  # who has the conversation: set by a test (the bot's handoffs are not followed)
        self.nlu = get_backend()

    async def says(self, text: str, **extra: object) -> Turn:
        msg = InboundMessage(channel="web", channel_message_id=text, sender=self.sender, text=text, **extra)  # type: ignore[arg-type]
        parse = self.nlu.parse(text, parse_context(self.state, self.pending_rating))  # as the gateway does
        turn = await self.bot.handle(msg, parse, self.state, self.mode, self.pending_rating,  # type: ignore[arg-type]
                                     pending_solved=self.pending_solved)
        self.state = turn.state
        self.pending_solved = turn.asked_solved  # as the gateway keeps it: for the next turn only
        if turn.rated:  # answered: the survey waits no more
            self.pending_rating = None
        return turn


    async def files_a_ticket(self, ledger: LocalLedger) -> TicketRef:
        """Describe a broken street lamp with its place, confirm, and have the ledger file it."""
        await self.says("A3区联丰路米兰春天小区门口的路灯坏了一个星期了")
        turn = await self.says("确认")
        assert turn.file is not None
        return await ledger.file(turn.file, f"k-{self.sender}")

    async def files_another_ticket(self, ledger: LocalLedger) -> TicketRef:
        """A second matter (rubbish at the market gate), filed beside the first."""
        await self.says("A3区联丰路菜市场门口的垃圾堆了好几天没人清理")
        turn = await self.says("确认")
        assert turn.file is not None
        return await ledger.file(turn.file, f"k2-{self.sender}")

    async def is_surveyed(self, ledger: LocalLedger, ticket_id: str) -> None:
        """The ticket is resolved and the satisfaction survey waits for this citizen's answer."""
        for status in ("accepted", "resolved"):
            await ledger.set_status(ticket_id, status)
        self.pending_rating = ticket_id


def texts(turn: Turn) -> str:
    return "\n".join(r.text for r in turn.replies)


async def test_asks_where_then_confirms_then_files(ledger: LocalLedger) -> None:
    citizen = Citizen(Bot(ledger, get_backend()))
    turn = await citizen.says("楼下饭店的油烟每天晚上都排到我家窗户里")
    assert "地点" in texts(turn) and turn.file is None
    turn = await citizen.says("K2区书院路在水一方大厦")
    assert "请确认" in texts(turn) and "在水一方" in texts(turn)
    turn = await citizen.says("确认")
    assert turn.file is not None
    assert "在水一方" in turn.file.location.text and "油烟" in turn.file.description
    # the title says where too, although the place came only when asked
    assert turn.file.title.startswith("K2区在水一方大厦") and "油烟" in turn.file.title and len(turn.file.title) <= 20
    assert citizen.state.step == "idle" and citizen.state.draft is None


async def test_the_place_given_when_asked_settles_the_local_office(ledger: LocalLedger) -> None:
    """属地派单: the department map's 属地街道办事处 becomes the street office of the place the
    citizen confirms, given only when asked; the draft keeps the placeholder until then."""
    citizen = Citizen(Bot(ledger, get_backend()))
    await citizen.says("小区门口的路灯坏了一个星期了，晚上很黑")
    assert citizen.state.draft is not None and "属地街道办事处" in citizen.state.draft.departments
    await citizen.says("雨花区洞井街道桂花坪社区")
    turn = await citizen.says("确认")
    assert turn.file is not None and turn.file.location.parts.get("town") == "洞井街道"
    assert "洞井街道办事处" in turn.file.departments and "属地街道办事处" not in turn.file.departments


async def test_corrections_before_confirming(ledger: LocalLedger) -> None:
    citizen = Citizen(Bot(ledger, get_backend()))
    await citizen.says("A3区联丰路米兰春天小区门口的路灯坏了一个星期了")
    turn = await citizen.says("不对")
    assert "更正" in texts(turn) and turn.file is None
    turn = await citizen.says("地点是A3区联丰路88号，联系电话13812345678")
    assert "联丰路88号" in texts(turn) and "13812345678" in texts(turn)
    turn = await citizen.says("确认")
    assert turn.file is not None and turn.file.contact == "13812345678"


async def test_cancel_drops_the_draft(ledger: LocalLedger) -> None:
    citizen = Citizen(Bot(ledger, get_backend()))
    await citizen.says("A3区联丰路米兰春天小区门口的路灯坏了一个星期了")
    turn = await citizen.says("取消")
    assert "已取消" in texts(turn) and citizen.state.draft is None


@pytest.mark.parametrize("photo_first", [False, True], ids=["location", "photo-then-location"])
async def test_browser_location_answers_where(ledger: LocalLedger, photo_first: bool) -> None:
    """With the NLU the gateway gives the bot: a shared place has no words, and no words are no
    other matter (it was kept "for later" and the citizen asked where again)."""
    citizen = Citizen(Bot(ledger, get_backend()))
    await citizen.says("这里的井盖丢了，晚上很危险")
    if photo_first:
        await citizen.says("", attachments=[Attachment(kind="image", mime="image/jpeg", ref="upload:" + "a" * 32)])
    turn = await citizen.says("", location=GeoLocation(lat=28.19, lng=112.98, label="A市芙蓉中路一段"))
    assert "芙蓉中路" in texts(turn) and "记下了" not in texts(turn) and not citizen.state.queued
    turn = await citizen.says("确认")
    assert turn.file is not None and turn.file.location.lat == 28.19
    assert turn.file.attachments == (["upload:" + "a" * 32] if photo_first else [])


async def test_a_location_shared_first_is_the_place_of_the_problem_described_next(ledger: LocalLedger) -> None:
    """WeChat's 位置 button before any words: it was answered 描述有点简短 and lost."""
    citizen = Citizen(Bot(ledger, get_backend()))
    turn = await citizen.says("", location=GeoLocation(lat=28.19, lng=112.98, label="A市芙蓉中路一段"))
    assert texts(turn) == say("location_received_idle", place="A市芙蓉中路一段") and citizen.state.draft is None
    turn = await citizen.says("路灯坏了好几天了 晚上黑漆漆的")
    assert "请确认" in texts(turn) and "芙蓉中路" in texts(turn)
    turn = await citizen.says("确认")
    assert turn.file is not None and (turn.file.location.lat, turn.file.location.lng) == (28.19, 112.98)


async def test_a_pin_without_a_name_is_told_as_the_citizens_own_not_as_numbers(ledger: LocalLedger) -> None:
    citizen = Citizen(Bot(ledger, get_backend()))
    turn = await citizen.says("", location=GeoLocation(lat=30.2756874, lng=120.1603321, datum="gcj02"))
    assert texts(turn) == say("location_received_idle_unnamed")
    turn = await citizen.says("路灯坏了好几天了 晚上黑漆漆的")
    assert say("confirm_location", location=say("shared_place")) in texts(turn) and "30.27" not in texts(turn)
    turn = await citizen.says("确认")
    assert turn.file is not None  # the ticket and the operator keep the coordinates
    assert (turn.file.location.text, turn.file.location.lat) == ("30.27569,120.16033", 30.2756874)


async def test_a_too_short_description_is_joined_to_what_the_citizen_says_next(ledger: LocalLedger) -> None:
    """"路灯不亮" is too short; "就在我家门口 好几天了" says more of it: the ticket holds both."""
    citizen = Citizen(Bot(ledger, get_backend()))
    turn = await citizen.says("路灯不亮")
    assert texts(turn) == say("too_short")
    await citizen.says("就在我家门口 好几天了")
    assert citizen.state.draft is not None
    assert citizen.state.draft.description == "路灯不亮 就在我家门口 好几天了"
    assert citizen.state.pending_text == ""


async def test_a_too_short_description_is_forgotten_after_a_while(ledger: LocalLedger) -> None:
    citizen = Citizen(Bot(ledger, get_backend()))
    await citizen.says("路灯不亮")
    later = citizen.state.pending_text_at + timedelta(hours=2)  # type: ignore[operator]
    await citizen.says("楼下饭店的油烟每天晚上都排到我家窗户里", received_at=later)
    assert citizen.state.draft.description == "楼下饭店的油烟每天晚上都排到我家窗户里"  # type: ignore[union-attr]


async def test_rating_after_resolution(ledger: LocalLedger) -> None:
    citizen = Citizen(Bot(ledger, get_backend()))
    ref = await citizen.files_a_ticket(ledger)
    await citizen.is_surveyed(ledger, ref.ticket_id)
    turn = await citizen.says("基本满意")
    assert turn.rated and "基本满意" in texts(turn)
    assert (await ledger.get(ref.ticket_id)).rating == "基本满意"
    # the 回访's second question: whether the problem was solved (解决率)
    assert turn.replies[0].text.endswith("\n" + say("ask_solved")) and turn.replies[0].buttons == ["已解决", "未解决"]
    assert turn.asked_solved == ref.ticket_id
    turn = await citizen.says("已经解决了，谢谢")
    assert texts(turn) == say("solved_thanks") and turn.mode is None and turn.asked_solved is None
    assert (await ledger.get(ref.ticket_id)).solved is True
    turn = await citizen.says("没解决")  # asked once: a second answer is no answer (read as any other words)
    assert (await ledger.get(ref.ticket_id)).solved is True and turn.replies[0].text != say("unsolved_noted")


async def test_a_rating_that_says_whether_it_was_solved_is_not_asked_again(ledger: LocalLedger) -> None:
    citizen = Citizen(Bot(ledger, get_backend()))
    ref = await citizen.files_a_ticket(ledger)
    await citizen.is_surveyed(ledger, ref.ticket_id)
    turn = await citizen.says("没解决")  # the survey's answer: 不满意, and 未解决 with it
    assert turn.rated and (await ledger.get(ref.ticket_id)).rating == "不满意"
    assert (await ledger.get(ref.ticket_id)).solved is False and turn.asked_solved is None
    assert say("ask_solved") not in texts(turn)


async def test_unsolved_goes_to_a_person_and_an_answer_in_their_hands_is_recorded_silently(ledger: LocalLedger) -> None:
    """未解决 with the bot: the conversation goes to the operators' queue (as 不满意 does). After
    不满意 it is there already: the answer is recorded, and the bot, a person's now, says only that."""
    citizen = Citizen(Bot(ledger, get_backend()))
    ref = await citizen.files_a_ticket(ledger)
    await citizen.is_surveyed(ledger, ref.ticket_id)
    await citizen.says("满意")
    turn = await citizen.says("还没解决")
    assert (turn.mode, turn.handoff_reason) == ("waiting", "unsolved") and "尚未解决" in texts(turn)
    assert (await ledger.get(ref.ticket_id)).solved is False

    unhappy = Citizen(Bot(ledger, get_backend()), sender="s2")
    other = await unhappy.files_a_ticket(ledger)
    await unhappy.is_surveyed(ledger, other.ticket_id)
    assert (await unhappy.says("不满意")).mode == "waiting"
    unhappy.mode = "waiting"
    turn = await unhappy.says("问题依然存在")
    assert texts(turn) == say("unsolved_noted") and turn.mode is None  # waiting still, not handed again
    assert (await ledger.get(other.ticket_id)).solved is False
    unhappy.pending_solved, unhappy.mode = other.ticket_id, "operator"  # an operator took it meanwhile
    turn = await unhappy.says("已解决")
    assert turn.replies == [] and (await ledger.get(other.ticket_id)).solved is True


async def test_unsolved_reopens_the_ticket_when_the_city_wants_it(ledger: LocalLedger) -> None:
    """HOTLINE_REOPEN_UNSOLVED: 未解决, asked or said with the rating, reopens the ticket at once
    (重新办理, noted as the 回访's answer) and the citizen hears so; 已解决 reopens nothing."""
    citizen = Citizen(Bot(ledger, get_backend(), reopen_unsolved=True))
    ref = await citizen.files_a_ticket(ledger)
    await citizen.is_surveyed(ledger, ref.ticket_id)
    await citizen.says("满意")
    turn = await citizen.says("还没解决")
    assert (turn.mode, turn.handoff_reason) == ("waiting", "unsolved")  # a person follows it up too
    ticket = await ledger.get(ref.ticket_id)
    assert (ticket.status, ticket.solved, ticket.history[-1].note) == ("reopened", False, say("reopen_note"))

    unhappy = Citizen(Bot(ledger, get_backend(), reopen_unsolved=True), sender="s2")
    other = await unhappy.files_a_ticket(ledger)
    await unhappy.is_surveyed(ledger, other.ticket_id)
    await unhappy.says("不满意")
    unhappy.mode = "waiting"
    turn = await unhappy.says("问题依然存在")
    assert texts(turn) == say("unsolved_reopened", ticket_id=other.ticket_id)
    assert (await ledger.get(other.ticket_id)).status == "reopened"

    said = Citizen(Bot(ledger, get_backend(), reopen_unsolved=True), sender="s3")  # 未解决 with the rating
    third = await said.files_a_ticket(ledger)
    await said.is_surveyed(ledger, third.ticket_id)
    await said.says("没解决")
    assert (await ledger.get(third.ticket_id)).status == "reopened"

    solved = Citizen(Bot(ledger, get_backend(), reopen_unsolved=True), sender="s4")
    fourth = await solved.files_a_ticket(ledger)
    await solved.is_surveyed(ledger, fourth.ticket_id)
    await solved.says("满意")
    await solved.says("已解决")
    assert (await ledger.get(fourth.ticket_id)).status == "resolved"


async def test_without_the_setting_unsolved_leaves_the_ticket_to_a_supervisor(ledger: LocalLedger) -> None:
    citizen = Citizen(Bot(ledger, get_backend()))
    ref = await citizen.files_a_ticket(ledger)
    await citizen.is_surveyed(ledger, ref.ticket_id)
    await citizen.says("没解决")
    assert (await ledger.get(ref.ticket_id)).status == "resolved"  # under 回访未解决, to reopen or not


@pytest.mark.parametrize("answer", ["小区门口的路灯又坏了，晚上一片漆黑没人管，希望尽快派人来修", "查询进度"])
async def test_words_that_are_no_answer_to_the_second_question_are_read_as_usual(ledger: LocalLedger, answer: str) -> None:
    citizen = Citizen(Bot(ledger, get_backend()))
    ref = await citizen.files_a_ticket(ledger)
    await citizen.is_surveyed(ledger, ref.ticket_id)
    await citizen.says("满意")
    turn = await citizen.says(answer)
    assert (await ledger.get(ref.ticket_id)).solved is None and say("solved_thanks") not in texts(turn)
    assert citizen.pending_solved is None  # the question is not asked again


async def test_unsatisfied_goes_to_a_person_as_the_citizen_is_told(ledger: LocalLedger) -> None:
    citizen = Citizen(Bot(ledger, get_backend()))
    ref = await citizen.files_a_ticket(ledger)
    await citizen.is_surveyed(ledger, ref.ticket_id)
    turn = await citizen.says("不满意")
    # 工作人员会进一步跟进, and the second question, whose answer the person who follows it up reads
    assert turn.rated and texts(turn) == say("rating_unsatisfied", rating="不满意") + "\n" + say("ask_solved")
    assert (turn.mode, turn.handoff_reason) == ("waiting", "unsatisfied")
    assert (await ledger.get(ref.ticket_id)).rating == "不满意"


async def test_unsatisfied_stays_with_the_bot_when_turned_off(ledger: LocalLedger) -> None:
    from bot.handoff import HandoffRules

    bot = Bot(ledger, get_backend())
    citizen = Citizen(bot)
    ref = await citizen.files_a_ticket(ledger)
    await citizen.is_surveyed(ledger, ref.ticket_id)
    msg = InboundMessage(channel="web", channel_message_id="r", sender=citizen.sender, text="不满意")
    parse = citizen.nlu.parse("不满意", parse_context(citizen.state, citizen.pending_rating))
    turn = await bot.handle(msg, parse, citizen.state, "bot", citizen.pending_rating,
                            rules=HandoffRules(on_unsatisfied=False))
    assert turn.rated and turn.mode is None
    happy = Citizen(bot, sender="s2")
    other = await happy.files_a_ticket(ledger)
    await happy.is_surveyed(ledger, other.ticket_id)
    assert (await happy.says("满意")).mode is None  # only 不满意 asks for a person


async def test_events(ledger: LocalLedger) -> None:
    citizen = Citizen(Bot(ledger, get_backend()))
    turn = await citizen.says("", event="subscribe")
    assert "12345" in texts(turn)
    turn = await citizen.says("", event="unsubscribe")
    assert turn.replies == []


async def test_another_matter_mid_draft_is_taken_up_next(ledger: LocalLedger) -> None:
    """ "另外想问问…" while confirming is not added to this ticket: it is kept, and drafted as soon
    as this one is filed, without the citizen saying it again."""
    citizen = Citizen(Bot(ledger, get_backend()))
    await citizen.says("A3区联丰路米兰春天小区门口的路灯坏了一个星期了")
    assert citizen.state.step == "confirming"
    turn = await citizen.says("另外想问问 我们小区楼下垃圾站好几天没人清运了 臭得不行")
    assert "记下" in texts(turn) and "请确认" in texts(turn)
    assert "垃圾" not in citizen.state.draft.description  # type: ignore[union-attr]
    turn = await citizen.says("确认")
    assert turn.file is not None and "路灯" in turn.file.description and "垃圾" not in turn.file.description
    assert "另一件事" in texts(turn) and "垃圾站" in texts(turn)
    assert citizen.state.draft is not None and "垃圾站" in citizen.state.draft.description
    assert not citizen.state.draft.description.startswith("另外")  # the opener is no part of it
    assert citizen.state.step != "idle" and not citizen.state.queued  # asks where, or to confirm


async def test_a_kept_matter_survives_cancelling(ledger: LocalLedger) -> None:
    citizen = Citizen(Bot(ledger, get_backend()))
    await citizen.says("最近晚上总有人放鞭炮 吵得睡不着")
    assert citizen.state.step == "awaiting_location"
    await citizen.says("还有个事 我们小区门口那条路的路灯不亮了")
    turn = await citizen.says("取消")
    assert "已取消" in texts(turn) and "路灯" in texts(turn)
    assert citizen.state.draft is not None and "路灯" in citizen.state.draft.description


async def test_the_next_matter_is_offered_the_last_tickets_place(ledger: LocalLedger) -> None:
    """"还有个事，我们小区楼下…" names no place: once the first ticket is filed, the bot asks
    whether it is where that one was, and "是" takes that place, parts and all."""
    citizen = Citizen(Bot(ledger, get_backend()))
    await citizen.says("A3区联丰路米兰春天小区门口的路灯坏了一个星期了")
    first = citizen.state.draft.location_text  # type: ignore[union-attr]
    assert "米兰春天" in first
    await citizen.says("另外想问问 我们小区楼下垃圾站好几天没人清运了 臭得不行")
    turn = await citizen.says("确认")
    assert turn.file is not None and citizen.state.step == "awaiting_location"
    offer = turn.replies[-1]
    assert first in offer.text and offer.buttons == ["是", "不是"]
    turn = await citizen.says("是")
    assert "请确认" in texts(turn) and first in texts(turn)
    turn = await citizen.says("确认")
    assert turn.file is not None and "垃圾站" in turn.file.description
    assert turn.file.location.text == first and turn.file.location.parts.get("community")


async def test_yes_with_more_detail_narrows_the_offered_place(ledger: LocalLedger) -> None:
    citizen = Citizen(Bot(ledger, get_backend()))
    await citizen.files_a_ticket(ledger)
    first = citizen.state.last_place.text  # type: ignore[union-attr]
    turn = await citizen.says("楼道里的声控灯坏了 晚上上楼黑乎乎的")
    assert first in texts(turn)
    await citizen.says("是，在3栋2单元")
    assert citizen.state.draft.location_text == first + "3栋2单元"  # type: ignore[union-attr]


@pytest.mark.parametrize("same", ["同上", "还是那个小区", "一样的地方", "对的，就在那里"])
async def test_the_same_place_in_the_citizens_words(ledger: LocalLedger, same: str) -> None:
    citizen = Citizen(Bot(ledger, get_backend()))
    await citizen.files_a_ticket(ledger)
    await citizen.says("楼道里的声控灯坏了 晚上上楼黑乎乎的")
    turn = await citizen.says(same)
    assert citizen.state.step == "confirming" and citizen.state.last_place.text in texts(turn)  # type: ignore[union-attr]


async def test_no_to_the_offered_place_asks_where_plainly(ledger: LocalLedger) -> None:
    citizen = Citizen(Bot(ledger, get_backend()))
    await citizen.files_a_ticket(ledger)
    first = citizen.state.last_place.text  # type: ignore[union-attr]
    await citizen.says("楼下饭店的油烟每天晚上都排到我家窗户里")
    turn = await citizen.says("不是")
    assert texts(turn) == say("ask_location_again") and citizen.state.step == "awaiting_location"
    turn = await citizen.says("是的")  # the offer was refused: a yes now is no place
    assert texts(turn) == say("location_not_understood") and first not in texts(turn)
    turn = await citizen.says("K2区书院路在水一方大厦")
    assert "请确认" in texts(turn) and "在水一方" in texts(turn) and first not in texts(turn)


async def test_no_then_the_place_in_one_answer(ledger: LocalLedger) -> None:
    citizen = Citizen(Bot(ledger, get_backend()))
    await citizen.files_a_ticket(ledger)
    await citizen.says("楼下饭店的油烟每天晚上都排到我家窗户里")
    await citizen.says("不是，在公司后门")
    assert citizen.state.draft.location_text == "公司后门"  # type: ignore[union-attr]


async def test_the_last_place_is_offered_for_a_day_only(ledger: LocalLedger) -> None:
    citizen = Citizen(Bot(ledger, get_backend()))
    await citizen.files_a_ticket(ledger)
    filed_at = citizen.state.last_place.at  # type: ignore[union-attr]
    turn = await citizen.says("楼道里的声控灯坏了 晚上上楼黑乎乎的", received_at=filed_at + timedelta(hours=25))
    assert texts(turn) == say("ask_location")
    assert citizen.state.last_place is not None  # kept, only not offered


async def test_a_bare_yes_is_no_place(ledger: LocalLedger) -> None:
    """With no place to offer, "是的" answering "where?" was once taken as the place "是的"."""
    citizen = Citizen(Bot(ledger, get_backend()))
    await citizen.says("楼下饭店的油烟每天晚上都排到我家窗户里")
    turn = await citizen.says("是的")
    assert texts(turn) == say("location_not_understood") and citizen.state.draft.location_text == ""  # type: ignore[union-attr]


async def test_a_cancelled_draft_keeps_the_last_filed_place(ledger: LocalLedger) -> None:
    citizen = Citizen(Bot(ledger, get_backend()))
    await citizen.files_a_ticket(ledger)
    first = citizen.state.last_place.text  # type: ignore[union-attr]
    await citizen.says("K2区书院路在水一方大厦门口的垃圾桶满了没人清")
    await citizen.says("取消")
    assert citizen.state.last_place is not None and citizen.state.last_place.text == first


async def test_a_question_may_concern_no_place(ledger: LocalLedger) -> None:
    """A policy question is asked which district it concerns, and "无" (or the button) files it
    without a place instead of the bot insisting on one."""
    citizen = Citizen(Bot(ledger, get_backend()))
    turn = await citizen.says("我在外地打工 想在这边看病用老家的医保 异地就医备案怎么弄")
    assert texts(turn) == say("ask_location_consult") and turn.replies[-1].buttons == ["不涉及具体地点"]
    turn = await citizen.says("无")
    assert "请确认" in texts(turn) and say("confirm_no_location") in texts(turn)
    turn = await citizen.says("确认")
    assert turn.file is not None and turn.file.location.text == "" and turn.file.request_type == "咨询"
    assert citizen.state.last_place is None  # nothing to offer the next matter


@pytest.mark.parametrize("answer", ["没有具体地点", "不涉及具体地点", "不知道", "没有"])
async def test_a_complaint_without_a_place_is_filed_when_the_citizen_says_so(
    ledger: LocalLedger, answer: str
) -> None:
    citizen = Citizen(Bot(ledger, get_backend()))
    turn = await citizen.says("营业厅给我爸办了个139的套餐 老人家根本不晓得 每个月自动扣费扣了半年")
    assert texts(turn) == say("ask_location")
    turn = await citizen.says(answer)
    assert "请确认" in texts(turn) and say("confirm_no_location") in texts(turn)
    assert citizen.state.draft.location_text == ""  # type: ignore[union-attr]  # not the place "不知道"


async def test_no_to_the_offered_place_is_not_no_place(ledger: LocalLedger) -> None:
    """After "还在…吗？", "没有" declines the offer; it does not say there is no place."""
    citizen = Citizen(Bot(ledger, get_backend()))
    await citizen.files_a_ticket(ledger)
    await citizen.says("楼下饭店的油烟每天晚上都排到我家窗户里")
    turn = await citizen.says("没有")
    assert texts(turn) == say("ask_location_again") and citizen.state.step == "awaiting_location"


@pytest.mark.parametrize("step_text", ["楼下饭店的油烟每天晚上都排到我家窗户里", "A3区联丰路米兰春天小区门口的路灯坏了一个星期了"])
@pytest.mark.parametrize("give_up", ["算了不报了", "不用了 我自己找物业去吧", "唔使啦 取消", "不要登记了，物业刚来给修好了"])
async def test_giving_up_in_the_citizens_words_cancels(ledger: LocalLedger, step_text: str, give_up: str) -> None:
    """Asked where (or to confirm), "算了不报了" drops the draft; it was read as the place "算了不报了"."""
    citizen = Citizen(Bot(ledger, get_backend()))
    await citizen.says(step_text)
    assert citizen.state.step in ("awaiting_location", "confirming")
    turn = await citizen.says(give_up)
    assert texts(turn) == say("cancelled") and citizen.state.draft is None and turn.file is None


async def test_a_progress_question_mid_draft_is_answered_and_the_draft_resumed(ledger: LocalLedger) -> None:
    citizen = Citizen(Bot(ledger, get_backend()))
    await citizen.says("楼下饭店的油烟每天晚上都排到我家窗户里")
    turn = await citizen.says("对了 我上个月报的那个还没人来呢")
    assert [r.text for r in turn.replies] == [say("no_tickets"), say("resume_location")]
    assert citizen.state.step == "awaiting_location" and "油烟" in citizen.state.draft.description  # type: ignore[union-attr]


async def test_a_place_corrected_as_not_this_but_that(ledger: LocalLedger) -> None:
    """"不是东风路 是东方路": the first place named is the wrong one."""
    citizen = Citizen(Bot(ledger, get_backend()))
    await citizen.says("K2区东风路的路灯坏了一个星期了 晚上黑漆漆的")
    assert "东风路" in citizen.state.draft.location_text  # type: ignore[union-attr]
    turn = await citizen.says("不是东风路 是东方路")
    assert citizen.state.draft.location_text == "东方路" and "发生地点：东方路" in texts(turn)  # type: ignore[union-attr]
    assert "补充" not in citizen.state.draft.description  # type: ignore[union-attr]


async def test_another_matter_while_asked_where_is_kept_not_taken_as_the_place(ledger: LocalLedger) -> None:
    citizen = Citizen(Bot(ledger, get_backend()))
    await citizen.says("楼下饭店的油烟每天晚上都排到我家窗户里")
    turn = await citizen.says("还有 我家门口那个废品站天天烧东西 冒黑烟")
    assert "记下" in texts(turn) and citizen.state.draft.location_text == ""  # type: ignore[union-attr]
    assert citizen.state.queued == ["我家门口那个废品站天天烧东西 冒黑烟"]


async def test_back_from_the_queue_the_draft_goes_on(ledger: LocalLedger) -> None:
    """An urgent report handed to a person keeps its draft; 继续 takes it up where it stood."""
    citizen = Citizen(Bot(ledger, get_backend()))
    turn = await citizen.says("井盖丢了！！！晚上看不见要出人命的")
    assert turn.mode == "waiting" and citizen.state.step == "awaiting_location"
    msg = InboundMessage(channel="web", channel_message_id="r1", sender=citizen.sender, text="继续")
    turn = await citizen.bot.handle(msg, citizen.nlu.parse("继续", {}), citizen.state, "waiting")
    assert turn.mode == "bot" and texts(turn) == say("resume_location")


async def test_praise_is_not_asked_where(ledger: LocalLedger) -> None:
    citizen = Citizen(Bot(ledger, get_backend()))
    turn = await citizen.says("表扬一下东关派出所的李警官 帮我找回了走丢的老父亲 真的很感谢他")
    assert citizen.state.step == "confirming" and "诉求类型：表扬" in texts(turn) and "发生地点" not in texts(turn)
    turn = await citizen.says("确认")
    assert turn.file is not None and turn.file.request_type == "表扬"


async def test_a_danger_shouted_goes_to_a_person_as_urgent_not_as_anger(ledger: LocalLedger) -> None:
    citizen = Citizen(Bot(ledger, get_backend()))
    turn = await citizen.says("井盖丢了！！！在光明路小学旁边 晚上看不见要出人命的")
    assert turn.mode == "waiting" and turn.handoff_reason == "urgent"
    assert citizen.state.draft is not None and citizen.state.draft.urgent  # the operator sees the draft


async def test_asking_who_answers_is_greeted_not_drafted(ledger: LocalLedger) -> None:
    citizen = Citizen(Bot(ledger, get_backend()))
    turn = await citizen.says("你好 请问这是12345吗")
    assert texts(turn) == say("greeting") and citizen.state.draft is None


PHOTO = Attachment(kind="image", mime="image/jpeg", ref="wechat:gh_city:MEDIA_1")


async def test_a_photo_sent_first_goes_with_the_ticket_described_next(ledger: LocalLedger) -> None:
    citizen = Citizen(Bot(ledger, get_backend()))
    turn = await citizen.says("", attachments=[PHOTO])
    assert texts(turn) == say("attachment_received_idle", what="图片") and citizen.state.draft is None
    assert citizen.state.pending_attachments == [PHOTO.ref]
    turn = await citizen.says("A3区联丰路米兰春天小区门口的路灯坏了一个星期了")
    assert say("confirm_attachments", n=1) in texts(turn) and citizen.state.pending_attachments == []
    turn = await citizen.says("确认")
    assert turn.file is not None and turn.file.attachments == [PHOTO.ref]


async def test_a_photo_while_asked_where_is_kept_and_the_question_asked_again(ledger: LocalLedger) -> None:
    citizen = Citizen(Bot(ledger, get_backend()))
    await citizen.says("楼下饭店的油烟每天晚上都排到我家窗户里")
    turn = await citizen.says("", attachments=[PHOTO, PHOTO])  # (the same one twice is kept once)
    assert [r.text for r in turn.replies] == [say("attachment_received", what="图片"), say("resume_location")]
    assert citizen.state.draft.attachments == [PHOTO.ref]  # type: ignore[union-attr]
    await citizen.says("K2区书院路在水一方大厦")
    turn = await citizen.says("确认")
    assert turn.file is not None and turn.file.attachments == [PHOTO.ref]


async def test_a_photo_with_its_caption_starts_the_draft(ledger: LocalLedger) -> None:
    """Telegram sends a photo's caption as the text of the same message."""
    citizen = Citizen(Bot(ledger, get_backend()))
    await citizen.says("A3区联丰路米兰春天小区门口的井盖丢了", attachments=[PHOTO])
    assert citizen.state.draft is not None and citizen.state.draft.attachments == [PHOTO.ref]


async def test_several_matters_mid_draft_are_taken_up_in_turn(ledger: LocalLedger) -> None:
    """Two more matters while one is drafted (and one of them sent twice): each is drafted in
    the order it came, one after the other is filed; none is lost."""
    citizen = Citizen(Bot(ledger, get_backend()))
    await citizen.says("A3区联丰路米兰春天小区门口的路灯坏了一个星期了")
    await citizen.says("另外想问问 我们小区楼下垃圾站好几天没人清运了 臭得不行")
    await citizen.says("还有个事 楼下烧烤店每天营业到凌晨两点 油烟太大")
    await citizen.says("还有个事 楼下烧烤店每天营业到凌晨两点 油烟太大")
    assert len(citizen.state.queued) == 2
    turn = await citizen.says("确认")
    assert turn.file is not None and "路灯" in turn.file.description
    assert "垃圾站" in texts(turn) and "还有1件" in texts(turn)
    assert citizen.state.draft is not None and "垃圾站" in citizen.state.draft.description
    if citizen.state.step == "awaiting_location":
        await citizen.says("A3区联丰路米兰春天小区")
    turn = await citizen.says("确认")
    assert turn.file is not None and "垃圾站" in turn.file.description
    assert citizen.state.draft is not None and "烧烤" in citizen.state.draft.description
    assert citizen.state.queued == []


async def test_kept_matters_are_bounded_and_the_citizen_is_told(ledger: LocalLedger) -> None:
    citizen = Citizen(Bot(ledger, get_backend()))
    await citizen.says("最近晚上总有人放鞭炮 吵得睡不着")
    matters = [
        "还有个事 我们小区东门那条路的路灯不亮了",
        "还有个事 楼下垃圾站好几天没人清运了",
        "另外想问问 小区里的健身器材坏了没人修",
        "还有个事 菜市场门口总有人占道摆摊",
        "还有个事 学校门口早上堵车特别厉害",
        "另外想问问 公交站的站牌被撞歪了",
    ]
    for matter in matters:
        turn = await citizen.says(matter)
    assert citizen.state.queued == [without_opener(m) for m in matters[:5]] and "记不下" in texts(turn)


def test_a_state_saved_with_one_kept_matter_still_loads() -> None:
    """Before round 14 the state kept one matter as a string (states live on in Redis)."""
    old = ConversationState.model_validate_json('{"step": "confirming", "queued": "路灯不亮了"}')
    assert old.queued == ["路灯不亮了"]
    assert ConversationState.model_validate_json('{"queued": ""}').queued == []


async def test_a_danger_raised_mid_draft_goes_to_a_person_now(ledger: LocalLedger) -> None:
    citizen = Citizen(Bot(ledger, get_backend()))
    await citizen.says("最近晚上总有人放鞭炮 吵得睡不着")
    turn = await citizen.says("还有个事 我们小区门口那条路的井盖丢了 晚上很危险")
    assert turn.mode == "waiting" and turn.handoff_reason == "urgent"


async def test_a_correction_that_opens_with_no(ledger: LocalLedger) -> None:
    """ "不是88号 是86号" is no refusal: the number is corrected in the place itself."""
    citizen = Citizen(Bot(ledger, get_backend()))
    await citizen.says("A3区联丰路88号米兰春天小区门口的路灯坏了一个星期了")
    turn = await citizen.says("不是88号 是86号")
    assert say("deny_prompt") not in texts(turn) and "请确认" in texts(turn)
    draft = citizen.state.draft
    assert draft is not None and "联丰路86号" in draft.location_text and "88号" not in draft.location_text
    assert draft.location_parts.get("number") == "86号" and "补充" not in draft.description


@pytest.mark.parametrize(
    ("first", "correction", "place"),
    [
        ("米兰春天小区3栋楼道灯坏了一个月了", "不是3栋 是5栋", "5栋"),
        ("米兰春天小区1栋楼道灯坏了一个月了", "地址不对 是7栋不是1栋", "7栋"),
        ("A3区联丰路86号门口的井盖松了 车一压就响", "门牌号写错了 是88号 不是86", "88号"),
    ],
)
async def test_a_part_of_the_place_corrected(ledger: LocalLedger, first: str, correction: str, place: str) -> None:
    citizen = Citizen(Bot(ledger, get_backend()))
    await citizen.says(first)
    before = citizen.state.draft.location_text  # type: ignore[union-attr]
    await citizen.says(correction)
    after = citizen.state.draft.location_text  # type: ignore[union-attr]
    assert place in after and after != before and len(after) == len(before)


async def test_survey_answered_in_the_citizens_words(ledger: LocalLedger) -> None:
    citizen = Citizen(Bot(ledger, get_backend()))
    ref = await citizen.files_a_ticket(ledger)
    await citizen.is_surveyed(ledger, ref.ticket_id)
    turn = await citizen.says("还行吧 就是拖得有点久")
    assert turn.rated and (await ledger.get(ref.ticket_id)).rating == "基本满意"


async def test_declining_the_survey_leaves_it_for_later(ledger: LocalLedger) -> None:
    citizen = Citizen(Bot(ledger, get_backend()))
    ref = await citizen.files_a_ticket(ledger)
    await citizen.is_surveyed(ledger, ref.ticket_id)
    turn = await citizen.says("不评了")
    assert texts(turn) == say("rating_later") and not turn.rated and citizen.state.draft is None
    assert (await ledger.get(ref.ticket_id)).rating is None


async def test_a_new_complaint_while_the_survey_waits_is_not_a_rating(ledger: LocalLedger) -> None:
    citizen = Citizen(Bot(ledger, get_backend()))
    citizen.pending_rating = "12345-20261127-000001"
    turn = await citizen.says("楼下烧烤店的油烟太大了 熏得人不行")
    assert not turn.rated and citizen.state.draft is not None


async def test_progress_question_without_a_number(ledger: LocalLedger) -> None:
    citizen = Citizen(Bot(ledger, get_backend()))
    ref = await citizen.files_a_ticket(ledger)
    turn = await citizen.says("昨天报的那个 有人接了没")
    assert ref.ticket_id in texts(turn)


async def test_progress_by_the_serial_alone(ledger: LocalLedger) -> None:
    """"我的工单000123…": the serial names one of the citizen's own tickets; someone else's
    ticket is never found that way."""
    citizen = Citizen(Bot(ledger, get_backend()))
    ref = await citizen.files_a_ticket(ledger)
    serial = ref.ticket_id.rsplit("-", 1)[1]
    turn = await citizen.says(f"请问一下我的工单{serial}有回复了吗")
    assert ref.ticket_id in texts(turn) and "没有找到" not in texts(turn)
    stranger = Citizen(Bot(ledger, get_backend()), sender="s2")
    turn = await stranger.says(f"请问一下我的工单{serial}有回复了吗")
    assert "没有找到" in texts(turn) and ref.ticket_id not in texts(turn)


def slips(number: str) -> list[str]:
    """A ticket number as people mistype it: a digit dropped, two swapped, O for 0, one wrong."""
    i = number.rindex("-") + 4  # inside the serial
    swapped = number[: i - 1] + number[i] + number[i - 1] + number[i + 1 :]
    return [
        number[:i] + number[i + 1 :],
        swapped if swapped != number else number[:i] + "9" + number[i + 1 :],
        number.replace("0", "O"),
        number[:-1] + ("7" if number[-1] != "7" else "8"),
    ]


async def test_a_mistyped_number_finds_the_citizens_own_ticket(ledger: LocalLedger) -> None:
    """One slip in a whole number still names the citizen's ticket, said as a correction;
    a stranger typing the same slips hears "not found" and never sees the ticket."""
    citizen = Citizen(Bot(ledger, get_backend()))
    ref = await citizen.files_a_ticket(ledger)
    for typed in slips(ref.ticket_id):
        turn = await Citizen(citizen.bot).says(f"查询 {typed}")  # a new conversation each time
        assert ref.ticket_id in texts(turn), typed
        assert turn.replies[0].ticket_id == ref.ticket_id
        if typed.replace("O", "0") != ref.ticket_id:
            assert "可能是这一张" in texts(turn), typed
    for typed in slips(ref.ticket_id):
        turn = await Citizen(citizen.bot, sender="s2").says(f"查询 {typed}")
        # told "not found" (echoing the number as read), with no status line of the ticket
        assert "没有找到" in texts(turn) and "更新于" not in texts(turn), typed
        assert turn.replies[0].ticket_id is None and "可能是这一张" not in texts(turn), typed


async def test_an_unknown_number_lists_the_citizens_tickets(ledger: LocalLedger) -> None:
    """Two slips away from anything: not found, and the citizen's own tickets follow, so the
    right number is at hand; two tickets equally close are not guessed between."""
    citizen = Citizen(Bot(ledger, get_backend()))
    first = await citizen.files_a_ticket(ledger)
    second = await citizen.files_a_ticket(ledger)
    turn = await citizen.says("查询 12345-20201231-999999")
    assert "没有找到" in texts(turn) and say("your_tickets") in texts(turn)
    assert first.ticket_id in texts(turn) and second.ticket_id in texts(turn)
    a, b = first.ticket_id, second.ticket_id
    between = next(
        (a[:i] + b[i] + a[i + 1 :] for i in range(len(a)) if a[i] != b[i] and a[:i] + b[i] + a[i + 1 :] != b),
        None,
    )
    if between is not None:  # one slip from both when they differ in two places
        turn = await Citizen(citizen.bot).says(f"查询 {between}")
        assert "可能是这一张" not in texts(turn)


async def test_a_ticket_not_yet_dispatched_is_withdrawn_once_the_citizen_confirms(ledger: LocalLedger) -> None:
    """撤单 in the chat: "撤了吧…已经修好了" with a ticket still 已受理登记 asks to confirm; 不撤回
    keeps it; 确认撤回 withdraws it with the citizen's words as its reason and says nothing more
    (the status change tells them); the same turn run again changes nothing."""
    citizen = Citizen(Bot(ledger, get_backend()))
    turn = await citizen.says("那个单子撤了吧，人家已经来修好了")
    assert turn.mode is None and not turn.replies[0].buttons  # nothing filed: nothing to withdraw
    ref = await citizen.files_a_ticket(ledger)
    turn = await citizen.says("那个单子撤了吧，人家已经来修好了")
    assert turn.mode is None and turn.replies[0].buttons == ["确认撤回", "不撤回"]
    assert ref.ticket_id in texts(turn) and "尚未派单" in texts(turn)
    turn = await citizen.says("不撤回")
    assert texts(turn) == say("withdraw_kept", ticket_id=ref.ticket_id) and citizen.state.withdrawing is None
    assert (await ledger.get(ref.ticket_id)).status == "received"
    await citizen.says("那个单子撤了吧，人家已经来修好了")
    before = citizen.state
    turn = await citizen.says("确认撤回")
    assert turn.replies == [] and turn.mode is None and citizen.state.withdrawing is None
    ticket = await ledger.get(ref.ticket_id)
    assert ticket.status == "closed" and ticket.withdrawn_at is not None
    assert ticket.history[-1].note == "市民自行撤回：那个单子撤了吧，人家已经来修好了"
    citizen.state = before  # the turn run again (its commit lost a race): the withdrawal stands, no handoff
    turn = await citizen.says("确认撤回")
    assert turn.replies == [] and turn.mode is None and len((await ledger.get(ref.ticket_id)).history) == 2


async def test_a_dispatched_ticket_is_withdrawn_by_a_person(ledger: LocalLedger) -> None:
    """Once a department has it (or the centre turned self-service off, or it is not clear which
    ticket is meant), "撤了吧" hands the conversation to an operator, who checks it; a ticket
    dispatched between the offer and 确认撤回 too."""
    citizen = Citizen(Bot(ledger, get_backend()))
    ref = await citizen.files_a_ticket(ledger)
    await ledger.set_status(ref.ticket_id, "accepted")
    turn = await citizen.says("那个单子撤了吧，人家已经来修好了")
    assert turn.mode == "waiting" and turn.handoff_reason == "withdraw" and "撤回" in texts(turn)

    off = Citizen(Bot(ledger, get_backend(), self_withdraw=False), sender="s2")
    await off.files_a_ticket(ledger)
    turn = await off.says("那个单子撤了吧，人家已经来修好了")
    assert turn.mode == "waiting" and turn.handoff_reason == "withdraw"

    late = Citizen(Bot(ledger, get_backend()), sender="s3")
    ref = await late.files_a_ticket(ledger)
    assert (await late.says("那个单子撤了吧，人家已经来修好了")).replies[0].buttons == ["确认撤回", "不撤回"]
    await ledger.set_status(ref.ticket_id, "accepted")
    turn = await late.says("确认撤回")
    assert turn.mode == "waiting" and turn.handoff_reason == "withdraw"
    assert (await ledger.get(ref.ticket_id)).status == "accepted"


async def test_which_ticket_to_withdraw_is_the_one_named_or_a_person_asks(ledger: LocalLedger) -> None:
    """Two open tickets: "撤了吧" alone goes to a person; "撤回 <number>" offers that one; words
    that are no answer let the offer lapse and are read as they come (确认撤回 after that asks anew)."""
    citizen = Citizen(Bot(ledger, get_backend()))
    first = await citizen.files_a_ticket(ledger)
    second = await citizen.files_another_ticket(ledger)
    turn = await citizen.says("那个单子撤了吧，不用处理了")
    assert turn.handoff_reason == "withdraw"
    citizen.mode = "bot"
    turn = await citizen.says(f"撤回 {second.ticket_id}")
    assert turn.replies[0].buttons == ["确认撤回", "不撤回"] and turn.replies[0].ticket_id == second.ticket_id
    turn = await citizen.says("你好")
    assert citizen.state.withdrawing is None and texts(turn) == say("greeting")
    assert (await citizen.says("确认撤回")).handoff_reason == "withdraw"  # asked anew: which is not clear
    assert [(await ledger.get(t.ticket_id)).status for t in (first, second)] == ["received", "received"]


async def test_a_progress_question_gives_the_latest_progress_note(ledger: LocalLedger) -> None:
    """查询 answers with the status and the latest word on it: a department's 办理进展 counts."""
    citizen = Citizen(Bot(ledger, get_backend()))
    ref = await citizen.files_a_ticket(ledger)
    await ledger.set_status(ref.ticket_id, "accepted", "已派至A3区城管局")
    await ledger.add_note(ref.ticket_id, "已联系物业，预计周五前修复")
    answer = texts(await citizen.says(f"查询 {ref.ticket_id}"))
    assert "已派单" in answer and "已联系物业，预计周五前修复" in answer and "A3区城管局" not in answer


async def test_a_progress_question_about_a_merged_ticket_names_its_main(ledger: LocalLedger) -> None:
    """并单: the citizen asking after their ticket hears it is handled with the main one, and the
    main's latest word as their own."""
    citizen = Citizen(Bot(ledger, get_backend()))
    ref = await citizen.files_a_ticket(ledger)
    main = await ledger.file(TicketDraft(channel="web", conversation_key="web:neighbour", description="路灯坏了"), "main")
    await ledger.set_status(main.ticket_id, "accepted", "已派至A3区城管局")
    await ledger.merge(ref.ticket_id, main.ticket_id)
    await ledger.add_note(main.ticket_id, "已联系物业，预计周五前修复")
    answer = texts(await citizen.says(f"查询 {ref.ticket_id}"))
    assert f"已派单，承办部门已接收（与工单 {main.ticket_id} 合并办理），已联系物业，预计周五前修复" in answer
    await ledger.unmerge(ref.ticket_id)
    assert "合并办理）" not in texts(await citizen.says(f"查询 {ref.ticket_id}"))


async def test_an_urge_is_put_on_the_ticket_and_said_with_how_it_stands(ledger: LocalLedger) -> None:
    """催办: "怎么还没人来修" about the citizen's one open ticket is recorded on it (once a day)
    and answered with its status; the ticket's last step stays what the department did."""
    citizen = Citizen(Bot(ledger, get_backend()))
    ref = await citizen.files_a_ticket(ledger)
    await ledger.set_status(ref.ticket_id, "accepted", "已派至A3区城管局")
    turn = await citizen.says("怎么还没人来修啊")
    answer = texts(turn)
    assert "已为您催办" in answer and ref.ticket_id in answer and "第1次" in answer and "已派单" in answer
    assert turn.replies[0].ticket_id == ref.ticket_id and turn.file is None and turn.mode is None
    assert turn.followup == "urge"  # counted (hotline_followups_total)
    assert [u.note for u in (await ledger.get(ref.ticket_id)).urges] == ["怎么还没人来修啊"]
    turn = await citizen.says("催一下")
    assert "已于" in texts(turn) and "一天内催办一次即可" in texts(turn) and turn.followup is None
    assert len((await ledger.get(ref.ticket_id)).urges) == 1
    # a plain question about it is no urge
    turn = await citizen.says(f"查询 {ref.ticket_id}")
    assert "催办" not in texts(turn) and len((await ledger.get(ref.ticket_id)).urges) == 1


async def test_an_urge_standing_is_told_with_the_centres_quiet_period(ledger: LocalLedger) -> None:
    """HOTLINE_URGE_QUIET_HOURS=12: the second urge within it is told 同一工单12小时内催办一次即可."""
    citizen = Citizen(Bot(ledger, get_backend(), urge_quiet=timedelta(hours=12)))
    await citizen.files_a_ticket(ledger)
    assert "已为您催办" in texts(await citizen.says("怎么还没人来修啊"))  # the ledger's own quiet period (a day)
    assert "同一工单12小时内催办一次即可" in texts(await citizen.says("催一下"))


async def test_an_urge_naming_no_ticket_asks_which_of_several(ledger: LocalLedger) -> None:
    citizen = Citizen(Bot(ledger, get_backend()))
    first = await citizen.files_a_ticket(ledger)
    second = await citizen.files_another_ticket(ledger)
    turn = await citizen.says("能不能快点处理")
    assert "请选择要催办的工单" in texts(turn)
    assert set(turn.replies[0].buttons) == {f"催办 {first.ticket_id}", f"催办 {second.ticket_id}"}
    assert not (await ledger.get(first.ticket_id)).urges and not (await ledger.get(second.ticket_id)).urges
    turn = await citizen.says(f"催办 {second.ticket_id}")  # the button
    assert "已为您催办" in texts(turn) and second.ticket_id in texts(turn)
    assert not (await ledger.get(first.ticket_id)).urges and len((await ledger.get(second.ticket_id)).urges) == 1


async def test_an_urge_of_a_done_ticket_or_with_none_open_records_nothing(ledger: LocalLedger) -> None:
    citizen = Citizen(Bot(ledger, get_backend()))
    ref = await citizen.files_a_ticket(ledger)
    for status in ("accepted", "resolved"):
        await ledger.set_status(ref.ticket_id, status)
    turn = await citizen.says(f"催办 {ref.ticket_id}")
    assert "已办结，无需催办" in texts(turn) and "已办结" in texts(turn)
    turn = await citizen.says("怎么还没处理")  # none open: how their tickets stand, nothing pressed
    assert "催办" not in texts(turn) and ref.ticket_id in texts(turn)
    assert (await ledger.get(ref.ticket_id)).urges == []


async def test_a_new_matter_that_presses_is_drafted_not_taken_for_an_urge(ledger: LocalLedger) -> None:
    citizen = Citizen(Bot(ledger, get_backend()))
    ref = await citizen.files_a_ticket(ledger)
    turn = await citizen.says("A3区联丰路菜市场门口的垃圾堆了三天了还没人清理")
    assert "催办" not in texts(turn) and turn.state.step == "confirming"
    assert (await ledger.get(ref.ticket_id)).urges == []


async def test_an_angry_urge_is_recorded_and_goes_to_a_person(ledger: LocalLedger) -> None:
    citizen = Citizen(Bot(ledger, get_backend()))
    ref = await citizen.files_a_ticket(ledger)
    turn = await citizen.says("都半个月了到底管不管")
    assert turn.mode == "waiting" and turn.handoff_reason == "angry"
    assert "已为您催办" in turn.replies[0].text and len((await ledger.get(ref.ticket_id)).urges) == 1


async def test_a_supplement_goes_to_the_ticket_just_filed(ledger: LocalLedger) -> None:
    """补充: more words on a filed matter are added to its ticket, not drafted as a new one."""
    citizen = Citizen(Bot(ledger, get_backend()))
    ref = await citizen.files_a_ticket(ledger)
    turn = await citizen.says("补充一下，是南门口那盏，灯杆上编号L203")
    assert "已将您的补充内容添加到工单" in texts(turn) and ref.ticket_id in texts(turn)
    assert turn.file is None and turn.state.step == "idle" and turn.state.draft is None and turn.followup == "info"
    turn = await citizen.says("我想补充一下")  # announced: the words come next
    assert texts(turn) == say("supplement_ask")
    turn = await citizen.says("晚上老人经常在那里摔倒")
    assert "已将您的补充内容添加到工单" in texts(turn)
    ticket = await ledger.get(ref.ticket_id)
    assert [(f.kind, f.note) for f in ticket.followups] == [
        ("info", "是南门口那盏，灯杆上编号L203"), ("info", "晚上老人经常在那里摔倒")]
    assert ticket.urges == [] and len(ticket.history) == 1  # no step of the work
    turn = await citizen.says("补充医疗保险怎么报销")  # a question about an insurance, not a 补充
    assert "补充内容" not in texts(turn) and len((await ledger.get(ref.ticket_id)).followups) == 2


@pytest.mark.parametrize("days, added", [(7, False), (20, True)])
async def test_a_supplement_reaches_an_open_ticket_as_old_as_the_centre_allows(
    ledger: LocalLedger, days: int, added: bool
) -> None:
    """HOTLINE_SUPPLEMENT_DAYS: ten days after filing, a 补充 reaches the open ticket only when the
    window is that long (by default, 7 days, the words are read as a matter of their own)."""
    citizen = Citizen(Bot(ledger, get_backend(), supplement_window=timedelta(days=days)))
    ref = await citizen.files_a_ticket(ledger)
    turn = await citizen.says("补充一下，是南门口那盏，灯杆上编号L203", received_at=datetime.now(UTC) + timedelta(days=10))
    assert ("已将您的补充内容添加到工单" in texts(turn)) is added
    assert len((await ledger.get(ref.ticket_id)).followups) == int(added)


async def test_a_supplement_with_several_open_tickets_asks_which_and_keeps_the_words(ledger: LocalLedger) -> None:
    citizen = Citizen(Bot(ledger, get_backend()))
    first = await citizen.files_a_ticket(ledger)
    second = await citizen.files_another_ticket(ledger)
    turn = await citizen.says("忘了说，每天早上六点就开始有臭味")
    assert "请选择要补充到哪一件" in texts(turn)
    assert set(turn.replies[0].buttons) == {f"补充到 {first.ticket_id}", f"补充到 {second.ticket_id}"}
    turn = await citizen.says(f"补充到 {second.ticket_id}")
    assert "已将您的补充内容添加到工单" in texts(turn) and second.ticket_id in texts(turn)
    assert [f.note for f in (await ledger.get(second.ticket_id)).followups] == ["每天早上六点就开始有臭味"]
    assert (await ledger.get(first.ticket_id)).followups == []
    turn = await citizen.says(f"补充到 {first.ticket_id}")  # the words went once: nothing kept
    assert "已将您的补充内容" not in texts(turn) and (await ledger.get(first.ticket_id)).followups == []


async def test_a_supplement_with_no_open_ticket_is_read_as_a_matter(ledger: LocalLedger) -> None:
    citizen = Citizen(Bot(ledger, get_backend()))
    turn = await citizen.says("补充一下，A3区联丰路米兰春天小区门口的路灯坏了")
    assert "补充内容" not in texts(turn) and turn.state.draft is not None


async def test_a_supplement_answering_where_is_kept_in_the_description_and_where_asked_again(
    ledger: LocalLedger,
) -> None:
    citizen = Citizen(Bot(ledger, get_backend()))
    await citizen.says("小区门口的路灯坏了一个星期了")
    turn = await citizen.says("我再补充一点，晚上老人经常摔倒")
    draft = turn.state.draft
    assert draft is not None and draft.location_text == "" and turn.state.step == "awaiting_location"
    assert "补充：晚上老人经常摔倒" in draft.description and say("supplement_to_draft") in texts(turn)


async def test_a_photo_after_filing_is_offered_to_the_ticket_just_filed(ledger: LocalLedger) -> None:
    """A photo sent after filing: kept for the next matter as before, with a 补充到 button that
    adds it to the ticket instead (its attachments, and a 补充 row saying so)."""
    citizen = Citizen(Bot(ledger, get_backend()))
    ref = await citizen.files_a_ticket(ledger)
    photo = Attachment(kind="image", mime="image/jpeg", ref="upload:" + "b" * 32)
    turn = await citizen.says("", attachments=[photo])
    assert turn.replies[0].buttons == [f"补充到 {ref.ticket_id}"] and "补充" in texts(turn)
    assert turn.state.pending_attachments == [photo.ref]
    turn = await citizen.says(f"补充到 {ref.ticket_id}")
    assert "已将您的补充内容添加到工单" in texts(turn) and turn.state.pending_attachments == []
    ticket = await ledger.get(ref.ticket_id)
    assert ticket.attachments == [photo.ref] and [f.note for f in ticket.additions] == ["［补充附件1个］"]
    # not pressed: the photo goes with the matter described next, as before
    other = Attachment(kind="image", mime="image/jpeg", ref="upload:" + "c" * 32)
    await citizen.says("", attachments=[other])
    turn = await citizen.says("A3区联丰路菜市场门口的垃圾堆了好几天没人清理")
    assert turn.state.draft is not None and turn.state.draft.attachments == [other.ref]
    assert (await ledger.get(ref.ticket_id)).attachments == [photo.ref]


@pytest.mark.parametrize("words", ["怎么还没人来修啊", "补充一下，是南门口那盏"])
async def test_a_turn_run_again_records_its_urge_or_supplement_once(ledger: LocalLedger, words: str) -> None:
    """The worker runs a turn again when its commit raced (WATCH) or the process died before it:
    the same message (its id) finds what it recorded, and the citizen reads the same answer."""
    citizen = Citizen(Bot(ledger, get_backend()))
    ref = await citizen.files_a_ticket(ledger)
    msg = InboundMessage(channel="web", channel_message_id="again", sender=citizen.sender, text=words)
    parse = citizen.nlu.parse(words, parse_context(citizen.state))
    first = await citizen.bot.handle(msg, parse, citizen.state)
    again = await citizen.bot.handle(msg, parse, citizen.state)
    assert texts(first) == texts(again) and ref.ticket_id in texts(first)
    assert len((await ledger.get(ref.ticket_id)).followups) == 1


async def test_an_open_tickets_status_is_told_with_its_time_limit(ledger: LocalLedger) -> None:
    from datetime import UTC, datetime

    due = datetime(2026, 12, 18, 16, 0, tzinfo=UTC)  # the end of 12-18 in Beijing
    citizen = Citizen(Bot(ledger, get_backend(), due=lambda ticket: due))
    ref = await citizen.files_a_ticket(ledger)
    assert "，办理时限 2026年12月18日前" in texts(await citizen.says(f"查询 {ref.ticket_id}"))
    for status in ("accepted", "resolved"):
        await ledger.set_status(ref.ticket_id, status)
    assert "办理时限" not in texts(await citizen.says(f"查询 {ref.ticket_id}"))  # done: no limit to tell
