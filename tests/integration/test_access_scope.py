"""Warehouse scoping with two warehouses, WA and WB, each with an order, wave, station, pack
session, refused scan, return, alert, camera, recording, printer, print job and tokens.

The object-route walk is derived from the URL map: every route whose URL names an object is
called by WA's accounts with WB's objects and must answer exactly like a missing object (404
with the same code), so a new object route is covered as soon as it declares its scope."""
from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest
from sqlalchemy import select

from floor.auth.models import ApiToken
from floor.auth.operations import create_token
from floor.auth.scope import KINDS, WITHIN
from floor.db import standalone_session, utcnow
from floor.devices.models import Printer, PrintJob
from floor.evidence.models import Camera, Recording
from floor.extensions import socketio
from floor.live.models import Alert
from floor.packing.models import Order, PackSession
from floor.returns.models import ReturnOrder
from tests.conftest import ROLES, make_order

SIDES = {"A": "WA", "B": "WB"}
WAYBILL = {"A": "SF7000000000001", "B": "SF7000000000002"}
MISSING = {"pack_session": "987654", "alert": "987654", "recording": "987654", "token": "987654"}


def _bearer(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def floor_ab(app, tokens):
    """Both warehouses with one of everything; `tokens[side][role]` are limited to the side's
    warehouse; `ids[side][kind]` names the side's object of each scoped kind."""
    client = app.test_client()
    side_tokens = {}
    with app.app_context(), standalone_session(app) as s:
        for side, code in SIDES.items():
            side_tokens[side] = {role: create_token(s, role, f"{side}-{role}", code) for role in ROLES}
            side_tokens[side]["victim"] = create_token(s, "device", f"{side}-victim", code)
    ids = {}
    for side, code in SIDES.items():
        t = side_tokens[side]
        station = f"P{side}1"
        assert client.put(f"/api/v1/stations/{station}", json={"warehouse": code},
                          headers=_bearer(t["supervisor"])).status_code == 200
        order = make_order(f"{side}-1", waybill=WAYBILL[side])
        order["warehouse"] = code
        assert client.post("/api/v1/orders", json=order, headers=_bearer(t["integration"])).status_code == 201
        assert client.post("/api/v1/waves", json={"wave_no": f"W{side}", "order_nos": [f"{side}-1"],
                                                  "station": station},
                           headers=_bearer(t["integration"])).status_code == 200
        for code_scanned, scan_id in ((WAYBILL[side], uuid.uuid4().hex), ("NOT-IN-KIT-1", f"scan-{side}")):
            scanned = client.post("/api/v1/scans", headers=_bearer(t["packer"]), json={
                "scan_id": scan_id, "station": station, "device_id": f"PDA-{side}", "code": code_scanned})
            assert scanned.status_code == 200, scanned.get_json()
        with app.app_context(), standalone_session(app) as s:
            row = s.scalar(select(Order).where(Order.order_no == f"{side}-1"))
            session_id = s.scalar(select(PackSession.id).where(PackSession.order_id == row.id))
            s.add(ReturnOrder(rma_no=f"RMA-{side}", trace_code=f"TR{side}9", order_id=row.id,
                              snapshot_id=row.snapshot_id, warehouse=code, reason="test",
                              created_by="test"))
            alert = Alert(kind="test", key=f"test-{side}", level="warn", warehouse=code)
            camera = Camera(camera_id=f"CAM-{side}", station=station)
            printer = Printer(printer_id=f"PR-{side}", station=station, driver="file", address="labels")
            s.add_all([alert, camera, printer])
            s.flush()
            now = utcnow()
            recording = Recording(camera_id=camera.id, path=f"{side}.mp4", started_at=now,
                                  ends_at=now + dt.timedelta(seconds=1), frames=10, fps=10.0,
                                  width=4, height=4, codec="h264")
            s.add_all([recording, PrintJob(job_id=f"JOB-{side}", printer_id=printer.id, kind="waybill",
                                           order_no=f"{side}-1", payload="^XA^XZ", created_by="test")])
            s.flush()
            victim = s.scalar(select(ApiToken.id).where(ApiToken.name == f"{side}-victim"))
            ids[side] = {"order": f"{side}-1", "wave": f"W{side}", "station": station,
                         "warehouse": code, "return": f"RMA-{side}", "return_code": f"TR{side}9",
                         "scan": f"scan-{side}", "pack_session": str(session_id),
                         "alert": str(alert.id), "camera": f"CAM-{side}",
                         "recording": str(recording.id), "printer": f"PR-{side}",
                         "print_job": f"JOB-{side}", "token": str(victim)}
    return client, side_tokens, ids


def _scoped_routes(app):
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        scope = getattr(view, "floor_scope", {})
        kinds = {name: kind for name, kind in scope.items() if name in rule.arguments}
        if kinds:
            yield rule, view.floor_roles, kinds


def _path(rule, kinds, values):
    path = rule.rule
    for name in rule.arguments:
        value = "0" if kinds.get(name) == WITHIN else values[kinds[name]]
        path = re.sub(rf"<(?:[a-z]+:)?{name}>", value, path)
    return path


def _role_for(roles):
    return next(r for r in ("supervisor", "integration", "qc", "packer", "device") if r in roles)


def test_every_kind_of_object_has_a_fixture():
    # A new scope kind needs an object of each warehouse in `floor_ab` (and this list).
    assert set(KINDS) == {"order", "wave", "station", "warehouse", "return", "return_code", "scan",
                          "pack_session", "alert", "camera", "recording", "printer", "print_job",
                          "token"}


def test_another_warehouses_objects_answer_as_missing_on_every_object_route(app, floor_ab):
    client, tokens, ids = floor_ab
    walked = 0
    for rule, roles, kinds in _scoped_routes(app):
        role = _role_for(roles)
        first_kind = next(k for k in kinds.values() if k != WITHIN)
        _, missing_code, _ = KINDS[first_kind]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            other = client.open(_path(rule, kinds, ids["B"]), method=method, json={},
                                headers=_bearer(tokens["A"][role]))
            where = (method, rule.rule, role, other.status_code, other.get_data(as_text=True)[:200])
            assert other.status_code == 404 and other.get_json()["code"] == missing_code, where
            walked += 1
            if method != "GET":
                continue
            missing_values = {k: MISSING.get(k, "NO-SUCH-9") for k in ids["B"]}
            absent = client.get(_path(rule, kinds, missing_values), headers=_bearer(tokens["A"][role]))
            if absent.status_code == 404:
                # Nothing tells "of another warehouse" from "does not exist".
                assert absent.get_json()["code"] == missing_code, where
            own = client.get(_path(rule, kinds, ids["B"]), headers=_bearer(tokens["B"][role]))
            assert not (own.status_code == 404 and own.get_json().get("code") == missing_code), \
                ("B's own object", *where)
    assert walked >= 30


def test_all_warehouse_tokens_keep_seeing_every_warehouse(app, floor_ab, api):
    client, _tokens, ids = floor_ab
    for side in SIDES:
        got = api.get(f"/api/v1/orders/{ids[side]['order']}", role="supervisor")
        assert got.status_code == 200, got.get_json()
    sessions = api.get("/api/v1/pack-sessions", role="supervisor").get_json()["sessions"]
    assert {s["order_no"] for s in sessions} == {"A-1", "B-1"}


def test_site_wide_configuration_is_for_all_warehouse_accounts(app, floor_ab, api):
    client, tokens, _ids = floor_ab
    refused = client.get("/api/v1/webhooks", headers=_bearer(tokens["A"]["supervisor"]))
    assert (refused.status_code, refused.get_json()["code"]) == (403, "all_warehouses_only")
    assert api.get("/api/v1/webhooks", role="supervisor").status_code == 200
    # ...and the board links the webhooks page only for them.
    one = client.get("/board", headers=_bearer(tokens["A"]["supervisor"]))
    assert one.status_code == 200 and 'id="webhooks-link"' not in one.get_data(as_text=True)
    assert 'id="webhooks-link"' in api.get("/board", role="supervisor").get_data(as_text=True)


def test_listings_show_only_the_callers_warehouse(app, floor_ab):
    client, tokens, _ids = floor_ab
    sup, qc = _bearer(tokens["A"]["supervisor"]), _bearer(tokens["A"]["qc"])

    def get(path, headers=sup):
        response = client.get(path, headers=headers)
        assert response.status_code == 200, (path, response.get_data(as_text=True)[:300])
        return response

    assert [s["order_no"] for s in get("/api/v1/pack-sessions").get_json()["sessions"]] == ["A-1"]
    assert {a["warehouse"] for a in get("/api/v1/alerts").get_json()["alerts"]} <= {"WA"}
    assert [c["camera_id"] for c in get("/api/v1/cameras").get_json()["cameras"]] == ["CAM-A"]
    assert [p["printer_id"] for p in get("/api/v1/printers").get_json()["printers"]] == ["PR-A"]
    assert {d["station"] for d in get("/api/v1/devices").get_json()["devices"]} <= {"PA1"}
    assert [r["rma_no"] for r in get("/api/v1/returns", qc).get_json()["returns"]] == ["RMA-A"]
    assert {t["warehouse"] for t in get("/api/v1/tokens").get_json()["tokens"]} == {"WA"}
    sheet = get("/sheet", _bearer(tokens["A"]["packer"])).get_data(as_text=True)
    assert "A-1" in sheet and "B-1" not in sheet
    pack = get("/pack", _bearer(tokens["A"]["packer"])).get_data(as_text=True)
    assert "PA1" in pack and "PB1" not in pack
    for path in ("/api/v1/stock?warehouse=WB", "/api/v1/board?warehouse=WB",
                 "/api/v1/alerts?warehouse=WB", "/api/v1/devices?warehouse=WB"):
        refused = client.get(path, headers=sup)
        assert (refused.status_code, refused.get_json()["code"]) == (403, "warehouse_forbidden"), path
    assert get("/api/v1/board").get_json()  # defaults to the caller's own warehouse


def test_writes_naming_another_warehouse_are_refused(app, floor_ab):
    client, tokens, ids = floor_ab
    a = tokens["A"]

    def post(path, body, role, method="POST"):
        return client.open(path, method=method, json=body, headers=_bearer(a[role]))

    order = make_order("A-2", waybill=None)
    order["warehouse"] = "WB"
    cases = [
        (post("/api/v1/orders", order, "integration"), 403, "warehouse_forbidden"),
        (post("/api/v1/waves", {"wave_no": "W-X", "order_nos": ["B-1"], "station": "PA1"}, "integration"),
         404, "unknown_order"),
        (post("/api/v1/waves", {"wave_no": "W-X", "order_nos": ["A-1"], "station": "PB1"}, "integration"),
         403, "warehouse_forbidden"),
        (post("/api/v1/scans", {"scan_id": "x1", "station": "PB1", "device_id": "PDA-A",
                                "code": WAYBILL["B"]}, "packer"), 403, "warehouse_forbidden"),
        (post("/api/v1/devices/heartbeat", {"device_id": "PDA-A", "station": "PB1"}, "device"),
         403, "warehouse_forbidden"),
        (post("/api/v1/stock", {"warehouse": "WB", "items": [{"sku": "SERUM", "on_hand": 1}]},
              "integration", "PUT"), 403, "warehouse_forbidden"),
        (post("/api/v1/stock/adjustments", {"warehouse": "WB", "sku": "SERUM", "delta": 1,
                                            "note": "x"}, "integration"), 403, "warehouse_forbidden"),
        (post("/api/v1/returns", {"order_no": "B-1", "reason": "x"}, "qc"), 404, "unknown_order"),
        (post("/api/v1/devices", {"device_id": "SCN-X", "kind": "serial", "port": "loop://",
                                  "station": "PB1"}, "integration"), 403, "warehouse_forbidden"),
        (post("/api/v1/cameras", {"camera_id": "CAM-X", "station": "PB1"}, "integration"),
         403, "warehouse_forbidden"),
        (post("/api/v1/printers", {"printer_id": "PR-X", "station": "PB1", "driver": "file",
                                   "address": "labels"}, "integration"), 403, "warehouse_forbidden"),
        (post("/api/v1/tokens", {"name": "x", "role": "packer", "warehouse": "WB"}, "supervisor"),
         403, "warehouse_forbidden"),
    ]
    for response, status, code in cases:
        assert (response.status_code, response.get_json()["code"]) == (status, code), response.get_json()
    # At WA's own station, WB's waybill names nothing: WB's order is not opened there.
    at_own = post("/api/v1/scans", {"scan_id": "x3", "station": "PA1", "device_id": "PDA-A9",
                                    "code": WAYBILL["B"]}, "packer")
    assert at_own.status_code == 200 and at_own.get_json()["code"] != "order_opened"
    assert at_own.get_json().get("order_no") in (None, "A-1"), at_own.get_json()
    # A new station first used by WA's device becomes WA's: WB's waybill names nothing there.
    at_new = post("/api/v1/scans", {"scan_id": "x4", "station": "PA-NEW", "device_id": "PDA-A8",
                                    "code": WAYBILL["B"]}, "packer")
    assert at_new.status_code == 200 and at_new.get_json().get("order_no") is None, at_new.get_json()
    # The socket path checks the same: a scan at WB's station from a WA device.
    sock = socketio.test_client(app, namespace="/floor", auth={"token": a["packer"]})
    ack = sock.emit("scan", {"scan_id": "x2", "station": "PB1", "device_id": "PDA-A",
                             "code": WAYBILL["B"]}, namespace="/floor", callback=True)
    assert (ack["ok"], ack["code"]) == (False, "warehouse_forbidden")
    with app.app_context(), standalone_session(app, write=False) as s:
        order = s.scalar(select(Order).where(Order.order_no == "B-1"))
        assert order.status == "packing"   # untouched by WA's refused scan
