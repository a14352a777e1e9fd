"""Alerts and the lease that lets one process evaluate them."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from floor.db import Base, utcnow


class Alert(Base):
    """Raised by the evaluator, acknowledged by a supervisor, cleared when its cause goes away.
    At most one open (not cleared) alert per key."""
    __tablename__ = "alerts"
    __table_args__ = (
        # Per warehouse: keys name orders, and order numbers are per warehouse.
        Index("uq_alerts_open_warehouse_key", "warehouse", "key", unique=True,
              sqlite_where=text("cleared_at IS NULL"), postgresql_where=text("cleared_at IS NULL")),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(128))
    level: Mapped[str] = mapped_column(String(8))
    warehouse: Mapped[str | None] = mapped_column(String(32))
    order_no: Mapped[str | None] = mapped_column(String(64))
    station: Mapped[str | None] = mapped_column(String(32))
    device_id: Mapped[str | None] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    raised_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    acked_by: Mapped[str | None] = mapped_column(String(100))
    acked_at: Mapped[dt.datetime | None]
    ack_note: Mapped[str | None] = mapped_column(String(500))
    cleared_at: Mapped[dt.datetime | None]


class Lease(Base):
    """A named lease: whoever holds it (until it expires) runs that periodic job."""
    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[dt.datetime]
