"""The department map: a category's units, and its 属地 placeholders settled by the place."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlu.departments import DepartmentMap
from nlu.location import read_place

MAP_DATA: dict[str, object] = {
    "default": {"primary": "12345热线服务中心"},
    "rules": {"城乡建设": {"primary": "住房和城乡建设局", "co_handlers": ["城市管理和综合执法局", "属地街道办事处"]}},
    "local_units": {"属地街道办事处": "town", "属地政府": "district"},
    "offices": {"经开区": "经开区管委会"},
}
MAP = DepartmentMap(MAP_DATA)


@pytest.mark.parametrize(("written", "office"), [
    ("雨花区洞井街道桂花坪社区", "洞井街道办事处"),  # a street office
    ("L4县安坪镇", "安坪镇人民政府"),  # a township
    ("A3区联丰路米兰春天G2栋320", "A3区人民政府"),  # no town: the district's government
    ("经开区联丰路", "经开区管委会"),  # a development zone, as the file names its office
    ("洞井街道办事处旁边", "洞井街道办事处"),  # already an office
])
def test_a_towns_placeholder_becomes_the_office_of_the_place(written: str, office: str) -> None:
    parts = read_place(written).parts()
    units = MAP.localize(MAP.suggest(["城乡建设"]).co_handlers, parts)
    assert units == ["城市管理和综合执法局", office]


def test_a_districts_placeholder_skips_the_town() -> None:
    assert MAP.localize(["属地政府"], {"district": "L4县", "town": "安坪镇"}) == ["L4县人民政府"]


def test_an_estate_the_city_placed_settles_its_street_office() -> None:
    """The gazetteer's ``towns_of``: a citizen who names only their estate (or a landmark) reaches
    its 街道, 米兰春天小区 looked up as 米兰春天; a town the place names wins."""
    placed = DepartmentMap(MAP_DATA, towns_of={"米兰春天小区": "洞井街道", "汽车西站": "望月湖街道"})
    assert placed.localize(["属地街道办事处"], read_place("A3区联丰路米兰春天G2栋320").parts()) == ["洞井街道办事处"]
    assert placed.localize(["属地街道办事处"], {"landmark": "汽车西站"}) == ["望月湖街道办事处"]
    assert placed.localize(["属地街道办事处"], {"community": "米兰春天", "town": "安坪镇"}) == ["安坪镇人民政府"]
    assert placed.localize(["属地政府"], {"community": "米兰春天", "district": "A3区"}) == ["A3区人民政府"]
    assert MAP.localize(["属地街道办事处"], {"community": "米兰春天"}) == ["属地街道办事处"]  # not placed: stays


def test_a_place_that_names_no_office_keeps_the_placeholder_for_the_operator() -> None:
    parts = read_place("联丰路米兰春天").parts()
    assert not parts.get("town") and not parts.get("district")
    assert MAP.localize(["住房和城乡建设局", "属地街道办事处"], parts) == ["住房和城乡建设局", "属地街道办事处"]


def test_a_unit_named_twice_is_kept_once_in_order() -> None:
    assert MAP.localize(["洞井街道办事处", "属地街道办事处", "公安局"], {"town": "洞井街道"}) == ["洞井街道办事处", "公安局"]


def test_a_placeholder_naming_an_unknown_level_is_refused_when_the_file_is_read() -> None:
    with pytest.raises(ValueError, match="属地社区"):
        DepartmentMap({"local_units": {"属地社区": "community"}})


def test_the_shipped_file_settles_its_own_placeholders() -> None:
    shipped = DepartmentMap.shipped()
    used = {u for rule in shipped.rules.values() for u in rule.co_handlers if u.startswith("属地")}
    assert used and used <= set(shipped.local)  # every 属地 unit the rules name is settled by a place
    assert shipped.localize(["属地乡镇政府"], {"district": "高新区"}) == ["高新区管委会"]


def test_the_shipped_map_reads_the_gazetteers_towns_of(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A city fills ``towns_of`` in config/gazetteer.yml; the map the bot and console share reads it."""
    import nlu.location

    gazetteer = tmp_path / "gazetteer.yml"
    gazetteer.write_text("estates: [米兰春天]\ntowns_of: {米兰春天: 洞井街道}\n", encoding="utf-8")
    monkeypatch.setattr(nlu.location, "GAZETTEER_PATH", gazetteer)
    DepartmentMap.shipped.cache_clear()
    try:
        assert DepartmentMap.shipped().localize(["属地街道办事处"], {"community": "米兰春天小区"}) == ["洞井街道办事处"]
    finally:
        DepartmentMap.shipped.cache_clear()  # the next test reads the shipped file again
