"""Traditional Chinese input and the keyword fallback for first-level classes without labelled data."""

from __future__ import annotations

import numpy as np
import pytest

from nlu.category import FALLBACK_MAX_P, CategoryModel
from nlu.text import has_traditional, to_simplified, to_simplified_aligned, tokens

# Traditional-script messages (as written in Hong Kong / Taiwan / by older citizens), with the
# simplified class the same message gets.
TRADITIONAL_CASES = [
    ("公司拖欠我們三個月工資，社保也沒有繳納，勞動監察大隊一直推諉", "劳动和社会保障"),
    ("孩子今年小學入學，學區劃分不合理，學校以戶口不符為由拒收", "教育文体"),
    ("樓下化工廠夜間偷排廢氣，氣味刺鼻，河裡的魚都死了", "环境保护"),
    ("醫院亂收費，做個檢查收了兩千多，醫生態度惡劣", "卫生计生"),
]


def test_to_simplified() -> None:
    assert to_simplified("我們社區的路燈壞了，請盡快維修") == "我们社区的路灯坏了，请尽快维修"
    assert has_traditional("醫院亂收費") and not has_traditional("医院乱收费")
    simplified = "学校乱收费，头发，皇后"  # simplified text is left exactly as it is
    assert to_simplified(simplified) == simplified
    assert to_simplified("") == ""
    text = "A3區聯豐路的路燈壞了"
    aligned = to_simplified_aligned(text)
    assert len(aligned) == len(text) and aligned == "A3区联丰路的路灯坏了"


def test_tokens_of_traditional_equal_simplified() -> None:
    trad, simp = TRADITIONAL_CASES[0][0], "公司拖欠我们三个月工资，社保也没有缴纳，劳动监察大队一直推诿"
    assert tokens(trad) == tokens(simp)


@pytest.mark.parametrize(("text", "label"), TRADITIONAL_CASES)
def test_traditional_messages_classified_like_simplified(nlu, text: str, label: str) -> None:
    p = nlu.parse(text)
    assert p.category.level1 == label
    simp = nlu.parse(to_simplified(text))
    assert abs(p.category.confidence - simp.category.confidence) < 1e-6
    assert not p.category.low_confidence


def test_traditional_message_read_whole(nlu) -> None:
    """Urgency, intents, location and subject read Traditional text too; the span is as written."""
    p = nlu.parse("家裡煤氣洩漏，聞到很大的煤氣味，怎麼辦")
    assert p.urgency and p.urgency_reason.startswith("燃气")
    assert nlu.parse("我要轉人工").intent.name == "ask_human"
    text = "A3區聯豐路米蘭春天小區門口的路燈壞了一個星期，晚上很黑"
    p = nlu.parse(text)
    assert p.location.text == "A3區聯豐路米蘭春天小區" == text[p.location.start : p.location.end]
    assert p.location.road == "联丰路" and p.subject.startswith("A3区联丰路米兰春天小区")


# ---- keyword fallback ----

# The rule is conservative (it must not cost the trained classes anything): it takes several
# taxonomy names, or a whole name and more while the trained model is unsure.
FALLBACK_CASES = [
    ("婚姻登记处态度差，收养登记也办不了，殡葬管理更是混乱", "民政"),
    ("举报某局长贪污贿赂、挪用公款，还打击报复举报人", "纪检监察"),
    ("我家的土地承包合同还没到期，村里强行搞土地流转，村务公开也没有", "农村农业"),
    ("手机信号差，运营商监管不到位，电信资费乱收，通信保障跟不上", "科技与信息产业"),
]


@pytest.mark.parametrize(("text", "label"), FALLBACK_CASES)
def test_fallback_names_classes_without_training_data(nlu, text: str, label: str) -> None:
    cat = nlu.parse(text).category
    assert cat.level1 == label and cat.level2  # level 2 from the taxonomy under that class
    assert cat.low_confidence and 0 < cat.confidence <= FALLBACK_MAX_P
    assert len(cat.ranking) == 15
    assert abs(sum(v for _, v in cat.ranking) - 1.0) < 0.01
    assert nlu.parse(text).departments.primary


def test_fallback_does_not_override_a_confident_model(nlu) -> None:
    # 劳动仲裁 is a taxonomy name under 政法, but the trained model is sure: 劳动和社会保障 stays
    cat = nlu.parse("公司拖欠工资三个月不发，劳动仲裁也不受理，社保断缴").category
    assert cat.level1 == "劳动和社会保障" and not cat.low_confidence
    # one taxonomy name alone is not enough
    assert nlu.parse("殡葬管理混乱，公墓乱收费").category.level1 != "民政"


def _tiny_model() -> CategoryModel:
    docs = [
        "工资 拖欠 社保 缴纳",
        "社保 断缴 工资",
        "学校 收费 学生",
        "学生 老师 学校 补课",
        "工资 社保 公司",
        "老师 学校 学生",
    ]
    labels = ["劳动", "劳动", "教育", "教育", "劳动", "教育"]
    taxonomy = [
        ("劳动", "劳动保障", "工资福利"),
        ("教育", "教育管理", "学校收费"),
        ("民政", "社会服务", "婚姻登记"),
        ("民政", "社会服务", "殡葬管理"),
        ("民政", "其他", "其他"),
        ("政法", "社会服务", "学校安全"),  # 社会服务 under two classes: not a keyword
    ]
    return CategoryModel(c=0.5).fit(docs, labels).add_fallback(taxonomy, docs, max_df=0.2)


def test_fallback_keywords_are_specific() -> None:
    m = _tiny_model()
    assert m.classes == ["劳动", "教育", "政法", "民政"] and m.n_trained == 2
    terms = set(m.fallback_terms)
    assert {"婚姻登记", "殡葬管理", "殡葬"} <= terms
    assert "社会服务" not in terms  # named under two classes
    assert "其他" not in terms
    assert "学校" not in terms  # a word of 学校安全 that the labelled documents use


def test_fallback_round_trip_and_probabilities(monkeypatch: pytest.MonkeyPatch) -> None:
    import nlu.category as category

    m = _tiny_model()
    m2 = CategoryModel.from_arrays(m.to_arrays(), m.classes)
    assert m2.classes == m.classes and m2.fallback_terms == m.fallback_terms
    doc = "婚姻 登记 殡葬 管理"
    assert m2.fallback_points(doc) == {m2.fallback_classes.index("民政"): 4}
    # the trained model is unsure (its top probability below the gate): the keywords decide
    monkeypatch.setattr(category, "FALLBACK_MODEL_MAX", 1.01)
    p = m2.proba_one(doc)
    assert p.shape == (4,) and abs(p.sum() - 1) < 1e-6
    np.testing.assert_allclose(p, m.proba_one(doc))
    assert m2.classes[int(p.argmax())] == "民政" and p.max() <= FALLBACK_MAX_P
    # no keyword: fallback classes get nothing
    q = m2.proba_one("工资 拖欠")
    assert q[m2.n_trained :].sum() == 0 and m2.classes[int(q.argmax())] == "劳动"
    # the trained model is sure: keywords are ignored
    monkeypatch.setattr(category, "FALLBACK_MODEL_MAX", 0.0)
    r = m2.proba_one(doc)
    assert r[m2.n_trained :].sum() == 0 and abs(r.sum() - 1) < 1e-6


def test_fifteen_class_sample_is_an_evaluation_file(nlu) -> None:
    """The 5,647 board messages annotated with all 15 first-level classes (docs/nlu.md): what
    `hotline nlu evaluate --task category` reads and the eight-class gate learns, every label a
    class of the taxonomy."""
    from pathlib import Path

    from nlu.evaluate import read_rows
    from nlu.pii import find_pii

    path = Path(__file__).resolve().parents[2] / "nlu" / "data" / "category_messages.csv"
    rows = read_rows("category", path)
    labels = {r["label"] for r in rows}
    assert len(rows) == 5647 and labels == set(nlu.category.classes) and len(labels) == 15
    assert not any(find_pii(r["title"] + r["detail"]) for r in rows)  # masked when drawn
