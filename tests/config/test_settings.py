"""Settings read from the environment: HOTLINE_RESOLVE_DAYS_BY_TYPE (办理时限 by 诉求类型) and
HOTLINE_SCORE_WEIGHTS (承办单位考核's 综合得分), HOTLINE_HANDOFF_HOURS (在线人工服务时间)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

import nlu
from config.settings import REQUEST_TYPES, Settings


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("HOTLINE_RESOLVE_DAYS_BY_TYPE", "HOTLINE_RESOLVE_DAYS", "HOTLINE_RESOLVE_WORKDAYS", "HOTLINE_SCORE_WEIGHTS",
                 "HOTLINE_HANDOFF_HOURS"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def read() -> Settings:
    return Settings(_env_file=None)  # type: ignore[call-arg]


def test_the_request_types_are_the_nlus() -> None:
    assert REQUEST_TYPES == nlu.REQUEST_TYPES


def test_days_by_type_read_as_pairs_or_json_and_default_to_none(env: pytest.MonkeyPatch) -> None:
    assert read().resolve_days_by_type == {}  # every type takes HOTLINE_RESOLVE_DAYS
    env.setenv("HOTLINE_RESOLVE_DAYS_BY_TYPE", " 咨询=3, 求助 = 5，表扬=0 ")
    assert read().resolve_days_by_type == {"咨询": 3, "求助": 5, "表扬": 0}
    env.setenv("HOTLINE_RESOLVE_DAYS_BY_TYPE", '{"咨询": 3, "建议": "20"}')
    assert read().resolve_days_by_type == {"咨询": 3, "建议": 20}
    env.setenv("HOTLINE_RESOLVE_DAYS_BY_TYPE", "")
    assert read().resolve_days_by_type == {}


@pytest.mark.parametrize(("value", "said"), [
    ("吐槽=3", "names an unknown request type '吐槽'; the types are 投诉、举报、求助、咨询、建议、表扬"),
    ("咨询=三", "gives 咨询 '三': a number of days is needed (0 = no limit)"),
    ("咨询=-1", "gives 咨询 '-1': a number of days"),
    ("咨询=inf", "gives 咨询 'inf': a number of days"),
    ('{"咨询": true}', "gives 咨询 True: a number of days"),
    ("咨询", "must read like 咨询=3,求助=5,表扬=0 (types: 投诉、举报、求助、咨询、建议、表扬)"),
    ("[3]", "must read like 咨询=3"),
    ('{"咨询": 3', "is not a JSON object"),
    ("咨询=3,咨询=2", "gives 咨询 twice"),
])
def test_a_wrong_days_by_type_is_refused_at_start(env: pytest.MonkeyPatch, value: str, said: str) -> None:
    env.setenv("HOTLINE_RESOLVE_DAYS_BY_TYPE", value)
    with pytest.raises(ValidationError) as error:
        read()
    assert "Value error, HOTLINE_RESOLVE_DAYS_BY_TYPE" in str(error.value) and said in str(error.value)


def test_working_days_by_type_are_whole(env: pytest.MonkeyPatch) -> None:
    env.setenv("HOTLINE_RESOLVE_DAYS_BY_TYPE", "咨询=1.5,求助=5")
    with pytest.raises(ValidationError, match=r"HOTLINE_RESOLVE_DAYS_BY_TYPE counts whole working days "
                                              r"\(HOTLINE_RESOLVE_WORKDAYS=true\): 咨询=1.5 is not whole"):
        read()
    env.setenv("HOTLINE_RESOLVE_WORKDAYS", "false")  # calendar days: a day and a half is a time
    assert read().resolve_days_by_type == {"咨询": 1.5, "求助": 5}


def test_score_weights_default_to_the_three_rates_and_read_like_days_by_type(env: pytest.MonkeyPatch) -> None:
    assert read().score_weights == {"响应率": 0.1, "解决率": 0.45, "满意率": 0.45}  # 接诉即办's 三率
    env.setenv("HOTLINE_SCORE_WEIGHTS", "满意率=0.6, 按期办结率=0.4")
    assert read().score_weights == {"满意率": 0.6, "按期办结率": 0.4}
    env.setenv("HOTLINE_SCORE_WEIGHTS", "")
    assert read().score_weights == {}  # no 综合得分
    for value, said in (("好评率=1", "names an unknown rate '好评率'; the rates are 响应率、解决率、满意率、按期办结率、办结率"),
                        ("满意率=-0.5", "gives 满意率 '-0.5': a weight of 0 or more is needed"),
                        ("满意率", "must read like 响应率=0.1,解决率=0.45,满意率=0.45")):
        env.setenv("HOTLINE_SCORE_WEIGHTS", value)
        with pytest.raises(ValidationError) as error:
            read()
        assert "Value error, HOTLINE_SCORE_WEIGHTS" in str(error.value) and said in str(error.value)


def test_handoff_hours_read_as_two_times_of_day(env: pytest.MonkeyPatch) -> None:
    assert read().handoff_hours == ""  # people answer at any hour
    for value, kept in (("8:30-21:00", "08:30-21:00"), (" 08:30 至 21:00 ", "08:30-21:00"), ("20:00-08:00", "20:00-08:00")):
        env.setenv("HOTLINE_HANDOFF_HOURS", value)
        assert read().handoff_hours == kept
    for value in ("25:00-21:00", "08:30-08:30", "8:30-8:30", "白天", "08:30"):
        env.setenv("HOTLINE_HANDOFF_HOURS", value)
        with pytest.raises(ValidationError) as error:
            read()
        assert "HOTLINE_HANDOFF_HOURS must read like 08:30-21:00" in str(error.value)


def test_rest_day_hours_are_other_hours_or_none(env: pytest.MonkeyPatch) -> None:
    assert read().handoff_rest_hours == ""  # as every day's
    env.setenv("HOTLINE_HANDOFF_REST_HOURS", "09:00-17:00")
    with pytest.raises(ValidationError, match="HOTLINE_HANDOFF_REST_HOURS needs HOTLINE_HANDOFF_HOURS"):
        read()
    env.setenv("HOTLINE_HANDOFF_HOURS", "08:30-21:00")
    for value, kept in (("9:00-17:00", "09:00-17:00"), (" OFF ", "off")):
        env.setenv("HOTLINE_HANDOFF_REST_HOURS", value)
        assert read().handoff_rest_hours == kept
    env.setenv("HOTLINE_HANDOFF_REST_HOURS", "周末休息")
    with pytest.raises(ValidationError, match="HOTLINE_HANDOFF_REST_HOURS must read like 08:30-21:00 .* or off"):
        read()

