"""The /floor namespace through Flask-SocketIO's test client, against a real database."""
from __future__ import annotations

import time
import uuid

from floor.extensions import socketio

WAYBILL, MAIN, GIFTBOX = "SF1000000000001", "6901234567892", "6901234567915"


def _client(app, token=None, **kw):
    auth = {"token": token} if token else None
    return socketio.test_client(app, namespace="/floor", auth=auth, **kw)


def _scan(client, code, scan_id=None, device="PDA-S1"):
    return client.emit("scan", {"scan_id": scan_id or uuid.uuid4().hex, "station": "P01",
                                "device_id": device, "code": code}, namespace="/floor", callback=True)


def receive_until(client, done, timeout=5.0):
    """Events are pushed by the pump thread after commit: collect until `done(events)`."""
    got, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        got += client.get_received("/floor")
        if done(got):
            break
        time.sleep(0.02)
    return got


def names_of(events):
    return [e["name"] for e in events]


def test_unauthenticated_connections_are_refused(app, tokens):
    assert not _client(app).is_connected("/floor")
    assert not _client(app, "flr_not-a-real-token").is_connected("/floor")
    assert _client(app, tokens["packer"]).is_connected("/floor")


def test_scan_ack_is_the_verdict_and_is_idempotent(app, tokens, waved):
    waved("TB001")
    client = _client(app, tokens["packer"])
    opened = _scan(client, WAYBILL)
    assert (opened["ok"], opened["code"], opened["order_no"]) == (True, "order_opened", "TB001")
    first = _scan(client, MAIN, scan_id="sock-1")
    assert first["code"] == "accepted"
    assert _scan(client, MAIN, scan_id="sock-1") == first


def test_roles_are_checked_on_socket_events(app, tokens):
    client = _client(app, tokens["qc"])
    verdict = _scan(client, WAYBILL)
    assert (verdict["ok"], verdict["code"]) == (False, "forbidden")


def test_bad_payloads_get_error_acks_not_crashes(app, tokens):
    client = _client(app, tokens["device"])
    for payload in (None, "text", [1, 2], {"scan_id": "x"}, {"scan_id": 1, "station": "P01"}):
        ack = client.emit("scan", payload, namespace="/floor", callback=True)
        assert ack["ok"] is False and ack["code"] in ("invalid_payload", "missing_field"), ack


def test_station_room_receives_rejections_and_status_with_seq(app, tokens, waved):
    waved("TB001")
    board = _client(app, tokens["supervisor"])
    ack = board.emit("subscribe", {"room": "station:P01", "after_seq": 0}, namespace="/floor",
                     callback=True)
    assert ack["ok"] is True
    packer = _client(app, tokens["packer"])
    _scan(packer, WAYBILL)
    _scan(packer, GIFTBOX)
    received = receive_until(board, lambda got: "scan_rejected" in names_of(got))
    names = names_of(received)
    assert "status" in names and "scan_rejected" in names
    rejected = next(r["args"][0] for r in received if r["name"] == "scan_rejected")
    assert rejected["code"] == "giftbox_incomplete" and rejected["order_no"] == "TB001"
    seqs = [r["args"][0]["seq"] for r in received]
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))


def test_subscribe_catches_up_after_seq(app, tokens, waved):
    waved("TB001")
    packer = _client(app, tokens["packer"])
    _scan(packer, WAYBILL)
    late = _client(app, tokens["supervisor"])
    ack = late.emit("subscribe", {"room": "order:TB001", "after_seq": 0}, namespace="/floor",
                    callback=True)
    got = receive_until(late, lambda got: len(got) >= 3)
    statuses = [r["args"][0]["status"] for r in got if r["name"] == "status"]
    assert statuses == ["received", "wave_assigned", "packing"]
    again = _client(app, tokens["supervisor"])
    again.emit("subscribe", {"room": "order:TB001", "after_seq": ack["last_seq"] - 1},
               namespace="/floor", callback=True)
    assert [r["args"][0]["status"] for r in again.get_received("/floor")] == ["packing"]
    _scan(packer, "6901234567892")
    _scan(packer, "6901234567915")          # refused: the samples are missing
    live = receive_until(again, lambda got: "scan_rejected" in names_of(got))
    assert names_of(live) == ["scan_rejected"]
    bad = again.emit("subscribe", {"room": "everything"}, namespace="/floor", callback=True)
    assert bad["code"] == "invalid_room"
