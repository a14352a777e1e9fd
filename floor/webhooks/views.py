"""REST entry points of webhook subscriptions and deliveries, and the supervisor's page."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, render_template, request

from floor.api import actor_of, run
from floor.auth.security import actor, requires
from floor.auth.scope import all_warehouses_only
from floor.db import db_session, utcnow
from floor.errors import ApiError, json_body
from floor.packing import operations as packing
from floor.packing.domain import DomainError
from floor.webhooks import domain, operations

bp = Blueprint("webhooks", __name__)
API = "/api/v1/webhooks"
DELIVERIES = "/api/v1/webhook-deliveries"
MANAGERS = ("supervisor", "integration")


def _read(fn: Any) -> Any:
    try:
        return fn()
    except DomainError as exc:
        raise ApiError(exc.code, exc.message, exc.status, **exc.extra) from None


def _blocked_networks() -> tuple[domain.Network, ...]:
    return domain.parse_networks(current_app.config.get("WEBHOOK_BLOCKED_NETWORKS"))


def _wake_dispatcher() -> None:
    dispatcher = current_app.extensions.get("floor.webhooks")
    if dispatcher is not None:
        dispatcher.notify()


@bp.post(API)
@requires(*MANAGERS)
@all_warehouses_only
def create_subscription():  # type: ignore[no-untyped-def]
    data = json_body(required=("url",))
    principal = actor()

    def op(s):  # type: ignore[no-untyped-def]
        sub, secret = operations.create_subscription(s, data, actor_of(principal), utcnow(),
                                                   _blocked_networks())
        return {**operations.subscription_view(sub), "secret": secret}

    return jsonify(run(op)), 201


@bp.get(API)
@requires(*MANAGERS)
@all_warehouses_only
def list_subscriptions():  # type: ignore[no-untyped-def]
    include_deleted = request.args.get("all") in ("1", "true")
    return jsonify({"subscriptions": operations.list_subscriptions(db_session(), include_deleted),
                    "event_types": list(domain.WEBHOOK_TYPES)})


@bp.get(f"{API}/<int:sub_id>")
@requires(*MANAGERS)
@all_warehouses_only
def get_subscription(sub_id: int):  # type: ignore[no-untyped-def]
    return jsonify(_read(lambda: operations.subscription_detail(db_session(), sub_id)))


@bp.patch(f"{API}/<int:sub_id>")
@requires(*MANAGERS)
@all_warehouses_only
def update_subscription(sub_id: int):  # type: ignore[no-untyped-def]
    data = json_body()
    principal = actor()

    def op(s):  # type: ignore[no-untyped-def]
        sub, secret = operations.update_subscription(s, sub_id, data, actor_of(principal), utcnow(),
                                                   _blocked_networks())
        body = operations.subscription_view(sub, operations.state_counts(s, [sub.id]).get(sub.id))
        if secret is not None:
            body["secret"] = secret
        return body

    body = run(op)
    _wake_dispatcher()
    return jsonify(body)


@bp.delete(f"{API}/<int:sub_id>")
@requires(*MANAGERS)
@all_warehouses_only
def delete_subscription(sub_id: int):  # type: ignore[no-untyped-def]
    principal = actor()
    return jsonify(run(lambda s: operations.subscription_view(
        operations.delete_subscription(s, sub_id, actor_of(principal), utcnow()))))


def _limit() -> int:
    raw = request.args.get("limit", "50")
    if not raw.isdigit() or not 1 <= int(raw) <= 500:
        raise ApiError("invalid_field", "limit is a whole number from 1 to 500.", field="limit")
    return int(raw)


def _states() -> list[str]:
    raw = request.args.get("state", "")
    states = [part for part in raw.split(",") if part]
    unknown = [part for part in states if part not in domain.STATES]
    if unknown:
        raise ApiError("invalid_field", f"state is one or more of {', '.join(domain.STATES)}.",
                       field="state")
    return states


@bp.get(f"{API}/<int:sub_id>/deliveries")
@requires(*MANAGERS)
@all_warehouses_only
def list_deliveries(sub_id: int):  # type: ignore[no-untyped-def]
    states, limit = _states(), _limit()
    order_no = request.args.get("order_no") or None
    if order_no is not None and len(order_no) > 64:
        raise ApiError("invalid_field", "order_no is at most 64 characters.", field="order_no")
    s = db_session()
    _read(lambda: operations.find_subscription(s, sub_id))
    return jsonify({"deliveries": operations.list_deliveries(s, sub_id, states, order_no, limit)})


@bp.get(f"{DELIVERIES}/<int:delivery_id>")
@requires(*MANAGERS)
@all_warehouses_only
def get_delivery(delivery_id: int):  # type: ignore[no-untyped-def]
    return jsonify(_read(lambda: operations.delivery_detail(db_session(), delivery_id)))


@bp.post(f"{DELIVERIES}/<int:delivery_id>/redeliver")
@requires(*MANAGERS)
@all_warehouses_only
def redeliver(delivery_id: int):  # type: ignore[no-untyped-def]
    principal = actor()
    body = run(lambda s: operations.delivery_view(
        operations.redeliver(s, delivery_id, actor_of(principal), utcnow())))
    _wake_dispatcher()
    return jsonify(body)


@bp.post(f"{API}/<int:sub_id>/redeliver-dead")
@requires(*MANAGERS)
@all_warehouses_only
def redeliver_dead(sub_id: int):  # type: ignore[no-untyped-def]
    principal = actor()
    ids = run(lambda s: operations.redeliver_dead(s, sub_id, actor_of(principal), utcnow()))
    _wake_dispatcher()
    return jsonify({"subscription_id": sub_id, "redelivered": len(ids), "delivery_ids": ids})


@bp.post(f"{DELIVERIES}/<int:delivery_id>/discard")
@requires("supervisor")
@all_warehouses_only
def discard(delivery_id: int):  # type: ignore[no-untyped-def]
    data = json_body(required=("reason",))
    principal = actor()

    def op(s):  # type: ignore[no-untyped-def]
        reason = packing.clean_text(data, "reason", 300)
        assert reason is not None
        return operations.delivery_view(
            operations.discard(s, delivery_id, reason, actor_of(principal), utcnow()))

    body = run(op)
    _wake_dispatcher()
    return jsonify(body)


@bp.get("/webhooks")
@requires("supervisor")
@all_warehouses_only
def webhooks_page():  # type: ignore[no-untyped-def]
    s = db_session()
    subscriptions = operations.list_subscriptions(s)
    urls = {sub["id"]: sub["url"] for sub in operations.list_subscriptions(s, include_deleted=True)}
    return render_template(
        "webhooks.html", subscriptions=subscriptions, urls=urls, totals=operations.totals(s),
        dead=operations.list_deliveries(s, None, [domain.DEAD], limit=200),
        held=operations.list_deliveries(s, None, [domain.HELD], limit=200),
        attempts=operations.recent_attempts(s, 50), changes=operations.recent_changes(s, 30),
        event_types=domain.WEBHOOK_TYPES, states=domain.STATES)
