"""Devices seen on the floor: handhelds, serial scanners. Last seen and last read per device."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from floor.db import Base, utcnow


class Device(Base):
    __tablename__ = "devices"
    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="handheld")  # handheld | serial
    station: Mapped[str | None] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default="online")    # online | offline | error
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # The debounce rule compares against the device's previous read.
    last_code: Mapped[str | None] = mapped_column(String(512))
    last_code_at: Mapped[dt.datetime | None]
