"""Logins held on the server: logout ends the login (a copied cookie stops working) and its
sockets; unknown users cost one hash like wrong passwords; a flood from one address cannot lock
a supervisor out; database files are private; `floor user create --warehouse`."""
from __future__ import annotations

import datetime as dt
import os
import re
import stat
import subprocess
import threading

import pytest
import requests
import socketio as socketio_client
from click.testing import CliRunner
from floor_sim.server import LiveServer, floor_command
from sqlalchemy import select, update

from floor import create_app
from floor.auth import operations as auth_operations
from floor.auth.models import AuditEntry, LoginFailure, LoginSession, User
from floor.cli import main as floor_cli
from floor.db import get_db, standalone_session
from floor.packing.models import Warehouse
from tests.conftest import make_order


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or \
        re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert found, "the page carries a CSRF token"
    return found.group(1)


def _login(client, username, password, addr="127.0.0.1"):
    token = _csrf(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token},
                       environ_base={"REMOTE_ADDR": addr})


def _logout(client):
    token = _csrf(client.get("/tokens").get_data(as_text=True))
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302


def _copy_of(client, app):
    """Another browser holding the same session cookie (stolen, or copied out of a handheld)."""
    copy = app.test_client()
    copy.set_cookie(app.config.get("SESSION_COOKIE_NAME", "session"),
                    client.get_cookie(app.config.get("SESSION_COOKIE_NAME", "session")).value)
    return copy


def _audit(app, action):
    with app.app_context(), standalone_session(app, write=False) as s:
        return s.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)).all()


# --- logout ends the login on the server ----------------------------------------------------------

def test_a_copied_cookie_stops_working_at_logout(app, users):
    client = app.test_client()
    assert _login(client, "supervisor1", "correct horse").status_code == 302
    copy = _copy_of(client, app)
    assert copy.get("/tokens").status_code == 200
    assert copy.get("/api/v1/audit").status_code == 200
    _logout(client)
    assert copy.get("/api/v1/audit").status_code == 401
    page = copy.get("/tokens")
    assert page.status_code == 302 and "/login" in page.headers["Location"]
    with app.app_context(), standalone_session(app, write=False) as s:
        (row,) = s.scalars(select(LoginSession)).all()
    assert row.end_reason == "logout" and row.ended_at is not None


def test_a_password_change_or_a_deactivation_ends_every_login_of_the_user(app, users):
    first, second = app.test_client(), app.test_client()
    for client in (first, second):
        assert _login(client, "packer1", "correct horse").status_code == 302
    copy = _copy_of(first, app)
    with app.app_context(), standalone_session(app) as s:
        auth_operations.upsert_user(s, "packer1", "packer", "another horse")
    assert [c.get("/pack").status_code for c in (first, second, copy)] == [302, 302, 302]

    assert _login(first, "packer1", "another horse").status_code == 302
    copy = _copy_of(first, app)
    result = CliRunner().invoke(floor_cli, ["user", "deactivate", "--username", "packer1"],
                                env=_cli_env(app))
    assert result.exit_code == 0, result.output
    with app.app_context(), standalone_session(app) as s:   # even were the account re-enabled
        s.execute(update(User).where(User.username == "packer1").values(active=True))
    assert [c.get("/pack").status_code for c in (first, copy)] == [302, 302]
    with app.app_context(), standalone_session(app, write=False) as s:
        reasons = sorted(r for r in s.scalars(select(LoginSession.end_reason)))
    assert reasons == ["deactivated", "password_changed", "password_changed"]


@pytest.fixture
def live():
    with LiveServer(env={"FLOOR_ALERT_INTERVAL_S": "0"}) as server:
        yield server


def _create_user(server, username, role, password, *extra):
    done = subprocess.run(floor_command() + ["user", "create", "--username", username, "--role", role,
                                             *extra], env=server.environ(), cwd=server.instance_path,
                          input=password + "\n", capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def _live_login(server, username, password) -> requests.Session:
    browser = requests.Session()
    form = browser.get(f"{server.url}/login", timeout=10).text
    answer = browser.post(f"{server.url}/login", allow_redirects=False, timeout=10,
                          data={"username": username, "password": password, "csrf_token": _csrf(form)})
    assert answer.status_code == 302, answer.text
    return browser


class _Board:
    """A real Socket.IO client connected with a session cookie, as a supervisor's board is."""

    def __init__(self, server, cookie: str) -> None:
        self.gone = threading.Event()
        self.sio = socketio_client.Client(reconnection=False)
        self.sio.on("disconnect", lambda *reason: self.gone.set(), namespace="/floor")
        self.sio.connect(server.url, namespaces=["/floor"], transports=["websocket"],
                         headers={"Cookie": f"session={cookie}"}, wait_timeout=10)

    def subscribe(self) -> dict:
        return self.sio.call("subscribe", {"room": "warehouse:JX", "after_seq": 0},
                             namespace="/floor", timeout=10)


def test_logout_ends_the_copied_cookie_and_the_socket_of_that_login(live):
    """On a real `floor serve`: the cookie works from anywhere until logout, then nowhere; the
    board socket opened with that login is closed by the logout (no further event needed),
    while the same user's other login keeps its socket."""
    _create_user(live, "boss", "supervisor", "correct horse")
    browser, other = _live_login(live, "boss", "correct horse"), _live_login(live, "boss", "correct horse")
    cookie = browser.cookies["session"]
    copied = {"Cookie": f"session={cookie}"}
    assert requests.get(f"{live.url}/api/v1/audit", headers=copied, timeout=10).status_code == 200
    board, other_board = _Board(live, cookie), _Board(live, other.cookies["session"])
    try:
        assert board.subscribe()["ok"] is True and other_board.subscribe()["ok"] is True
        token = _csrf(browser.get(f"{live.url}/tokens", timeout=10).text)
        assert browser.post(f"{live.url}/logout", data={"csrf_token": token}, allow_redirects=False,
                            timeout=10).status_code == 302
        assert board.gone.wait(30), "the socket of the login that logged out is still open"
        assert requests.get(f"{live.url}/api/v1/audit", headers=copied, timeout=10).status_code == 401
        page = requests.get(f"{live.url}/tokens", headers=copied, allow_redirects=False, timeout=10)
        assert page.status_code == 302 and "/login" in page.headers["Location"]
        assert not other_board.gone.is_set() and other_board.subscribe()["ok"] is True
    finally:
        for b in (board, other_board):
            b.sio.disconnect()


# --- the login's answer does not tell which names exist -------------------------------------------

def test_an_unknown_user_costs_one_hash_check_like_a_wrong_password(app, users, monkeypatch):
    checked: list[str] = []
    real = auth_operations.check_password_hash

    def counting(stored: str, password: str) -> bool:
        checked.append(stored.split("$", 1)[0])     # the method and its parameters
        return real(stored, password)

    monkeypatch.setattr(auth_operations, "check_password_hash", counting)
    client = app.test_client()
    with app.app_context(), standalone_session(app) as s:
        method = s.scalar(select(User.password_hash).where(User.username == "qc1")).split("$", 1)[0]
        s.execute(update(User).where(User.username == "packer1").values(active=False))

    outcomes = {}
    for name, password in (("qc1", "wrong horse"), ("nobody-here", "wrong horse"),
                           ("packer1", "correct horse"), ("qc1", "correct horse")):
        checked.clear()
        status = _login(client, name, password, addr="10.3.0.1").status_code
        outcomes[name, password] = (status, list(checked))
    assert outcomes == {("qc1", "wrong horse"): (401, [method]),
                        ("nobody-here", "wrong horse"): (401, [method]),
                        ("packer1", "correct horse"): (401, [method]),     # inactive
                        ("qc1", "correct horse"): (302, [method])}


# --- a flood from one address cannot lock a supervisor out ----------------------------------------

def _age_failures(app, seconds: float) -> None:
    """Time travel: every recorded failure happened `seconds` earlier (no sleeping)."""
    with app.app_context(), standalone_session(app) as s:
        for row in s.scalars(select(LoginFailure)):
            row.at = row.at - dt.timedelta(seconds=seconds)


def test_a_flood_of_wrong_passwords_locks_the_address_not_the_supervisor(app, users):
    client = app.test_client()
    flood = [_login(client, "supervisor1", f"guess {n}", addr="10.6.6.6").status_code for n in range(30)]
    assert flood == [401] * 5 + [429] * 25
    # Only the five that were looked at count: the locked address adds nothing to the name.
    with app.app_context(), standalone_session(app, write=False) as s:
        assert len(s.scalars(select(LoginFailure)).all()) == 5
    # The rightful supervisor elsewhere: a short backoff on the name (not the 5-minute lock),
    # answered without looking at the password, then through.
    waiting = _login(client, "supervisor1", "correct horse", addr="10.0.0.7")
    assert waiting.status_code == 429 and 1 <= int(waiting.headers["Retry-After"]) <= 60
    _age_failures(app, 2)
    assert _login(client, "supervisor1", "correct horse", addr="10.0.0.7").status_code == 302
    # The flooding address stays locked for that name, even with the right password.
    assert _login(client, "supervisor1", "correct horse", addr="10.6.6.6").status_code == 429
    reasons = [line.detail["reason"] for line in _audit(app, "login_locked")]
    assert reasons == ["address"] * 25 + ["name_backoff", "address"]


def test_the_name_backoff_grows_with_failures_from_many_addresses(app, users):
    """Guesses from ever new addresses: after 5 failures the name waits 1, 2, 4, 8 s... after
    the last failure (at most FLOOR_LOGIN_NAME_BACKOFF_MAX_S); the rightful user gets through
    whenever no backoff is running."""
    app.config["LOGIN_LOCKOUT_S"] = 3600      # every guess below stays counted
    client = app.test_client()
    waits = []
    for n in range(8):
        _age_failures(app, 61)         # each guess waits out the backoff of the ones before
        assert _login(client, "supervisor1", "wrong", addr=f"10.7.0.{n}").status_code == 401
        refused = _login(client, "supervisor1", "correct horse", addr="10.0.0.8")
        waits.append(int(refused.headers["Retry-After"]) if refused.status_code == 429 else 0)
        if refused.status_code == 302:
            client = app.test_client()
    assert waits[:4] == [0, 0, 0, 0] and waits[4:] == [1, 2, 4, 8]


# --- database files -------------------------------------------------------------------------------

def test_a_new_sqlite_database_and_its_wal_files_are_private(tmp_path):
    instance = tmp_path / "instance"
    old = os.umask(0o022)
    try:
        env = {"FLOOR_INSTANCE_PATH": str(instance), "FLOOR_SECRET_KEY": "test-secret"}
        result = CliRunner().invoke(floor_cli, ["db", "upgrade"], env=env)
        assert result.exit_code == 0, result.output
        app = create_app({"INSTANCE_PATH": str(instance), "SECRET_KEY": "test-secret",
                          "DATABASE_URL": f"sqlite:///{instance / 'floor.db'}", "ALERT_INTERVAL_S": 0})
        with app.app_context(), standalone_session(app) as s:     # a write: -wal and -shm exist
            s.add(Warehouse(code="W0600", name="W0600"))
        assert app.test_client().get("/healthz").status_code == 200
        made = {p.name: stat.S_IMODE(p.stat().st_mode) for p in instance.glob("floor.db*")}
        get_db(app).engine.dispose()
        app.extensions["floor.pump"].stop()
        # a database made by the app itself (no `db upgrade` first) too
        other = tmp_path / "other" / "floor.db"
        app2 = create_app({"INSTANCE_PATH": str(tmp_path / "other"), "SECRET_KEY": "x",
                           "DATABASE_URL": f"sqlite:///{other}", "ALERT_INTERVAL_S": 0})
        app2.test_client().get("/healthz")
        made["app-made floor.db"] = stat.S_IMODE(other.stat().st_mode)
        get_db(app2).engine.dispose()
        app2.extensions["floor.pump"].stop()
    finally:
        os.umask(old)
    assert {"floor.db", "floor.db-wal", "floor.db-shm"} <= set(made)
    assert made == {name: 0o600 for name in made}, {n: oct(m) for n, m in made.items()}


# --- floor user create --warehouse ----------------------------------------------------------------

def _cli_env(app):
    return {"FLOOR_DATABASE_URL": app.config["DATABASE_URL"],
            "FLOOR_INSTANCE_PATH": app.config["INSTANCE_PATH"], "FLOOR_SECRET_KEY": "test-secret"}


def test_user_create_limits_a_user_to_one_warehouse(app, api):
    assert api.post("/api/v1/orders", make_order("TB-WA-1")).status_code in (200, 201)   # warehouse JX
    runner = CliRunner()
    for args in (["--username", "lead-b", "--role", "supervisor", "--warehouse", "WB"],
                 ["--username", "lead-all", "--role", "supervisor"]):
        result = runner.invoke(floor_cli, ["user", "create", *args], env=_cli_env(app),
                               input="correct horse\n")
        assert result.exit_code == 0, result.output
    with app.app_context(), standalone_session(app, write=False) as s:
        homes = dict(s.execute(select(User.username, Warehouse.code)
                               .outerjoin(Warehouse, Warehouse.id == User.warehouse_id)
                               .where(User.username.in_(["lead-b", "lead-all"]))).all())
    assert homes == {"lead-b": "WB", "lead-all": None}
    scoped, everywhere = app.test_client(), app.test_client()
    assert _login(scoped, "lead-b", "correct horse").status_code == 302
    assert _login(everywhere, "lead-all", "correct horse").status_code == 302
    assert scoped.get("/api/v1/orders/TB-WA-1").status_code == 404
    assert everywhere.get("/api/v1/orders/TB-WA-1").status_code == 200
    # a reset without --warehouse keeps the user's warehouse
    result = runner.invoke(floor_cli, ["user", "create", "--username", "lead-b", "--role", "supervisor"],
                           env=_cli_env(app), input="another horse\n")
    assert result.exit_code == 0, result.output
    with app.app_context(), standalone_session(app, write=False) as s:
        assert s.scalar(select(Warehouse.code).join(User, User.warehouse_id == Warehouse.id)
                        .where(User.username == "lead-b")) == "WB"
    refused = runner.invoke(floor_cli, ["user", "create", "--username", "x", "--role", "packer",
                                        "--warehouse", " "], env=_cli_env(app), input="correct horse\n")
    assert refused.exit_code != 0 and "--warehouse" in refused.output
