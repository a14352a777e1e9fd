"""Durability settings (docs/durability.md): SQLite's pragmas on every connection the app
opens, the FLOOR_SQLITE_SYNCHRONOUS choice, and the busy timeout turned into a 503.

On PostgreSQL floor changes no durability setting; the test there checks that the server it
runs against keeps the defaults the docs say the service relies on.
"""
from __future__ import annotations

import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from floor import create_app
from floor.config import load_config
from floor.db import get_db
from floor.migrate import upgrade

PG_URL = os.environ.get("FLOOR_TEST_POSTGRES_URL")
SYNC_VALUES = {"NORMAL": 1, "FULL": 2, "EXTRA": 3}


def _app(tmp_path: Path, **settings: object):  # type: ignore[no-untyped-def]
    path = tmp_path / "floor.db"
    upgrade(f"sqlite:///{path}")
    return create_app({"DATABASE_URL": f"sqlite:///{path}", "SECRET_KEY": "x",
                       "INSTANCE_PATH": str(tmp_path), "TESTING": True, **settings})


def test_the_default_is_normal_with_a_ten_second_busy_timeout() -> None:
    config = load_config({"SECRET_KEY": "x"}, environ={})
    assert config["SQLITE_SYNCHRONOUS"] == "NORMAL"
    assert config["SQLITE_BUSY_TIMEOUT_MS"] == 10_000
    config = load_config({"SECRET_KEY": "x"}, environ={"FLOOR_SQLITE_SYNCHRONOUS": "full",
                                                       "FLOOR_SQLITE_BUSY_TIMEOUT_MS": "2500"})
    assert config["SQLITE_SYNCHRONOUS"] == "full" and config["SQLITE_BUSY_TIMEOUT_MS"] == 2500


@pytest.mark.parametrize("level", ["NORMAL", "full", "EXTRA"])
def test_every_connection_of_the_pool_gets_the_pragmas(tmp_path: Path, level: str) -> None:
    app = _app(tmp_path, SQLITE_SYNCHRONOUS=level, SQLITE_BUSY_TIMEOUT_MS=1234)
    engine = get_db(app).engine

    def pragmas(_: int) -> tuple[int, str, int, int]:
        with engine.connect() as conn:
            return (conn.exec_driver_sql("PRAGMA synchronous").scalar(),
                    conn.exec_driver_sql("PRAGMA journal_mode").scalar(),
                    conn.exec_driver_sql("PRAGMA busy_timeout").scalar(),
                    conn.exec_driver_sql("PRAGMA foreign_keys").scalar())

    # Many connections at once (the pool opens new ones), then again after the pool is
    # emptied, as after a database error invalidates it.
    for _ in range(2):
        with ThreadPoolExecutor(12) as pool:
            seen = set(pool.map(pragmas, range(48)))
        assert seen == {(SYNC_VALUES[level.upper()], "wal", 1234, 1)}
        assert engine.pool.checkedin() > 1
        engine.dispose()
    # The file itself is in WAL mode for every other client too.
    with sqlite3.connect(tmp_path / "floor.db") as other:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize("value", ["OFF", "fast", "0"])
def test_a_synchronous_level_that_is_not_durable_or_not_known_is_refused_at_start(
        tmp_path: Path, value: str) -> None:
    with pytest.raises(ValueError, match="FLOOR_SQLITE_SYNCHRONOUS"):
        _app(tmp_path, SQLITE_SYNCHRONOUS=value)


def test_a_writer_busy_past_the_timeout_is_answered_503_database_unavailable(
        tmp_path: Path) -> None:
    app = _app(tmp_path, SQLITE_BUSY_TIMEOUT_MS=200)
    from floor.auth.operations import create_token
    from floor.db import standalone_session

    with app.app_context(), standalone_session(app) as s:
        token = create_token(s, "device", "durability")
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    body = {"scan_id": "busy-1", "station": "B1", "device_id": "B-1", "code": "4006381333931"}
    assert client.post("/api/v1/scans", json={**body, "scan_id": "warm"},
                       headers=headers).status_code == 200
    holder = sqlite3.connect(tmp_path / "floor.db", timeout=5, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        busy = client.post("/api/v1/scans", json=body, headers=headers)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert busy.status_code == 503
    assert busy.get_json()["code"] == "database_unavailable" and busy.get_json()["message"]
    after = client.post("/api/v1/scans", json=body, headers=headers)
    assert after.status_code == 200 and after.get_json()["scan_id"] == "busy-1"


@pytest.mark.skipif(not PG_URL, reason="FLOOR_TEST_POSTGRES_URL is not set")
def test_postgresql_keeps_the_durability_defaults_the_service_relies_on() -> None:
    assert PG_URL
    engine = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            settings = {name: conn.execute(text(f"SHOW {name}")).scalar()
                        for name in ("fsync", "synchronous_commit", "full_page_writes")}
    finally:
        engine.dispose()
    assert settings == {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}
