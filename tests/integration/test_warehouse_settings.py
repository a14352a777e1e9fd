"""A warehouse's settings are checked before they are kept: a UTC offset no place has (beyond
UTC-12:00 .. UTC+14:00) is 400 invalid_field, never a board, timeline or stock page that then
answers 500 for that warehouse."""
from __future__ import annotations

import pytest


def _settings(api, body):
    return api.client.put("/api/v1/warehouses/JX/settings", json=body,
                          headers={"Authorization": f"Bearer {api.tokens['supervisor']}"})


@pytest.mark.parametrize("offset", [-1440, -721, 841, 1440, 100_000, 1.5, "480", True])
def test_a_utc_offset_no_place_has_is_refused(api, waved, offset):
    waved("TB001")
    refused = _settings(api, {"utc_offset_minutes": offset})
    assert refused.status_code == 400, refused.get_json()
    assert refused.get_json()["field"] == "utc_offset_minutes"
    assert api.get("/api/v1/board?warehouse=JX").status_code == 200
    assert api.get("/orders/TB001").status_code == 200


@pytest.mark.parametrize("offset", [-720, 0, 330, 840])
def test_real_utc_offsets_are_kept_and_the_board_follows_them(api, waved, offset):
    waved("TB001")
    kept = _settings(api, {"utc_offset_minutes": offset})
    assert kept.status_code == 200 and kept.get_json()["settings"]["utc_offset_minutes"] == offset
    assert api.get("/api/v1/board?warehouse=JX").status_code == 200
    assert api.get("/orders/TB001").status_code == 200


def test_an_offset_stored_before_offsets_were_checked_falls_back_to_the_default(app, api, waved):
    """A database from before the check may hold any number: the board, the timeline and a scan
    still answer, computed with the default offset (UTC+08:00)."""
    from sqlalchemy import update

    from floor.db import standalone_session
    from floor.packing.models import Warehouse

    waved("TB001")
    with app.app_context(), standalone_session(app) as s:
        s.execute(update(Warehouse).where(Warehouse.code == "JX")
                  .values(settings={"utc_offset_minutes": 100_000}))
    board = api.get("/api/v1/board?warehouse=JX")
    assert board.status_code == 200 and board.get_json()["settings"]["utc_offset_minutes"] == 480
    assert api.get("/orders/TB001").status_code == 200
    assert api.scan("SF1000000000001")["code"] == "order_opened"


@pytest.mark.parametrize("cutoff", ["1²:00", "16:⁵0", "25:00", "16-00"])
def test_a_cutoff_that_is_no_time_of_day_is_refused(api, cutoff):
    refused = _settings(api, {"cutoff": cutoff})
    assert refused.status_code == 400, refused.get_json()
    assert refused.get_json()["field"] == "cutoff"
