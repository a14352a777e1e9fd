"""The audit log: logins, failures, lockouts, logouts, tokens made, revoked and used (first use,
then at most once per interval), overrides (in the override's own transaction), refusals; and
GET /api/v1/audit with its filters, paging and warehouse scope."""
from __future__ import annotations

import datetime as dt
import re

from click.testing import CliRunner
from sqlalchemy import select, update

from floor.auth import security
from floor.auth.models import ApiToken, AuditEntry
from floor.auth.operations import create_token, upsert_user
from floor.cli import main as floor_cli
from floor.db import standalone_session, utcnow

WAYBILL, MAIN, GIFTBOX = "SF1000000000001", "6901234567892", "6901234567915"


def _lines(app, action=None):
    with app.app_context(), standalone_session(app, write=False) as s:
        query = select(AuditEntry).order_by(AuditEntry.id)
        if action:
            query = query.where(AuditEntry.action == action)
        return s.scalars(query).all()


def _login(client, username, password, addr="127.0.0.1"):
    page = client.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": csrf},
                       environ_base={"REMOTE_ADDR": addr})


def test_logins_failures_lockouts_and_logouts_are_audited(app, users):
    client = app.test_client()
    assert _login(client, "qc1", "nope", addr="10.1.1.1").status_code == 401
    assert _login(client, "nobody", "nope", addr="10.1.1.1").status_code == 401
    assert _login(client, "qc1", "correct horse", addr="10.1.1.2").status_code == 302
    csrf = re.search(r'name="csrf-token" content="([^"]+)"',
                     client.get("/sheet").get_data(as_text=True)).group(1)
    assert client.post("/logout", data={"csrf_token": csrf}).status_code == 302
    for _ in range(5):
        _login(client, "packer1", "wrong", addr="10.1.1.3")
    assert _login(client, "packer1", "correct horse", addr="10.1.1.3").status_code == 429

    failed = _lines(app, "login_failed")
    assert [(l.actor, l.outcome, l.remote_addr, l.detail["known_user"]) for l in failed[:2]] == [
        ("qc1", "failed", "10.1.1.1", True), ("nobody", "failed", "10.1.1.1", False)]
    (ok,) = _lines(app, "login")
    assert (ok.actor, ok.role, ok.via, ok.remote_addr, ok.outcome) == ("qc1", "qc", "session", "10.1.1.2", "ok")
    (out,) = _lines(app, "logout")
    assert (out.actor, out.target) == ("qc1", "user:qc1")
    (locked,) = _lines(app, "login_locked")
    assert (locked.actor, locked.outcome) == ("packer1", "refused")


def test_token_use_is_audited_on_first_use_then_once_per_interval(app, api):
    def use():
        return api.get("/api/v1/orders/NOPE", role="packer").status_code

    assert use() == 404 and use() == 404
    (first,) = _lines(app, "token_used")
    assert (first.actor, first.via, first.detail) == ("test-packer", "token", {"first_use": True})
    with app.app_context(), standalone_session(app, write=False) as s:
        row = s.scalar(select(ApiToken).where(ApiToken.name == "test-packer"))
        assert row.last_used_at is not None and first.token_id == row.id
    # Time travel: the last recorded use 16 minutes ago (the interval is 15), and the token
    # cache emptied as a freshly started process would have it.
    with app.app_context(), standalone_session(app) as s:
        s.execute(update(ApiToken).where(ApiToken.name == "test-packer")
                  .values(last_used_at=utcnow() - dt.timedelta(minutes=16)))
    security._token_cache.clear()
    assert use() == 404
    security._token_cache.clear()
    assert use() == 404                          # within the interval again: not recorded
    lines = _lines(app, "token_used")
    assert [l.detail["first_use"] for l in lines if l.actor == "test-packer"] == [True, False]


def test_overrides_are_audited_with_the_override_and_only_then(app, api, waved):
    waved("TB001")
    api.scan(WAYBILL)
    api.scan(MAIN)
    assert api.scan(GIFTBOX, scan_id="gb-1")["code"] == "giftbox_incomplete"
    bad = api.post("/api/v1/scans/gb-1/override", {"reason_code": "because"}, role="supervisor")
    assert bad.status_code == 400 and _lines(app, "override") == []
    done = api.post("/api/v1/scans/gb-1/override", {"reason_code": "stock_out_waived"}, role="supervisor")
    assert done.status_code == 200
    (line,) = _lines(app, "override")
    assert (line.actor, line.role, line.target) == ("test-supervisor", "supervisor", "scan:gb-1")
    assert line.detail == {"order_no": "TB001", "refused": "giftbox_incomplete",
                           "reason_code": "stock_out_waived"}
    assert line.warehouse_id is not None     # the order's warehouse, for that warehouse's readers


def test_role_refusals_are_audited_once_per_window(app, api):
    security._refusals_seen.clear()         # as in a freshly started process
    for _ in range(3):
        assert api.get("/api/v1/pack-sessions", role="packer").status_code == 403
    refusals = [l for l in _lines(app, "forbidden") if l.actor == "test-packer"]
    assert [(l.target, l.outcome) for l in refusals] == [("GET /api/v1/pack-sessions", "refused")]


def test_the_cli_still_makes_tokens_and_it_is_audited(app, tmp_path):
    result = CliRunner().invoke(floor_cli, ["token", "create", "--role", "device", "--name", "PDA-9"],
                                env={"FLOOR_DATABASE_URL": app.config["DATABASE_URL"],
                                     "FLOOR_INSTANCE_PATH": str(tmp_path),
                                     "FLOOR_SECRET_KEY": "test-secret"})
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert token.startswith("flr_")
    got = app.test_client().get("/api/v1/stations/P01/session?device_id=PDA-9",
                                headers={"Authorization": f"Bearer {token}"})
    assert got.status_code == 200
    (made,) = _lines(app, "token_created")
    assert (made.actor, made.detail["name"], made.detail["role"]) == ("cli", "PDA-9", "device")


def test_the_audit_api_filters_pages_and_is_scoped_by_warehouse(app, api):
    with app.app_context(), standalone_session(app) as s:
        own = create_token(s, "supervisor", "boss-A", "WA")
        other = create_token(s, "supervisor", "boss-B", "WB")
        upsert_user(s, "pa", "packer", "correct horse")
    client = app.test_client()
    for token in (own, other):          # each uses its token once: one token_used line each
        assert client.get("/api/v1/tokens", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    for n in range(5):
        _login(app.test_client(), "pa", "wrong", addr=f"10.2.0.{n}")

    everything = api.get("/api/v1/audit?limit=500").get_json()["entries"]
    ids = [e["id"] for e in everything]
    assert ids == sorted(ids, reverse=True)                  # newest first
    first = api.get("/api/v1/audit?action=login_failed&limit=2").get_json()
    assert [e["action"] for e in first["entries"]] == ["login_failed"] * 2
    second = api.get(f"/api/v1/audit?action=login_failed&limit=2&before_id={first['next_before_id']}").get_json()
    third = api.get(f"/api/v1/audit?action=login_failed&limit=2&before_id={second['next_before_id']}").get_json()
    pages = first["entries"] + second["entries"] + third["entries"]
    assert len({e["id"] for e in pages}) == 5 and third["next_before_id"] is None
    assert {e["remote_addr"] for e in pages} == {f"10.2.0.{n}" for n in range(5)}
    assert api.get("/api/v1/audit?actor=boss-B").get_json()["entries"][0]["warehouse"] == "WB"
    since = (utcnow() + dt.timedelta(minutes=1)).isoformat()
    assert api.get("/api/v1/audit", query_string={"since": since}).get_json()["entries"] == []

    scoped = client.get("/api/v1/audit?limit=500", headers={"Authorization": f"Bearer {own}"}).get_json()
    assert scoped["entries"] and {e["warehouse"] for e in scoped["entries"]} == {"WA"}
    assert "boss-B" not in {e["actor"] for e in scoped["entries"]}

    for bad in ("action=dance", "limit=0", "limit=501", "since=yesterday", "before_id=-1"):
        response = api.get(f"/api/v1/audit?{bad}")
        assert response.status_code == 400 and response.get_json()["code"] == "invalid_field", bad


def test_stock_overrides_and_session_releases_are_audited(app, api, waved):
    from tests.conftest import make_order

    gift = [{"sku": "GIFTBOX", "name": "礼盒", "qty": 1, "role": "giftbox", "barcodes": ["6901234567915"]},
            {"sku": "SERUM", "name": "精华", "qty": 1, "role": "main", "barcodes": ["6901234567892"]}]
    for n in (1, 2):
        assert api.post("/api/v1/orders", make_order(f"TS00{n}", waybill=f"SF200000000000{n}",
                                                     lines=gift)).status_code == 201
    assert api.client.put("/api/v1/stock", json={"warehouse": "JX", "items": [{"sku": "GIFTBOX", "on_hand": 1}]},
                          headers=api._headers("supervisor")).status_code == 200
    short = api.post("/api/v1/waves", {"wave_no": "W-S", "order_nos": ["TS001", "TS002"], "station": "P01"},
                     role="supervisor")
    assert short.status_code == 409 and _lines(app, "stock_decision") == []
    done = api.post("/api/v1/waves", {"wave_no": "W-S", "order_nos": ["TS001", "TS002"], "station": "P01",
                                      "release_anyway": True, "reason": "boxes at 14:00"}, role="supervisor")
    assert done.status_code == 200, done.get_json()
    (line,) = _lines(app, "stock_decision")
    assert (line.actor, line.target, line.detail) == (
        "test-supervisor", "wave:W-S", {"decision": "release_anyway", "reason": "boxes at 14:00"})

    assert api.scan("SF2000000000001")["code"] == "order_opened"
    (open_session,) = api.get("/api/v1/pack-sessions").get_json()["sessions"]
    released = api.post(f"/api/v1/pack-sessions/{open_session['id']}/release", {"reason": "packer left"},
                        role="supervisor")
    assert released.status_code == 200, released.get_json()
    (line,) = _lines(app, "session_released")
    assert (line.target, line.detail, line.warehouse_id is not None) == (
        f"pack_session:{open_session['id']}", {"reason": "packer left"}, True)
