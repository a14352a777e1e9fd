"""The webhook dispatcher: fans the event log out into deliveries and sends what is due.

One process at a time dispatches (a lease, like the alert scheduler's). Each round, in short
transactions of their own: renew the lease when due, fan out the events logged since each
subscription's cursor, read the deliveries that may go now (for each subscription and order only
the earliest unacknowledged one, see domain.eligible), and hand them to a small thread pool.
Each send happens outside any transaction, with timeouts; its result is recorded in a short
write transaction, which also schedules the retry or makes the delivery dead.

A crash between a receiver's 2xx and the record sends that event again after the restart: the
delivery is at least once, and the event id (from the log's seq) lets receivers deduplicate.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import random
import socket
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Protocol
from urllib.parse import urlsplit

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from floor.db import get_db, is_retryable, utcnow
from floor.destinations import BlockedDestination, resolve_allowed
from floor.live.operations import acquire_lease
from floor.webhooks import domain, operations
from floor.webhooks.models import WebhookSubscription

log = logging.getLogger(__name__)

LEASE = "webhooks"
USER_AGENT = "floor-webhooks/0.1"
ERROR_BODY_BYTES = 300
PRUNE_EVERY = dt.timedelta(hours=1)
PRUNE_BATCHES_PER_ROUND = 20


@dataclass(frozen=True)
class SendResult:
    status_code: int | None
    error: str | None
    latency_ms: float


class Sender(Protocol):
    def __call__(self, url: str, body: bytes, headers: dict[str, str],
                 timeout_s: float) -> SendResult: ...


def http_post(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> SendResult:
    """One POST with a connect and a read timeout; redirects are not followed (a 3xx is not an
    acknowledgement). Any failure is a result, never an exception."""
    import requests

    start = time.perf_counter()
    try:
        with requests.post(url, data=body, headers=headers, timeout=(min(timeout_s, 3.0), timeout_s),
                           allow_redirects=False, stream=True) as response:
            error = None
            if not domain.is_acknowledged(response.status_code):
                head = (response.raw.read(ERROR_BODY_BYTES, decode_content=True) or b"")
                text = head.decode("utf-8", "replace").strip()
                error = f"HTTP {response.status_code}" + (f": {text}" if text else "")
            return SendResult(response.status_code, error, (time.perf_counter() - start) * 1000)
    except requests.Timeout as exc:
        return SendResult(None, f"timeout: {exc}", (time.perf_counter() - start) * 1000)
    except requests.RequestException as exc:
        return SendResult(None, f"{type(exc).__name__}: {exc}", (time.perf_counter() - start) * 1000)
    except Exception as exc:  # noqa: BLE001 - a sender never stops the dispatcher
        return SendResult(None, f"{type(exc).__name__}: {exc}", (time.perf_counter() - start) * 1000)


def blocked_destination(url: str, networks: tuple[domain.Network, ...]) -> str | None:
    """The first address the URL's host resolves to that lies in a blocked network, if any. Run
    before each send, so a host name later pointed at a blocked address is caught too (what is
    left: a resolver that answers differently between this check and the connection)."""
    if not networks:
        return None
    parts = urlsplit(url)
    try:
        resolve_allowed(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80),
                        networks)
    except BlockedDestination as blocked:
        return blocked.address
    except (OSError, UnicodeError, ValueError):
        return None                   # unresolvable: the send fails and says so
    return None


def request_headers(out: operations.Outgoing, body: bytes, now_s: float) -> dict[str, str]:
    return {"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT,
            domain.EVENT_ID_HEADER: out.event_id, "X-Floor-Event-Type": out.type,
            "X-Floor-Attempt": str(out.attempt_no),
            domain.SIGNATURE_HEADER: domain.signature_header(out.secret, int(now_s), body)}


class WebhookDispatcher:
    def __init__(self, app: Flask, sender: Sender | None = None) -> None:
        cfg = app.config
        self.app = app
        self.enabled = bool(cfg.get("WEBHOOKS", True))
        self.max_attempts = int(cfg.get("WEBHOOK_MAX_ATTEMPTS", domain.DEFAULT_MAX_ATTEMPTS))
        self.max_backoff_s = float(cfg.get("WEBHOOK_MAX_BACKOFF_S", 300))
        self.timeout_s = float(cfg.get("WEBHOOK_TIMEOUT_S", 5))
        self.workers = max(1, int(cfg.get("WEBHOOK_WORKERS", 8)))
        # One receiver (or order) that is slow cannot take every worker: the others go on.
        self.per_subscription = max(1, (self.workers + 1) // 2)
        self.poll_s = float(cfg.get("WEBHOOK_POLL_S", 0.5))
        self.lease_ttl = dt.timedelta(seconds=float(cfg.get("WEBHOOK_LEASE_TTL_S", 10)))
        # Finished deliveries are kept this long for the history page, then deleted (0: never).
        self.keep = dt.timedelta(days=float(cfg.get("WEBHOOK_KEEP_DAYS", 30)))
        self._next_prune: dt.datetime | None = None
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{id(self)}"
        self.sender: Sender = sender or http_post
        self.blocked = domain.parse_networks(cfg.get("WEBHOOK_BLOCKED_NETWORKS"))
        self.rng = random.Random()
        self._lease_until: dt.datetime | None = None
        self._in_flight: dict[int, tuple[int, str | None]] = {}
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- life cycle ------------------------------------------------------------------------

    def ensure_started(self) -> None:
        """Started by `start_background` in a serving process; FLOOR_WEBHOOKS=0 keeps a process
        out of it."""
        if not self.enabled or self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="floor-webhooks",
                                                daemon=True)
                self._thread.start()

    @property
    def started(self) -> bool:
        return self._thread is not None

    def notify(self) -> None:
        """Events committed: look now instead of at the next poll (a no-op when not started)."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            holding = False
            try:
                holding = self.run_once(wait=False) >= 0 and self.holds_lease(utcnow())
            except Exception:  # noqa: BLE001 - a database blip must not end the dispatcher
                log.exception("webhook dispatch round failed; trying again")
            if holding:
                self._wake.wait(self.poll_s)
                self._wake.clear()
            else:
                # Another process dispatches: only check now and then whether it is gone.
                self._stop.wait(max(self.lease_ttl.total_seconds() / 3, self.poll_s))

    # --- one round ---------------------------------------------------------------------------

    def holds_lease(self, now: dt.datetime) -> bool:
        return self._lease_until is not None and now < self._lease_until

    def run_once(self, now: dt.datetime | None = None, wait: bool = True) -> int:
        """One round: lease, fan-out, sends. Returns how many sends it started (-1: another
        process holds the lease). With `wait` it returns once those sends are recorded, so a
        test can drive the dispatcher step by step with the time it chooses."""
        now = now or utcnow()
        if not self._renew_lease(now):
            return -1
        self._fan_out(now)
        futures = self._dispatch(now, fixed_now=now if wait else None)
        self._prune(now)
        if wait:
            for future in futures:
                future.result()
        return len(futures)

    def _prune(self, now: dt.datetime) -> int:
        """At most once an hour, in short batches: delete what ended longer than `keep` ago."""
        if self.keep <= dt.timedelta(0) or (self._next_prune is not None and now < self._next_prune):
            return 0
        self._next_prune = now + PRUNE_EVERY
        pruned = 0
        for _ in range(PRUNE_BATCHES_PER_ROUND):
            batch = self._write(lambda s: operations.prune_finished(s, now - self.keep))
            pruned += batch
            if batch < 1000:
                break
        return pruned

    def _renew_lease(self, now: dt.datetime) -> bool:
        # Renewed when a third of it has gone by, not every round: a round is then only reads.
        if (self._lease_until is not None
                and now < self._lease_until - self.lease_ttl * 2 / 3):
            return True
        ok = self._write(lambda s: acquire_lease(s, LEASE, self.holder, self.lease_ttl, now))
        self._lease_until = now + self.lease_ttl if ok else None
        return bool(ok)

    def _fan_out(self, now: dt.datetime) -> int:
        db = get_db(self.app)
        with db.sessionmaker() as s:
            lowest = s.scalar(select(func.min(WebhookSubscription.cursor)).where(
                WebhookSubscription.enabled.is_(True), WebhookSubscription.deleted_at.is_(None)))
            if lowest is None or lowest >= operations.last_seq(s):
                return 0          # nothing new: no write transaction
        made = 0
        while True:
            batch = self._write(lambda s: operations.fan_out(s, now))
            made += batch
            if batch < operations.FAN_OUT_BATCH:
                return made

    def _dispatch(self, now: dt.datetime, fixed_now: dt.datetime | None) -> list[Future[Any]]:
        with self._lock:
            busy = list(self._in_flight.values())
            free = self.workers - len(busy)
        if free <= 0:
            return []
        db = get_db(self.app)
        with db.sessionmaker() as s:
            candidates = operations.due(s, now, free * 2, busy)
        per_sub: dict[int, int] = {}
        for _sub, _key in busy:
            per_sub[_sub] = per_sub.get(_sub, 0) + 1
        futures: list[Future[Any]] = []
        pool = self._executor()
        for out in candidates:
            if len(futures) >= free:
                break
            if per_sub.get(out.subscription_id, 0) >= self.per_subscription:
                continue
            with self._lock:
                if out.id in self._in_flight:
                    continue
                self._in_flight[out.id] = (out.subscription_id, out.order_key)
            per_sub[out.subscription_id] = per_sub.get(out.subscription_id, 0) + 1
            futures.append(pool.submit(self._deliver, out, fixed_now))
        return futures

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="floor-webhook-send")
        return self._pool

    def _deliver(self, out: operations.Outgoing, fixed_now: dt.datetime | None) -> str:
        try:
            body = out.body.encode("utf-8")
            headers = request_headers(out, body, time.time())
            address = blocked_destination(out.url, self.blocked)
            if address is not None:
                result = SendResult(None, f"blocked destination: {address} is in "
                                          "FLOOR_WEBHOOK_BLOCKED_NETWORKS; not sent", 0.0)
            else:
                result = self.sender(out.url, body, headers, self.timeout_s)
            now = fixed_now or utcnow()
            jitter = self.rng.random()
            return self._write(lambda s: operations.record_attempt(
                s, out.id, result.status_code, result.latency_ms, result.error, now,
                self.max_attempts, self.max_backoff_s, jitter))
        except Exception:  # noqa: BLE001 - unrecorded: the delivery stays due and goes again
            log.exception("webhook delivery %s: result not recorded", out.event_id)
            return "unrecorded"
        finally:
            with self._lock:
                self._in_flight.pop(out.id, None)
            self._wake.set()      # the order's next event may go now

    # --- transactions ------------------------------------------------------------------------

    def _write(self, fn: Callable[[Session], Any], attempts: int = 4) -> Any:
        """A short write transaction of its own, retried on lock timeouts and races."""
        db = get_db(self.app)
        for attempt in range(attempts):
            try:
                with db.write_lock:
                    with db.sessionmaker() as s, s.begin():
                        s.connection(execution_options={"floor_write": True})
                        return fn(s)
            except Exception as exc:
                if attempt + 1 < attempts and is_retryable(exc):
                    time.sleep(0.02 * (attempt + 1))
                    continue
                raise
        raise AssertionError("unreachable")
