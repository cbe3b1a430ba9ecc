"""The learned urgency model: recall for dangers the keyword rules do not phrase."""

from __future__ import annotations

import numpy as np
import pytest

from nlu.builtin import BuiltinBackend
from nlu.request_type import DATA_FILES, RequestTypeModel
from nlu.rules import urgency as rule_urgency
from nlu.urgency import SHORT_CHARS, SHORT_THRESHOLD, THRESHOLD, UrgencyModel, model_text

# An annotated urgent message the rules miss (no listed danger word): a main beam that a wooden
# stick pokes through.
MISSED_BY_RULES = (
    "地绿A市城际空间站的建筑质量太差了",
    "位于A5区高铁新城的地绿A市城际空间站，号称“A市封面”，现一期住宅已快销售完成。然而，根据近期业主的"
    "实地考察，发现名不副实，建筑质量堪忧，多处可见钢筋外露生锈，楼板不平，缝隙宽大，最可怕的是，"
    "承重主梁居然可用一根木棍就捅下大块混凝土。",
)
EVERYDAY = [
    ("路灯坏了", "小区门口的路灯坏了一个月，晚上很黑，希望尽快修好。"),
    ("", "社保断缴了三个月，还能补缴吗？补缴需要什么手续？"),
    ("", "楼下烧烤店每天营业到凌晨两点，油烟和噪音太大，投诉多次物业都不管。"),
    ("", "建议在地铁站附近增设共享单车停放点。"),
    ("", "你好"),
    ("", "满意"),
    ("", "转人工"),
    ("", "我的工单A3-20261127-0042处理到哪一步了？"),
]


@pytest.fixture(scope="module")
def model() -> UrgencyModel:
    return UrgencyModel.fit(RequestTypeModel.load_rows(DATA_FILES))


def test_flags_an_urgent_message_the_rules_miss(model: UrgencyModel) -> None:
    title, text = MISSED_BY_RULES
    assert rule_urgency(title + "。" + text) == (False, "")
    assert model.proba(text, title) >= THRESHOLD


@pytest.mark.parametrize(("title", "text"), EVERYDAY)
def test_everyday_messages_are_not_urgent(model: UrgencyModel, title: str, text: str) -> None:
    assert model.proba(text, title) < THRESHOLD


def test_short_chat_lines_are_left_to_the_rules(nlu: BuiltinBackend) -> None:
    """A place given as an answer names a site an urgent message once named: not a danger itself."""
    assert not nlu.parse("K2区书院路在水一方大厦").urgency
    assert nlu.parse("楼道里煤气味很重").urgency  # the rules read short lines too


def test_parse_says_the_model_raised_it(nlu: BuiltinBackend) -> None:
    title, text = MISSED_BY_RULES
    p = nlu.parse(text, {"title": title})
    assert p.urgency
    assert p.urgency_reason.startswith("疑似紧急") and p.urgency_source == "model"
    rule_hit = nlu.parse("楼道里闻到很大的煤气味，好像是哪家漏气了，请赶快派人来看看！")
    assert rule_hit.urgency and rule_hit.urgency_reason.startswith("燃气")  # the rules still name it
    assert rule_hit.urgency_source == "rules" and "消防" in " ".join(rule_hit.departments.co_handlers)


def test_the_threshold_is_a_setting(nlu: BuiltinBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    """A city that wants more recall lowers HOTLINE_NLU_URGENCY_THRESHOLD; the rules flag regardless."""
    from config.settings import Settings

    title, text = MISSED_BY_RULES
    p = nlu.urgency_model.proba(text, title) if nlu.urgency_model else 0.0
    assert nlu.urgency_threshold == THRESHOLD and nlu.urgency(text, title)[0]
    monkeypatch.setenv("HOTLINE_NLU_URGENCY_THRESHOLD", str(min(0.99, p + 0.01)))
    strict = BuiltinBackend.from_settings(Settings())
    assert strict.urgency(text, title) == (False, "", "")
    assert strict.urgency("楼道里闻到很大的煤气味，好像是哪家漏气了", "")[2] == "rules"
    monkeypatch.setenv("HOTLINE_NLU_URGENCY_THRESHOLD", "1.5")
    with pytest.raises(ValueError, match="nlu_urgency_threshold"):
        Settings()


def test_a_short_message_needs_more_evidence(nlu: BuiltinBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    """A chat line gives the model a few n-grams: under SHORT_CHARS it must reach the short
    threshold (HOTLINE_NLU_URGENCY_THRESHOLD_SHORT), a longer message the ordinary one."""
    from config.settings import Settings

    short = "楼道里堆满了纸箱和电动车，消防通道都堵死了"
    assert len(short) < SHORT_CHARS and nlu.urgency_threshold_short == SHORT_THRESHOLD > THRESHOLD
    assert nlu.urgency_model is not None
    p = nlu.urgency_model.proba(short, "")
    monkeypatch.setenv("HOTLINE_NLU_URGENCY_THRESHOLD", str(max(0.01, p - 0.01)))
    monkeypatch.setenv("HOTLINE_NLU_URGENCY_THRESHOLD_SHORT", str(min(0.99, p + 0.01)))
    strict_on_short = BuiltinBackend.from_settings(Settings())
    assert strict_on_short.urgency(short, "") == (False, "", "")
    title, text = MISSED_BY_RULES  # long: the ordinary threshold applies
    assert len(title) + len(text) >= SHORT_CHARS
    assert strict_on_short.urgency(text, title)[0] == (nlu.urgency_model.proba(text, title) >= p - 0.01)
    monkeypatch.setenv("HOTLINE_NLU_URGENCY_THRESHOLD_SHORT", str(max(0.01, p - 0.01)))
    assert BuiltinBackend.from_settings(Settings()).urgency(short, "")[2] == "model"


def test_round_trips_through_plain_arrays(model: UrgencyModel, through_npz) -> None:  # type: ignore[no-untyped-def]
    again = UrgencyModel.from_arrays(through_npz(model.to_arrays()))
    assert again is not None
    title, text = MISSED_BY_RULES
    assert abs(again.proba(text, title) - model.proba(text, title)) < 0.01  # float16 weights


def test_old_artifact_without_model_means_rules() -> None:
    assert UrgencyModel.from_arrays({"cat_coef": np.zeros(1)}) is None


def test_numpy_inference_matches_scikit_learn(model: UrgencyModel) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    from nlu.request_type import grams

    title, text = MISSED_BY_RULES
    s = model_text(text, title)
    v = TfidfVectorizer(analyzer=grams, lowercase=False, sublinear_tf=True, vocabulary=model.vocab).fit([s])
    v.idf_ = np.asarray(model.idf, dtype=np.float64)
    z = float(v.transform([s]).toarray()[0] @ model.coef.astype(np.float64)) + model.intercept
    assert abs(model.proba(text, title) - 1 / (1 + np.exp(-z))) < 1e-5
