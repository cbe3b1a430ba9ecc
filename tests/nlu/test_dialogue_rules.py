"""Dialogue acts of chat turns as people type them (sentences from the written sets a and b)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlu.builtin import BuiltinBackend
from nlu.dialogue_rules import rating_of, same_ticket, ticket_ids, urges, without_opener
from nlu.evaluate import STATE_CONTEXT, eval_intent, read_rows
from nlu.intents import load_nlu_yml

EVAL = Path(__file__).resolve().parents[2] / "nlu" / "data" / "eval"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("查询 12345-20261127-000123", "12345-20261127-000123"),
        ("查询 12345 20261121 000056", "12345-20261121-000056"),
        ("12345—20261127—000123 现在到哪一步了", "12345-20261127-000123"),
        ("查寻1234520261127000123", "12345-20261127-000123"),
        ("查询 12345－20261127－000123", "12345-20261127-000123"),
        ("查询12345-2026112-000123", "12345-2026112-000123"),  # a digit short: kept as typed
        ("请问一下我的工单000123有回复了吗", "000123"),  # called a ticket number by the words around it
        ("查询12345-2026II27-000123", "12345-20261127-000123"),  # I for 1
        ("12345-20261127-OOO123 到哪一步了", "12345-20261127-000123"),  # O for 0
        ("查询 BJ-2026ll27-0O0123", "BJ-20261127-000123"),  # l for 1; the prefix keeps its letters
        ("我的工单OOO123有回复了吗", "000123"),
    ],
)
def test_ticket_numbers_as_typed(text: str, value: str) -> None:
    assert [v for v, _, _ in ticket_ids(text)] == [value]


@pytest.mark.parametrize(
    "text",
    [
        "我的身份证号110101200501011234",  # an ID number holds a date: not a ticket
        "电话13812345678",
        "金额20261127元",
        "座机 020-84561237",
        "身份证编号110101200501011234",
        "Hello Ollie 2026",  # look-alike letters inside words stay letters
        "订单号2023112233的商品一直不发货",
        "快递单号SF1234567890查不到",
    ],
)
def test_no_ticket_number_in_other_numbers(text: str) -> None:
    assert ticket_ids(text) == []


@pytest.mark.parametrize(
    ("text", "matter"),
    [
        ("另外想问问 我们小区楼下垃圾站好几天没人清运了", "我们小区楼下垃圾站好几天没人清运了"),
        ("哦对了，另外一件事，菜市场门口总有人占道", "菜市场门口总有人占道"),
        ("还有件事情，学校门口的路灯不亮", "学校门口的路灯不亮"),
        ("顺便问一下 社保断缴了怎么补缴", "社保断缴了怎么补缴"),
        ("另外想问问", "另外想问问"),  # nothing left: kept as it is
        ("另一侧的路灯也不亮", "另一侧的路灯也不亮"),  # not an opener
    ],
)
def test_the_words_that_open_another_matter(text: str, matter: str) -> None:
    assert without_opener(text) == matter


def test_same_ticket_ignores_separators() -> None:
    assert same_ticket("12345 20261121 000056", "12345-20261121-000056")
    assert not same_ticket("12345-20261121-000056", "12345-20261121-000057")


@pytest.mark.parametrize(
    ("text", "rating"),
    [
        ("满意", "满意"),
        ("唔满意 根本冇人嚟过 就话办结咗？？", "不满意"),
        ("还行吧 就是慢了点", "基本满意"),
        ("凑合吧 修是修了 就是拖了半个月", "基本满意"),
        ("马马虎虎", "基本满意"),
        ("👍👍👍", "满意"),
        ("好评 小伙子干活挺麻利", "满意"),
        ("根本没人来 还说办完了 糊弄谁呢", "不满意"),
        ("差评👎", "不满意"),
        ("jbmy", "基本满意"),
    ],
)
def test_ratings_in_the_citizens_words(text: str, rating: str) -> None:
    found = rating_of(text, expecting=True)
    assert found is not None and found[0] == rating


def test_words_of_judgement_count_only_as_an_answer_to_the_survey() -> None:
    assert rating_of("还行吧", expecting=False) is None
    assert rating_of("满意", expecting=False) is not None  # the survey's own words always count
    # a new complaint sent while the survey waits is not a verdict on the old ticket
    assert rating_of("楼下烧烤店的油烟太大了 熏得人不行", expecting=True) is None
    assert rating_of("俺们楼后边垃圾堆没人清 都冒尖了", expecting=True) is None


@pytest.mark.parametrize(
    ("state", "text", "intent"),
    [
        ("confirming", "不是3栋 是5栋", "add_info"),
        ("confirming", "门牌号写错了 是88号 不是86", "add_info"),
        ("confirming", "对，就是这么个事儿，谢谢你啊小同志", "affirm"),
        ("confirming", "不对", "deny"),
        ("confirming", "算啦 唔报啦 佢哋都唔会理", "deny"),
        ("confirming", "先别管这个 我想问问今年供暖费啥时候交", "new_request"),
        ("awaiting_location", "越秀东风东路 省医对面条巷", "add_info"),
        ("awaiting_location", "另外想问问 取暖费补贴咋申请", "new_request"),
        ("idle", "暖器不热啊 屋里才十四五度 钱都交了 这咋整", "new_request"),
        ("idle", "我前两天反应的垃圾桶的事有信儿没", "query_progress"),
        ("filed", "昨天报的那个 有人接了没", "query_progress"),
        ("filed", "好 唔该晒🙏", "thanks_bye"),
        ("awaiting_rating", "还行吧 就是慢了点", "rate"),
        ("awaiting_rating", "👍👍👍", "rate"),
        ("idle", "zrg", "ask_human"),
    ],
)
def test_intents_in_context(nlu: BuiltinBackend, state: str, text: str, intent: str) -> None:
    p = nlu.parse(text, dict(STATE_CONTEXT[state]))
    assert p.intent.name == intent, p.intent_ranking[:3]
    if intent == "rate":
        assert p.entity("rating") in ("满意", "基本满意", "不满意")


def test_a_written_set_outside_the_training(nlu: BuiltinBackend) -> None:
    """Set c: 150 turns by a writer who never saw the code (sets d and e, by two others, are in
    nlu.yml). Measured once: 0.973 (round 11's intents 0.813), ticket numbers 0.889, ratings 0.909.
    30 of its turns are stock phrases the training holds too (确认, 满意, 你好, 查询 + the brief's
    number): the other 120 are what the figure is about."""
    rows = read_rows("intent", EVAL / "intent_written_c.jsonl")
    res = eval_intent(nlu, rows)
    assert res["n"] == 150 and res["accuracy"] >= 0.95 and res["macro_f1"] >= 0.95
    assert res["ticket_id_accuracy"] >= 0.85 and res["rating_accuracy"] >= 0.85
    trained = {" ".join(t.split()) for t, _, _ in load_nlu_yml()}
    unseen = [r for r in rows if " ".join(str(r["text"]).split()) not in trained]
    assert len(unseen) == 120 and all(
        len(" ".join(str(r["text"]).split())) <= 26 for r in rows if r not in unseen
    )
    assert eval_intent(nlu, unseen)["accuracy"] >= 0.95  # round 11's intents: 0.792


def test_the_last_written_set(nlu: BuiltinBackend) -> None:
    """Set f, written after every rule of round 12 and measured once: 0.94 (ticket numbers typed
    with a digit missing or a letter I for a 1 are not read; withdrawing a filed ticket is missed)."""
    res = eval_intent(nlu, read_rows("intent", EVAL / "intent_written_f.jsonl"))
    assert res["n"] == 150 and res["accuracy"] >= 0.9 and res["rating_accuracy"] >= 0.9


@pytest.mark.parametrize(
    ("text", "pressing"),
    [
        ("催一下", True),
        ("帮我催催", True),
        ("怎么还没人来修", True),
        ("都一个星期了还没处理", True),
        ("能不能快点", True),
        ("请尽快处理", True),
        ("反映了半个月了石沉大海", True),
        ("到底有没有人管", True),
        ("到哪一步了", False),  # asks how it stands, presses for nothing
        ("请问进度如何", False),
        ("有进展吗", False),
        ("我的工单有回复了吗", False),
        ("查询12345-20261127-000123", False),
        ("我不理解这个答复", False),
    ],
)
def test_urges_are_told_from_plain_progress_questions(text: str, pressing: bool) -> None:
    assert urges(text) is pressing
