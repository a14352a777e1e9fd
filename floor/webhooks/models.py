"""Webhook subscriptions, their deliveries (the outbox's fan-out), attempts and changes.

The outbox itself is the event log (floor.eventlog): every status change writes its event there
in its own transaction. A subscription's `cursor` is the last seq fanned out into
`webhook_deliveries` for it.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from floor.db import Base, utcnow


class WebhookSubscription(Base):
    __tablename__ = "webhook_subscriptions"
    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[Any]]
    # Kept as given: the service signs with it (an HMAC key cannot be stored as a hash).
    secret: Mapped[str] = mapped_column(String(128))
    secret_hint: Mapped[str] = mapped_column(String(16))
    enabled: Mapped[bool] = mapped_column(default=True)
    # The last event-log seq fanned out for this subscription.
    cursor: Mapped[int] = mapped_column(default=0)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(100))
    updated_at: Mapped[dt.datetime | None]
    deleted_by: Mapped[str | None] = mapped_column(String(100))
    deleted_at: Mapped[dt.datetime | None]


class WebhookDelivery(Base):
    """One event for one subscription, from fan-out until acknowledged, dead or discarded."""
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("subscription_id", "seq", "type", name="uq_webhook_deliveries_event"),
        # The dispatcher's two questions: what is due, and what comes earlier in an order.
        Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
        Index("ix_webhook_deliveries_order", "subscription_id", "order_key", "seq"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("webhook_subscriptions.id"))
    seq: Mapped[int]
    type: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(64), index=True)
    order_no: Mapped[str | None] = mapped_column(String(64))
    order_key: Mapped[str | None] = mapped_column(String(100))
    # The exact JSON text sent: every attempt signs and sends the same bytes.
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_attempt_at: Mapped[dt.datetime | None]
    delivered_at: Mapped[dt.datetime | None]
    dead_at: Mapped[dt.datetime | None]
    subscription: Mapped[WebhookSubscription] = relationship()


class WebhookAttempt(Base):
    """Every try of a delivery, for the history page."""
    __tablename__ = "webhook_attempts"
    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("webhook_deliveries.id"), index=True)
    attempt_no: Mapped[int]
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    status_code: Mapped[int | None]
    latency_ms: Mapped[float]
    error: Mapped[str | None] = mapped_column(String(300))
    delivery: Mapped[WebhookDelivery] = relationship()


class WebhookChange(Base):
    """Who created, changed, disabled or deleted a subscription, and who redelivered or
    discarded a dead delivery."""
    __tablename__ = "webhook_changes"
    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("webhook_subscriptions.id"),
                                                 index=True)
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("webhook_deliveries.id"))
    action: Mapped[str] = mapped_column(String(32))
    by: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(32))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
