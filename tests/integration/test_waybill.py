"""Tracking numbers in: POST /api/v1/orders/<order_no>/waybill binds or replaces a waybill,
audited, and settles what waited for it (an order complete but for its waybill, the
missing-tracking-number alert) in the same transaction."""
from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select

from floor.db import standalone_session, utcnow
from floor.eventlog import EventLogEntry
from floor.live import operations as live_ops
from floor.packing.models import WaybillChange
from tests.conftest import make_order

MAIN, SAMPLE, GIFTBOX = "6901234567892", "6901234567908", "6901234567915"


def bind(api, order_no: str, body: Any, role: str = "integration", query: str = ""):
    return api.post(f"/api/v1/orders/{order_no}/waybill{query}", body, role=role)


def changes(app) -> list[WaybillChange]:
    with app.app_context(), standalone_session(app, write=False) as s:
        return list(s.scalars(select(WaybillChange).order_by(WaybillChange.id)))


def events_of(app, type_: str) -> list[dict[str, Any]]:
    with app.app_context(), standalone_session(app, write=False) as s:
        return [e.payload for e in s.scalars(select(EventLogEntry).where(EventLogEntry.type == type_)
                                             .order_by(EventLogEntry.seq))]


def evaluate(app, minutes_later: float) -> None:
    with app.app_context(), standalone_session(app) as s:
        live_ops.evaluate_alerts(s, utcnow() + dt.timedelta(minutes=minutes_later))


def alerts(api, kind: str, everything: bool = False) -> list[dict[str, Any]]:
    path = "/api/v1/alerts?all=1" if everything else "/api/v1/alerts"
    return [a for a in api.get(path).get_json()["alerts"] if a["kind"] == kind]


def test_a_waybill_bound_before_packing_is_audited_and_opens_the_order(app, api, waved):
    waved("TB001", waybill=None)
    response = bind(api, "TB001", {"waybill_no": "YT1234567890123", "reason": "label bought",
                                   "device_id": "OMS-1"})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["waybill_no"], body["old_waybill_no"], body["changed"], body["status"]) == (
        "YT1234567890123", None, True, "wave_assigned")
    assert body["completed"] is False and body["label_reprint"] is False
    [change] = changes(app)
    assert (change.old_waybill_no, change.new_waybill_no, change.by, change.role, change.via,
            change.device_id, change.reason, change.order_status, change.seq) == (
        None, "YT1234567890123", "test-integration", "integration", "token", "OMS-1",
        "label bought", "wave_assigned", body["seq"])
    [event] = events_of(app, "waybill")
    assert event["seq"] == body["seq"] and event["order_no"] == "TB001"
    assert (event["waybill_no"], event["old_waybill_no"], event["by"], event["reason"]) == (
        "YT1234567890123", None, "test-integration", "label bought")
    with app.app_context(), standalone_session(app, write=False) as s:
        rooms = s.get(EventLogEntry, body["seq"]).rooms
    assert {"warehouse:JX", "order:TB001", "wave:W-1"} <= set(rooms)
    opened = api.scan("YT1234567890123")
    assert (opened["code"], opened["order_no"]) == ("order_opened", "TB001")


def test_replacing_after_packing_keeps_the_order_packed_and_records_old_and_new(app, api, waved):
    waved("TB001")
    api.scan("SF1000000000001")
    for code in (SAMPLE, MAIN, SAMPLE, GIFTBOX):
        done = api.scan(code)
    assert done["status"] == "packed"
    response = bind(api, "TB001", {"waybill_no": "SF2000000000002", "reason": "carrier changed"},
                    role="supervisor")
    body = response.get_json()
    assert response.status_code == 200, body
    assert (body["old_waybill_no"], body["waybill_no"], body["status"], body["label_reprint"]) == (
        "SF1000000000001", "SF2000000000002", "packed", False)
    api.post("/api/v1/orders/TB001/events", {"event": "label_printed"})
    relabel = bind(api, "TB001", {"waybill_no": "SF3000000000003"}).get_json()
    assert relabel["status"] == "labelled" and relabel["label_reprint"] is True
    history = [(c.old_waybill_no, c.new_waybill_no, c.by, c.via, c.order_status) for c in changes(app)]
    assert history == [("SF1000000000001", "SF2000000000002", "test-supervisor", "token", "packed"),
                       ("SF2000000000002", "SF3000000000003", "test-integration", "token", "labelled")]
    detail = api.get("/api/v1/orders/TB001").get_json()
    assert detail["waybill_no"] == "SF3000000000003"
    # The old number no longer names the order; the new one does.
    assert api.scan("SF1000000000001", device="PDA-02")["code"] != "already_packed"
    assert api.scan("SF3000000000003", device="PDA-02")["code"] == "already_packed"


def test_the_same_number_again_changes_nothing(app, api, waved):
    waved("TB001")
    again = bind(api, "TB001", {"waybill_no": "SF1000000000001"})
    assert again.status_code == 200
    assert again.get_json()["changed"] is False and again.get_json()["seq"] is None
    assert changes(app) == [] and events_of(app, "waybill") == []


def test_a_waybill_of_another_order_or_an_item_code_is_refused(api, waved):
    waved("TB001")
    waved("TB002", waybill="SF1000000000002", wave="W-2")
    taken = bind(api, "TB002", {"waybill_no": "SF1000000000001"})
    assert taken.status_code == 409
    assert taken.get_json()["code"] == "waybill_in_use" and taken.get_json()["order_no"] == "TB001"
    order_no = bind(api, "TB002", {"waybill_no": "TB001X"})     # not an order number: fine
    assert order_no.status_code == 200
    named = bind(api, "TB002", {"waybill_no": "TB0001"})
    assert named.status_code == 200
    api.post("/api/v1/orders", make_order("TB000123", waybill=None))
    clash = bind(api, "TB002", {"waybill_no": "TB000123"})
    assert (clash.status_code, clash.get_json()["code"]) == (409, "waybill_in_use")
    item = bind(api, "TB002", {"waybill_no": GIFTBOX})
    assert (item.status_code, item.get_json()["code"]) == (409, "waybill_is_item_code")
    assert api.get("/api/v1/orders/TB002").get_json()["waybill_no"] == "TB0001"


def test_roles_come_before_the_body(api, waved):
    waved("TB001")
    for role in ("packer", "qc", "device"):
        assert bind(api, "TB001", {"waybill_no": "SF9"}, role=role).status_code == 403
        assert bind(api, "NOPE", "garbage", role=role).status_code == 403
    assert bind(api, "TB001", {"waybill_no": "SF9000000000009"}, role=None).status_code == 401


@pytest.mark.parametrize("body, code", [
    ({}, "missing_field"),
    ({"waybill_no": ""}, "missing_field"),
    ({"waybill_no": 12345678}, "invalid_waybill"),
    ({"waybill_no": "SF 1234567890"}, "invalid_waybill"),
    ({"waybill_no": "SF12"}, "invalid_waybill"),
    ({"waybill_no": "S" * 41}, "invalid_waybill"),
    ({"waybill_no": "-SF1234567890"}, "invalid_waybill"),
    ({"waybill_no": "顺丰1234567890"}, "invalid_waybill"),
    ({"waybill_no": "SF1234567890\x00"}, "invalid_waybill"),
    ({"waybill_no": ["SF1234567890"]}, "invalid_waybill"),
    ({"waybill_no": "SF1234567890", "reason": "x" * 501}, "invalid_field"),
    ({"waybill_no": "SF1234567890", "reason": 5}, "invalid_field"),
    ({"waybill_no": "SF1234567890", "channel": {"a": 1}}, "invalid_field"),
])
def test_bad_input_is_a_400_with_a_stable_code(api, waved, body, code):
    waved("TB001")
    response = bind(api, "TB001", body)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["code"] == code


def test_bad_requests_are_never_500(api, waved):
    waved("TB001")
    headers = {"Authorization": f"Bearer {api.tokens['integration']}"}
    for raw in (b"", b"{", b"[]", b"\xff", b'"SF1234567890"', b"null"):
        response = api.client.post("/api/v1/orders/TB001/waybill", data=raw, headers=headers)
        assert response.status_code == 400, raw
    assert bind(api, "NOPE", {"waybill_no": "SF1234567890"}).status_code == 404
    assert bind(api, "TB001", {"waybill_no": "SF1234567890"}, query="?channel=%01").status_code == 400


def test_channel_picks_the_order_when_its_number_is_shared(api):
    api.post("/api/v1/orders", make_order("X1", waybill=None, channel="taobao"))
    api.post("/api/v1/orders", make_order("X1", waybill=None, channel="douyin"))
    ambiguous = bind(api, "X1", {"waybill_no": "SF5000000000005"})
    assert (ambiguous.status_code, ambiguous.get_json()["code"]) == (409, "ambiguous_order")
    by_query = bind(api, "X1", {"waybill_no": "SF5000000000005"}, query="?channel=douyin")
    assert by_query.status_code == 200 and by_query.get_json()["channel"] == "douyin"
    by_body = bind(api, "X1", {"waybill_no": "SF6000000000006", "channel": "taobao"})
    assert by_body.status_code == 200 and by_body.get_json()["channel"] == "taobao"


def test_a_cancelled_order_keeps_its_waybill(api, waved):
    waved("TB001")
    api.post("/api/v1/orders/TB001/events", {"event": "cancel", "reason": "customer"}, role="supervisor")
    refused = bind(api, "TB001", {"waybill_no": "SF7000000000007"})
    assert (refused.status_code, refused.get_json()["code"]) == (409, "order_closed")


def test_a_kit_waiting_for_its_waybill_is_packed_when_it_arrives_and_the_alert_clears(app, api, waved):
    api.client.put("/api/v1/stock", json={"warehouse": "JX", "items": [{"sku": "GIFTBOX", "on_hand": 5}]},
                   headers={"Authorization": f"Bearer {api.tokens['supervisor']}"})
    waved("TB001", waybill=None)
    assert api.scan("TB001")["code"] == "order_opened"          # opened by its order number
    for code in (SAMPLE, MAIN, SAMPLE):
        api.scan(code)
    last = api.scan(GIFTBOX)
    assert (last["code"], last["status"]) == ("accepted", "packing")
    assert last["progress"]["units_left"] == 0 and last["progress"]["complete"] is False
    evaluate(app, 14)
    assert alerts(api, "no_tracking_number") == []
    evaluate(app, 16)
    [alert] = alerts(api, "no_tracking_number")
    assert alert["order_no"] == "TB001" and alert["params"]["status"] == "packing"

    response = bind(api, "TB001", {"waybill_no": "JD0012345678901", "reason": "bought late"})
    body = response.get_json()
    assert response.status_code == 200, body
    assert (body["completed"], body["status"], body["alerts_cleared"]) == (True, "packed", [alert["id"]])
    # Cleared in the binding's own transaction, not at the next evaluation.
    assert alerts(api, "no_tracking_number") == []
    [cleared] = alerts(api, "no_tracking_number", everything=True)
    assert cleared["cleared_at"] is not None
    [cleared_event] = [e for e in events_of(app, "alert_cleared") if e["kind"] == "no_tracking_number"]
    assert cleared_event["seq"] > body["seq"]
    detail = api.get("/api/v1/orders/TB001").get_json()
    last_status = detail["timeline"][-1]
    assert (last_status["status"], last_status["by"], last_status["station"], last_status["device_id"]) == (
        "packed", "test-integration", "P01", "PDA-01")
    assert "JD0012345678901" in last_status["reason"]
    assert [s["state"] for s in detail["sessions"]] == ["completed"]
    assert api.get("/api/v1/stations/P01/session?device_id=PDA-01").get_json()["order_no"] is None
    box = next(i for i in api.get("/api/v1/stock?warehouse=JX").get_json()["items"] if i["sku"] == "GIFTBOX")
    assert box["on_hand"] == 4                                   # packing took the box
    evaluate(app, 30)
    assert alerts(api, "no_tracking_number") == []


def test_a_waybill_bound_mid_packing_lets_the_last_item_complete(api, waved):
    waved("TB001", waybill=None)
    api.scan("TB001")
    api.scan(SAMPLE)
    assert bind(api, "TB001", {"waybill_no": "SF8000000000008"}).get_json()["completed"] is False
    api.scan(MAIN)
    api.scan(SAMPLE)
    assert api.scan(GIFTBOX)["status"] == "packed"


def test_the_oms_sending_the_waybill_with_an_order_update_is_audited_too(app, api, waved):
    waved("TB001", waybill=None)
    response = api.post("/api/v1/orders", make_order("TB001", waybill="SF4000000000004"))
    assert response.status_code == 200 and response.get_json()["waybill_no"] == "SF4000000000004"
    [change] = changes(app)
    assert (change.new_waybill_no, change.reason, change.by) == ("SF4000000000004", "sent with the order",
                                                                 "test-integration")
