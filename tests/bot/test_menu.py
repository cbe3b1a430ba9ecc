"""The bot's menu (WeChat's custom menu: a click's ``meta["event_key"]``) and "我要反映问题" typed."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.dialogue import Bot, Turn, parse_context
from bot.handoff import HandoffRules
from channels.base import InboundMessage
from nlu.knowledge import KnowledgeBase
from tests.bot.test_dialogue import Citizen, texts
from tests.bot.test_knowledge import KB, SOCIAL_CARD
from ticket_client import LocalLedger

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "knowledge.yml"


@pytest.fixture
def citizen(ledger: LocalLedger) -> Citizen:
    from nlu import get_backend

    return Citizen(Bot(ledger, get_backend(), knowledge=lambda: KB))


async def taps(citizen: Citizen, key: str, rules: HandoffRules | None = None) -> Turn:
    """A click on a menu button, as the WeChat channel hands it on: an event without words."""
    msg = InboundMessage(channel="web", channel_message_id=f"click:{key}", sender=citizen.sender, text="",
                         event="click", meta={"event_key": key})
    parse = citizen.nlu.parse("", parse_context(citizen.state))
    turn = await citizen.bot.handle(msg, parse, citizen.state, "bot", None, rules)
    citizen.state = turn.state
    return turn


async def test_report_asks_what_and_where_and_the_next_words_are_the_matter(citizen: Citizen) -> None:
    turn = await taps(citizen, "hotline:report")
    assert "请直接描述您要反映的问题" in texts(turn) and turn.state.draft is None and turn.file is None
    turn = await citizen.says("A3区联丰路米兰春天小区门口的路灯坏了一个星期了")
    assert turn.state.step == "confirming" and "路灯" in turn.state.draft.description  # type: ignore[union-attr]


async def test_progress_lists_the_citizens_tickets(citizen: Citizen, ledger: LocalLedger) -> None:
    turn = await taps(citizen, "hotline:progress")
    assert "还没有登记过工单" in texts(turn)
    ref = await citizen.files_a_ticket(ledger)
    turn = await taps(citizen, "hotline:progress")
    assert ref.ticket_id in texts(turn) and "已受理" in texts(turn)


async def test_faq_offers_the_knowledge_bases_questions_and_a_tap_answers(citizen: Citizen) -> None:
    turn = await taps(citizen, "hotline:faq")
    assert turn.replies[-1].buttons == [SOCIAL_CARD.question] and "常问的问题" in texts(turn)
    turn = await citizen.says(SOCIAL_CARD.question)  # the button's words come back as a message
    assert SOCIAL_CARD.answer in texts(turn) and turn.knowledge == (SOCIAL_CARD.id, "answered")


async def test_faq_offers_the_most_useful_answers_first_then_the_files_first(ledger: LocalLedger) -> None:
    from nlu import get_backend

    shipped = KnowledgeBase.load(SHIPPED)
    first, *rest = shipped.entries
    popular = [rest[5].id, "gone-entry", rest[2].id]  # an id the base no longer has is passed over
    citizen = Citizen(Bot(ledger, get_backend(), knowledge=lambda: shipped, popular=lambda: popular))
    turn = await taps(citizen, "hotline:faq")
    assert turn.replies[-1].buttons == [rest[5].question, rest[2].question, first.question,
                                        rest[0].question, rest[1].question]
    popular = [e.id for e in reversed(shipped.entries)]  # the counts changed: the next tap says so
    turn = await taps(citizen, "hotline:faq")
    assert turn.replies[-1].buttons == [e.question for e in reversed(shipped.entries)][:5]


async def test_faq_without_a_knowledge_base_says_how_to_use_the_bot(ledger: LocalLedger) -> None:
    from nlu import get_backend

    for kb in (None, KnowledgeBase.from_entries([])):
        citizen = Citizen(Bot(ledger, get_backend(), knowledge=lambda kb=kb: kb))  # type: ignore[misc]
        turn = await taps(citizen, "hotline:faq")
        assert not turn.replies[-1].buttons and "转人工" in texts(turn)


async def test_human_hands_over_unless_the_centre_turned_asking_off(citizen: Citizen) -> None:
    turn = await taps(citizen, "hotline:human")
    assert turn.mode == "waiting" and turn.handoff_reason == "citizen_asked"
    citizen.state = type(citizen.state)()
    turn = await taps(citizen, "hotline:human", HandoffRules(on_ask=False))
    assert turn.mode is None and "暂不提供在线人工服务" in texts(turn)


async def test_mid_draft_a_tap_answers_then_asks_the_drafts_question_again(citizen: Citizen) -> None:
    await citizen.says("楼下饭店的油烟每天晚上都排到我家窗户里")
    for key in ("hotline:report", "hotline:progress", "hotline:faq"):
        turn = await taps(citizen, key)
        assert "地点" in turn.replies[-1].text, key
        assert turn.state.step == "awaiting_location" and "油烟" in turn.state.draft.description  # type: ignore[union-attr]


async def test_a_button_the_bot_does_not_know_is_recorded_not_answered(citizen: Citizen) -> None:
    turn = await taps(citizen, "V1001_TODAY_MUSIC")
    assert turn.replies == [] and turn.mode is None


@pytest.mark.parametrize("text", ["我要反映问题", "我想投诉", "你好，我要反映个问题", "有个问题想反映一下", "我要举报一个情况！"])
async def test_only_wanting_to_report_is_asked_what_not_drafted(citizen: Citizen, text: str) -> None:
    turn = await citizen.says(text)
    assert "请直接描述您要反映的问题" in texts(turn) and turn.state.draft is None, text


@pytest.mark.parametrize("text", ["我要投诉物业不作为，电梯坏了一个月没人修", "我要反映小区门口路灯不亮"])
async def test_wanting_to_report_with_the_matter_is_drafted(citizen: Citizen, text: str) -> None:
    turn = await citizen.says(text)
    assert turn.state.draft is not None, text


@pytest.mark.parametrize("text", ["帮助", "使用帮助", "这个怎么用？", "你能做什么", "有什么功能", "菜单"])
async def test_asking_how_to_use_the_bot_is_told_not_drafted(citizen: Citizen, text: str) -> None:
    turn = await citizen.says(text)
    assert "查询工单进度请发送" in texts(turn) and turn.state.draft is None and turn.state.unsure_streak == 0, text


async def test_a_matter_that_mentions_how_to_use_something_is_drafted(citizen: Citizen) -> None:
    turn = await citizen.says("小区新装的充电桩不会用，物业也不给说明怎么用，已经一个月了")
    assert turn.state.draft is not None


@pytest.mark.parametrize("text", ["常见问题", "看看常见问题", "FAQ"])
async def test_common_questions_typed_are_the_menus(citizen: Citizen, text: str) -> None:
    """The web widget's menu sends the words: the same as a tap on 常见问题."""
    turn = await citizen.says(text)
    assert turn.replies[-1].buttons == [SOCIAL_CARD.question] and turn.state.draft is None, text
