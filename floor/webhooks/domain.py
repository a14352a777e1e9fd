"""Pure rules of webhooks: which events go out as what, signing, retry timing, ordering.

No Flask, no SQLAlchemy: everything here is decided from plain values, so it is tested alone.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import secrets as _secrets
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence
from urllib.parse import urlsplit

from floor.destinations import (DEFAULT_BLOCKED_NETWORKS, Network, blocked_address,  # noqa: F401
                               literal_blocked, parse_networks)


# --- what goes out --------------------------------------------------------------------------

@dataclass(frozen=True)
class Route:
    """An event-log event becomes a webhook of `webhook_type` when `applies(payload)`."""
    webhook_type: str
    applies: Callable[[Mapping[str, Any]], bool] = lambda _payload: True


def _is_pack_completion(payload: Mapping[str, Any]) -> bool:
    # A pack session completes with the order's move to `packed` (by the completing scan or a
    # supervisor's override), so that status event is the pack result's event.
    return payload.get("status") == "packed"


# The one mapping of event-log types to webhook types. A new type: add its route here and its
# body in floor.webhooks.operations.BODIES.
ROUTES: dict[str, tuple[Route, ...]] = {
    "status": (Route("status"), Route("pack_result", _is_pack_completion)),
    "waybill": (Route("waybill"),),
}
WEBHOOK_TYPES: tuple[str, ...] = tuple(dict.fromkeys(
    route.webhook_type for routes in ROUTES.values() for route in routes))


def routes_for(log_type: str, payload: Mapping[str, Any],
               subscribed: Iterable[str]) -> list[str]:
    """The webhook types one logged event produces for a subscription, in a fixed order."""
    wanted = set(subscribed)
    return [route.webhook_type for route in ROUTES.get(log_type, ())
            if route.webhook_type in wanted and route.applies(payload)]


def event_id(seq: int, webhook_type: str) -> str:
    """Stable across retries, restarts and subscriptions: derived from the event log's seq (one
    logged event may produce several types, e.g. `status` and `pack_result`)."""
    return f"evt_{seq}_{webhook_type}"


def order_key(channel: str | None, order_no: str | None) -> str | None:
    """Deliveries of one order go in seq order; an order is (channel, order_no)."""
    if not order_no:
        return None
    return f"{channel or ''}/{order_no}"


def encode_body(body: Mapping[str, Any]) -> str:
    """The exact JSON text sent (and signed); kept with the delivery so every retry sends the
    same bytes."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), sort_keys=False)


# --- subscriptions --------------------------------------------------------------------------

URL_MAX = 2000
SECRET_MIN, SECRET_MAX = 16, 128
SECRET_PREFIX = "whsec_"


class WebhookRuleError(ValueError):
    def __init__(self, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code, self.message, self.extra = code, message, extra


# --- where a webhook may go -------------------------------------------------------------------

# Networks a webhook never reaches unless the deployment says otherwise: the rule is shared with
# label printers (floor.destinations).


def literal_host_blocked(url: str, networks: Iterable[Network]) -> bool:
    """A URL whose host is an IP address in a blocked network (host names are checked when
    resolved, at each delivery)."""
    return literal_blocked(urlsplit(url).hostname or "", networks)


def validate_url(value: Any, blocked: Iterable[Network] = ()) -> str:
    if not isinstance(value, str) or not value.strip():
        raise WebhookRuleError("invalid_url", "url must be an http or https URL.", field="url")
    url = value.strip()
    if len(url) > URL_MAX:
        raise WebhookRuleError("invalid_url", f"url is at most {URL_MAX} characters.", field="url")
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise WebhookRuleError("invalid_url", "url may not contain spaces or control characters.",
                               field="url")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise WebhookRuleError("invalid_url", "url is not a valid URL.", field="url") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise WebhookRuleError("invalid_url", "url must be an http or https URL with a host.",
                               field="url")
    if parts.username is not None or parts.password is not None:
        # Credentials in a URL would show on every list; the signature authenticates instead.
        raise WebhookRuleError("invalid_url", "url may not carry a user name or password.",
                               field="url")
    if parts.fragment:
        raise WebhookRuleError("invalid_url", "url may not have a #fragment.", field="url")
    if port == 0:
        raise WebhookRuleError("invalid_url", "url has an invalid port.", field="url")
    if literal_host_blocked(url, blocked):
        raise WebhookRuleError("blocked_destination",
                               "url points into a network webhooks may not reach "
                               "(FLOOR_WEBHOOK_BLOCKED_NETWORKS).", field="url")
    return url


def validate_events(value: Any) -> list[str]:
    if (not isinstance(value, list) or not value
            or not all(isinstance(v, str) for v in value)):
        raise WebhookRuleError("invalid_events",
                               f"events is a non-empty list of: {', '.join(WEBHOOK_TYPES)}.",
                               field="events")
    unknown = [v for v in value if v not in WEBHOOK_TYPES]
    if unknown:
        raise WebhookRuleError("invalid_events",
                               f"Unknown event type(s): {', '.join(unknown[:5])}; known: "
                               f"{', '.join(WEBHOOK_TYPES)}.", field="events")
    return [t for t in WEBHOOK_TYPES if t in value]


def validate_secret(value: Any) -> str:
    if not isinstance(value, str) or not SECRET_MIN <= len(value) <= SECRET_MAX:
        raise WebhookRuleError("invalid_secret",
                               f"secret is {SECRET_MIN} to {SECRET_MAX} characters.",
                               field="secret")
    if any(ord(c) < 33 or ord(c) == 127 for c in value):
        raise WebhookRuleError("invalid_secret",
                               "secret may not contain spaces or control characters.",
                               field="secret")
    return value


def new_secret() -> str:
    return SECRET_PREFIX + _secrets.token_urlsafe(32)


def secret_hint(secret: str) -> str:
    """What lists show instead of the secret: enough to tell two secrets apart."""
    return "••••" + secret[-4:]


# --- signing --------------------------------------------------------------------------------

SIGNATURE_HEADER = "X-Floor-Signature"
EVENT_ID_HEADER = "X-Floor-Event-Id"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """hex HMAC-SHA256 of "<t>.<raw body>" with the secret."""
    message = str(int(timestamp)).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={int(timestamp)},v1={signature(secret, timestamp, body)}"


_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def parse_signature_header(header: str | None) -> tuple[int, list[str]] | None:
    """(t, [v1 signatures]) from `t=<unix seconds>,v1=<hex>[,v1=<hex>...]`; None when it is not
    one. Unknown keys are ignored (room for later schemes)."""
    if not header or len(header) > 1000:
        return None
    timestamp: int | None = None
    found: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            return None
        if key == "t":
            if not value.isascii() or not value.isdigit() or timestamp is not None:
                return None
            timestamp = int(value)
        elif key == "v1":
            if _HEX64.match(value):
                found.append(value)
    if timestamp is None or not found:
        return None
    return timestamp, found


def verify_signature(secret: str, header: str | None, body: bytes, now_s: float,
                     tolerance_s: float = 300.0) -> bool:
    """What a receiver does: the header parses, its time is within `tolerance_s` of now (an old
    request replayed is refused) and one v1 matches, compared in constant time."""
    parsed = parse_signature_header(header)
    if parsed is None:
        return False
    timestamp, candidates = parsed
    if abs(now_s - timestamp) > tolerance_s:
        return False
    expected = signature(secret, timestamp, body)
    return any(hmac.compare_digest(expected, c) for c in candidates)


# --- retries --------------------------------------------------------------------------------

DEFAULT_MAX_ATTEMPTS = 12
BACKOFF_BASE_S = 1.0


def backoff_s(failed_attempts: int, max_backoff_s: float, jitter: float,
              base_s: float = BACKOFF_BASE_S) -> float:
    """The wait after the `failed_attempts`-th failure: base·2^(n-1), capped at `max_backoff_s`,
    then somewhere in its upper half (`jitter` in [0, 1)), so receivers coming back from an
    outage are not hit by every sender at the same instant."""
    n = max(1, failed_attempts)
    cap = max(0.0, float(max_backoff_s))
    exponent = min(n - 1, 60)            # 2**60 s is past any cap: no float overflow
    ceiling = min(cap, base_s * math.pow(2.0, exponent))
    jitter = min(max(jitter, 0.0), 1.0)
    return ceiling / 2.0 + ceiling / 2.0 * jitter


def is_acknowledged(status_code: int | None) -> bool:
    return status_code is not None and 200 <= status_code < 300


# --- delivery states and ordering ---------------------------------------------------------------

PENDING, DELIVERED, DEAD, HELD, DISCARDED = "pending", "delivered", "dead", "held", "discarded"
STATES = (PENDING, HELD, DEAD, DELIVERED, DISCARDED)
# Not acknowledged and not given up on: a later event of the same order waits behind these.
UNFINISHED = (PENDING, DEAD, HELD)


@dataclass(frozen=True)
class DeliveryView:
    """What the ordering rule needs to know of a delivery."""
    id: int
    subscription_id: int
    order_key: str | None
    seq: int
    state: str
    next_attempt_at: float          # seconds on any clock, compared with `now`


def _position(d: DeliveryView) -> tuple[int, int]:
    return d.seq, d.id


def eligible(deliveries: Sequence[DeliveryView], now: float,
             in_flight: Iterable[tuple[int, str | None]] = ()) -> list[DeliveryView]:
    """Which deliveries may be sent now: for each (subscription, order), only the earliest one
    not yet acknowledged or discarded, when it is pending, due, and not being sent already.
    Deliveries without an order are independent of each other. Earliest due first."""
    busy = {key for key in in_flight if key[1] is not None}
    heads: dict[tuple[int, str], DeliveryView] = {}
    free: list[DeliveryView] = []
    for d in deliveries:
        if d.state not in UNFINISHED:
            continue
        if d.order_key is None:
            if d.state == PENDING:
                free.append(d)
            continue
        key = (d.subscription_id, d.order_key)
        if key not in heads or _position(d) < _position(heads[key]):
            heads[key] = d
    chosen = [d for key, d in heads.items() if d.state == PENDING and key not in busy]
    chosen += free
    return sorted((d for d in chosen if d.next_attempt_at <= now),
                  key=lambda d: (d.next_attempt_at, d.seq, d.id))


@dataclass(frozen=True)
class AttemptOutcome:
    state: str                      # the delivery's state after this attempt
    attempts: int
    retry_in_s: float | None        # when it is tried again (None: not again by itself)
    hold_followers: bool            # the later events of its order now wait (dead letter)


def after_attempt(attempts_before: int, status_code: int | None, max_attempts: int,
                  max_backoff_s: float, jitter: float) -> AttemptOutcome:
    """A 2xx acknowledges; anything else (or no answer) is retried with backoff until
    `max_attempts` tries, then the delivery is dead and its order's later events are held."""
    attempts = attempts_before + 1
    if is_acknowledged(status_code):
        return AttemptOutcome(DELIVERED, attempts, None, False)
    if attempts >= max(1, max_attempts):
        return AttemptOutcome(DEAD, attempts, None, True)
    return AttemptOutcome(PENDING, attempts, backoff_s(attempts, max_backoff_s, jitter), False)


def initial_state(order_blocked: bool) -> str:
    """A new delivery of an order that has a dead (or held) one waits behind it."""
    return HELD if order_blocked else PENDING


class TransitionRefused(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def redeliver(state: str) -> str:
    """A supervisor sends a dead delivery again: from scratch, at once. (A discarded one is
    not: the order's later events may have gone out since, and it would arrive out of order.)"""
    if state != DEAD:
        raise TransitionRefused("not_dead", f"Only a dead delivery can be redelivered; this one "
                                            f"is {state}.")
    return PENDING


def discard(state: str) -> str:
    """A supervisor gives up on a dead delivery; the order's held events then go on."""
    if state != DEAD:
        raise TransitionRefused("not_dead", f"Only a dead delivery can be discarded; this one "
                                            f"is {state}.")
    return DISCARDED


def excerpt(text: str | None, limit: int = 300) -> str | None:
    """Short, single-line error text for the history."""
    if text is None:
        return None
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


# --- bodies ---------------------------------------------------------------------------------

def warehouse_of(rooms: Sequence[Any]) -> str | None:
    """Logged events name their warehouse by room (`warehouse:JX`)."""
    for room in rooms:
        if isinstance(room, str) and room.startswith("warehouse:"):
            return room[len("warehouse:"):]
    return None


def status_body(seq: int, payload: Mapping[str, Any], rooms: Sequence[Any]) -> dict[str, Any]:
    """The contract's fields first, then what else the status event records."""
    return {"id": event_id(seq, "status"), "type": "status", "seq": seq,
            "order_no": payload.get("order_no"), "status": payload.get("status"),
            "at": payload.get("at"), "from_status": payload.get("from"),
            "by": payload.get("by"), "role": payload.get("role"),
            "station": payload.get("station"), "device_id": payload.get("device_id"),
            "warehouse": warehouse_of(rooms), "channel": payload.get("channel"),
            "wave_no": payload.get("wave_no"), "reason": payload.get("reason")}


# Fields of a logged event that are bookkeeping, not news for a receiver.
_INTERNAL = frozenset({"seq"})


def generic_body(seq: int, webhook_type: str, payload: Mapping[str, Any],
                 rooms: Sequence[Any]) -> dict[str, Any]:
    """A type without a body of its own: the logged event's fields as they are."""
    body: dict[str, Any] = {"id": event_id(seq, webhook_type), "type": webhook_type, "seq": seq}
    body.update({k: v for k, v in payload.items() if k not in _INTERNAL and k not in body})
    body.setdefault("warehouse", warehouse_of(rooms))
    return body


def pack_result_lines(kit_lines: Sequence[Mapping[str, Any]], counts: Mapping[str, Any],
                      waived: Iterable[Any], units: Sequence[Mapping[str, Any]]
                      ) -> list[dict[str, Any]]:
    """Each snapshot line with what went into the box: the units (lot, serial, scan) credited
    to it, how many the session counted, and whether a supervisor waived it."""
    waived_lines = {int(n) for n in waived}
    by_line: dict[int, list[dict[str, Any]]] = {}
    for unit in units:
        if unit.get("line_no") is not None:
            by_line.setdefault(int(unit["line_no"]), []).append(
                {k: v for k, v in unit.items() if k != "line_no"})
    out = []
    for line in kit_lines:
        line_no = int(line["line_no"])
        out.append({"line_no": line_no, "sku": line.get("sku"), "name": line.get("name"),
                    "role": line.get("role"), "qty": line.get("qty"),
                    "packed_qty": int(counts.get(str(line_no), counts.get(line_no, 0)) or 0),
                    "waived": line_no in waived_lines,
                    "units": by_line.get(line_no, [])})
    return out
