"""Cameras and their recording segments (files exported by the NVR or dropped in a folder)."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from floor.db import Base, utcnow


class Camera(Base):
    __tablename__ = "cameras"
    id: Mapped[int] = mapped_column(primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(64), unique=True)
    station: Mapped[str] = mapped_column(String(32), index=True)
    # An NVR's playback reference (Hikvision-style RTSP), when the camera records on one.
    nvr_host: Mapped[str | None] = mapped_column(String(255))
    nvr_port: Mapped[int | None]
    nvr_channel: Mapped[int | None]
    registered_by: Mapped[str | None] = mapped_column(String(100))
    registered_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Recording(Base):
    """One video file: frame 0 at `started_at`, `frames` frames at `fps` (read from the file).
    `keyframes` lists the frame indices a decoder can start from (exact frame lookups)."""
    __tablename__ = "recordings"
    __table_args__ = (UniqueConstraint("camera_id", "path", name="uq_recordings_camera_path"),
                      Index("ix_recordings_camera_start", "camera_id", "started_at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id"))
    camera: Mapped[Camera] = relationship()
    path: Mapped[str] = mapped_column(String(1000))
    started_at: Mapped[dt.datetime]
    ends_at: Mapped[dt.datetime]
    frames: Mapped[int]
    fps: Mapped[float]
    width: Mapped[int]
    height: Mapped[int]
    codec: Mapped[str] = mapped_column(String(32))
    keyframes: Mapped[list[Any]] = mapped_column(default=list)
    registered_by: Mapped[str | None] = mapped_column(String(100))
    registered_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
