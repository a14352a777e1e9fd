"""A serial scanner on a real pty, read by the service through pyserial, side by side with a
handheld: registration, verdicts pushed to the station, garbage, unplug and replug."""
from __future__ import annotations

import datetime as dt
import time

import pytest
from floor_sim.serial_port import PtyScanner

from floor.extensions import socketio

WAYBILL, MAIN, SAMPLE, GIFTBOX = "SF1000000000001", "6901234567892", "6901234567908", "6901234567915"


def wait_for(fetch, done, timeout=15.0, what="condition"):
    """Poll until `done(value)`; a deadline for a background thread, not a timing assertion."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last value: {value!r}")
        time.sleep(0.05)


@pytest.fixture
def readers(app):
    supervisor = app.extensions["floor.serial"]
    yield supervisor
    supervisor.stop()


@pytest.fixture
def scanner(tmp_path):
    with PtyScanner(tmp_path / "scanner-SCN-01", terminator="CR") as pty:
        yield pty


def device(api, device_id):
    devices = api.get("/api/v1/devices").get_json()["devices"]
    return next((d for d in devices if d["device_id"] == device_id), None)


def scans_of(api, order_no):
    return api.get(f"/api/v1/orders/{order_no}").get_json()["scans"]


def register(api, port, device_id="SCN-01", **extra):
    body = {"device_id": device_id, "kind": "serial", "port": str(port), "baudrate": 9600,
            "station": "P01"}
    body.update(extra)
    return api.post("/api/v1/devices", body, role="supervisor")


def test_serial_scanner_and_handheld_pack_side_by_side_and_garbage_never_derails_the_port(
        app, api, waved, readers, scanner, tokens):
    waved("TB001", waybill="SF1000000000001")
    waved("TB002", waybill="SF1000000000002", wave="W-2")
    response = register(api, scanner.link, terminator="CR")
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["state"] == "offline"           # until its reader has the port

    station_screen = socketio.test_client(app, namespace="/floor", auth={"token": tokens["packer"]})
    station_screen.emit("subscribe", {"room": "station:P01", "after_seq": 0}, namespace="/floor",
                        callback=True)
    station_screen.get_received("/floor")

    readers.run_once()
    wait_for(lambda: device(api, "SCN-01"), lambda d: d["state"] == "online", what="SCN-01 online")

    # The serial scanner opens TB001; a handheld at the same station opens TB002.
    scanner.scan(WAYBILL)
    assert api.scan("SF1000000000002", device="PDA-07")["code"] == "order_opened"
    wait_for(lambda: scans_of(api, "TB001"), lambda s: len(s) == 1, what="the waybill scan")
    # Garbage from the line: not UTF-8, control characters, an over-long line; then real codes.
    scanner.write_raw(b"\xff\xfe\x81garbage\r")
    scanner.write_raw(b"AB\x07CD\r")
    scanner.write_raw(b"9" * 5000 + b"\r")
    for code in (SAMPLE, MAIN, SAMPLE):
        scanner.scan(code)
        assert api.scan({SAMPLE: MAIN, MAIN: SAMPLE}[code] if code != SAMPLE else SAMPLE,
                        device="PDA-07")["ok"] in (True, False)

    scans = wait_for(lambda: scans_of(api, "TB001"), lambda s: len(s) >= 7, what="TB001's scans")
    verdicts = [(s["device_id"], s["verdict"]["code"], s["verdict"].get("ok")) for s in scans]
    assert [v[1] for v in verdicts] == ["order_opened", "unreadable", "unreadable", "unreadable",
                                        "accepted", "accepted", "accepted"]
    assert {v[0] for v in verdicts} == {"SCN-01"}
    reasons = api.get("/api/v1/orders/TB001").get_json()["scans"]
    assert "\\xff" in reasons[1]["code"]                           # the garbage, escaped, on record
    # The handheld's order is untouched by the scanner's lines.
    assert {s["device_id"] for s in scans_of(api, "TB002")} == {"PDA-07"}

    # The station screen heard each of the scanner's verdicts, in order, with its seq.
    pushed = []
    wait_for(lambda: pushed.extend(e for e in station_screen.get_received("/floor")
                                   if e["name"] == "scan_verdict") or pushed,
             lambda p: len(p) >= 7, what="scan_verdict pushes")
    codes = [e["args"][0]["code"] for e in pushed]
    assert codes == [v[1] for v in verdicts]
    assert all(e["args"][0]["device_id"] == "SCN-01" for e in pushed)
    seqs = [e["args"][0]["seq"] for e in pushed]
    assert seqs == sorted(seqs)
    assert "乱码" in pushed[1]["args"][0]["message"]              # Chinese by default
    assert "garbled bytes" in pushed[1]["args"][0]["messages"]["en"]   # and for English screens

    # Unplug: offline on the registry; replug behind the same path: online, and scanning goes on.
    scanner.unplug()
    wait_for(lambda: device(api, "SCN-01"), lambda d: d["state"] == "offline", what="offline")
    scanner.plug()
    wait_for(lambda: device(api, "SCN-01"), lambda d: d["state"] == "online", what="online again")
    scanner.scan(GIFTBOX)
    scans = wait_for(lambda: scans_of(api, "TB001"), lambda s: len(s) == 8, what="the gift box")
    assert scans[-1]["verdict"]["code"] == "accepted"
    assert api.get("/api/v1/orders/TB001").get_json()["status"] == "packed"

    # Every change of state is on record: who, which device, when, why.
    states = [e for e in _events(app, "device") if e["device_id"] == "SCN-01"]
    assert [e["state"] for e in states][:1] == ["offline"] and states[0]["why"] == "registered"
    assert "online" in [e["state"] for e in states]
    assert any(e["state"] == "offline" and "disconnected" in e["why"] for e in states)
    assert states[-1]["state"] == "online" and states[-1]["by"] == "floor"
    station_screen.disconnect(namespace="/floor")


def _events(app, type_):
    from sqlalchemy import select

    from floor.db import standalone_session
    from floor.eventlog import EventLogEntry

    with app.app_context(), standalone_session(app) as s:
        return [row.payload for row in s.scalars(select(EventLogEntry).where(
            EventLogEntry.type == type_).order_by(EventLogEntry.seq))]


def test_a_scanner_whose_port_is_missing_is_offline_with_the_reason_and_comes_up_when_plugged(
        app, api, readers, tmp_path):
    pty = PtyScanner(tmp_path / "late-scanner", terminator="CRLF")
    assert register(api, pty.link, "SCN-02", terminator="CRLF").status_code == 201
    readers.run_once()
    offline = wait_for(lambda: device(api, "SCN-02"),
                       lambda d: d["reason"] and "cannot open" in d["reason"], what="the reason")
    assert offline["state"] == "offline"
    with pty:
        wait_for(lambda: device(api, "SCN-02"), lambda d: d["state"] == "online", what="online")
        pty.write_raw(b"UNKNOWN-CODE-1\r\n")
        scan = wait_for(lambda: _events(app, "scan_verdict"), lambda e: len(e) == 1, what="verdict")
        assert scan[0]["code"] in ("unknown_code", "waybill_required")
        assert scan[0]["device_id"] == "SCN-02" and scan[0]["raw"] == "UNKNOWN-CODE-1"
        # Unplugged in the middle of a line: what was read is reported, not guessed at.
        pty.write_raw(b"690123")
        reader = readers.readers["SCN-02"]   # the cable goes once the reader has the half line
        wait_for(lambda: reader.bytes_read, lambda n: n == len(b"UNKNOWN-CODE-1\r\n690123"),
                 what="the half line read")
    scan = wait_for(lambda: _events(app, "scan_verdict"), lambda e: len(e) == 2, what="cut line")
    assert (scan[1]["code"], scan[1]["params"]["reason"], scan[1]["raw"]) == (
        "unreadable", "partial_line", "690123")
    wait_for(lambda: device(api, "SCN-02"), lambda d: d["state"] == "offline", what="offline")


def test_a_line_that_never_ends_is_reported_not_swallowed(app, api, readers, scanner):
    # The service expects CRLF; this scanner was left on CR: its lines never end.
    assert register(api, scanner.link, "SCN-03", terminator="CRLF").status_code == 201
    readers.run_once()
    wait_for(lambda: device(api, "SCN-03"), lambda d: d["state"] == "online", what="online")
    scanner.scan(MAIN)
    verdicts = wait_for(lambda: _events(app, "scan_verdict"), lambda e: len(e) == 1, what="verdict")
    assert verdicts[0]["code"] == "unreadable"
    assert verdicts[0]["params"]["reason"] == "no_terminator"


def test_registry_updates_move_the_reader_and_disabling_closes_the_port(app, api, readers, scanner,
                                                                        tmp_path):
    assert register(api, scanner.link, "SCN-04").status_code == 201
    readers.run_once()
    wait_for(lambda: device(api, "SCN-04"), lambda d: d["state"] == "online", what="online")
    first = readers.readers["SCN-04"]
    again = register(api, scanner.link, "SCN-04", enabled=False)
    assert again.status_code == 200 and again.get_json()["reason"] == "disabled"
    readers.run_once()
    assert "SCN-04" not in readers.readers and not first.is_alive()
    # Moved to another station: announced where it was and where it is.
    moved = register(api, scanner.link, "SCN-04", enabled=False, station="P02")
    assert moved.status_code == 200
    from sqlalchemy import select

    from floor.db import standalone_session
    from floor.eventlog import EventLogEntry
    with app.app_context(), standalone_session(app, write=False) as s:
        last = s.scalars(select(EventLogEntry).where(EventLogEntry.type == "device")
                         .order_by(EventLogEntry.seq.desc())).first()
        assert {"station:P01", "station:P02"} <= set(last.rooms)
        assert last.payload["moved_from"] == "P01"
    # Registration is for supervisors and integrations only; bad bodies name the field.
    body = {"device_id": "SCN-9", "port": "/dev/ttyUSB9", "station": "P01"}
    assert api.post("/api/v1/devices", body, role="packer").status_code == 403
    assert api.post("/api/v1/devices", body, role="device").status_code == 403
    bad = api.post("/api/v1/devices", {**body, "baudrate": 12345}, role="integration")
    assert bad.status_code == 400 and bad.get_json()["field"] == "baudrate"
    assert api.get("/api/v1/devices", role="packer").status_code == 403


def test_handheld_heartbeats_over_rest_and_socketio(app, api, tokens):
    response = api.post("/api/v1/devices/heartbeat", {"device_id": "PDA-31", "station": "P02"},
                        role="packer")
    assert response.status_code == 200
    seen = device(api, "PDA-31")
    assert (seen["kind"], seen["state"], seen["station"]) == ("handheld", "online", "P02")
    client = socketio.test_client(app, namespace="/floor", auth={"token": tokens["device"]})
    ack = client.emit("heartbeat", {"device_id": "PDA-32", "station": "P02"}, namespace="/floor",
                      callback=True)
    assert ack["ok"] is True and device(api, "PDA-32")["state"] == "online"
    bad = client.emit("heartbeat", {"device_id": "x" * 65, "station": "P02"}, namespace="/floor",
                      callback=True)
    assert bad["ok"] is False and bad["code"] == "invalid_field"
    supervisor = socketio.test_client(app, namespace="/floor", auth={"token": tokens["supervisor"]})
    refused = supervisor.emit("heartbeat", {"device_id": "PDA-33", "station": "P02"},
                              namespace="/floor", callback=True)
    assert refused["code"] == "forbidden"
    assert api.post("/api/v1/devices/heartbeat", {"device_id": "PDA-34", "station": "P02"},
                    role="integration").status_code == 403
    # Only the first heartbeat is news; the next ones just move last_seen.
    before = len(_events(app, "device"))
    client.emit("heartbeat", {"device_id": "PDA-32", "station": "P02"}, namespace="/floor", callback=True)
    assert len(_events(app, "device")) == before
    # Silence: the alert scheduler's sweep marks them offline, once, with the reason.
    from floor.db import standalone_session, utcnow
    from floor.devices import operations as device_ops
    later = utcnow() + dt.timedelta(minutes=2)
    with app.app_context(), standalone_session(app) as s:
        assert {e.payload["device_id"] for e in device_ops.mark_silent_handhelds(s, later)} == {
            "PDA-31", "PDA-32"}
    with app.app_context(), standalone_session(app) as s:
        assert device_ops.mark_silent_handhelds(s, later) == []
    went = [e for e in _events(app, "device") if e["device_id"] == "PDA-31"][-1]
    assert (went["state"], went["why"]) == ("offline", "no heartbeat")
    client.emit("heartbeat", {"device_id": "PDA-31", "station": "P02"}, namespace="/floor", callback=True)
    assert device(api, "PDA-31")["state"] == "online"
    assert _events(app, "device")[-1]["why"] == "back online"


def test_scanners_from_the_devices_file(app, api, readers, scanner, tmp_path):
    config = tmp_path / "devices.toml"
    config.write_text(f"""
[[scanner]]
device_id = "SCN-05"
port = "{scanner.link}"
baudrate = 115200
terminator = "CR"
station = "P05"

[[scanner]]
device_id = "bad id with spaces"
port = "/dev/ttyUSB0"
station = "P05"
""")
    app.config["DEVICES_FILE"] = str(config)
    assert readers.load_configured() == ["SCN-05"]          # the bad entry is skipped, logged
    registered = device(api, "SCN-05")
    assert (registered["baudrate"], registered["registered_by"], registered["station"]) == (
        115200, "config", "P05")
    readers.run_once()
    wait_for(lambda: device(api, "SCN-05"), lambda d: d["state"] == "online", what="online")


class _Listener:
    """A TCP port that notes whether anyone connected (what a `socket://` port would reach)."""

    def __init__(self):
        import socket
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]

    def connected(self) -> bool:
        try:
            conn, _ = self.sock.accept()
        except BlockingIOError:
            return False
        conn.close()
        return True

    def close(self):
        self.sock.close()


def test_a_serial_port_is_a_device_path_never_a_url(app, api, readers, scanner, tmp_path):
    listener = _Listener()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    try:
        for port in (f"socket://127.0.0.1:{listener.port}", f"spy://{scanner.link}?file={victim}",
                     f"rfc2217://127.0.0.1:{listener.port}", "loop://", "hwgrep://.*",
                     "/dev/ttyUSB0/../../etc/passwd", "/dev/serial/by-id/../../../etc/passwd",
                     "/etc/passwd", "dev/ttyUSB0", "//dev/ttyUSB0", f"{tmp_path}/sub/deeper",
                     f"{tmp_path}/./scanner-SCN-01"):
            for role in ("supervisor", "integration"):
                refused = api.post("/api/v1/devices", {"device_id": "SCN-URL", "kind": "serial",
                                                       "port": port, "station": "P01"}, role=role)
                assert refused.status_code == 400, (port, refused.get_json())
                assert (refused.get_json()["code"], refused.get_json()["field"]) == (
                    "invalid_port", "port"), port
        assert device(api, "SCN-URL") is None
        # The devices file goes through the same rule: its URL entry is skipped.
        config = tmp_path / "devices.toml"
        config.write_text(f"""
[[scanner]]
device_id = "SCN-F1"
port = "socket://127.0.0.1:{listener.port}"
station = "P01"

[[scanner]]
device_id = "SCN-F2"
port = "{scanner.link}"
station = "P01"
""")
        app.config["DEVICES_FILE"] = str(config)
        assert readers.load_configured() == ["SCN-F2"]
        # A row that holds a URL anyway (registered before this rule) is never opened as one.
        from sqlalchemy import update

        from floor.db import standalone_session
        from floor.devices.models import Device
        with app.app_context(), standalone_session(app) as s:
            s.execute(update(Device).where(Device.device_id == "SCN-F2").values(
                port=f"socket://127.0.0.1:{listener.port}"))
        readers.run_once()
        refused = wait_for(lambda: device(api, "SCN-F2"),
                           lambda d: d["reason"] and "cannot open" in d["reason"], what="the old row")
        assert refused["state"] == "offline" and "not an allowed serial device path" in refused["reason"]
        assert not listener.connected() and victim.read_text() == "keep me"
    finally:
        listener.close()


def test_a_link_in_an_allowed_folder_must_lead_to_an_allowed_serial_device(app, api, readers, tmp_path):
    # Allowed as a path (the test's link folder), but the link leads to a file, not a tty.
    regular = tmp_path / "regular-file"
    regular.write_text("not a scanner")
    (tmp_path / "to-passwd").symlink_to("/etc/passwd")
    (tmp_path / "to-file").symlink_to(regular)
    assert register(api, tmp_path / "to-passwd", "SCN-L1").status_code == 201
    assert register(api, tmp_path / "to-file", "SCN-L2").status_code == 201
    readers.run_once()
    first = wait_for(lambda: device(api, "SCN-L1"),
                     lambda d: d["reason"] and "cannot open" in d["reason"], what="SCN-L1 refused")
    assert "not an allowed serial device path" in first["reason"]
    second = wait_for(lambda: device(api, "SCN-L2"),
                      lambda d: d["reason"] and "cannot open" in d["reason"], what="SCN-L2 refused")
    assert "not a serial device" in second["reason"] and regular.read_text() == "not a scanner"


def test_the_allow_list_is_a_setting(app, api, scanner):
    from floor.config import load_config
    from floor.devices.domain import DEFAULT_SERIAL_PORT_GLOBS

    assert load_config(environ={})["SERIAL_PORT_GLOBS"] == list(DEFAULT_SERIAL_PORT_GLOBS)
    assert load_config(environ={"FLOOR_SERIAL_PORT_GLOBS": "/dev/ttyUSB*, /dev/pts/*"})[
        "SERIAL_PORT_GLOBS"] == ["/dev/ttyUSB*", "/dev/pts/*"]
    # Without the tests' additions, a pty's link in a temporary folder is not a device path.
    app.config["SERIAL_PORT_GLOBS"] = list(DEFAULT_SERIAL_PORT_GLOBS)
    refused = register(api, scanner.link, "SCN-G1")
    assert (refused.status_code, refused.get_json()["code"]) == (400, "invalid_port")
    assert register(api, "/dev/serial/by-id/usb-Symbol_DS4308-if00", "SCN-G2").status_code == 201


def test_an_empty_allow_list_allows_no_port_from_the_devices_file_either(app, api, readers, tmp_path):
    # FLOOR_SERIAL_PORT_GLOBS="" refuses every port at the API; the readers use that same list,
    # not a default of their own.
    config = tmp_path / "devices.toml"
    config.write_text('[[scanner]]\ndevice_id = "SCN-E1"\nport = "/dev/ttyUSB0"\nstation = "P01"\n')
    app.config["DEVICES_FILE"] = str(config)
    app.config["SERIAL_PORT_GLOBS"] = []
    refused = register(api, "/dev/ttyUSB0", "SCN-E0")
    assert (refused.status_code, refused.get_json()["code"]) == (400, "invalid_port")
    assert readers.load_configured() == [] and device(api, "SCN-E1") is None
