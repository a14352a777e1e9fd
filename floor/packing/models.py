"""Tables of the packing domain. Snapshots, scan events and status events are append-only."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, event, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from floor.db import Base, utcnow


class Warehouse(Base):
    __tablename__ = "warehouses"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    # Per-warehouse rules: status flow, SLAs, carrier cut-off (see floor.live.domain).
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")


class Station(Base):
    __tablename__ = "stations"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="pack", server_default="pack")  # pack | dock
    warehouse_id: Mapped[int | None] = mapped_column(ForeignKey("warehouses.id"))
    warehouse: Mapped[Warehouse | None] = relationship()


class Sku(Base):
    """A warehouse's catalogue: which SKU a barcode means there, for codes outside the open
    order's kit. Per warehouse, so one warehouse's orders never rename or re-map another's."""
    __tablename__ = "skus"
    __table_args__ = (UniqueConstraint("warehouse_id", "code", name="uq_skus_warehouse_code"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"))
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200), default="")


class SkuBarcode(Base):
    __tablename__ = "sku_barcodes"
    # Barcode first: the key also serves a lookup of a barcode in every warehouse.
    barcode: Mapped[str] = mapped_column(String(128), primary_key=True)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"), primary_key=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id"), index=True)
    sku: Mapped[Sku] = relationship()


class Wave(Base):
    __tablename__ = "waves"
    id: Mapped[int] = mapped_column(primary_key=True)
    wave_no: Mapped[str] = mapped_column(String(64), unique=True)
    warehouse_id: Mapped[int | None] = mapped_column(ForeignKey("warehouses.id"))
    station_id: Mapped[int | None] = mapped_column(ForeignKey("stations.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(100), default="")
    station: Mapped[Station | None] = relationship()


class Order(Base):
    __tablename__ = "orders"
    # Order numbers are per warehouse: another warehouse's same number is another order.
    __table_args__ = (UniqueConstraint("warehouse_id", "channel", "order_no",
                                       name="uq_orders_warehouse_channel_order_no"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    order_no: Mapped[str] = mapped_column(String(64), index=True)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"))
    status: Mapped[str] = mapped_column(String(32), default="received")
    # A carrier's waybill number is unique in the world, so across warehouses too.
    waybill_no: Mapped[str | None] = mapped_column(String(64), unique=True)
    customer: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The kit as the OMS last sent it; frozen copies live in kit_snapshots.
    lines: Mapped[list[Any]] = mapped_column(default=list)
    lines_hash: Mapped[str] = mapped_column(String(64))
    wave_id: Mapped[int | None] = mapped_column(ForeignKey("waves.id"), index=True)
    snapshot_id: Mapped[int | None] = mapped_column(ForeignKey("kit_snapshots.id", use_alter=True, name="fk_orders_snapshot_id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    warehouse: Mapped[Warehouse] = relationship()
    wave: Mapped[Wave | None] = relationship()
    snapshot: Mapped["KitSnapshot | None"] = relationship(foreign_keys=[snapshot_id])


class KitSnapshot(Base):
    """A frozen copy of an order's kit. Never updated: a later OMS edit adds a new version."""
    __tablename__ = "kit_snapshots"
    __table_args__ = (UniqueConstraint("order_id", "version", name="uq_snapshot_order_version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    version: Mapped[int]
    content_hash: Mapped[str] = mapped_column(String(64))
    lines: Mapped[list[Any]]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(100), default="")
    reason: Mapped[str] = mapped_column(String(200), default="")


class SnapshotSku(Base):
    """Which SKUs a snapshot holds: answers "which other order is this item for?"."""
    __tablename__ = "snapshot_skus"
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("kit_snapshots.id"), primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class PackSession(Base):
    """One order being packed by one (station, device). At most one open session per order."""
    __tablename__ = "pack_sessions"
    __table_args__ = (
        Index("uq_pack_session_open_order", "order_id", unique=True,
              sqlite_where=text("state = 'open'"), postgresql_where=text("state = 'open'")),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("kit_snapshots.id"))
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"))
    device_id: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="open")  # open | completed | released
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)   # line_no (str) -> units scanned
    waived: Mapped[list[Any]] = mapped_column(default=list)
    opened_by: Mapped[str] = mapped_column(String(100), default="")
    opened_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[dt.datetime | None]
    order: Mapped[Order] = relationship()
    snapshot: Mapped[KitSnapshot] = relationship()
    station: Mapped[Station] = relationship()


class PackCursor(Base):
    """The session a (station, device) is working on now; survives reconnects and restarts."""
    __tablename__ = "pack_cursors"
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[int | None] = mapped_column(ForeignKey("pack_sessions.id"))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    session: Mapped[PackSession | None] = relationship()


class StatusEvent(Base):
    """Append-only: every micro-status change of an order, with who, device, station and why."""
    __tablename__ = "status_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(unique=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    by: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(32), default="")
    device_id: Mapped[str | None] = mapped_column(String(64))
    station: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text, default="")


class Override(Base):
    """A supervisor's override of a refused scan, with its reason code."""
    __tablename__ = "overrides"
    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("pack_sessions.id"), index=True)
    scan_id: Mapped[str] = mapped_column(String(64), unique=True)
    refused_code: Mapped[str] = mapped_column(String(32))
    reason_code: Mapped[str] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(Text, default="")
    line_no: Mapped[int | None]
    waived: Mapped[list[Any]] = mapped_column(default=list)
    by: Mapped[str] = mapped_column(String(100))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class WaybillChange(Base):
    """Append-only: a waybill bound or replaced through the API, with who, how, when and why."""
    __tablename__ = "waybill_changes"
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    old_waybill_no: Mapped[str | None] = mapped_column(String(64))
    new_waybill_no: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="")
    by: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(32), default="")
    via: Mapped[str] = mapped_column(String(16), default="")     # token | session
    device_id: Mapped[str | None] = mapped_column(String(64))
    order_status: Mapped[str] = mapped_column(String(32))          # the order's status then
    seq: Mapped[int]                                               # its `waybill` event
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


@event.listens_for(KitSnapshot, "before_update")
@event.listens_for(StatusEvent, "before_update")
@event.listens_for(Override, "before_update")
@event.listens_for(WaybillChange, "before_update")
def _append_only(_mapper: Any, _conn: Any, target: Any) -> None:
    raise ValueError(f"{type(target).__name__} rows are append-only")
