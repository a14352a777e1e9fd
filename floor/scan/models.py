"""The append-only record of every scan, with the verdict it got."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, event
from sqlalchemy.orm import Mapped, mapped_column

from floor.db import Base, utcnow


class ScanEvent(Base):
    __tablename__ = "scan_events"
    # A double read looks up the device's previous read of the same code.
    __table_args__ = (Index("ix_scan_events_device_id_id", "device_id", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    scan_id: Mapped[str] = mapped_column(String(64), unique=True)
    station: Mapped[str] = mapped_column(String(32))
    device_id: Mapped[str] = mapped_column(String(64))
    by: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(32))
    raw: Mapped[str] = mapped_column(Text)                 # as received (escaped if unreadable)
    code: Mapped[str] = mapped_column(String(512))         # normalised
    symbology_id: Mapped[str | None] = mapped_column(String(4))
    at: Mapped[dt.datetime]                                # effective time (client clock if sane)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    ok: Mapped[bool]
    verdict: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    session_id: Mapped[int | None] = mapped_column(ForeignKey("pack_sessions.id"), index=True)
    line_no: Mapped[int | None]
    sku: Mapped[str | None] = mapped_column(String(64))
    lot: Mapped[str | None] = mapped_column(String(64))
    serial: Mapped[str | None] = mapped_column(String(64))
    response: Mapped[dict[str, Any]]                       # the verdict as answered, for replays


@event.listens_for(ScanEvent, "before_update")
def _append_only(_mapper: Any, _conn: Any, target: Any) -> None:
    raise ValueError("scan events are append-only")
