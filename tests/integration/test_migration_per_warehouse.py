"""Migration 0008 on a database with data: orders and the SKU catalogue become per warehouse.

A database is migrated to 0007 and filled the way the code of then left it (one catalogue
shared by every warehouse: the last order in won the SKU's name and the barcodes), then
`floor db upgrade` (SQLite) or the same upgrade (PostgreSQL) takes it to the newest schema:
each warehouse's catalogue is what its own orders said, the rows that refer to orders stay
intact, and the same order number may then be used by both warehouses."""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from floor import create_app
from floor.auth.operations import create_token
from floor.db import get_db, standalone_session
from floor.migrate import upgrade
from tests.conftest import BACKENDS, PG_URL, make_order

NOW = dt.datetime(2026, 11, 30, 8, 0)
JX_LINES = [{"line_no": 1, "sku": "SERUM", "name": "精华液 30ml", "qty": 1, "role": "main",
             "barcodes": ["6901234567892", "SERUM-ALT"], "lot": None}]
WB_LINES = [{"line_no": 1, "sku": "SERUM", "name": "B serum", "qty": 1, "role": "main",
             "barcodes": ["WB-SERUM-1"], "lot": None}]


def _fill_at_0007(url: str) -> None:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    meta = sa.MetaData()
    meta.reflect(engine)
    t = meta.tables
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        conn.execute(t["warehouses"].insert(), [
            {"id": 1, "code": "JX", "name": "JX", "settings": {}},
            {"id": 2, "code": "WB", "name": "WB", "settings": {}}])
        conn.execute(t["stations"].insert(), [{"id": 1, "code": "P01", "warehouse_id": 1, "kind": "pack"}])
        order = {"status": "packing", "customer": {}, "lines_hash": "h", "wave_id": None,
                 "snapshot_id": None, "created_at": NOW, "channel": "taobao"}
        conn.execute(t["orders"].insert(), [
            {**order, "id": 1, "order_no": "TB001", "warehouse_id": 1, "waybill_no": "SF8000000000001",
             "lines": JX_LINES, "updated_at": NOW},
            # WB's order came in later: the shared catalogue took its name and barcode.
            {**order, "id": 2, "order_no": "TB002", "warehouse_id": 2, "waybill_no": None,
             "status": "received", "lines": WB_LINES, "updated_at": NOW + dt.timedelta(hours=1)}])
        conn.execute(t["kit_snapshots"].insert(), [
            {"id": 1, "order_id": 1, "version": 1, "content_hash": "h", "lines": JX_LINES,
             "created_at": NOW, "created_by": "oms", "reason": "wave"}])
        conn.execute(t["orders"].update().where(t["orders"].c.id == 1).values(snapshot_id=1))
        conn.execute(t["snapshot_skus"].insert(), [{"snapshot_id": 1, "sku": "SERUM"}])
        conn.execute(t["pack_sessions"].insert(), [
            {"id": 1, "order_id": 1, "snapshot_id": 1, "station_id": 1, "device_id": "PDA-1",
             "state": "open", "counts": {}, "waived": [], "opened_by": "p", "opened_at": NOW}])
        conn.execute(t["pack_cursors"].insert(), [
            {"station_id": 1, "device_id": "PDA-1", "session_id": 1, "updated_at": NOW}])
        conn.execute(t["status_events"].insert(), [
            {"id": 1, "seq": 1, "order_id": 1, "from_status": None, "status": "packing", "at": NOW,
             "by": "p", "role": "packer", "reason": ""}])
        conn.execute(t["event_counter"].update().values(last_seq=1))
        conn.execute(t["scan_events"].insert(), [
            {"id": 1, "scan_id": "s-1", "station": "P01", "device_id": "PDA-1", "by": "p",
             "role": "packer", "raw": "SF8000000000001", "code": "SF8000000000001", "at": NOW,
             "received_at": NOW, "ok": True, "verdict": "order_opened", "message": "", "order_id": 1,
             "session_id": 1, "response": {}}])
        # The shared catalogue as the old code left it, and a SKU no order names any more.
        conn.execute(t["skus"].insert(), [{"id": 1, "code": "SERUM", "name": "B serum"},
                                          {"id": 2, "code": "OLD", "name": "Retired"}])
        conn.execute(t["sku_barcodes"].insert(), [
            {"barcode": "6901234567892", "sku_id": 1}, {"barcode": "SERUM-ALT", "sku_id": 1},
            {"barcode": "WB-SERUM-1", "sku_id": 1}, {"barcode": "OLD-1", "sku_id": 2}])
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def db_at_0007(request, tmp_path: Path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'floor.db'}"
        upgrade(url, "0007")
        _fill_at_0007(url)
        yield url
        return
    assert PG_URL
    schema = f"floor_mig_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://"))
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = f"{PG_URL}{'&' if '?' in PG_URL else '?'}options=-csearch_path%3D{schema}"
    try:
        upgrade(url, "0007")
        _fill_at_0007(url)
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _upgrade_to_head(url: str, tmp_path: Path) -> None:
    if url.startswith("sqlite"):
        # The command an operator runs, on a copy of the database.
        env = {**os.environ, "FLOOR_DATABASE_URL": url, "FLOOR_INSTANCE_PATH": str(tmp_path)}
        script = Path(sys.executable).with_name("floor")
        command = [str(script)] if script.exists() else [
            sys.executable, "-c", "from floor.cli import main; main()"]
        done = subprocess.run([*command, "db", "upgrade"], env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
    else:
        upgrade(url)


def _catalogue(url: str) -> dict[str, dict[str, object]]:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        skus = conn.execute(sa.text(
            "SELECT w.code, s.id, s.code, s.name FROM skus s JOIN warehouses w ON w.id = s.warehouse_id")).all()
        barcodes = conn.execute(sa.text(
            "SELECT w.code, b.barcode, s.code FROM sku_barcodes b JOIN warehouses w ON w.id = b.warehouse_id "
            "JOIN skus s ON s.id = b.sku_id AND s.warehouse_id = b.warehouse_id")).all()
        if conn.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
        kept = conn.execute(sa.text(
            "SELECT o.order_no, o.snapshot_id, p.state, c.session_id, e.order_id FROM orders o "
            "JOIN pack_sessions p ON p.order_id = o.id JOIN pack_cursors c ON c.session_id = p.id "
            "JOIN scan_events e ON e.order_id = o.id WHERE o.id = 1")).all()
    engine.dispose()
    out: dict[str, dict[str, object]] = {}
    for code, _id, sku, name in skus:
        out.setdefault(code, {"names": {}, "barcodes": {}})["names"][sku] = name  # type: ignore[index]
    for code, barcode, sku in barcodes:
        out.setdefault(code, {"names": {}, "barcodes": {}})["barcodes"][barcode] = sku  # type: ignore[index]
    out["_kept"] = {"rows": [tuple(r) for r in kept]}
    return out


def test_a_populated_0007_database_upgrades_to_a_catalogue_per_warehouse(db_at_0007, tmp_path):
    _upgrade_to_head(db_at_0007, tmp_path)
    catalogue = _catalogue(db_at_0007)
    # Each warehouse has what its own orders said; the retired SKU stays known in both.
    assert catalogue["JX"] == {"names": {"SERUM": "精华液 30ml", "OLD": "Retired"},
                               "barcodes": {"6901234567892": "SERUM", "SERUM-ALT": "SERUM",
                                            "OLD-1": "OLD"}}
    assert catalogue["WB"] == {"names": {"SERUM": "B serum", "OLD": "Retired"},
                               "barcodes": {"WB-SERUM-1": "SERUM", "OLD-1": "OLD"}}
    # The order, its snapshot, open session, cursor and scans are untouched.
    assert catalogue["_kept"]["rows"] == [("TB001", 1, "open", 1, 1)]

    app = create_app({"DATABASE_URL": db_at_0007, "INSTANCE_PATH": str(tmp_path), "TESTING": True,
                      "SECRET_KEY": "test-secret", "ALERT_INTERVAL_S": 0})
    try:
        with app.app_context(), standalone_session(app) as s:
            token = create_token(s, "integration", "oms")
            supervisor = create_token(s, "supervisor", "sup")
        client = app.test_client()
        # WB may now take the number TB001 too: another order, JX's stays as it was.
        body = make_order("TB001", waybill=None)
        body["warehouse"] = "WB"
        created = client.post("/api/v1/orders", json=body, headers={"Authorization": f"Bearer {token}"})
        assert created.status_code == 201, created.get_json()
        jx = client.get("/api/v1/orders/TB001?warehouse=JX", headers={"Authorization": f"Bearer {supervisor}"})
        assert (jx.status_code, jx.get_json()["status"], jx.get_json()["warehouse"]) == (200, "packing", "JX")
    finally:
        app.extensions["floor.pump"].stop()
        get_db(app).engine.dispose()
