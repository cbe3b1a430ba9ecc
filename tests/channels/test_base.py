"""The shared message model: a location's coordinate system and its bounds."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from channels.base import GeoLocation

# Beijing, the examples of the widely used coordtransform library's README:
# wgs84togcj02(116.404, 39.915) and gcj02tobd09(116.404, 39.915)
BEIJING = (39.915, 116.404)
BEIJING_GCJ = (39.91640428150164, 116.41024449916938)
BEIJING_GCJ_AS_BD = (39.92133699351021, 116.41036949371029)


def test_gps_coordinates_become_the_chinese_map_datum_and_back() -> None:
    gps = GeoLocation(lat=BEIJING[0], lng=BEIJING[1], label="天安门广场")
    gcj = gps.in_datum("gcj02")
    assert gcj.datum == "gcj02" and gcj.label == "天安门广场"
    assert abs(gcj.lat - BEIJING_GCJ[0]) < 1e-6 and abs(gcj.lng - BEIJING_GCJ[1]) < 1e-6  # ~0.1 m
    as_bd = GeoLocation(lat=BEIJING[0], lng=BEIJING[1], datum="gcj02").in_datum("bd09")
    assert abs(as_bd.lat - BEIJING_GCJ_AS_BD[0]) < 1e-6 and abs(as_bd.lng - BEIJING_GCJ_AS_BD[1]) < 1e-6
    back = gcj.in_datum("wgs84")
    assert abs(back.lat - gps.lat) < 1e-6 and abs(back.lng - gps.lng) < 1e-6
    baidu = gps.in_datum("bd09")
    assert baidu.lng - gcj.lng > 0.005  # Baidu's offset on top of GCJ-02's
    again = baidu.in_datum("wgs84")
    assert abs(again.lat - gps.lat) < 1e-6 and abs(again.lng - gps.lng) < 1e-6


def test_outside_china_the_coordinates_stay() -> None:
    paris = GeoLocation(lat=48.8584, lng=2.2945)
    assert paris.in_datum("gcj02").model_dump() == paris.model_dump() | {"datum": "gcj02"}


@pytest.mark.parametrize("lat, lng", [(91, 116), (39.9, 181), (float("nan"), 116), (39.9, float("inf"))])
def test_coordinates_off_the_globe_are_refused(lat: float, lng: float) -> None:
    with pytest.raises(ValidationError):
        GeoLocation(lat=lat, lng=lng)
