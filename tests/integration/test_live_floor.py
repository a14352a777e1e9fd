"""Micro-statuses beyond packing, holds, alerts and the board snapshot, on a real database."""
from __future__ import annotations

import datetime as dt

from floor.db import standalone_session, utcnow
from floor.live import operations as live_ops
from floor.live.scheduler import AlertScheduler

WAYBILL, MAIN, SAMPLE, GIFTBOX = "SF1000000000001", "6901234567892", "6901234567908", "6901234567915"


def pack(api, device="PDA-01"):
    api.scan(WAYBILL, device=device)
    api.scan(SAMPLE, device=device)
    api.scan(MAIN, device=device)
    api.scan(SAMPLE, device=device)         # not a duplicate read: another code came between
    return api.scan(GIFTBOX, device=device)


def event(api, body, role="integration", order="TB001"):
    return api.post(f"/api/v1/orders/{order}/events", body, role=role)


def test_an_order_goes_from_packed_to_handed_over_and_every_step_is_recorded(api, waved):
    waved("TB001")
    assert pack(api)["status"] == "packed"
    for name, status in (("label_printed", "labelled"), ("staged_for_loading", "awaiting_loading"),
                         ("loaded", "loaded"), ("carrier_pickup", "handed_over")):
        response = event(api, {"event": name, "station": "DOCK1"})
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["status"] == status
    timeline = api.get("/api/v1/orders/TB001").get_json()["timeline"]
    assert [t["status"] for t in timeline][-4:] == ["labelled", "awaiting_loading", "loaded", "handed_over"]
    assert timeline[-1]["by"] == "test-integration" and timeline[-1]["reason"] == "carrier_pickup"
    assert timeline[-1]["station"] == "DOCK1"


def test_illegal_transitions_are_refused_with_a_clear_error(api, waved):
    waved("TB001")
    refused = event(api, {"event": "carrier_pickup"})
    assert refused.status_code == 409 and refused.get_json()["code"] in ("illegal_transition", "packed_by_scan_only")
    assert event(api, {"status": "packed"}).get_json()["code"] == "packed_by_scan_only"
    assert event(api, {"event": "fly"}).get_json()["code"] == "unknown_event"
    assert event(api, {"event": "hold"}).get_json()["code"] == "reason_required"
    assert event(api, {"event": "release", "reason": "x"}).get_json()["code"] == "not_on_hold"
    assert event(api, {"event": "label_printed"}, role="packer").status_code == 403


def test_a_held_order_refuses_scans_until_released(api, waved):
    waved("TB001")
    api.scan(WAYBILL)
    held = event(api, {"event": "hold", "reason": "customer asked to change address"}, role="supervisor")
    assert held.get_json()["status"] == "on_hold"
    refused = api.scan(MAIN)
    assert (refused["ok"], refused["code"]) == (False, "order_blocked")
    released = event(api, {"event": "release", "reason": "address fixed"}, role="supervisor")
    assert released.get_json()["status"] == "packing"
    assert api.scan(SAMPLE)["code"] == "accepted"


def test_cancelling_frees_the_pack_session(api, waved):
    waved("TB001")
    api.scan(WAYBILL)
    assert event(api, {"event": "cancel", "reason": "customer cancelled"}).get_json()["status"] == "cancelled"
    assert api.get("/api/v1/pack-sessions").get_json()["sessions"] == []
    assert api.scan(WAYBILL, device="PDA-02")["code"] == "order_blocked"


def _evaluate(app, now):
    with app.app_context(), standalone_session(app) as s:
        return live_ops.evaluate_alerts(s, now)


def test_alerts_are_raised_acknowledged_and_cleared(app, api, waved):
    waved("TB001")
    now = utcnow()
    assert _evaluate(app, now) == []
    raised = _evaluate(app, now + dt.timedelta(minutes=150))     # wave_assigned: yellow after 120 min
    assert [e.type for e in raised] == ["alert"]
    alerts = api.get("/api/v1/alerts").get_json()["alerts"]
    assert [(a["kind"], a["level"], a["order_no"]) for a in alerts] == [("status_sla", "yellow", "TB001")]
    relevelled = _evaluate(app, now + dt.timedelta(minutes=250))
    assert relevelled[0].payload["level"] == "red"
    alert_id = alerts[0]["id"]
    acked = api.post(f"/api/v1/alerts/{alert_id}/ack", {"note": "calling the picker"}, role="supervisor")
    assert acked.status_code == 200 and acked.get_json()["acked_by"] == "test-supervisor"
    assert api.post(f"/api/v1/alerts/{alert_id}/ack", {}, role="supervisor").status_code == 409
    api.scan(WAYBILL)                                            # the order moves: cause gone
    cleared = _evaluate(app, utcnow())
    assert [e.type for e in cleared] == ["alert_cleared"]
    assert api.get("/api/v1/alerts").get_json()["alerts"] == []
    history = api.get("/api/v1/alerts?all=1").get_json()["alerts"]
    assert history[0]["cleared_at"] and history[0]["ack_note"] == "calling the picker"


def test_silent_device_and_station_error_rate_alerts(app, api, waved):
    waved("TB001")
    api.scan(WAYBILL)
    for i in range(10):
        api.scan(f"JUNK-{i}")
    now = utcnow()
    kinds = {e.payload["kind"] for e in _evaluate(app, now)}
    assert kinds == {"station_error_rate"}
    later = {e.payload["kind"]: e.type for e in _evaluate(app, now + dt.timedelta(minutes=11))}
    assert later == {"device_silent": "alert", "station_error_rate": "alert_cleared"}
    devices = api.get("/api/v1/board").get_json()["stations"][0]["devices"]
    assert devices[0]["state"] == "offline"


def test_only_the_lease_holder_evaluates(app):
    first, second = AlertScheduler(app, 30), AlertScheduler(app, 30)
    now = utcnow()
    with app.app_context(), standalone_session(app) as s:
        assert live_ops.acquire_lease(s, "alerts", first.holder, dt.timedelta(seconds=60), now)
    with app.app_context(), standalone_session(app) as s:
        assert not live_ops.acquire_lease(s, "alerts", second.holder, dt.timedelta(seconds=60), now)
        assert live_ops.acquire_lease(s, "alerts", second.holder, dt.timedelta(seconds=60),
                                      now + dt.timedelta(seconds=61))


def test_board_snapshot_counts_waves_and_kpis(api, waved):
    waved("TB001")
    waved("TB002", waybill="SF1000000000002")
    pack(api)
    board = api.get("/api/v1/board?warehouse=JX").get_json()
    assert board["status_counts"]["packed"] == 1 and board["status_counts"]["wave_assigned"] == 1
    assert board["kpis"]["packed_today"] == 1 and board["kpis"]["avg_pack_seconds"] is not None
    wave = board["waves"][0]
    assert (wave["wave_no"], wave["total"], wave["packed"]) == ("W-1", 2, 1)
    assert wave["projected_finish"] is not None
    station = board["stations"][0]
    assert station["station"] == "P01" and station["orders_per_hour"] == 1
    assert board["last_seq"] >= 6
    assert api.get("/api/v1/board?warehouse=NOPE").status_code == 404
    assert api.get("/api/v1/board", role="packer").status_code == 403


def test_warehouse_settings_change_the_slas(api, waved):
    waved("TB001")
    response = api.client.put("/api/v1/warehouses/JX/settings", json={"slas": {"wave_assigned": [1, 2]}},
                              headers={"Authorization": f"Bearer {api.tokens['supervisor']}"})
    assert response.status_code == 200
    bad = api.client.put("/api/v1/warehouses/JX/settings", json={"cutoff": "25:99"},
                         headers={"Authorization": f"Bearer {api.tokens['supervisor']}"})
    assert bad.status_code == 400 and bad.get_json()["code"] == "invalid_field"


def test_a_waybill_scanned_at_a_dock_station_loads_the_parcel(api, waved):
    waved("TB001")
    dock = api.client.put("/api/v1/stations/DOCK1", json={"kind": "dock", "warehouse": "JX"},
                          headers={"Authorization": f"Bearer {api.tokens['supervisor']}"})
    assert dock.status_code == 200 and dock.get_json()["kind"] == "dock"
    assert api.scan(WAYBILL, station="DOCK1", device="DOCK-SCN")["code"] == "not_ready_for_loading"
    pack(api)
    assert api.scan(WAYBILL, station="DOCK1", device="DOCK-SCN-2")["code"] == "not_ready_for_loading"
    event(api, {"event": "label_printed"})
    loaded = api.scan(WAYBILL, station="DOCK1", device="DOCK-SCN-3")
    assert (loaded["ok"], loaded["code"], loaded["status"]) == (True, "loaded", "loaded")
    again = api.scan("SF1000000000001 ", station="DOCK1", device="DOCK-SCN-4")
    assert again["code"] == "already_loaded"
    assert api.scan("NOPE123", station="DOCK1", device="DOCK-SCN")["code"] == "unknown_code"
    last = api.get("/api/v1/orders/TB001").get_json()["timeline"][-1]
    assert (last["status"], last["station"], last["device_id"]) == ("loaded", "DOCK1", "DOCK-SCN-3")
