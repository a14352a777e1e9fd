"""Access control derived from the app itself: every route and every socket event against every
role and anonymous, each route's warehouse-scope rule, CSRF on every form and cookie write,
security headers on every answer, sessions that end, login throttling."""
from __future__ import annotations

import contextlib
import datetime as dt
import inspect
import os
import re

import pytest
import socketio as socketio_client
from floor_sim.server import LiveServer, postgres_schema
from sqlalchemy import select

from floor.auth.models import AuditEntry
from floor.config import load_config
from floor.db import standalone_session, utcnow
from floor.scan.sockets import FloorNamespace
from tests.conftest import ROLES

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
PG_URL = os.environ.get("FLOOR_TEST_POSTGRES_URL")
# Ids no row has: the matrix must not act on real objects (a supervisor's POST .../revoke on
# token 1 would revoke the packer's token and the rest of the walk would be unauthenticated).
MISSING_ID = "987654"


def _fill(rule: str) -> str:
    path = re.sub(r"<int:[a-z_]+>", MISSING_ID, rule)
    return re.sub(r"<(?:[a-z]+:)?[a-z_]+>", "X1", path)


def _guarded_routes(app):
    """Every route of the app with its declared roles, path parameters filled in."""
    for rule in app.url_map.iter_rules():
        roles = getattr(app.view_functions[rule.endpoint], "floor_roles", None)
        if rule.endpoint == "static" or not roles:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, _fill(rule.rule), set(roles), rule


def test_roles_are_checked_before_the_body_is_read(app, api):
    """Derived from the URL map: a new route is covered (and must declare roles) automatically."""
    routes = list(_guarded_routes(app))
    assert len(routes) >= 15
    for method, path, allowed, _rule in routes:
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


def _routes_without_roles(app):
    return [str(rule) for rule in app.url_map.iter_rules()
            if rule.endpoint != "static" and not hasattr(app.view_functions[rule.endpoint], "floor_roles")]


def test_every_route_declares_its_roles(app):
    assert _routes_without_roles(app) == []


def test_a_new_route_without_a_role_rule_is_caught(app):
    """The check above is not vacuous: a route added without `requires`/`public` is named."""
    app.add_url_rule("/api/v1/forgotten", "forgotten", lambda: "open to all")
    assert _routes_without_roles(app) == ["/api/v1/forgotten"]


def test_every_guarded_route_declares_its_warehouse_scope(app):
    """A route with a role rule has a scope rule; a route naming an object in its URL either
    resolves every such parameter to its warehouse (`scoped`), or says why none applies."""
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        if rule.endpoint == "static" or not getattr(view, "floor_roles", ()):
            continue
        scope = getattr(view, "floor_scope", None)
        assert isinstance(scope, dict) and scope, f"{rule} has no warehouse-scope rule"
        declared_free = {"free", "all_warehouses"} & set(scope)
        for param in rule.arguments:
            assert param in scope or declared_free, \
                f"{rule}: <{param}> is not resolved to a warehouse (scoped) nor declared free"
        if "filtered" in scope or "free" in scope:
            reason = scope.get("filtered") or scope.get("free")
            assert isinstance(reason, str) and len(reason) > 10, f"{rule}: say how it is scoped"


# --- socket events ----------------------------------------------------------------------------

def _socket_handlers():
    return {name[3:]: fn for name, fn in inspect.getmembers(FloorNamespace, inspect.isfunction)
            if name.startswith("on_")}


def test_every_socket_event_declares_its_roles():
    handlers = _socket_handlers()
    assert {"connect", "disconnect", "scan", "heartbeat", "subscribe"} <= set(handlers)
    for name, handler in handlers.items():
        assert hasattr(handler, "floor_roles"), f"socket event {name!r} has no role rule"


@pytest.fixture(params=["sqlite"] + (["postgresql"] if PG_URL else []))
def live(request):
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(postgres_schema(PG_URL, "floor_matrix")) if request.param == "postgresql" else None
        server = LiveServer(database_url=url, env={"FLOOR_ALERT_INTERVAL_S": "0"})
        server.start()
        stack.callback(server.stop)
        yield server


def test_socket_events_against_every_role_and_anonymous(live):
    """Every client event (derived from the namespace's on_* handlers) for every role, with real
    Socket.IO clients on a real server: a role not declared gets {"code": "forbidden"}, a
    declared one gets past the check; anonymous clients and unknown tokens cannot connect."""
    events = {name: fn.floor_roles for name, fn in _socket_handlers().items()
              if name not in ("connect", "disconnect")}
    for auth in (None, {"token": "flr_not-a-token"}):
        anonymous = socketio_client.Client(reconnection=False)
        with pytest.raises(socketio_client.exceptions.ConnectionError):
            anonymous.connect(live.url, namespaces=["/floor"], transports=["websocket"], auth=auth)
    for role in ROLES:
        client = socketio_client.Client(reconnection=False)
        client.connect(live.url, namespaces=["/floor"], transports=["websocket"],
                       auth={"token": live.token(role, f"matrix-{role}")})
        try:
            for event, allowed in events.items():
                ack = client.call(event, {"garbage": True}, namespace="/floor", timeout=10)
                assert isinstance(ack, dict) and isinstance(ack.get("code"), str), (event, role, ack)
                if role in allowed:
                    assert ack["code"] not in ("forbidden", "server_error"), (event, role, ack)
                else:
                    assert (ack["ok"], ack["code"]) == (False, "forbidden"), (event, role, ack)
        finally:
            client.disconnect()


# --- sessions and CSRF --------------------------------------------------------------------------

def _csrf_of(page: str) -> str | None:
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or \
        re.search(r'value="([^"]+)"[^>]*name="csrf_token"', page) or \
        re.search(r'name="csrf-token" content="([^"]+)"', page)
    return found.group(1) if found else None


def _login(client, username, password, addr="127.0.0.1"):
    page = client.get("/login").get_data(as_text=True)
    token = _csrf_of(page)
    assert token, "login form has a CSRF field"
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": token}, environ_base={"REMOTE_ADDR": addr})


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


def test_every_cookie_authenticated_write_needs_the_csrf_token(app, users):
    """Every POST/PUT/PATCH/DELETE route, as a logged-in user of a role it allows, without the
    token: 400 csrf_failed before anything else happens."""
    clients = {}
    for role in ROLES:
        clients[role] = app.test_client()
        assert _login(clients[role], users[role], "correct horse").status_code == 302
    checked = 0
    for method, path, allowed, _rule in _guarded_routes(app):
        if method not in UNSAFE:
            continue
        role = sorted(allowed)[0]
        response = clients[role].open(path, method=method, json={"x": 1})
        assert (response.status_code, response.get_json()["code"]) == (400, "csrf_failed"), \
            (method, path, role, response.status_code)
        checked += 1
    assert checked >= 20


def _pages(app):
    """Every HTML page (GET, not under /api/), path parameters naming the order TB001."""
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        roles = getattr(view, "floor_roles", ())
        if rule.endpoint == "static" or rule.rule.startswith("/api/") or "GET" not in rule.methods:
            continue
        if rule.arguments - {"order_no"}:
            continue
        yield rule.rule.replace("<order_no>", "TB001"), roles


def test_every_form_on_every_page_carries_a_csrf_token(app, users, waved):
    """Each page rendered for each role that may see it: every <form method=post> has a
    csrf_token field (the pages' own forms and the logout button)."""
    waved("TB001")
    rendered = 0
    for role in ("packer", "qc", "supervisor"):
        client = app.test_client()
        assert _login(client, users[role], "correct horse").status_code == 302
        for path, roles in _pages(app):
            if roles and role not in roles:
                continue
            response = client.get(path)
            if response.status_code != 200 or "text/html" not in response.content_type:
                continue
            html = response.get_data(as_text=True)
            rendered += 1
            for form in re.findall(r"<form\b[^>]*>.*?</form>", html, re.S | re.I):
                opening = form[:form.index(">") + 1]
                if re.search(r'method=["\']?post', opening, re.I):
                    assert 'name="csrf_token"' in form, (role, path, opening)
    assert rendered >= 10


def test_login_form_without_csrf_is_refused(app, users):
    client = app.test_client()
    response = client.post("/login", data={"username": "packer1", "password": "correct horse"})
    assert response.status_code == 400 and client.get("/pack").status_code == 302


def test_logout_ends_the_session(app, users):
    client = app.test_client()
    assert _login(client, "packer1", "correct horse").status_code == 302
    csrf = _csrf_of(client.get("/pack").get_data(as_text=True))
    assert client.post("/logout", data={"csrf_token": csrf}).status_code == 302
    assert client.get("/pack").status_code == 302


def _shift(client, **ago: dt.timedelta) -> None:
    """Time travel: move the session's timestamps into the past (no sleeping)."""
    with client.session_transaction() as sess:
        for key, delta in ago.items():
            sess[key] = (utcnow() - delta).isoformat()


def _audit(app, action):
    with app.app_context(), standalone_session(app, write=False) as s:
        return s.scalars(select(AuditEntry).where(AuditEntry.action == action)).all()


def test_a_session_ends_when_left_idle(app, users):
    assert app.config["SESSION_IDLE_MIN"] == 30 and app.config["SESSION_LIFETIME_H"] == 12
    client = app.test_client()
    assert _login(client, "supervisor1", "correct horse").status_code == 302
    _shift(client, seen=dt.timedelta(minutes=29))
    assert client.get("/pack").status_code == 200            # used: the idle clock restarts
    with client.session_transaction() as sess:
        assert utcnow() - dt.datetime.fromisoformat(sess["seen"]) < dt.timedelta(minutes=1)
    _shift(client, seen=dt.timedelta(minutes=31))
    assert client.get("/pack").status_code == 302
    assert client.get("/pack").status_code == 302            # cleared, not merely refused once
    (line,) = _audit(app, "session_expired")
    assert (line.actor, line.detail["reason"]) == ("supervisor1", "idle")


def test_a_session_ends_after_its_lifetime_even_when_busy(app, users):
    client = app.test_client()
    assert _login(client, "supervisor1", "correct horse").status_code == 302
    _shift(client, at=dt.timedelta(hours=11, minutes=59), seen=dt.timedelta(minutes=1))
    assert client.get("/pack").status_code == 200
    _shift(client, at=dt.timedelta(hours=12, minutes=1), seen=dt.timedelta(minutes=1))
    assert client.get("/api/v1/pack-sessions").status_code == 401
    (line,) = _audit(app, "session_expired")
    assert line.detail["reason"] == "lifetime"


def test_session_settings_come_from_the_environment():
    config = load_config({"SECRET_KEY": "x"}, environ={"FLOOR_SESSION_LIFETIME_H": "8",
                                                       "FLOOR_SESSION_IDLE_MIN": "10",
                                                       "FLOOR_COOKIE_SECURE": "1"})
    assert (config["SESSION_LIFETIME_H"], config["SESSION_IDLE_MIN"]) == (8.0, 10.0)
    assert config["PERMANENT_SESSION_LIFETIME"] == 8 * 3600 and config["SESSION_COOKIE_SECURE"] is True
    assert load_config({"SECRET_KEY": "x"}, environ={})["SESSION_COOKIE_SECURE"] is False


# --- throttling -----------------------------------------------------------------------------------

def test_login_is_throttled_per_user_name(app, users):
    client = app.test_client()
    for _ in range(5):
        assert _login(client, "packer1", "wrong", addr="10.0.0.1").status_code == 401
    # Locked from anywhere; other users from the same address are not.
    assert _login(client, "packer1", "correct horse", addr="10.0.0.2").status_code == 429
    assert _login(client, "qc1", "correct horse", addr="10.0.0.1").status_code == 302
    assert len(_audit(app, "login_failed")) == 5 and len(_audit(app, "login_locked")) == 1


def test_login_is_throttled_per_address(app, users):
    """One address guessing many user names: locked after 20 failures, for every name."""
    client = app.test_client()
    for n in range(20):
        assert _login(client, f"guess{n}", "wrong", addr="10.0.0.9").status_code == 401
    assert _login(client, "qc1", "correct horse", addr="10.0.0.9").status_code == 429
    assert _login(client, "qc1", "correct horse", addr="10.0.0.10").status_code == 302


def test_passwords_are_stored_hashed(app, users):
    from floor.auth.models import User
    with app.app_context(), standalone_session(app) as s:
        stored = s.scalar(select(User.password_hash).where(User.username == "packer1"))
    assert "correct horse" not in stored and stored.startswith(("scrypt:", "pbkdf2:"))


# --- security headers -----------------------------------------------------------------------------

def _assert_headers(response, where):
    csp = response.headers.get("Content-Security-Policy", "")
    script_src = re.search(r"script-src ([^;]*)", csp)
    assert script_src and "'self'" in script_src.group(1), where
    assert "unsafe-inline" not in script_src.group(1) and "unsafe-eval" not in csp, where
    assert "frame-ancestors 'none'" in csp, where
    assert response.headers.get("X-Frame-Options") == "DENY", where
    assert response.headers.get("X-Content-Type-Options") == "nosniff", where
    assert response.headers.get("Referrer-Policy"), where


def test_security_headers_on_every_answer(app, api, users):
    """Every route as a supervisor and anonymous (pages, API, redirects, refusals), and errors."""
    for rule in app.url_map.iter_rules():
        path = _fill(rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            for role in (None, "supervisor"):
                response = api.client.open(path, method=method, headers=api._headers(role))
                _assert_headers(response, (method, path, role, response.status_code))
    for path in ("/no-such-page", "/api/v1/no-such-thing"):
        _assert_headers(api.client.get(path), path)
    _assert_headers(api.client.delete("/healthz"), "405")


def test_session_cookie_flags(app, users):
    response = _login(app.test_client(), "packer1", "correct horse")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    app.config["SESSION_COOKIE_SECURE"] = True
    secure = _login(app.test_client(), "qc1", "correct horse").headers["Set-Cookie"]
    assert "Secure" in secure and "HttpOnly" in secure


def _floor_namespace(app):
    from floor.extensions import socketio
    return socketio.server.namespace_handlers["/floor"]


def test_a_socket_opened_with_a_login_ends_with_the_login(app, users):
    """A board or pack screen's socket lives on its session's lifetime, not past it, and ends
    when the user's password changes (checked at most once a minute)."""
    from floor.extensions import socketio
    from floor.auth.operations import upsert_user

    client = app.test_client()
    assert _login(client, "supervisor1", "correct horse").status_code == 302
    sock = socketio.test_client(app, namespace="/floor", flask_test_client=client)
    assert sock.is_connected("/floor")
    subscribe = {"room": "warehouse:WH1", "after_seq": 0}
    assert sock.emit("subscribe", subscribe, namespace="/floor", callback=True)["ok"] is True
    namespace = _floor_namespace(app)
    (sid,) = [sid for sid, held in namespace.sessions.items()]
    held = namespace.sessions[sid]
    assert abs(held.ends_at - (utcnow() + dt.timedelta(hours=12))) < dt.timedelta(minutes=1)
    # Time travel: the login's end is now.
    namespace.sessions[sid] = held.__class__(held.user_id, held.password_mark, utcnow(), held.recheck_at)
    ack = sock.emit("subscribe", subscribe, namespace="/floor", callback=True)
    assert ack["code"] == "unauthenticated" and not sock.is_connected("/floor")
    assert [line.detail for line in _audit(app, "session_expired")] == [
        {"reason": "lifetime", "via": "socket"}]

    # A new connection; the password changes; the next check after the minute ends it.
    sock = socketio.test_client(app, namespace="/floor", flask_test_client=client)
    assert sock.emit("subscribe", subscribe, namespace="/floor", callback=True)["ok"] is True
    with app.app_context(), standalone_session(app) as s:
        upsert_user(s, "supervisor1", "supervisor", "another horse")
    assert sock.emit("subscribe", subscribe, namespace="/floor", callback=True)["ok"] is True
    (sid,) = list(namespace.sessions)
    held = namespace.sessions[sid]
    namespace.sessions[sid] = held.__class__(held.user_id, held.password_mark, held.ends_at, utcnow())
    ack = sock.emit("subscribe", subscribe, namespace="/floor", callback=True)
    assert ack["code"] == "unauthenticated" and not sock.is_connected("/floor")
