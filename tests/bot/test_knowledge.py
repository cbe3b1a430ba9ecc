"""The bot answers a question (咨询) from the knowledge base, and files it when that did not help."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.dialogue import Bot
from nlu.knowledge import Entry, KnowledgeBase
from tests.bot.test_dialogue import Citizen, texts
from ticket_client import LocalLedger

SOCIAL_CARD = Entry(
    id="social-card-lost",
    question="社保卡丢了怎么补办？",
    also=["社保卡丢失怎么办", "社会保障卡遗失如何补领", "社保卡掉了去哪里补"],
    answer="社保卡遗失后请先挂失，再携带身份证到任一社保卡服务网点申请补办。",
    source="市人社局",
)
KB = KnowledgeBase.from_entries([SOCIAL_CARD])


@pytest.fixture
def citizen(ledger: LocalLedger) -> Citizen:
    from nlu import get_backend

    return Citizen(Bot(ledger, get_backend(), knowledge=lambda: KB))


async def test_a_question_the_knowledge_base_knows_is_answered_not_filed(citizen: Citizen) -> None:
    turn = await citizen.says("请问社保卡丢了要怎么补办")
    assert SOCIAL_CARD.answer in texts(turn) and "市人社局" in texts(turn)
    assert turn.replies[-1].buttons == ["已解决", "没有解决"]
    assert turn.file is None and turn.state.draft is None and turn.knowledge == ("social-card-lost", "answered")
    turn = await citizen.says("已解决")
    assert "很高兴" in texts(turn) and turn.knowledge == ("social-card-lost", "solved")
    assert turn.state.answered is None and turn.state.draft is None


async def test_not_solved_files_the_question_without_typing_it_again(citizen: Citizen, ledger: LocalLedger) -> None:
    await citizen.says("社保卡掉了去哪里补办呢？")
    turn = await citizen.says("没有解决")
    assert turn.knowledge == ("social-card-lost", "unsolved")
    assert "为您登记" in texts(turn)
    draft = turn.state.draft
    assert draft is not None and "社保卡" in draft.description  # the question, not "没有解决"
    assert turn.state.step == "awaiting_location"  # asked where (or 不涉及具体地点) as any 咨询
    turn = await citizen.says("不涉及具体地点")
    turn = await citizen.says("确认")
    assert turn.file is not None and "社保卡" in turn.file.description


async def test_a_complaint_is_never_answered_from_the_knowledge_base(citizen: Citizen) -> None:
    for text in ("我的社保卡丢了，社保局窗口工作人员态度恶劣不给补办，要投诉",
                 "A3区联丰路米兰春天小区门口的路灯坏了一个星期了"):
        citizen.state = type(citizen.state)()
        turn = await citizen.says(text)
        assert turn.knowledge is None and SOCIAL_CARD.answer not in texts(turn), text


async def test_something_else_after_an_answer_is_read_as_a_new_message(citizen: Citizen) -> None:
    await citizen.says("社保卡丢失怎么办？")
    turn = await citizen.says("楼下饭店的油烟每天晚上都排到我家窗户里")
    assert turn.knowledge is None and turn.state.answered is None
    assert turn.state.draft is not None and "油烟" in turn.state.draft.description
    assert "地点" in texts(turn)


async def test_a_late_verdict_is_no_verdict(citizen: Citizen) -> None:
    turn = await citizen.says("社保卡丢失怎么办？")
    answered = turn.state.answered
    assert answered is not None
    citizen.state.answered = answered.model_copy(update={"at": answered.at - timedelta(hours=2)})
    turn = await citizen.says("没有解决")
    assert turn.knowledge is None and turn.state.draft is None  # "没有" alone files nothing


async def test_without_a_knowledge_base_questions_are_drafted_as_before(ledger: LocalLedger) -> None:
    from nlu import get_backend

    citizen = Citizen(Bot(ledger, get_backend(), knowledge=lambda: None))
    turn = await citizen.says("请问社保卡丢了要怎么补办")
    assert turn.knowledge is None and turn.state.draft is not None


async def test_the_shipped_knowledge_base_answers_how_to_withdraw(ledger: LocalLedger) -> None:
    """The entries shipped in config/knowledge.yml, as the gateway loads them."""
    from config.settings import Settings
    from nlu import get_backend
    from nlu.knowledge import knowledge_for

    settings = Settings()
    citizen = Citizen(Bot(ledger, get_backend(), knowledge=lambda: knowledge_for(settings)))
    turn = await citizen.says("12345热线受理哪些事情？")
    assert turn.knowledge is not None and "咨询" in texts(turn)


async def test_a_question_put_mid_draft_is_answered_and_the_draft_goes_on(citizen: Citizen) -> None:
    """Asked where (or for 确认), the citizen asks something the knowledge base knows: answered
    at once, no 已解决 buttons in the draft's way, and the draft's question asked again."""
    turn = await citizen.says("楼下饭店的油烟每天晚上都排到我家窗户里")
    assert turn.state.step == "awaiting_location"
    turn = await citizen.says("对了，社保卡丢了怎么补办？")
    assert SOCIAL_CARD.answer in texts(turn) and turn.knowledge == ("social-card-lost", "answered")
    assert "地点" in turn.replies[-1].text and all(not r.buttons for r in turn.replies)
    assert turn.state.step == "awaiting_location" and turn.state.draft is not None
    assert "社保卡" not in turn.state.draft.description and turn.state.queued == []
    turn = await citizen.says("A3区联丰路米兰春天小区")
    assert turn.state.step == "confirming"
    turn = await citizen.says("社保卡丢失怎么办？")
    assert SOCIAL_CARD.answer in texts(turn) and turn.replies[-1].buttons == ["确认", "取消"]
    turn = await citizen.says("确认")
    assert turn.file is not None and "社保卡" not in turn.file.description


async def test_mid_draft_an_answer_to_where_is_never_taken_for_a_question(citizen: Citizen) -> None:
    for where in ("在社保局门口那条路上，你们知道吗？", "A3区联丰路米兰春天小区"):
        citizen.state = type(citizen.state)()
        await citizen.says("楼下饭店的油烟每天晚上都排到我家窗户里")
        turn = await citizen.says(where)
        assert turn.knowledge is None and SOCIAL_CARD.answer not in texts(turn), where
    turn = await citizen.says("取消吧，社保卡的事以后再说吗")
    assert turn.knowledge is None and turn.state.draft is None  # a cancel, even put as a question


async def test_a_question_kept_for_later_is_answered_when_its_turn_comes(citizen: Citizen) -> None:
    await citizen.says("A3区联丰路米兰春天小区楼下饭店的油烟每天晚上都排到我家窗户里")
    citizen.bot.knowledge = lambda: None  # the answer was not known when it was asked …
    turn = await citizen.says("还有个事 社保卡丢了怎么补办")
    assert turn.state.queued and turn.knowledge is None
    citizen.bot.knowledge = lambda: KB  # … and is by the time the draft is filed
    turn = await citizen.says("确认")
    assert turn.file is not None and turn.knowledge == ("social-card-lost", "answered")
    assert "您刚才还问到" in texts(turn) and SOCIAL_CARD.answer in texts(turn)
    assert turn.state.queued == [] and turn.state.draft is None  # answered: nothing drafted from it


async def test_the_shipped_knowledge_base_answers_how_long_mid_draft(ledger: LocalLedger) -> None:
    from config.settings import Settings
    from nlu import get_backend
    from nlu.knowledge import knowledge_for

    settings = Settings()
    citizen = Citizen(Bot(ledger, get_backend(), knowledge=lambda: knowledge_for(settings)))
    await citizen.says("楼下饭店的油烟每天晚上都排到我家窗户里")
    turn = await citizen.says("一般多长时间能处理？")
    assert turn.knowledge == ("handling-time", "answered") and "地点" in turn.replies[-1].text


async def test_mid_draft_a_question_nobody_knows_is_not_taken_for_the_place(ledger: LocalLedger) -> None:
    """Without an answer, a question asked back when asked where is no place: the bot says it
    cannot answer it now and asks where again; a place written as a question is still a place."""
    from nlu import get_backend

    citizen = Citizen(Bot(ledger, get_backend(), knowledge=lambda: None))
    for question in ("这个一般要多久才能处理？", "我还想问问社保卡丢了怎么补办", "社保卡在哪里补办？",
                     "居住证去哪儿办"):  # 哪里 asks where: it names no place (its 里 is no 里弄)
        citizen.state = type(citizen.state)()
        await citizen.says("楼下饭店的油烟每天晚上都排到我家窗户里")
        assert citizen.state.step == "awaiting_location" and citizen.state.unsure_streak == 0
        turn = await citizen.says(question)
        assert "无法直接解答" in texts(turn) and "具体地点" in texts(turn), question
        assert turn.state.step == "awaiting_location" and turn.state.draft is not None
        assert turn.state.draft.location_text == "", question
        assert turn.state.unsure_streak == 1  # two such in a row: a person answers (nlu_unsure)
    turn = await citizen.says("就在那个什么超市旁边")
    assert turn.state.draft is not None and "超市旁边" in turn.state.draft.location_text
    citizen.state = type(citizen.state)()
    await citizen.says("楼下饭店的油烟每天晚上都排到我家窗户里")
    turn = await citizen.says("在哪里？就在小区里面啊")  # a place after the question: still the place
    assert turn.state.draft is not None and "小区" in turn.state.draft.location_text
