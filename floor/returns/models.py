"""Return work orders, what QC scanned out of the box, and the closing inspection report."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from floor.db import Base, utcnow
from floor.packing.models import KitSnapshot, Order


class ReturnOrder(Base):
    """One return of one order, inspected against the snapshot the order was packed with."""
    __tablename__ = "returns"
    id: Mapped[int] = mapped_column(primary_key=True)
    rma_no: Mapped[str] = mapped_column(String(32), unique=True)
    trace_code: Mapped[str] = mapped_column(String(32), unique=True)    # 溯源码, on the label
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    order: Mapped[Order] = relationship()
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("kit_snapshots.id"))
    snapshot: Mapped[KitSnapshot] = relationship()
    warehouse: Mapped[str] = mapped_column(String(32))
    station: Mapped[str | None] = mapped_column(String(32))              # the returns station
    reason: Mapped[str] = mapped_column(String(200))
    customer_note: Mapped[str | None] = mapped_column(String(1000))
    state: Mapped[str] = mapped_column(String(16), default="open")      # open | closed | confirmed
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    closed_by: Mapped[str | None] = mapped_column(String(100))
    closed_at: Mapped[dt.datetime | None]


class ReturnScan(Base):
    """One item taken out of the returned box. Idempotent on scan_id; never updated."""
    __tablename__ = "return_scans"
    id: Mapped[int] = mapped_column(primary_key=True)
    scan_id: Mapped[str] = mapped_column(String(64), unique=True)
    return_id: Mapped[int] = mapped_column(ForeignKey("returns.id"), index=True)
    raw: Mapped[str] = mapped_column(String(600))
    code: Mapped[str] = mapped_column(String(512))
    symbology_id: Mapped[str | None] = mapped_column(String(8))
    sku: Mapped[str | None] = mapped_column(String(64))
    lot: Mapped[str | None] = mapped_column(String(64))
    serial: Mapped[str | None] = mapped_column(String(64))
    condition: Mapped[str] = mapped_column(String(16))                  # resellable | opened | damaged
    photo: Mapped[str | None] = mapped_column(String(255))              # file in the instance folder
    note: Mapped[str | None] = mapped_column(String(500))
    verdict: Mapped[str] = mapped_column(String(32))                    # the live comparison's word
    response: Mapped[dict[str, Any]] = mapped_column(default=dict)       # the answer, replayed as is
    by: Mapped[str] = mapped_column(String(100))
    device_id: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class InspectionReport(Base):
    """The closing report: immutable, its content hash chained to the snapshot's hash. A QC
    lead's confirmation of the outcome is recorded beside it, never inside the hashed content."""
    __tablename__ = "inspection_reports"
    id: Mapped[int] = mapped_column(primary_key=True)
    return_id: Mapped[int] = mapped_column(ForeignKey("returns.id"), unique=True)
    lines: Mapped[list[Any]]
    content_hash: Mapped[str] = mapped_column(String(64))
    snapshot_hash: Mapped[str] = mapped_column(String(64))
    suggested_outcome: Mapped[str] = mapped_column(String(16))           # refund | partial | manual_review
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    confirmed_outcome: Mapped[str | None] = mapped_column(String(16))
    confirmed_by: Mapped[str | None] = mapped_column(String(100))
    confirmed_at: Mapped[dt.datetime | None]
    confirm_note: Mapped[str | None] = mapped_column(String(500))
