"""Bearer tokens through the API: made with the secret shown once, listed without secrets,
revoked at once in this process (even while cached), kept within a supervisor's warehouse."""
from __future__ import annotations

from sqlalchemy import select

from floor.auth import security
from floor.auth.domain import token_digest
from floor.auth.models import ApiToken, AuditEntry
from floor.auth.operations import create_token
from floor.db import standalone_session


def _bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_a_token_is_made_listed_without_its_secret_and_revoked_at_once(app, api):
    made = api.post("/api/v1/tokens", {"name": "PDA-12", "role": "device", "warehouse": "JX"},
                    role="supervisor")
    assert made.status_code == 201, made.get_json()
    body = made.get_json()
    secret = body["token"]
    assert secret.startswith("flr_") and body["role"] == "device" and body["warehouse"] == "JX"
    assert body["created_by"] == "test-supervisor" and body["revoked_at"] is None

    listed = api.get("/api/v1/tokens").get_json()["tokens"]
    mine = next(t for t in listed if t["id"] == body["id"])
    assert "token" not in mine and secret not in str(listed)
    with app.app_context(), standalone_session(app, write=False) as s:
        assert secret not in s.scalar(select(ApiToken.digest).where(ApiToken.id == body["id"]))

    client = app.test_client()
    assert client.get("/api/v1/stations/P01/session?device_id=PDA-12", headers=_bearer(secret)).status_code == 200
    assert token_digest(secret) in {digest for _url, digest in security._token_cache}  # cached

    revoked = api.post(f"/api/v1/tokens/{body['id']}/revoke", role="supervisor")
    assert revoked.status_code == 200 and revoked.get_json()["revoked_at"]
    assert revoked.get_json()["revoked_by"] == "test-supervisor"
    refused = client.get("/api/v1/stations/P01/session?device_id=PDA-12", headers=_bearer(secret))
    assert (refused.status_code, refused.get_json()["code"]) == (401, "unauthenticated")
    again = api.post(f"/api/v1/tokens/{body['id']}/revoke", role="supervisor")
    assert again.status_code == 200                                   # idempotent
    active = api.get("/api/v1/tokens?revoked=0").get_json()["tokens"]
    assert body["id"] not in {t["id"] for t in active}

    with app.app_context(), standalone_session(app, write=False) as s:
        actions = s.scalars(select(AuditEntry.action).where(AuditEntry.target == f"token:{body['id']}")
                            .order_by(AuditEntry.id)).all()
    assert actions == ["token_created", "token_used", "token_revoked"]


def test_a_warehouse_supervisor_stays_within_its_warehouse(app, api):
    with app.app_context(), standalone_session(app) as s:
        boss = create_token(s, "supervisor", "boss-A", "WA")
        create_token(s, "packer", "packer-B", "WB")
        ids = {t.name: t.id for t in s.scalars(select(ApiToken))}
    client = app.test_client()

    own = client.post("/api/v1/tokens", json={"name": "PDA-A1", "role": "device"}, headers=_bearer(boss))
    assert own.status_code == 201 and own.get_json()["warehouse"] == "WA"   # its own by default
    beyond = client.post("/api/v1/tokens", json={"name": "x", "role": "device", "warehouse": "WB"},
                         headers=_bearer(boss))
    assert (beyond.status_code, beyond.get_json()["code"]) == (403, "warehouse_forbidden")

    listed = client.get("/api/v1/tokens", headers=_bearer(boss)).get_json()["tokens"]
    assert {t["name"] for t in listed} == {"boss-A", "PDA-A1"}
    for name in ("packer-B", "test-integration"):   # another warehouse's, and an all-warehouse one
        refused = client.post(f"/api/v1/tokens/{ids[name]}/revoke", headers=_bearer(boss))
        assert (refused.status_code, refused.get_json()["code"]) == (404, "unknown_token"), name
    assert api.get("/api/v1/orders/NOPE", role="integration").status_code == 404   # still valid


def test_bad_token_requests_get_stable_codes(app, api):
    for body, code in (({"name": "x", "role": "king"}, "invalid_role"),
                       ({"role": "packer"}, "missing_field"),
                       ({"name": "x" * 101, "role": "packer"}, "invalid_field"),
                       ({"name": "x", "role": "packer", "warehouse": 7}, "invalid_field")):
        response = api.post("/api/v1/tokens", body, role="supervisor")
        assert (response.status_code, response.get_json()["code"]) == (400, code), body
    assert api.post("/api/v1/tokens/987654/revoke", role="supervisor").status_code == 404


def test_a_revoked_token_ends_its_open_socket(app, api):
    from floor.extensions import socketio

    made = api.post("/api/v1/tokens", {"name": "PDA-13", "role": "device"}, role="supervisor").get_json()
    client = socketio.test_client(app, namespace="/floor", auth={"token": made["token"]})
    beat = client.emit("heartbeat", {"device_id": "PDA-13", "station": "P01"}, namespace="/floor",
                       callback=True)
    assert beat["ok"] is True
    assert api.post(f"/api/v1/tokens/{made['id']}/revoke", role="supervisor").status_code == 200
    ack = client.emit("heartbeat", {"device_id": "PDA-13", "station": "P01"}, namespace="/floor",
                      callback=True)
    assert ack is None or ack["code"] == "unauthenticated", ack
    assert not client.is_connected("/floor")


def test_the_tokens_screen_makes_shows_once_and_revokes(app, users):
    import re

    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    assert client.post("/login", data={"username": "supervisor1", "password": "correct horse",
                                       "csrf_token": csrf}).status_code == 302
    screen = client.get("/tokens")
    assert screen.status_code == 200 and 'id="token-form"' in screen.get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', screen.get_data(as_text=True)).group(1)

    refused = client.post("/tokens", data={"name": "", "role": "device", "csrf_token": csrf})
    assert refused.status_code == 400 and 'id="token-error"' in refused.get_data(as_text=True)
    made = client.post("/tokens", data={"name": "PDA-21", "role": "device", "warehouse": "",
                                        "csrf_token": csrf})
    assert made.status_code == 201
    secret = re.search(r'id="new-secret">(flr_[^<]+)<', made.get_data(as_text=True)).group(1)
    assert client.get("/tokens").get_data(as_text=True).count(secret) == 0     # shown once
    device = app.test_client()
    assert device.get("/api/v1/stations/P01/session?device_id=PDA-21", headers=_bearer(secret)).status_code == 200

    with app.app_context(), standalone_session(app, write=False) as s:
        token_id = s.scalar(select(ApiToken.id).where(ApiToken.name == "PDA-21"))
    assert client.post(f"/tokens/{token_id}/revoke", data={}).status_code == 400       # no CSRF
    done = client.post(f"/tokens/{token_id}/revoke", data={"csrf_token": csrf})
    assert done.status_code == 302
    assert device.get("/api/v1/stations/P01/session?device_id=PDA-21", headers=_bearer(secret)).status_code == 401
    row = re.search(rf'<tr data-token-id="{token_id}" data-state="(\w+)"', client.get("/tokens").get_data(as_text=True))
    assert row.group(1) == "revoked"
