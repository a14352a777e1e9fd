"""An expiry date (GS1 AI 17) is a day of the warehouse's calendar: a unit whose last day was
yesterday there is expired from local midnight, not from UTC midnight (eight hours later in a
warehouse at UTC+8, the default), and a warehouse elsewhere judges by its own day."""
from __future__ import annotations

import datetime as dt

import pytest

import floor.scan.operations

SAMPLE_GTIN = "06901234567908"        # the sample line (qty 2) of the default kit
UTC = dt.timezone.utc


@pytest.fixture
def server_clock(monkeypatch):
    now: list[dt.datetime] = []
    monkeypatch.setattr(floor.scan.operations, "utcnow", lambda: now[0])
    return lambda instant: now.__setitem__(slice(None), [instant])


def _unit(expiry: str) -> str:
    return f"]C101{SAMPLE_GTIN}17{expiry}"


def test_a_unit_expires_at_the_warehouses_midnight(api, waved, server_clock):
    waved("TB001")
    server_clock(dt.datetime(2031, 3, 15, 15, 0, tzinfo=UTC))
    assert api.scan("SF1000000000001")["code"] == "order_opened"
    # 23:30 on 15 March in the warehouse (UTC+8): its last day, still good.
    server_clock(dt.datetime(2031, 3, 15, 15, 30, tzinfo=UTC))
    assert api.scan(_unit("310315"))["code"] == "accepted"
    # 01:30 on 16 March there, still 15 March in UTC: expired.
    server_clock(dt.datetime(2031, 3, 15, 17, 30, tzinfo=UTC))
    late = api.scan(_unit("310315"))
    assert (late["ok"], late["code"], late["params"]["expiry"]) == (False, "expired", "2031-03-15")
    # A month's end written DD 00 ends at local midnight too.
    server_clock(dt.datetime(2031, 3, 31, 17, 30, tzinfo=UTC))
    assert api.scan(_unit("310300"))["code"] == "expired"


def test_a_warehouse_west_of_utc_judges_by_its_own_day(api, waved, server_clock):
    waved("TB001")
    settings = api.client.put("/api/v1/warehouses/JX/settings", json={"utc_offset_minutes": -300},
                              headers={"Authorization": f"Bearer {api.tokens['supervisor']}"})
    assert settings.status_code == 200, settings.get_json()
    server_clock(dt.datetime(2031, 3, 16, 2, 0, tzinfo=UTC))
    assert api.scan("SF1000000000001")["code"] == "order_opened"
    # 21:00 on 15 March at UTC-5: a unit good through 15 March is still good there.
    assert api.scan(_unit("310315"))["code"] == "accepted"
