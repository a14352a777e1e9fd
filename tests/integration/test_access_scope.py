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
from floor.auth.models import AuditEntry
from floor.packing.models import Order, PackSession, Warehouse
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
                         "print_job": f"JOB-{side}", "token": str(victim),
                         "device": f"PDA-{side}"}
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
                          "token", "device"}


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


# --- re-registering, moving or replaying another warehouse's object ----------------------------

def _body_routes(app):
    """Every route whose body names existing objects by id (`upserts` / `uses`), from the URL
    map: a new create-or-update route is walked as soon as it declares its body ids."""
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        body = getattr(view, "floor_body", {})
        if body:
            kinds = {name: kind for name, kind in getattr(view, "floor_scope", {}).items()
                     if name in rule.arguments}
            yield rule, view.floor_roles, kinds, body


def _where_objects_are(app):
    from floor.devices.models import Device
    with app.app_context(), standalone_session(app, write=False) as s:
        return {"camera": s.scalar(select(Camera.station).where(Camera.camera_id == "CAM-B")),
                "printer": s.scalar(select(Printer.station).where(Printer.printer_id == "PR-B")),
                "device": s.scalar(select(Device.station).where(Device.device_id == "PDA-B")),
                "jobs": sorted(s.scalars(select(PrintJob.job_id))),
                "warehouses": sorted(s.scalars(select(Warehouse.code)))}


def test_another_warehouses_objects_cannot_be_re_registered_moved_or_used_from_a_body(app, floor_ab):
    """Derived from the URL map: each body id of each create/upsert route, sent by WA's account
    with WB's object (and WA's station), is refused: 409 `<field>_in_use` for an object the route
    would create or update, the same 404 as a missing object for one it would use. WB's objects
    stay where they are, and nothing of WB's shows in the answers."""
    client, tokens, ids = floor_ab
    before = _where_objects_are(app)
    walked = 0
    for rule, roles, kinds, body_ids in _body_routes(app):
        role = _role_for(roles)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            for field, (kind, mode) in body_ids.items():
                path = _path(rule, kinds, ids["A"])
                body = {field: ids["B"][kind], "station": "PA1", "device_id": "PDA-A"} | (
                    {field: ids["B"][kind]})
                other = client.open(path, method=method, json=body, headers=_bearer(tokens["A"][role]))
                where = (method, rule.rule, field, role, other.status_code,
                         other.get_data(as_text=True)[:300])
                expected = ((409, f"{field}_in_use") if mode == "upsert"
                            else (404, KINDS[kind][1]))
                assert (other.status_code, other.get_json()["code"]) == expected, where
                text = other.get_data(as_text=True)
                assert "B-1" not in text and "PB1" not in text and WAYBILL["B"] not in text, where
                # Not vacuous: WA's own object of that kind is not refused so.
                own = client.open(path, method=method, json={**body, field: ids["A"][kind]},
                                  headers=_bearer(tokens["A"][role]))
                assert (own.status_code, own.get_json().get("code")) != expected, where
                walked += 1
    assert walked >= 8
    after = _where_objects_are(app)
    assert {k: after[k] for k in ("camera", "printer", "device")} == {
        "camera": "PB1", "printer": "PB1", "device": "PB1"}
    assert after["warehouses"] == before["warehouses"]
    with app.app_context(), standalone_session(app, write=False) as s:
        refusals = {row.detail["code"] for row in s.scalars(select(AuditEntry).where(
            AuditEntry.action == "other_warehouse_object", AuditEntry.outcome == "refused"))}
    assert {"device_id_in_use", "camera_id_in_use", "printer_id_in_use", "scan_id_in_use",
            "job_id_in_use"} <= refusals


def test_a_moved_camera_would_expose_frames_so_it_is_not_moved(app, floor_ab):
    client, tokens, ids = floor_ab
    a = _bearer(tokens["A"]["integration"])
    moved = client.post("/api/v1/cameras", json={"camera_id": "CAM-B", "station": "PA1"}, headers=a)
    assert (moved.status_code, moved.get_json()["code"]) == (409, "camera_id_in_use")
    frame = client.get(f"/api/v1/evidence/frames/{ids['B']['recording']}/0.jpg",
                       headers=_bearer(tokens["A"]["supervisor"]))
    assert (frame.status_code, frame.get_json()["code"]) == (404, "unknown_recording")
    listed = client.get("/api/v1/cameras", headers=_bearer(tokens["B"]["supervisor"])).get_json()
    assert [(c["camera_id"], c["station"]) for c in listed["cameras"]] == [("CAM-B", "PB1")]
    # WB's own account still re-registers its camera, and an all-warehouse one may move it.
    again = client.post("/api/v1/cameras", json={"camera_id": "CAM-B", "station": "PB1"},
                        headers=_bearer(tokens["B"]["integration"]))
    assert again.status_code == 200, again.get_json()


def test_another_warehouses_footage_is_not_registered_under_ones_own_camera(app, floor_ab):
    """The recordings folder is one for the site: a file WB's camera recorded (registered, or
    named `<camera_id>_<time>` for the folder watcher) cannot be registered by WA under WA's
    own camera, since WA's evidence would then show WB's frames. 409 path_in_use, audited."""
    from pathlib import Path
    from floor_sim.camera import record

    client, tokens, ids = floor_ab
    root = Path(app.config["RECORDINGS_ROOT"])
    (root / "nvr").mkdir(parents=True, exist_ok=True)
    started = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)).replace(microsecond=0)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    for name in ("b-desk.avi", f"CAM-B_{stamp}.avi"):
        record(root / "nvr" / name, frames=5, fps=5, size=(32, 32), codec="mjpg")
    b_int, a_int = _bearer(tokens["B"]["integration"]), _bearer(tokens["A"]["integration"])
    registered = client.post("/api/v1/cameras/CAM-B/recordings", headers=b_int,
                             json={"path": "nvr/b-desk.avi", "started_at": started.isoformat()})
    assert registered.status_code == 201, registered.get_json()
    for path in ("nvr/b-desk.avi", "nvr/./b-desk.avi", str(root / "nvr" / "b-desk.avi"),
                 f"nvr/CAM-B_{stamp}.avi"):
        taken = client.post("/api/v1/cameras/CAM-A/recordings", headers=a_int,
                            json={"path": path, "started_at": started.isoformat()})
        assert (taken.status_code, taken.get_json()["code"]) == (409, "path_in_use"), (path, taken.get_json())
        assert "CAM-B" not in taken.get_data(as_text=True) and "PB1" not in taken.get_data(as_text=True)
    with app.app_context(), standalone_session(app, write=False) as s:
        under_a = list(s.scalars(select(Recording.path).join(Camera).where(Camera.camera_id == "CAM-A")))
        refusals = {row.detail["code"] for row in s.scalars(select(AuditEntry).where(
            AuditEntry.action == "other_warehouse_object"))}
    assert under_a == ["A.mp4"] and "path_in_use" in refusals
    # Not vacuous: WA registers a file of its own, and WB its camera's named file.
    record(root / "nvr" / "a-desk.avi", frames=5, fps=5, size=(32, 32), codec="mjpg")
    own = client.post("/api/v1/cameras/CAM-A/recordings", headers=a_int,
                      json={"path": "nvr/a-desk.avi", "started_at": started.isoformat()})
    assert own.status_code == 201, own.get_json()
    named = client.post("/api/v1/cameras/CAM-B/recordings", headers=b_int,
                        json={"path": f"nvr/CAM-B_{stamp}.avi", "started_at": started.isoformat()})
    assert named.status_code == 201, named.get_json()


def test_a_device_body_cannot_create_a_warehouse_and_new_stations_become_the_callers(app, floor_ab):
    client, tokens, _ids = floor_ab
    sup = _bearer(tokens["A"]["supervisor"])
    named = client.post("/api/v1/devices", json={"device_id": "PDA-N1", "kind": "handheld",
                                                 "station": "PA-NEW1", "warehouse": "WZ"}, headers=sup)
    assert (named.status_code, named.get_json()["code"]) == (403, "warehouse_forbidden")
    fresh = client.post("/api/v1/devices", json={"device_id": "PDA-N2", "kind": "handheld",
                                                 "station": "PA-NEW2"}, headers=sup)
    assert fresh.status_code == 201, fresh.get_json()
    assert "WZ" not in _where_objects_are(app)["warehouses"]
    # The new station is WA's: WB's account cannot use it.
    refused = client.post("/api/v1/devices/heartbeat", json={"device_id": "PDA-B9", "station": "PA-NEW2"},
                          headers=_bearer(tokens["B"]["device"]))
    assert (refused.status_code, refused.get_json()["code"]) == (403, "warehouse_forbidden")


def test_another_warehouses_serial_scanner_is_not_registered_again_on_ones_own_station(
        app, floor_ab, tmp_path):
    """A port is a physical scanner: WA registering WB's scanner's port (or a link to it) as a
    device of its own station would have its reads counted at WA's station. 409 port_in_use."""
    import os

    client, tokens, _ids = floor_ab
    port = str(tmp_path / "ttyUSB-b")
    os.symlink(port, tmp_path / "scanner-b")

    def register(side, device_id, station, at):  # type: ignore[no-untyped-def]
        return client.post("/api/v1/devices", headers=_bearer(tokens[side]["supervisor"]), json={
            "device_id": device_id, "kind": "serial", "port": at, "station": station})

    assert register("B", "SCN-B", "PB1", port).status_code == 201
    for at in (port, str(tmp_path / "scanner-b")):
        taken = register("A", "SCN-A", "PA1", at)
        assert (taken.status_code, taken.get_json()["code"]) == (409, "port_in_use"), taken.get_json()
        assert "SCN-B" not in taken.get_data(as_text=True)
    listed = client.get("/api/v1/devices", headers=_bearer(tokens["A"]["supervisor"])).get_json()
    assert "SCN-A" not in {d["device_id"] for d in listed["devices"]}
    # WA's own port is its own; WB moves its scanner to another device id of its own.
    assert register("A", "SCN-A", "PA1", str(tmp_path / "ttyUSB-a")).status_code == 201
    assert register("B", "SCN-B2", "PB1", port).status_code == 201


def test_a_station_a_one_warehouse_account_configures_is_its_warehouses(app, floor_ab):
    """Configured without naming a warehouse, a new station (or one no warehouse holds yet)
    becomes the caller's, as a device's does; left unbound, another warehouse's handheld would
    take it with its first heartbeat and WA's packers would be refused at their own station."""
    client, tokens, _ids = floor_ab
    made = client.put("/api/v1/stations/PA-DOCK", json={"kind": "dock"},
                      headers=_bearer(tokens["A"]["supervisor"]))
    assert made.status_code == 200 and made.get_json()["warehouse"] == "WA", made.get_json()
    taken = client.post("/api/v1/devices/heartbeat", json={"device_id": "PDA-B7", "station": "PA-DOCK"},
                        headers=_bearer(tokens["B"]["device"]))
    assert (taken.status_code, taken.get_json()["code"]) == (403, "warehouse_forbidden")
    # Every-warehouse accounts still leave the warehouse to whoever names it.
    free = client.put("/api/v1/stations/P-FREE", json={}, headers=_bearer(_all_warehouses_token(app)))
    assert free.status_code == 200 and free.get_json()["warehouse"] is None, free.get_json()


def _all_warehouses_token(app):  # type: ignore[no-untyped-def]
    with app.app_context(), standalone_session(app) as s:
        return create_token(s, "supervisor", "every-warehouse-supervisor")


def test_printing_on_another_warehouses_printer_or_station_is_refused(app, floor_ab):
    client, tokens, _ids = floor_ab
    packer = _bearer(tokens["A"]["packer"])
    on_printer = client.post("/api/v1/orders/A-1/label", json={"station": "PA1", "printer_id": "PR-B"},
                             headers=packer)
    assert (on_printer.status_code, on_printer.get_json()["code"]) == (404, "unknown_printer")
    at_station = client.post("/api/v1/orders/A-1/label", json={"station": "PB1"}, headers=packer)
    assert (at_station.status_code, at_station.get_json()["code"]) == (403, "warehouse_forbidden")
    assert _where_objects_are(app)["jobs"] == ["JOB-A", "JOB-B"]


def test_another_warehouses_scan_id_is_not_replayed(app, floor_ab):
    client, tokens, _ids = floor_ab
    body = {"scan_id": "scan-B", "station": "PA1", "device_id": "PDA-A", "code": "NOT-IN-KIT-1"}
    replay = client.post("/api/v1/scans", json=body, headers=_bearer(tokens["A"]["packer"]))
    assert (replay.status_code, replay.get_json()["code"]) == (409, "scan_id_in_use")
    assert "另一个仓库" in replay.get_json()["message"]           # in the viewer's language
    text = replay.get_data(as_text=True)
    assert "B-1" not in text and "PB1" not in text and "wrong_item" not in text
    sock = socketio.test_client(app, namespace="/floor", auth={"token": tokens["A"]["packer"]})
    ack = sock.emit("scan", body, namespace="/floor", callback=True)
    assert (ack["ok"], ack["code"]) == (False, "scan_id_in_use") and "B-1" not in str(ack)
    # A handheld of WB is not taken over by a WA scan or heartbeat (REST and socket).
    taken = client.post("/api/v1/scans", json={**body, "scan_id": "a-new-1", "device_id": "PDA-B"},
                        headers=_bearer(tokens["A"]["packer"]))
    assert (taken.status_code, taken.get_json()["code"]) == (409, "device_id_in_use")
    beat = sock.emit("heartbeat", {"device_id": "PDA-B", "station": "PA1"}, namespace="/floor",
                     callback=True)
    assert (beat["ok"], beat["code"]) == (False, "device_id_in_use")
    sock.disconnect(namespace="/floor")
    # WB's own replay still gets its first verdict.
    own = client.post("/api/v1/scans", json={**body, "station": "PB1", "device_id": "PDA-B"},
                      headers=_bearer(tokens["B"]["packer"]))
    assert own.status_code == 200 and own.get_json()["order_no"] == "B-1", own.get_json()
    assert _where_objects_are(app)["device"] == "PB1"


BODY_IDS = {"device_id": "device", "camera_id": "camera", "printer_id": "printer",
            "scan_id": "scan", "job_id": "print_job", "wave_no": "wave"}


def test_no_write_route_moves_or_shows_another_warehouses_object_named_in_its_body(app, floor_ab):
    """The sweep behind the declarations: every write route of the URL map, called by WA's
    account with each of WB's object ids in the body fields that name them, leaves WB's
    objects where they were and shows nothing of them (a route that forgot to declare its body
    ids is caught here)."""
    client, tokens, ids = floor_ab
    before = _where_objects_are(app)
    body = {field: ids["B"][kind] for field, kind in BODY_IDS.items()}
    body.update({"station": "PA1", "kind": "handheld", "driver": "file", "address": "labels",
                 "code": "NOT-IN-KIT-1", "warehouse": "WA"})
    swept = 0
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        roles = getattr(view, "floor_roles", ())
        methods = (rule.methods or set()) & {"POST", "PUT", "PATCH"}
        if not roles or not methods or not rule.rule.startswith("/api/"):
            continue
        kinds = {name: kind for name, kind in getattr(view, "floor_scope", {}).items()
                 if name in rule.arguments and kind in KINDS}
        path = rule.rule
        for name in rule.arguments:
            value = ids["A"][kinds[name]] if name in kinds else "X1"
            path = re.sub(rf"<(?:[a-z]+:)?{name}>", value, path)
        for method in sorted(methods):
            response = client.open(path, method=method, json=body,
                                   headers=_bearer(tokens["A"][_role_for(roles)]))
            text = response.get_data(as_text=True)
            where = (method, rule.rule, response.status_code, text[:300])
            assert response.status_code < 500, where
            assert "B-1" not in text and "PB1" not in text and WAYBILL["B"] not in text, where
            swept += 1
    assert swept >= 20
    after = _where_objects_are(app)
    assert {k: after[k] for k in ("camera", "printer", "device")} == {
        "camera": "PB1", "printer": "PB1", "device": "PB1"}
    new_jobs = [j for j in after["jobs"] if j not in before["jobs"]]
    assert all(_job_printer(app, j) != "PR-B" for j in new_jobs), new_jobs
    assert after["warehouses"] == before["warehouses"]


def _job_printer(app, job_id):
    with app.app_context(), standalone_session(app, write=False) as s:
        return s.scalar(select(Printer.printer_id).join(PrintJob, PrintJob.printer_id == Printer.id)
                        .where(PrintJob.job_id == job_id))


def _order_of(side, order_no, waybill, lines):
    body = make_order(order_no, waybill=waybill, lines=lines)
    body["warehouse"] = SIDES[side]
    return body


B_LINES = [  # WB's own idea of SERUM, and a barcode WA's catalogue already gives to its toner
    {"sku": "SERUM", "name": "B serum", "qty": 1, "role": "main", "barcodes": ["B-SERUM-9"]},
    {"sku": "B-SECRET", "name": "B secret cream", "qty": 1, "role": "gift", "barcodes": ["TONER-X1"]}]


def test_order_numbers_and_the_catalogue_are_per_warehouse(app, floor_ab, api):
    client, tokens, _ids = floor_ab
    a, b = tokens["A"], tokens["B"]

    def call(side, method, path, body=None, role="integration"):
        return client.open(path, method=method, json=body, headers=_bearer(tokens[side][role]))

    # WA's catalogue knows a toner (an order not packed yet); WA's TB001 is waved at PA1.
    toner = [{"sku": "TONER", "name": "A toner", "qty": 1, "role": "main", "barcodes": ["TONER-X1"]}]
    assert call("A", "POST", "/api/v1/orders", _order_of("A", "A-2", None, toner)).status_code == 201
    assert call("A", "POST", "/api/v1/orders", _order_of("A", "TB001", "SF7100000000001", None)).status_code == 201
    assert call("A", "POST", "/api/v1/waves", {"wave_no": "WA-2", "order_nos": ["TB001"],
                                               "station": "PA1"}).status_code == 200
    # WB takes the same number: a separate order of WB, whose kit renames nothing of WA's.
    created = call("B", "POST", "/api/v1/orders", _order_of("B", "TB001", "SF7100000000002", B_LINES))
    assert (created.status_code, created.get_json()["created"]) == (201, True), created.get_json()
    assert call("B", "POST", "/api/v1/waves", {"wave_no": "WB-2", "order_nos": ["TB001"],
                                               "station": "PB1"}).status_code == 200
    seen_by_a = []

    def by_a(method, path, body=None, role="supervisor"):
        response = call("A", method, path, body, role)
        seen_by_a.append(response.get_data(as_text=True))
        return response

    mine = by_a("GET", "/api/v1/orders/TB001").get_json()
    theirs = call("B", "GET", "/api/v1/orders/TB001", role="supervisor").get_json()
    assert (mine["warehouse"], mine["waybill_no"], mine["wave_no"]) == ("WA", "SF7100000000001", "WA-2")
    assert (theirs["warehouse"], theirs["waybill_no"], [l["sku"] for l in theirs["lines"]]) == \
        ("WB", "SF7100000000002", ["SERUM", "B-SECRET"])
    # An account of every warehouse is told the number is ambiguous, and picks with ?warehouse=.
    both = api.get("/api/v1/orders/TB001", role="supervisor")
    assert (both.status_code, both.get_json()["code"]) == (409, "ambiguous_order")
    assert api.get("/api/v1/orders/TB001?warehouse=WB", role="supervisor").get_json()["warehouse"] == "WB"
    assert call("B", "GET", "/api/v1/orders/TB001?warehouse=WA", role="supervisor").status_code == 403
    wave = api.post("/api/v1/waves", {"wave_no": "WA-2", "order_nos": ["TB001"]})
    assert (wave.status_code, wave.get_json()["code"]) == (409, "ambiguous_order")
    assert api.post("/api/v1/waves", {"wave_no": "WA-2", "order_nos": ["TB001"], "warehouse": "WA"}
                    ).status_code == 200

    # At WA's station: WA's barcode still means WA's SERUM; WB's barcode means nothing there;
    # a WA barcode WB's import also used still names WA's item.
    def scan(code, scan_id):
        return by_a("POST", "/api/v1/scans", {"scan_id": scan_id, "station": "PA1",
                                              "device_id": "PDA-A5", "code": code}, "packer").get_json()

    assert scan("SF7100000000001", "ab-1")["code"] == "order_opened"
    assert (scan("6901234567892", "ab-2")["code"], mine["warehouse"]) == ("accepted", "WA")
    assert scan("B-SERUM-9", "ab-3")["code"] == "unknown_code"
    wrong = scan("TONER-X1", "ab-4")
    assert (wrong["code"], wrong["sku"]) == ("wrong_item", "TONER")
    assert "A toner" in wrong["message"]
    # Stock names and the printable sheet are WA's catalogue's.
    assert by_a("PUT", "/api/v1/stock", {"warehouse": "WA", "items": [{"sku": "SERUM", "on_hand": 5}]}
                ).status_code == 200
    stock = by_a("GET", "/api/v1/stock").get_json()
    assert [(i["sku"], i["name"]) for i in stock["items"]] == [("SERUM", "精华液 30ml")]
    sheet = by_a("GET", "/sheet?limit=60", role="packer").get_data(as_text=True)
    assert "TB001" in sheet and "B-SERUM-9" not in sheet and "B secret" not in sheet

    # A waybill is unique across warehouses; the refusal names no order of another warehouse.
    taken = call("B", "POST", "/api/v1/orders", _order_of("B", "B-9", WAYBILL["A"], None))
    rebind = call("B", "POST", "/api/v1/orders/B-1/waybill", {"waybill_no": WAYBILL["A"]})
    for refused in (taken, rebind):
        assert (refused.status_code, refused.get_json()["code"]) == (409, "waybill_in_use")
        assert "A-1" not in refused.get_data(as_text=True) and "order_no" not in refused.get_json()
    # WA's own calls never show WB's items or name WB.
    for text in seen_by_a:
        assert "B serum" not in text and "B secret" not in text and "WB" not in text, text[:300]
    with app.app_context(), standalone_session(app, write=False) as s:
        rows = s.execute(select(Order.order_no, Order.warehouse_id).where(Order.order_no == "TB001")).all()
        assert len(rows) == 2 and len({r.warehouse_id for r in rows}) == 2


def test_alerts_of_the_same_order_number_in_two_warehouses_are_each_their_own(app, floor_ab):
    from floor.live import operations as live_ops

    client, tokens, _ids = floor_ab
    for side in SIDES:
        headers = _bearer(tokens[side]["integration"])
        assert client.post("/api/v1/orders", json=_order_of(side, "TB001", f"SF72000000000{side}1", None),
                           headers=headers).status_code == 201
        assert client.post("/api/v1/waves", json={"wave_no": f"W{side}-3", "order_nos": ["TB001"],
                                                  "station": f"P{side}1"}, headers=headers).status_code == 200
    with app.app_context(), standalone_session(app) as s:   # wave_assigned over its SLA in both
        live_ops.evaluate_alerts(s, utcnow() + dt.timedelta(minutes=150))
    for side, code in SIDES.items():
        alerts = client.get("/api/v1/alerts", headers=_bearer(tokens[side]["supervisor"])).get_json()["alerts"]
        assert [(a["kind"], a["warehouse"]) for a in alerts if a["order_no"] == "TB001"] == \
            [("status_sla", code)], alerts
