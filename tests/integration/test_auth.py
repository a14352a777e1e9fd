"""Roles on every route, role checks before body validation, sessions with CSRF, throttling."""
from __future__ import annotations

import re


from tests.conftest import ROLES

def _guarded_routes(app):
    """Every route of the app with its declared roles, path parameters filled in."""
    for rule in app.url_map.iter_rules():
        roles = getattr(app.view_functions[rule.endpoint], "floor_roles", None)
        if rule.endpoint == "static" or not roles:
            continue
        path = re.sub(r"<int:[a-z_]+>", "1", rule.rule)
        path = re.sub(r"<[a-z_]+>", "X1", path)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, path, set(roles)


def test_roles_are_checked_before_the_body_is_read(app, api):
    """Derived from the URL map: a new route is covered (and must declare roles) automatically."""
    routes = list(_guarded_routes(app))
    assert len(routes) >= 15
    for method, path, allowed in routes:
        for role in (None, *ROLES):
            headers = {"Authorization": f"Bearer {api.tokens[role]}"} if role else {}
            response = api.client.open(path, method=method, data=b"garbage", headers=headers,
                                       content_type="application/json")
            where = (method, path, role, response.status_code)
            if role is None:
                expected = (302,) if not path.startswith("/api/") and method == "GET" else (401,)
                assert response.status_code in expected, where
            elif role not in allowed:
                assert response.status_code == 403, where
                assert response.get_json()["code"] == "forbidden"
            else:
                assert response.status_code not in (401, 403, 500), where


def test_every_route_declares_its_roles(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        view = app.view_functions[rule.endpoint]
        assert hasattr(view, "floor_roles"), f"{rule} has no role rule"


def _login(client, username, password):
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or \
        re.search(r'value="([^"]+)"[^>]*name="csrf_token"', page)
    assert token, "login form has a CSRF field"
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": token.group(1)})


def test_session_login_then_api_writes_need_csrf(app, users, waved):
    waved("TB001")
    client = app.test_client()
    assert client.get("/pack").status_code == 302
    assert _login(client, "packer1", "correct horse").status_code == 302
    page = client.get("/pack")
    assert page.status_code == 200
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.get_data(as_text=True)).group(1)
    body = {"scan_id": "c1", "station": "P01", "device_id": "PDA-W", "code": "SF1000000000001"}
    refused = client.post("/api/v1/scans", json=body)
    assert refused.status_code == 400 and refused.get_json()["code"] == "csrf_failed"
    ok = client.post("/api/v1/scans", json=body, headers={"X-CSRFToken": csrf})
    assert ok.status_code == 200 and ok.get_json()["code"] == "order_opened"


def test_login_form_without_csrf_is_refused(app, users):
    client = app.test_client()
    response = client.post("/login", data={"username": "packer1", "password": "correct horse"})
    assert response.status_code == 400 and client.get("/pack").status_code == 302


def test_login_is_throttled_after_repeated_failures(app, users):
    client = app.test_client()
    for _ in range(5):
        assert _login(client, "packer1", "wrong").status_code == 401
    assert _login(client, "packer1", "correct horse").status_code == 429


def test_passwords_are_stored_hashed(app, users):
    from sqlalchemy import select
    from floor.auth.models import User
    from floor.db import standalone_session
    with app.app_context(), standalone_session(app) as s:
        stored = s.scalar(select(User.password_hash).where(User.username == "packer1"))
    assert "correct horse" not in stored and stored.startswith(("scrypt:", "pbkdf2:"))


def test_security_headers_on_pages_and_api(app, api):
    for response in (app.test_client().get("/login"), api.get("/api/v1/openapi.json")):
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
