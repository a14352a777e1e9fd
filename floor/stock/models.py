"""Tables of stock: the level per (warehouse, SKU), every movement of it (append-only), and the
supervisor's decision when a wave was released short (append-only)."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column

from floor.db import Base, utcnow


class StockItem(Base):
    """What the record says is on the shelf. A SKU without a row is not tracked."""
    __tablename__ = "stock_items"
    __table_args__ = (UniqueConstraint("warehouse_id", "sku", name="uq_stock_items_warehouse_sku"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"))
    sku: Mapped[str] = mapped_column(String(64))
    on_hand: Mapped[int]
    # At or below it the SKU is low (an alert); null: the warehouse's stock_low_threshold.
    low_threshold: Mapped[int | None]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(100), default="")


class StockMovement(Base):
    """Append-only: every change of a stock row, with what caused it and who."""
    __tablename__ = "stock_movements"
    __table_args__ = (Index("ix_stock_movements_warehouse_sku", "warehouse_id", "sku", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"))
    sku: Mapped[str] = mapped_column(String(64))
    delta: Mapped[int]
    on_hand_after: Mapped[int]
    low_threshold_after: Mapped[int | None]
    reason: Mapped[str] = mapped_column(String(16))     # set | upload | pack | return_restock | adjust
    order_no: Mapped[str | None] = mapped_column(String(64))
    rma_no: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(Text, default="")
    by: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(32), default="")
    device_id: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class WaveStockDecision(Base):
    """Append-only: a wave released although its tracked stock was short, and how (release
    anyway, hold the short orders, split them off), with the shortfall at that moment."""
    __tablename__ = "wave_stock_decisions"
    id: Mapped[int] = mapped_column(primary_key=True)
    wave_no: Mapped[str] = mapped_column(String(64), index=True)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"))
    decision: Mapped[str] = mapped_column(String(16))   # release_anyway | hold_short | split
    reason: Mapped[str] = mapped_column(Text, default="")
    shortfall: Mapped[list[Any]]
    short_orders: Mapped[list[Any]]
    by: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(32), default="")
    seq: Mapped[int | None]                               # its event in the event log
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


@event.listens_for(StockMovement, "before_update")
@event.listens_for(WaveStockDecision, "before_update")
def _append_only(_mapper: Any, _conn: Any, target: Any) -> None:
    raise ValueError(f"{type(target).__name__} rows are append-only")
