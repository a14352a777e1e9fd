"""After a shift: what the service recorded, checked against the simulator's own truth.

For every order the shift created, ``GET /api/v1/orders/<no>`` (integration token):

- **Escaped mistakes.** An order whose status is ``packed`` or later, where the units the
  service *accepted* for it (scans with verdict ok and code ``accepted``, counted by ``sku``)
  differ from the simulator's kit (the `SimOrder` lines, sku -> qty): a line short, a line
  over, or an accepted SKU that is not in the kit. That is a parcel that left the station
  wrong. The check uses none of the service's own rules, only its record of the scans.
- **Duplicated scans.** A scan_id recorded more than once (on one order or on several).
- **Lost scans.** A scan the simulator got a verdict for, whose verdict names an order, that is
  not in that order's ``scans``.
- **Verdict mismatches.** A scan recorded with another verdict code than the one the simulator
  was answered.
- **Unaccounted scans.** Scans recorded on the shift's orders that the simulator did not send
  (or never heard the verdict of).
- **Orders not packed**, each with the reason the simulator knows (abandoned, the shift ended
  first) and the service's status.
"""
from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import requests

from floor_sim.orders import SimOrder

PACKED_OR_LATER = frozenset({"packed", "labelling", "labelled", "awaiting_loading", "loading",
                             "loaded", "handed_over"})


@dataclass
class Audit:
    orders: int = 0
    packed: list[str] = field(default_factory=list)
    not_packed: dict[str, str] = field(default_factory=dict)      # order_no -> reason
    escaped: dict[str, list[str]] = field(default_factory=dict)   # order_no -> problems
    duplicated: dict[str, int] = field(default_factory=dict)      # scan_id -> times recorded
    lost: list[str] = field(default_factory=list)                 # "scan_id (order_no)"
    verdict_mismatches: list[str] = field(default_factory=list)
    unaccounted: list[str] = field(default_factory=list)
    fetch_errors: dict[str, str] = field(default_factory=dict)
    recorded: Counter[str] = field(default_factory=Counter)       # scan_id -> times recorded

    def summary(self) -> dict[str, Any]:
        return {
            "orders_packed_by_service": len(self.packed),
            "orders_not_packed_by_service": len(self.not_packed),
            "not_packed": dict(self.not_packed),
            "escaped_mistakes": len(self.escaped), "escaped": dict(self.escaped),
            "duplicated_scans": len(self.duplicated), "duplicated": dict(self.duplicated),
            "lost_scans": len(self.lost), "lost": list(self.lost),
            "verdict_mismatches": len(self.verdict_mismatches),
            "verdict_mismatch_list": list(self.verdict_mismatches),
            "unaccounted_scans": len(self.unaccounted), "unaccounted": list(self.unaccounted),
            "audit_errors": dict(self.fetch_errors),
        }


def fetch_orders(url: str, token: str, order_nos: Sequence[str], *, concurrency: int = 4,
                 timeout: float = 10.0) -> dict[str, dict[str, Any] | str]:
    """order_no -> the order detail, or the error text."""
    url = url.rstrip("/")
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"

    def one(order_no: str) -> tuple[str, dict[str, Any] | str]:
        for _ in range(3):
            try:
                resp = session.get(f"{url}/api/v1/orders/{order_no}", timeout=timeout)
            except requests.RequestException as exc:
                last: dict[str, Any] | str = f"{type(exc).__name__}: {exc}"
                continue
            if resp.status_code == 200:
                return order_no, resp.json()
            last = f"HTTP {resp.status_code}: {resp.text[:200]}"
            if resp.status_code < 500:
                break
        return order_no, last

    try:
        with ThreadPoolExecutor(max(1, concurrency), thread_name_prefix="audit") as pool:
            return dict(pool.map(one, order_nos))
    finally:
        session.close()


def kit_of(order: SimOrder) -> Counter[str]:
    kit: Counter[str] = Counter()
    for line in order.lines:
        kit[line.product.sku] += line.qty
    return kit


def accepted_units(detail: Mapping[str, Any]) -> Counter[str]:
    """Units the service accepted for the order, by SKU (ok verdicts with code `accepted`)."""
    out: Counter[str] = Counter()
    for scan in detail.get("scans") or []:
        verdict = scan.get("verdict") or {}
        if verdict.get("ok") is True and verdict.get("code") == "accepted" and scan.get("sku"):
            out[scan["sku"]] += 1
    return out


def kit_problems(kit: Mapping[str, int], accepted: Mapping[str, int]) -> list[str]:
    problems = []
    for sku, qty in sorted(kit.items()):
        got = accepted.get(sku, 0)
        if got < qty:
            problems.append(f"{sku} short: {got} of {qty}")
        elif got > qty:
            problems.append(f"{sku} over: {got} of {qty}")
    for sku in sorted(set(accepted) - set(kit)):
        problems.append(f"{sku} not in the kit: {accepted[sku]} accepted")
    return problems


def audit_shift(url: str, token: str, orders: Sequence[SimOrder], records: Sequence[Any], *,
                packed_by_sim: Sequence[str] = (), abandoned: Mapping[str, str] | None = None,
                timeout: float = 10.0) -> Audit:
    """Check the service's record of `orders` against the kits and the scans in `records`
    (`floor_sim.load.ScanRecord`s)."""
    abandoned = abandoned or {}
    details = fetch_orders(url, token, [o.order_no for o in orders], timeout=timeout)
    audit = Audit(orders=len(orders))
    where: dict[str, list[tuple[str, str | None]]] = {}   # scan_id -> [(order_no, verdict)]
    seen_by_sim = {r.scan_id for r in records if r.scan_id}
    sim_packed = set(packed_by_sim)
    for order in orders:
        detail = details.get(order.order_no)
        if not isinstance(detail, dict):
            audit.fetch_errors[order.order_no] = str(detail)
            audit.not_packed[order.order_no] = f"not audited: {detail}"
            continue
        status = detail.get("status")
        for scan in detail.get("scans") or []:
            sid = scan.get("scan_id")
            audit.recorded[sid] += 1
            where.setdefault(sid, []).append((order.order_no, (scan.get("verdict") or {}).get("code")))
            if sid not in seen_by_sim:
                audit.unaccounted.append(f"{sid} ({order.order_no}: {scan.get('code')!r} -> "
                                         f"{(scan.get('verdict') or {}).get('code')})")
        if status in PACKED_OR_LATER:
            audit.packed.append(order.order_no)
            problems = kit_problems(kit_of(order), accepted_units(detail))
            if problems:
                audit.escaped[order.order_no] = problems
        else:
            if order.order_no in abandoned:
                reason = f"abandoned: {abandoned[order.order_no]}"
            elif order.order_no in sim_packed:
                reason = "the packer's screen said complete"
            else:
                reason = "not finished when the shift ended"
            audit.not_packed[order.order_no] = f"{reason} (status {status})"
    audit.duplicated = {sid: n for sid, n in audit.recorded.items() if n > 1}
    shift_orders = {o.order_no for o in orders}
    sim_ids = Counter(r.scan_id for r in records if r.done is not None and r.scan_id)
    for sid, n in sim_ids.items():
        if n > 1:   # the simulator was answered twice for one scan_id: a replay recorded twice
            audit.duplicated.setdefault(sid, n)
    for r in records:
        if r.done is None or not r.verdict_order or r.verdict_order not in shift_orders:
            continue
        if r.verdict_order in audit.fetch_errors:
            continue
        entries = [e for e in where.get(r.scan_id, []) if e[0] == r.verdict_order]
        if not entries:
            audit.lost.append(f"{r.scan_id or '(no scan_id)'} ({r.verdict_order}: {r.code!r} -> "
                              f"{r.verdict})")
        elif entries[0][1] != r.verdict:
            audit.verdict_mismatches.append(f"{r.scan_id} ({r.verdict_order}): answered "
                                            f"{r.verdict}, recorded {entries[0][1]}")
    return audit
