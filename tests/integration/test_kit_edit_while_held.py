"""A kit edit of an order held (or put in exception) half packed: its pack session is still open
against the old snapshot, so the edit is refused as while packing (409 order_being_packed) until
a supervisor releases that session. Otherwise a released hold resumes the old kit and the box
is sealed with what the customer no longer ordered."""
from __future__ import annotations

import pytest

from tests.conftest import make_order

WAYBILL, SERUM, CREAM = "SF1000000000001", "6901234567892", "6900000000017"


def _edited() -> dict:
    return make_order("TB001", lines=[
        {"sku": "SERUM", "name": "精华液 30ml", "qty": 2, "role": "main", "barcodes": [SERUM]},
        {"sku": "CREAM", "name": "面霜 50g", "qty": 1, "role": "main", "barcodes": [CREAM]}])


@pytest.mark.parametrize("stop", ["hold", "exception"])
def test_a_kit_edit_of_an_order_stopped_half_packed_waits_for_its_session(api, waved, stop):
    waved("TB001")
    assert api.scan(WAYBILL)["code"] == "order_opened"
    assert api.scan(SERUM)["code"] == "accepted"
    stopped = api.post("/api/v1/orders/TB001/events", {"event": stop, "reason": "customer called"},
                       role="supervisor")
    assert stopped.status_code == 200, stopped.get_json()

    refused = api.post("/api/v1/orders", _edited())
    assert refused.status_code == 409 and refused.get_json()["code"] == "order_being_packed"
    detail = api.get("/api/v1/orders/TB001").get_json()
    assert detail["snapshot"]["version"] == 1

    # The supervisor frees the half-packed session (the box is emptied): now the kit may change,
    # and packing starts again on the new kit.
    session_id = next(s["id"] for s in api.get("/api/v1/pack-sessions").get_json()["sessions"]
                      if s["order_no"] == "TB001")
    released = api.post(f"/api/v1/pack-sessions/{session_id}/release", {"reason": "kit edit"},
                        role="supervisor")
    assert released.status_code == 200, released.get_json()
    edited = api.post("/api/v1/orders", _edited())
    assert edited.status_code == 200 and edited.get_json()["snapshot"]["version"] == 2
    assert api.post("/api/v1/orders/TB001/events", {"event": "release", "reason": "sorted out"},
                    role="supervisor").status_code == 200
    assert api.scan(WAYBILL)["code"] == "order_opened"
    cream = api.scan(CREAM)
    assert (cream["ok"], cream["code"]) == (True, "accepted"), cream
    assert [line["sku"] for line in cream["progress"]["lines"]] == ["SERUM", "CREAM"]
