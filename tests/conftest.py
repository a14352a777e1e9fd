"""Shared fixtures: an app on a real database (SQLite always; PostgreSQL when
FLOOR_TEST_POSTGRES_URL is set, as in CI), tokens per role, JSON and Socket.IO clients."""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from hypothesis import settings
from sqlalchemy import create_engine, text

from floor import create_app
from floor.auth.operations import create_token, upsert_user
from floor.db import get_db, standalone_session
from floor.devices.domain import DEFAULT_SERIAL_PORT_GLOBS
from floor.migrate import upgrade
from floor.models import metadata

# `make test` runs hypothesis's default number of examples; `make fuzz` selects the long profile.
settings.register_profile("fuzz", max_examples=5000, deadline=None)

ROLES = ("packer", "qc", "supervisor", "integration", "device")
PG_URL = os.environ.get("FLOOR_TEST_POSTGRES_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file, copied for each test: migrations run once per session."""
    path = tmp_path_factory.mktemp("template") / "floor.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_schema_url() -> Iterator[str | None]:
    if not PG_URL:
        yield None
        return
    schema = f"floor_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://"))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{PG_URL}{'&' if '?' in PG_URL else '?'}options=-csearch_path%3D{schema}"
    upgrade(url)
    yield url
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def _reset_postgres(url: str) -> None:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        conn.execute(text("INSERT INTO event_counter (id, last_seq) VALUES (1, 0)"))
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "floor.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("pg_schema_url")
    _reset_postgres(url)
    return url


@pytest.fixture
def app(database_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    app = create_app({"DATABASE_URL": database_url, "INSTANCE_PATH": str(tmp_path),
                      "SECRET_KEY": "test-secret", "TESTING": True, "SCAN_DEBOUNCE_MS": 500,
                      "ALERT_INTERVAL_S": 0,
                      # Serial scanners in tests are pty pairs behind links in the test's folder.
                      "SERIAL_PORT_GLOBS": [*DEFAULT_SERIAL_PORT_GLOBS, "/dev/pts/*",
                                            f"{tmp_path}/*"]})
    yield app
    app.extensions["floor.pump"].stop()
    get_db(app).engine.dispose()


@pytest.fixture
def tokens(app) -> dict[str, str]:  # type: ignore[no-untyped-def]
    with app.app_context(), standalone_session(app) as s:
        return {role: create_token(s, role, f"test-{role}") for role in ROLES}


@pytest.fixture
def users(app) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """A user per role, all with the password 'correct horse'."""
    with app.app_context(), standalone_session(app) as s:
        for role in ROLES:
            upsert_user(s, f"{role}1", role, "correct horse")
    return {role: f"{role}1" for role in ROLES}


class Api:
    """JSON calls with a bearer token: api.post("/api/v1/scans", {...}, role="packer")."""

    def __init__(self, client: Any, tokens: dict[str, str]) -> None:
        self.client, self.tokens = client, tokens

    def _headers(self, role: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}

    def get(self, path: str, role: str | None = "supervisor", **kw: Any) -> Any:
        return self.client.get(path, headers=self._headers(role), **kw)

    def post(self, path: str, body: Any = None, role: str | None = "integration", **kw: Any) -> Any:
        return self.client.post(path, json=body, headers=self._headers(role), **kw)

    def scan(self, code: Any, device: str = "PDA-01", station: str = "P01",
             scan_id: str | None = None, **extra: Any) -> dict[str, Any]:
        body = {"scan_id": scan_id or uuid.uuid4().hex, "station": station, "device_id": device,
                "code": code, **extra}
        response = self.post("/api/v1/scans", body, role="packer")
        assert response.status_code == 200, response.get_json()
        return response.get_json()


@pytest.fixture
def api(app, tokens) -> Api:  # type: ignore[no-untyped-def]
    return Api(app.test_client(), tokens)


def make_order(order_no: str = "TB001", *, waybill: str | None = "SF1000000000001",
               lines: list[dict[str, Any]] | None = None, channel: str = "taobao") -> dict[str, Any]:
    body: dict[str, Any] = {
        "order_no": order_no, "channel": channel, "warehouse": "JX",
        "customer": {"name": "张三", "phone": "13800000000", "address": "南昌"},
        "lines": lines or [
            {"sku": "SERUM", "name": "精华液 30ml", "qty": 1, "role": "main",
             "barcodes": ["6901234567892", "SERUM-ALT"]},
            {"sku": "SAMPLE", "name": "试用装 5ml", "qty": 2, "role": "sample",
             "barcodes": ["6901234567908"]},
            {"sku": "GIFTBOX", "name": "限定礼盒", "qty": 1, "role": "giftbox",
             "barcodes": ["6901234567915"]}]}
    if waybill:
        body["waybill_no"] = waybill
    return body


@pytest.fixture
def waved(api: Api) -> Callable[..., dict[str, Any]]:
    """Create an order and put it in a wave: waved("TB001", waybill=..., wave="W-1")."""
    def create(order_no: str = "TB001", wave: str = "W-1", **kw: Any) -> dict[str, Any]:
        body = make_order(order_no, **kw)
        response = api.post("/api/v1/orders", body)
        assert response.status_code in (200, 201), response.get_json()
        response = api.post("/api/v1/waves", {"wave_no": wave, "order_nos": [order_no], "station": "P01"})
        assert response.status_code == 200, response.get_json()
        return body
    return create
