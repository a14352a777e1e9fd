"""Use cases of webhooks: subscriptions, the fan-out of the event log into deliveries, what is
due, the record of each attempt, redelivery and discarding. Load, decide, change, flush: never
commit, never emit (entry points and the dispatcher own the transactions)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

from sqlalchemy import and_, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from floor.eventlog import EventCounter, EventLogEntry
from floor.packing.domain import Actor, DomainError
from floor.webhooks import domain
from floor.webhooks.models import (WebhookAttempt, WebhookChange, WebhookDelivery,
                                   WebhookSubscription)

FAN_OUT_BATCH = 500
# Row ids are 32-bit on PostgreSQL: a larger number in a URL names nothing (not a driver error).
MAX_ROW_ID = 2**31 - 1


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _rule(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except domain.WebhookRuleError as exc:
        raise DomainError(exc.code, exc.message, 400, **exc.extra) from None


# --- subscriptions ----------------------------------------------------------------------------

def subscription_view(sub: WebhookSubscription, counts: Mapping[str, int] | None = None
                      ) -> dict[str, Any]:
    """Never the secret: its hint only."""
    return {"id": sub.id, "url": sub.url, "events": list(sub.events),
            "secret_hint": sub.secret_hint, "enabled": sub.enabled, "cursor": sub.cursor,
            "created_by": sub.created_by, "created_at": _iso(sub.created_at),
            "updated_by": sub.updated_by, "updated_at": _iso(sub.updated_at),
            "deleted_by": sub.deleted_by, "deleted_at": _iso(sub.deleted_at),
            "counts": {state: int((counts or {}).get(state, 0)) for state in domain.STATES}}


def _change(s: Session, sub: WebhookSubscription, action: str, actor: Actor, now: dt.datetime,
            detail: dict[str, Any], delivery_id: int | None = None) -> None:
    s.add(WebhookChange(subscription_id=sub.id, delivery_id=delivery_id, action=action,
                        by=actor.name, role=actor.role, at=now, detail=detail))


def last_seq(s: Session) -> int:
    return int(s.scalar(select(EventCounter.last_seq).where(EventCounter.id == 1)) or 0)


def create_subscription(s: Session, data: Mapping[str, Any], actor: Actor, now: dt.datetime,
                        blocked: Iterable[domain.Network] = ()) -> tuple[WebhookSubscription, str]:
    """A new receiver; it gets the events committed from now on. Answers the secret (generated
    when none was given): the only time it is shown."""
    url = _rule(lambda: domain.validate_url(data.get("url"), blocked))
    events = _rule(lambda: domain.validate_events(data.get("events", ["status"])))
    given = data.get("secret")
    secret = (domain.new_secret() if given is None or given == ""
              else _rule(lambda: domain.validate_secret(given)))
    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        raise DomainError("invalid_field", "enabled is true or false.", field="enabled")
    sub = WebhookSubscription(url=url, events=events, secret=secret,
                              secret_hint=domain.secret_hint(secret), enabled=enabled,
                              cursor=last_seq(s), created_by=actor.name, created_at=now)
    s.add(sub)
    s.flush()
    _change(s, sub, "created", actor, now, {"url": url, "events": events, "enabled": enabled,
                                            "secret_hint": sub.secret_hint,
                                            "secret_generated": given in (None, "")})
    return sub, secret


def find_subscription(s: Session, sub_id: int, lock: bool = False) -> WebhookSubscription:
    sub = (s.get(WebhookSubscription, sub_id, with_for_update=lock or None)
           if 0 < sub_id <= MAX_ROW_ID else None)
    if sub is None:
        raise DomainError("unknown_webhook", f"No webhook subscription {sub_id}.", 404)
    return sub


def _live(s: Session, sub_id: int) -> WebhookSubscription:
    sub = find_subscription(s, sub_id, lock=True)
    if sub.deleted_at is not None:
        raise DomainError("webhook_deleted", f"Webhook subscription {sub_id} was deleted.", 409)
    return sub


def update_subscription(s: Session, sub_id: int, data: Mapping[str, Any], actor: Actor,
                        now: dt.datetime, blocked: Iterable[domain.Network] = ()
                        ) -> tuple[WebhookSubscription, str | None]:
    """Change url, events, enabled, or the secret (`secret`, or `rotate_secret: true` for a
    generated one, answered once). Disabling pauses: enabling again catches up from where it
    stopped. Returns the new secret when it changed."""
    known = ("url", "events", "enabled", "secret", "rotate_secret")
    if not any(name in data for name in known):
        raise DomainError("missing_field", f"Nothing to change: give one of {', '.join(known)}.",
                          fields=list(known))
    sub = _live(s, sub_id)
    changed: dict[str, Any] = {}
    if "url" in data:
        url = _rule(lambda: domain.validate_url(data.get("url"), blocked))
        if url != sub.url:
            changed["url"] = [sub.url, url]
            sub.url = url
    if "events" in data:
        events = _rule(lambda: domain.validate_events(data.get("events")))
        if events != list(sub.events):
            changed["events"] = [list(sub.events), events]
            sub.events = events
    if "enabled" in data:
        if not isinstance(data["enabled"], bool):
            raise DomainError("invalid_field", "enabled is true or false.", field="enabled")
        if data["enabled"] != sub.enabled:
            changed["enabled"] = [sub.enabled, data["enabled"]]
            sub.enabled = data["enabled"]
    new_secret = None
    if data.get("secret") not in (None, "") or data.get("rotate_secret") is True:
        if data.get("rotate_secret") not in (None, False, True):
            raise DomainError("invalid_field", "rotate_secret is true or false.",
                              field="rotate_secret")
        given = data.get("secret")
        new_secret = (_rule(lambda: domain.validate_secret(given)) if given not in (None, "")
                      else domain.new_secret())
        changed["secret_hint"] = [sub.secret_hint, domain.secret_hint(new_secret)]
        sub.secret, sub.secret_hint = new_secret, domain.secret_hint(new_secret)
    if changed:
        sub.updated_by, sub.updated_at = actor.name, now
        action = ("disabled" if changed.get("enabled") == [True, False] else
                  "enabled" if changed.get("enabled") == [False, True] else "changed")
        _change(s, sub, action, actor, now, changed)
    return sub, new_secret


def delete_subscription(s: Session, sub_id: int, actor: Actor, now: dt.datetime
                        ) -> WebhookSubscription:
    """Nothing more is sent; the subscription, its deliveries and history stay on record."""
    sub = _live(s, sub_id)
    sub.enabled = False
    sub.deleted_by, sub.deleted_at = actor.name, now
    sub.updated_by, sub.updated_at = actor.name, now
    _change(s, sub, "deleted", actor, now, {"url": sub.url})
    return sub


def state_counts(s: Session, sub_ids: Iterable[int] | None = None) -> dict[int, dict[str, int]]:
    query = (select(WebhookDelivery.subscription_id, WebhookDelivery.state, func.count())
             .group_by(WebhookDelivery.subscription_id, WebhookDelivery.state))
    if sub_ids is not None:
        query = query.where(WebhookDelivery.subscription_id.in_(list(sub_ids)))
    out: dict[int, dict[str, int]] = {}
    for sub_id, state, count in s.execute(query):
        out.setdefault(sub_id, {})[state] = int(count)
    return out


def list_subscriptions(s: Session, include_deleted: bool = False) -> list[dict[str, Any]]:
    query = select(WebhookSubscription).order_by(WebhookSubscription.id)
    if not include_deleted:
        query = query.where(WebhookSubscription.deleted_at.is_(None))
    subs = s.scalars(query).all()
    counts = state_counts(s, [sub.id for sub in subs])
    return [subscription_view(sub, counts.get(sub.id)) for sub in subs]


def subscription_detail(s: Session, sub_id: int) -> dict[str, Any]:
    sub = find_subscription(s, sub_id)
    return subscription_view(sub, state_counts(s, [sub.id]).get(sub.id))


# --- fan-out: the event log into deliveries ---------------------------------------------------

def _status_body(s: Session, entry: EventLogEntry) -> dict[str, Any]:
    return domain.status_body(entry.seq, entry.payload, entry.rooms)


def _pack_result_body(s: Session, entry: EventLogEntry) -> dict[str, Any]:
    """What went into the box, read when the `packed` status event is fanned out: the pack
    session completed in that event's transaction (the last one of the order closed by then),
    its accepted scans and the supervisors' overrides, the snapshot it was packed against."""
    from floor.packing.models import Order, Override, PackSession, Warehouse
    from floor.scan.models import ScanEvent

    p = entry.payload
    body: dict[str, Any] = {
        "id": domain.event_id(entry.seq, "pack_result"), "type": "pack_result", "seq": entry.seq,
        "order_no": p.get("order_no"), "channel": p.get("channel"),
        "warehouse": domain.warehouse_of(entry.rooms), "at": p.get("at"),
        "station": p.get("station"), "device_id": p.get("device_id"), "packer": p.get("by"),
        "role": p.get("role"), "wave_no": p.get("wave_no"), "waybill_no": None,
        "snapshot_hash": None, "snapshot_version": None, "lines": [], "overrides": []}
    # Order numbers are per warehouse: the event's warehouse room says which order it was.
    order = s.scalar(select(Order).join(Warehouse, Warehouse.id == Order.warehouse_id).where(
        Order.order_no == p.get("order_no"), Order.channel == p.get("channel"),
        Warehouse.code == body["warehouse"]))
    if order is None:
        return body
    body["waybill_no"] = _waybill_at(s, order, entry.seq)
    session = s.scalar(select(PackSession).where(
        PackSession.order_id == order.id, PackSession.state == "completed",
        PackSession.closed_at <= entry.at).order_by(PackSession.closed_at.desc(),
                                                    PackSession.id.desc()).limit(1))
    if session is None:
        return body
    snap = session.snapshot
    body["snapshot_hash"], body["snapshot_version"] = snap.content_hash, snap.version
    scans = s.scalars(select(ScanEvent).where(
        ScanEvent.session_id == session.id, ScanEvent.ok.is_(True),
        ScanEvent.verdict == "accepted", ScanEvent.line_no.is_not(None))
        .order_by(ScanEvent.id)).all()
    units: list[dict[str, Any]] = [
        {"line_no": r.line_no, "scan_id": r.scan_id, "code": r.code, "sku": r.sku, "lot": r.lot,
         "serial": r.serial, "by": r.by, "device_id": r.device_id, "at": _iso(r.at),
         "override": None} for r in scans]
    overrides = s.scalars(select(Override).where(Override.session_id == session.id)
                          .order_by(Override.id)).all()
    for o in overrides:
        body["overrides"].append({"scan_id": o.scan_id, "refused_code": o.refused_code,
                                  "reason_code": o.reason_code, "note": o.note,
                                  "line_no": o.line_no, "waived_lines": list(o.waived or []),
                                  "by": o.by, "at": _iso(o.at)})
        if o.line_no is None:
            continue
        scan = s.scalar(select(ScanEvent).where(ScanEvent.scan_id == o.scan_id))
        if scan is not None:
            # A refused unit the supervisor credited to a line went into the box too.
            units.append({"line_no": o.line_no, "scan_id": scan.scan_id, "code": scan.code,
                          "sku": scan.sku, "lot": scan.lot, "serial": scan.serial, "by": scan.by,
                          "device_id": scan.device_id, "at": _iso(scan.at),
                          "override": o.reason_code})
    body["lines"] = domain.pack_result_lines(snap.lines, session.counts or {},
                                             session.waived or [], units)
    return body


def _waybill_at(s: Session, order: Any, seq: int) -> str | None:
    """The order's waybill as it was at event `seq`: a later `waybill` event (a rebind) names
    the one it replaced; without one, the waybill now."""
    from floor.eventlog import EventRoom

    later = s.scalars(select(EventLogEntry).where(
        EventLogEntry.seq.in_(select(EventRoom.seq).where(
            EventRoom.room == f"order:{order.order_no}"[:100], EventRoom.seq > seq)),
        EventLogEntry.type == "waybill").order_by(EventLogEntry.seq))
    for entry in later:
        payload = entry.payload
        # The room is by number: the same number of another channel or warehouse is not this order.
        if (payload.get("channel", order.channel) == order.channel and "old_waybill_no" in payload
                and payload.get("warehouse", order.warehouse.code) == order.warehouse.code):
            return payload["old_waybill_no"]
    return order.waybill_no


# The body of each webhook type (the routes that produce them: domain.ROUTES).
BODIES: dict[str, Callable[[Session, EventLogEntry], dict[str, Any]]] = {
    "status": _status_body,
    "pack_result": _pack_result_body,
}


def _body(s: Session, entry: EventLogEntry, webhook_type: str) -> dict[str, Any]:
    build = BODIES.get(webhook_type)
    if build is None:
        return domain.generic_body(entry.seq, webhook_type, entry.payload, entry.rooms)
    return build(s, entry)


def fan_out(s: Session, now: dt.datetime, batch: int = FAN_OUT_BATCH) -> int:
    """Turn the events logged since each active subscription's cursor into its deliveries and
    move the cursor, in the caller's transaction. The log's seq is gap-free and in commit order,
    so everything up to the counter read here is visible: nothing is skipped. Returns how many
    deliveries were made."""
    subs = s.scalars(select(WebhookSubscription)
                     .where(WebhookSubscription.enabled.is_(True),
                            WebhookSubscription.deleted_at.is_(None))
                     .order_by(WebhookSubscription.id).with_for_update()).all()
    top = last_seq(s)
    behind = [sub for sub in subs if sub.cursor < top]
    if not behind:
        return 0
    low = min(sub.cursor for sub in behind)
    entries = s.scalars(select(EventLogEntry)
                        .where(EventLogEntry.seq > low, EventLogEntry.seq <= top,
                               EventLogEntry.type.in_(list(domain.ROUTES)))
                        .order_by(EventLogEntry.seq).limit(batch)).all()
    # A full batch ends the round at its last event; otherwise everything up to `top` was read.
    upto = entries[-1].seq if len(entries) == batch else top
    bodies: dict[tuple[int, str], str] = {}
    made = 0
    for sub in behind:
        mine = [e for e in entries if sub.cursor < e.seq <= upto]
        planned: list[tuple[EventLogEntry, str, str | None]] = []
        for entry in mine:
            for webhook_type in domain.routes_for(entry.type, entry.payload, sub.events):
                key = domain.order_key(entry.payload.get("channel"), entry.payload.get("order_no"))
                planned.append((entry, webhook_type, key))
        keys = {key for _e, _t, key in planned if key is not None}
        blocked = set(s.scalars(select(WebhookDelivery.order_key).where(
            WebhookDelivery.subscription_id == sub.id,
            WebhookDelivery.state.in_((domain.DEAD, domain.HELD)),
            WebhookDelivery.order_key.in_(keys)).distinct())) if keys else set()
        for entry, webhook_type, key in planned:
            text = bodies.get((entry.seq, webhook_type))
            if text is None:
                text = domain.encode_body(_body(s, entry, webhook_type))
                bodies[(entry.seq, webhook_type)] = text
            s.add(WebhookDelivery(
                subscription_id=sub.id, seq=entry.seq, type=webhook_type,
                event_id=domain.event_id(entry.seq, webhook_type),
                order_no=entry.payload.get("order_no"), order_key=key, body=text,
                state=domain.initial_state(key in blocked), attempts=0, next_attempt_at=now,
                created_at=now))
            made += 1
        sub.cursor = max(sub.cursor, upto)
    s.flush()
    return made


# --- what is due, and the record of each attempt -----------------------------------------------

@dataclass(frozen=True)
class Outgoing:
    """A delivery to send, with what the sender needs (read before the send, outside any
    transaction)."""
    id: int
    subscription_id: int
    order_key: str | None
    seq: int
    attempt_no: int
    event_id: str
    type: str
    url: str
    secret: str
    body: str
    next_attempt_at: dt.datetime


def due(s: Session, now: dt.datetime, limit: int,
        busy: Iterable[tuple[int, str | None]] = ()) -> list[Outgoing]:
    """The deliveries that may go now (domain.eligible): pending and due, of an active
    subscription, with nothing earlier of the same order unfinished, not being sent already."""
    d, e = aliased(WebhookDelivery), aliased(WebhookDelivery)
    earlier = exists().where(
        e.subscription_id == d.subscription_id, e.order_key == d.order_key,
        e.state.in_(domain.UNFINISHED),
        or_(e.seq < d.seq, and_(e.seq == d.seq, e.id < d.id)))
    busy = list(busy)
    rows = s.execute(
        select(d, WebhookSubscription.url, WebhookSubscription.secret)
        .join(WebhookSubscription, WebhookSubscription.id == d.subscription_id)
        .where(d.state == domain.PENDING, d.next_attempt_at <= now,
               WebhookSubscription.enabled.is_(True), WebhookSubscription.deleted_at.is_(None),
               ~earlier)
        .order_by(d.next_attempt_at, d.seq, d.id).limit(limit + len(busy))).all()
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    views = {row[0].id: domain.DeliveryView(
        row[0].id, row[0].subscription_id, row[0].order_key, row[0].seq, row[0].state,
        (row[0].next_attempt_at - epoch).total_seconds()) for row in rows}
    chosen = domain.eligible(list(views.values()), (now - epoch).total_seconds(), busy)
    by_id = {row[0].id: row for row in rows}
    out = []
    for view in chosen[:limit]:
        row, url, secret = by_id[view.id]
        out.append(Outgoing(row.id, row.subscription_id, row.order_key, row.seq,
                            row.attempts + 1, row.event_id, row.type, url, secret, row.body,
                            row.next_attempt_at))
    return out


def record_attempt(s: Session, delivery_id: int, status_code: int | None, latency_ms: float,
                   error: str | None, now: dt.datetime, max_attempts: int, max_backoff_s: float,
                   jitter: float) -> str:
    """One try's result: kept in the history; the delivery acknowledged, rescheduled with
    backoff, or dead (then the later events of its order are held). Returns the new state."""
    d = s.get(WebhookDelivery, delivery_id, with_for_update=True)
    if d is None:
        return "gone"
    s.add(WebhookAttempt(delivery_id=d.id, attempt_no=d.attempts + 1, at=now,
                         status_code=status_code, latency_ms=round(latency_ms, 1),
                         error=domain.excerpt(error)))
    if d.state != domain.PENDING:
        # Recorded by another sender meanwhile (a lease taken over): history only.
        return d.state
    outcome = domain.after_attempt(d.attempts, status_code, max_attempts, max_backoff_s, jitter)
    d.state, d.attempts = outcome.state, outcome.attempts
    d.last_status_code, d.last_error = status_code, domain.excerpt(error, 500)
    d.last_attempt_at = now
    if outcome.state == domain.DELIVERED:
        d.delivered_at = now
    elif outcome.retry_in_s is not None:
        d.next_attempt_at = now + dt.timedelta(seconds=outcome.retry_in_s)
    if outcome.state == domain.DEAD:
        d.dead_at = now
    if outcome.hold_followers:
        _set_followers(s, d, domain.PENDING, domain.HELD)
    s.flush()
    return d.state


def _set_followers(s: Session, d: WebhookDelivery, from_state: str, to_state: str) -> int:
    """The later deliveries of the same order and subscription."""
    if d.order_key is None:
        return 0
    result = s.execute(update(WebhookDelivery).where(
        WebhookDelivery.subscription_id == d.subscription_id,
        WebhookDelivery.order_key == d.order_key, WebhookDelivery.state == from_state,
        or_(WebhookDelivery.seq > d.seq,
            and_(WebhookDelivery.seq == d.seq, WebhookDelivery.id > d.id)))
        .values(state=to_state).execution_options(synchronize_session=False))
    return int(result.rowcount or 0)


# --- dead letters: redeliver or discard ---------------------------------------------------------

def find_delivery(s: Session, delivery_id: int, lock: bool = False) -> WebhookDelivery:
    d = (s.get(WebhookDelivery, delivery_id, with_for_update=lock or None)
         if 0 < delivery_id <= MAX_ROW_ID else None)
    if d is None:
        raise DomainError("unknown_delivery", f"No webhook delivery {delivery_id}.", 404)
    return d


def _transition(fn: Callable[[str], str], state: str) -> str:
    try:
        return fn(state)
    except domain.TransitionRefused as exc:
        raise DomainError(exc.code, exc.message, 409, state=state) from None


def redeliver(s: Session, delivery_id: int, actor: Actor, now: dt.datetime) -> WebhookDelivery:
    """A dead delivery goes again from its first attempt, at once; its order's held events
    become pending again and follow it in order once it is acknowledged."""
    d = find_delivery(s, delivery_id, lock=True)
    before = d.state
    d.state = _transition(domain.redeliver, d.state)
    detail = {"event_id": d.event_id, "order_no": d.order_no, "state": before,
              "attempts": d.attempts, "last_status_code": d.last_status_code,
              "last_error": d.last_error}
    d.attempts, d.next_attempt_at, d.dead_at = 0, now, None
    released = _set_followers(s, d, domain.HELD, domain.PENDING)
    _change(s, d.subscription, "redelivered", actor, now, {**detail, "released": released},
            delivery_id=d.id)
    s.flush()
    return d


def redeliver_dead(s: Session, sub_id: int, actor: Actor, now: dt.datetime) -> list[int]:
    """Every dead delivery of a subscription again (after a long outage of its receiver), each
    recorded as one redelivery. Returns their ids."""
    _live(s, sub_id)
    ids = list(s.scalars(select(WebhookDelivery.id).where(
        WebhookDelivery.subscription_id == sub_id, WebhookDelivery.state == domain.DEAD)
        .order_by(WebhookDelivery.seq, WebhookDelivery.id)))
    for delivery_id in ids:
        redeliver(s, delivery_id, actor, now)
    return ids


def discard(s: Session, delivery_id: int, reason: str, actor: Actor, now: dt.datetime
            ) -> WebhookDelivery:
    """A supervisor gives up on a dead delivery (recorded with the reason); the order's held
    events go on."""
    d = find_delivery(s, delivery_id, lock=True)
    d.state = _transition(domain.discard, d.state)
    released = _set_followers(s, d, domain.HELD, domain.PENDING)
    _change(s, d.subscription, "discarded", actor, now,
            {"event_id": d.event_id, "order_no": d.order_no, "reason": reason,
             "attempts": d.attempts, "last_status_code": d.last_status_code,
             "last_error": d.last_error, "released": released}, delivery_id=d.id)
    s.flush()
    return d


# --- reading ------------------------------------------------------------------------------------

def prune_finished(s: Session, before: dt.datetime, batch: int = 1000) -> int:
    """Delete up to `batch` deliveries that ended (delivered or discarded) before `before`, with
    their attempts. The subscription's change log is the audit and stays; a line that named a
    pruned delivery keeps its detail and loses only the link. Unfinished deliveries are never
    touched. Returns how many deliveries went."""
    ended = func.coalesce(WebhookDelivery.delivered_at, WebhookDelivery.last_attempt_at,
                          WebhookDelivery.created_at)
    ids = list(s.scalars(select(WebhookDelivery.id).where(
        WebhookDelivery.state.in_((domain.DELIVERED, domain.DISCARDED)), ended < before)
        .order_by(WebhookDelivery.id).limit(batch)))
    if not ids:
        return 0
    s.execute(update(WebhookChange).where(WebhookChange.delivery_id.in_(ids))
              .values(delivery_id=None))
    s.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(ids)))
    s.execute(delete(WebhookDelivery).where(WebhookDelivery.id.in_(ids)))
    return len(ids)


def delivery_view(d: WebhookDelivery) -> dict[str, Any]:
    return {"id": d.id, "subscription_id": d.subscription_id, "event_id": d.event_id,
            "type": d.type, "seq": d.seq, "order_no": d.order_no, "state": d.state,
            "attempts": d.attempts, "next_attempt_at": _iso(d.next_attempt_at),
            "last_status_code": d.last_status_code, "last_error": d.last_error,
            "created_at": _iso(d.created_at), "last_attempt_at": _iso(d.last_attempt_at),
            "delivered_at": _iso(d.delivered_at), "dead_at": _iso(d.dead_at)}


def attempt_view(a: WebhookAttempt, d: WebhookDelivery | None = None) -> dict[str, Any]:
    out = {"delivery_id": a.delivery_id, "attempt_no": a.attempt_no, "at": _iso(a.at),
           "status_code": a.status_code, "latency_ms": a.latency_ms, "error": a.error}
    if d is not None:
        out.update({"event_id": d.event_id, "type": d.type, "order_no": d.order_no,
                    "subscription_id": d.subscription_id, "seq": d.seq})
    return out


def delivery_detail(s: Session, delivery_id: int) -> dict[str, Any]:
    import json

    d = find_delivery(s, delivery_id)
    attempts = s.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id == d.id)
                         .order_by(WebhookAttempt.id)).all()
    return {**delivery_view(d), "body": json.loads(d.body),
            "attempt_history": [attempt_view(a) for a in attempts]}


def list_deliveries(s: Session, sub_id: int | None, states: Sequence[str] = (),
                    order_no: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    query = select(WebhookDelivery)
    if sub_id is not None:
        query = query.where(WebhookDelivery.subscription_id == sub_id)
    if states:
        query = query.where(WebhookDelivery.state.in_(list(states)))
    if order_no:
        query = query.where(WebhookDelivery.order_no == order_no)
    rows = s.scalars(query.order_by(WebhookDelivery.id.desc()).limit(limit)).all()
    return [delivery_view(d) for d in rows]


def recent_attempts(s: Session, limit: int = 50) -> list[dict[str, Any]]:
    rows = s.execute(select(WebhookAttempt, WebhookDelivery)
                     .join(WebhookDelivery, WebhookDelivery.id == WebhookAttempt.delivery_id)
                     .order_by(WebhookAttempt.id.desc()).limit(limit)).all()
    return [attempt_view(a, d) for a, d in rows]


def recent_changes(s: Session, limit: int = 30) -> list[dict[str, Any]]:
    rows = s.scalars(select(WebhookChange).order_by(WebhookChange.id.desc()).limit(limit)).all()
    return [{"subscription_id": c.subscription_id, "delivery_id": c.delivery_id,
             "action": c.action, "by": c.by, "role": c.role, "at": _iso(c.at),
             "detail": c.detail} for c in rows]


def totals(s: Session) -> dict[str, int]:
    """Deliveries per state, over every subscription."""
    counts = dict(s.execute(select(WebhookDelivery.state, func.count())
                            .group_by(WebhookDelivery.state)).all())
    return {state: int(counts.get(state, 0)) for state in domain.STATES}
