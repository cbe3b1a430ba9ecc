"""The ticket client's shared models: what 承办单位考核 makes of a unit's tallies."""

from __future__ import annotations

import pytest

from config.settings import SCORED_RATES
from ticket_client.base import RATES, DepartmentTally


def test_a_units_score_weighs_its_rates_and_needs_each_one_weighed() -> None:
    """承办单位考核's 综合得分 (0–100): 响应率 10%, 解决率 45%, 满意率 45% by default; a unit lacking a
    weighed rate (no 回访 yet) is not scored on the rest; weights need not add up to one."""
    three = {"响应率": 0.1, "解决率": 0.45, "满意率": 0.45}
    unit = DepartmentTally(department="城管局", filed=10, responded=8, responded_late=2, unanswered=2,  # 响应率 0.6
                           solved=3, unsolved=1, ratings={"满意": 4, "基本满意": 4, "不满意": 2})  # 0.75, 0.8
    assert unit.score(three) == pytest.approx(100 * (0.1 * 0.6 + 0.45 * 0.75 + 0.45 * 0.8))
    assert unit.score({"满意率": 2, "解决率": 2}) == pytest.approx(77.5)
    assert unit.score({"满意率": 1, "按期办结率": 0}) == pytest.approx(80)  # a weight of 0 weighs nothing
    assert DepartmentTally(department="新单位", filed=3, responded=3).score(three) is None  # no 回访 yet
    assert unit.score({}) is None
    # HOTLINE_SCORE_MIN_TICKETS: given fewer tickets (受理 less 撤单), no score
    assert unit.score(three, least=10) is not None and unit.score(three, least=11) is None
    assert unit.model_copy(update={"withdrawn": 1}).score(three, least=10) is None


def test_the_rates_weighed_are_the_ones_the_setting_names() -> None:
    assert tuple(RATES) == SCORED_RATES
    unit = DepartmentTally(department="城管局", filed=4, done=2, done_late=1, responded=2, solved=1, unsolved=1)
    assert {name: getattr(unit, attr) for name, attr in RATES.items()} == {
        "响应率": 1.0, "解决率": 0.5, "满意率": None, "按期办结率": 0.5, "办结率": 0.5}
