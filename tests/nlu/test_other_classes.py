"""The opt-in gate for the eight first-level classes the contest data never labels."""

from __future__ import annotations

import numpy as np
import pytest

from nlu.builtin import BuiltinBackend
from nlu.category import FALLBACK_MAX_P
from nlu.other_classes import OTHER, OtherClassGate, gate_text

# written for these tests: how citizens write police and civil-affairs matters
POLICE_FRAUD = "我被网络诈骗了三万元，到派出所报案后一直没有立案，请求公安机关尽快侦办。"
ILLEGAL_PARKING = "小区门口每天晚上都有大量车辆违章停车，交警从来不来贴罚单，行人根本过不去。"
SUBSIDY = "我父亲今年七十岁，想申请低保和高龄补贴，请问民政部门需要什么材料？"
SEVEN = [
    ("公司拖欠我们三个月工资，社保也没有缴纳，劳动监察大队一直推诿。", "劳动和社会保障"),
    ("小区门口的路灯坏了一个月，晚上很黑，希望尽快修好。", "城乡建设"),
]


@pytest.fixture(scope="module")
def with_gate() -> BuiltinBackend:
    from config.settings import Settings

    return BuiltinBackend.from_settings(Settings(nlu_other_classes=True))


@pytest.mark.parametrize(("text", "label"), [(POLICE_FRAUD, "政法"), (ILLEGAL_PARKING, "政法"), (SUBSIDY, "民政")])
def test_names_the_class_with_low_confidence(with_gate: BuiltinBackend, nlu: BuiltinBackend, text: str, label: str) -> None:
    cat = with_gate.parse(text).category
    assert cat.level1 == label and cat.low_confidence and cat.confidence == FALLBACK_MAX_P
    assert abs(sum(v for _, v in cat.ranking) - 1.0) < 0.01 and len(cat.ranking) == 15
    assert nlu.parse(text).category.level1 != label  # off by default: the seven classes only


@pytest.mark.parametrize(("text", "label"), SEVEN)
def test_leaves_the_seven_classes_alone(with_gate: BuiltinBackend, nlu: BuiltinBackend, text: str, label: str) -> None:
    on, off = with_gate.parse(text).category, nlu.parse(text).category
    assert on.level1 == off.level1 == label and on.confidence == off.confidence


def test_departments_follow_the_gate(with_gate: BuiltinBackend) -> None:
    p = with_gate.parse(POLICE_FRAUD)
    assert p.departments.primary and "公安" in p.departments.primary


def test_fit_and_round_trip(through_npz) -> None:  # type: ignore[no-untyped-def]
    texts = [gate_text(t) for t, _ in SEVEN * 6] + [gate_text(POLICE_FRAUD), gate_text(ILLEGAL_PARKING)] * 6
    labels = [OTHER] * 12 + ["政法"] * 12
    gate = OtherClassGate.fit(texts, labels)
    assert gate.best(POLICE_FRAUD, threshold=0.5)[0] == "政法"
    assert gate.best(SEVEN[0][0], threshold=0.5)[0] == ""
    again = OtherClassGate.from_arrays(through_npz(gate.to_arrays()))
    assert again is not None and again.classes == gate.classes
    assert abs(again.proba(POLICE_FRAUD)["政法"] - gate.proba(POLICE_FRAUD)["政法"]) < 0.01
    assert OtherClassGate.from_arrays({"cat_coef": np.zeros(1)}) is None


def test_the_shipped_artifact_has_the_gate(with_gate: BuiltinBackend, nlu: BuiltinBackend) -> None:
    gate = with_gate.other_classes
    assert isinstance(gate, OtherClassGate)
    assert set(gate.classes) - {OTHER} == set(nlu.category.fallback_classes)
    # off (the default): not even built, so it costs no memory
    assert nlu.other_classes is None and nlu.artifact.get("other_classes") is None
