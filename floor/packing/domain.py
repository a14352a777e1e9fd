"""Pure packing rules: kits, frozen snapshots, micro-statuses and the verdict of a scan.

No Flask, no SQLAlchemy: dataclasses in, verdicts out. `operations.py` loads the facts a
decision needs into a `ScanFacts`, calls `decide_scan`, and applies the `Decision`.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

ROLES = ("main", "sample", "gift", "giftbox")
# The gift box closes the kit: the roles that must be complete before it is accepted, by the
# warehouse setting `giftbox_requires`. The brands' rule is the main items and the free items
# (samples and gifts); a warehouse may let gifts follow the box.
GIFTBOX_REQUIRES: dict[str, frozenset[str]] = {
    "main_samples_gifts": frozenset({"main", "sample", "gift"}),
    "main_samples": frozenset({"main", "sample"}),
}
DEFAULT_GIFTBOX_REQUIRES = "main_samples_gifts"
ROLES_BEFORE_GIFTBOX = GIFTBOX_REQUIRES[DEFAULT_GIFTBOX_REQUIRES]

MAX_LINES = 200
MAX_QTY = 10_000
MAX_BARCODE_LEN = 128


class KitError(ValueError):
    """An order's kit as sent by the OMS is not valid."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class KitLine:
    line_no: int
    sku: str
    name: str
    qty: int
    role: str
    barcodes: tuple[str, ...]
    lot: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"line_no": self.line_no, "sku": self.sku, "name": self.name, "qty": self.qty,
                "role": self.role, "barcodes": list(self.barcodes), "lot": self.lot}


@dataclass(frozen=True)
class Kit:
    lines: tuple[KitLine, ...]

    def content_hash(self) -> str:
        """sha256 of a canonical JSON form: the same kit always hashes the same."""
        canonical = json.dumps([line.as_dict() for line in self.lines], sort_keys=True,
                               ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def line(self, line_no: int) -> KitLine:
        for line in self.lines:
            if line.line_no == line_no:
                return line
        raise KeyError(line_no)

    def line_for_code(self, code: str) -> KitLine | None:
        return self.line_for_keys((code,))

    def line_for_keys(self, keys: Iterable[str]) -> KitLine | None:
        """The line listing any of these codes (a scan's code and its other GTIN forms)."""
        for key in keys:
            for line in self.lines:
                if key in line.barcodes:
                    return line
        return None

    def units(self) -> int:
        return sum(line.qty for line in self.lines)


def _text(value: Any, field_name: str, max_len: int, required: bool = True) -> str | None:
    if value is None or value == "":
        if required:
            raise KitError("invalid_kit", f"Line field '{field_name}' is required.")
        return None
    if not isinstance(value, str):
        raise KitError("invalid_kit", f"Line field '{field_name}' must be a string.")
    value = value.strip()
    if not value or len(value) > max_len or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise KitError("invalid_kit", f"Line field '{field_name}' is empty, too long or has control characters.")
    return value


def parse_kit(raw_lines: Any) -> Kit:
    """Validate the OMS's `lines` into a Kit. SKUs appearing twice are refused, not merged."""
    if not isinstance(raw_lines, list) or not raw_lines:
        raise KitError("invalid_kit", "An order needs a non-empty list of lines.")
    if len(raw_lines) > MAX_LINES:
        raise KitError("invalid_kit", f"An order has at most {MAX_LINES} lines.")
    lines: list[KitLine] = []
    seen_skus: set[str] = set()
    seen_codes: dict[str, str] = {}
    for index, raw in enumerate(raw_lines, start=1):
        if not isinstance(raw, dict):
            raise KitError("invalid_kit", f"Line {index} must be an object.")
        sku = _text(raw.get("sku"), "sku", 64)
        assert sku is not None
        name = _text(raw.get("name"), "name", 200, required=False) or sku
        qty = raw.get("qty", 1)
        if isinstance(qty, bool) or not isinstance(qty, int) or not 1 <= qty <= MAX_QTY:
            raise KitError("invalid_kit", f"Line {index} ({sku}): qty must be a whole number from 1 to {MAX_QTY}.")
        role = raw.get("role", "main")
        if role not in ROLES:
            raise KitError("invalid_kit", f"Line {index} ({sku}): role must be one of {', '.join(ROLES)}.")
        raw_codes = raw.get("barcodes")
        if not isinstance(raw_codes, list) or not raw_codes:
            raise KitError("invalid_kit", f"Line {index} ({sku}) needs at least one barcode.")
        codes: list[str] = []
        for code in raw_codes:
            text = _text(code, "barcodes", MAX_BARCODE_LEN)
            assert text is not None
            if text in seen_codes and seen_codes[text] != sku:
                raise KitError("invalid_kit", f"Barcode {text} is given for both {seen_codes[text]} and {sku}.")
            seen_codes[text] = sku
            if text not in codes:
                codes.append(text)
        if sku in seen_skus:
            raise KitError("invalid_kit", f"SKU {sku} appears on two lines; send one line with its total qty.")
        seen_skus.add(sku)
        lot = _text(raw.get("lot"), "lot", 64, required=False)
        lines.append(KitLine(index, sku, name, qty, role, tuple(sorted(codes)), lot))
    return Kit(tuple(lines))


def roles_before_giftbox(settings: Any) -> frozenset[str]:
    """What the gift box waits for in a warehouse with these settings (the default when the
    setting is absent or not one of GIFTBOX_REQUIRES)."""
    value = settings.get("giftbox_requires") if isinstance(settings, Mapping) else None
    return GIFTBOX_REQUIRES.get(value, ROLES_BEFORE_GIFTBOX) if isinstance(value, str) \
        else ROLES_BEFORE_GIFTBOX


def kit_from_dicts(rows: Iterable[Mapping[str, Any]]) -> Kit:
    return Kit(tuple(KitLine(int(r["line_no"]), r["sku"], r["name"], int(r["qty"]), r["role"],
                             tuple(r["barcodes"]), r.get("lot")) for r in rows))


# --- micro-statuses -------------------------------------------------------------------------

RECEIVED, WAVE_ASSIGNED, PICKING, PICKED, PACKING, PACKED = (
    "received", "wave_assigned", "picking", "picked", "packing", "packed")
LABELLING, LABELLED, AWAITING_LOADING, LOADING, LOADED, HANDED_OVER = (
    "labelling", "labelled", "awaiting_loading", "loading", "loaded", "handed_over")
ON_HOLD, EXCEPTION, CANCELLED = "on_hold", "exception", "cancelled"

FLOW = (RECEIVED, WAVE_ASSIGNED, PICKING, PICKED, PACKING, PACKED, LABELLING, LABELLED,
        AWAITING_LOADING, LOADING, LOADED, HANDED_OVER)
SIDE_STATES = (ON_HOLD, EXCEPTION, CANCELLED)
STATUSES = FLOW + SIDE_STATES
# Steps not every warehouse scans: a forward move may skip these, and only these.
OPTIONAL_STEPS = frozenset({PICKING, PICKED, LABELLING, AWAITING_LOADING, LOADING})
PACKED_OR_LATER = frozenset(FLOW[FLOW.index(PACKED):])
BEFORE_PACKING = frozenset({RECEIVED, WAVE_ASSIGNED, PICKING, PICKED})


@dataclass(frozen=True)
class StatusMachine:
    """A warehouse's micro-status flow. The default is the contract's; a warehouse may drop
    optional steps from its flow or make more steps optional."""
    flow: tuple[str, ...] = FLOW
    optional: frozenset[str] = OPTIONAL_STEPS

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | None) -> "StatusMachine":
        settings = settings or {}
        flow = tuple(s for s in settings.get("flow", FLOW) if s in FLOW) or FLOW
        for required in (RECEIVED, WAVE_ASSIGNED, PACKING, PACKED, HANDED_OVER):
            if required not in flow:
                flow = FLOW
                break
        optional = frozenset(s for s in settings.get("optional_steps", OPTIONAL_STEPS) if s in FLOW)
        return cls(flow, optional - {RECEIVED, WAVE_ASSIGNED, PACKING, PACKED, HANDED_OVER})

    def can_transition(self, current: str, target: str) -> bool:
        if current == target:
            return False
        if target in (ON_HOLD, EXCEPTION):
            return current not in (CANCELLED, HANDED_OVER, ON_HOLD if target == ON_HOLD else EXCEPTION)
        if target == CANCELLED:
            return current not in (CANCELLED, HANDED_OVER) and current not in PACKED_OR_LATER - {PACKED}
        if current in (ON_HOLD, EXCEPTION):
            # Back into the flow, but never straight to packed or beyond: packing proves that.
            return target in self.flow and target not in PACKED_OR_LATER
        if current not in self.flow or target not in self.flow:
            return False
        i, j = self.flow.index(current), self.flow.index(target)
        if j <= i:
            return False
        return all(step in self.optional for step in self.flow[i + 1:j])


DEFAULT_MACHINE = StatusMachine()


def can_transition(current: str, target: str) -> bool:
    return DEFAULT_MACHINE.can_transition(current, target)


# --- the pack session and the verdict of one scan --------------------------------------------

@dataclass(frozen=True)
class OrderRef:
    """An order named by a scanned waybill or order number, as the decision needs it."""
    order_no: str
    status: str
    wave_no: str | None
    has_snapshot: bool
    held_by: tuple[str, str] | None = None  # (station, device) of another open session


@dataclass
class PackState:
    """What has been packed so far in one session, against one frozen kit."""
    order_no: str
    wave_no: str | None
    kit: Kit
    counts: dict[int, int] = field(default_factory=dict)
    waived: set[int] = field(default_factory=set)
    waybill_no: str | None = None
    giftbox_requires: frozenset[str] = ROLES_BEFORE_GIFTBOX   # the warehouse's setting

    def packed(self, line: KitLine) -> int:
        return line.qty if line.line_no in self.waived else self.counts.get(line.line_no, 0)

    def short_lines(self, roles: Iterable[str] | None = None) -> list[KitLine]:
        wanted = set(roles) if roles is not None else set(ROLES)
        return [l for l in self.kit.lines if l.role in wanted and self.packed(l) < l.qty]

    def is_complete(self) -> bool:
        return not self.short_lines() and bool(self.waybill_no)

    def progress(self) -> dict[str, Any]:
        lines = [{**line.as_dict(), "scanned": min(self.packed(line), line.qty),
                  "waived": line.line_no in self.waived} for line in self.kit.lines]
        done = sum(1 for line in self.kit.lines if self.packed(line) >= line.qty)
        units_left = sum(max(line.qty - self.packed(line), 0) for line in self.kit.lines)
        return {"order_no": self.order_no, "wave_no": self.wave_no, "lines": lines,
                "lines_done": done, "lines_total": len(self.kit.lines), "units_left": units_left,
                "waybill_no": self.waybill_no, "waybill_bound": bool(self.waybill_no),
                "complete": self.is_complete(),
                # The offline check on the handheld applies the same gift-box rule.
                "giftbox_requires": sorted(self.giftbox_requires)}


@dataclass(frozen=True)
class ScanFacts:
    """Everything `decide_scan` needs, loaded by the operation."""
    code: str
    state: PackState | None                      # the session active at this station and device
    order: OrderRef | None = None                # the order this code names (waybill / order no.)
    catalog_sku: str | None = None               # the SKU this code is known as, anywhere
    other_orders: tuple[tuple[str, str | None], ...] = ()  # (order_no, wave_no) holding that SKU
    waybill_candidate: bool = False              # looks like a waybill and is bound to no order
    open_order_status: str | None = None         # status of the order open at the device
    keys: tuple[str, ...] = ()                   # other forms of the code (GTIN lengths)
    lot: str | None = None                       # GS1 AI 10 of the scanned item
    expiry: dt.date | None = None                # GS1 AI 17
    today: dt.date | None = None                 # the warehouse's date, for expiry
    gs1_error: Mapping[str, Any] | None = None   # a GS1 read refused whole: {ai, reason, ...}
    sscc: str | None = None                      # an SSCC naming no item: a logistic unit
    units: int = 1                               # a case (AI 02 + 37): units of its GTIN


@dataclass(frozen=True)
class Decision:
    ok: bool
    code: str
    params: dict[str, Any] = field(default_factory=dict)
    action: str = "none"     # none | open | credit | bind_waybill
    line_no: int | None = None
    completes: bool = False
    units: int = 1           # what a credit adds to its line (a case label: its count)


def _names(state: "PackState", lines: Iterable[KitLine]) -> str:
    return ", ".join(f"{l.name}×{l.qty - state.packed(l)}" for l in lines)


def decide_scan(facts: ScanFacts) -> Decision:
    """The verdict of one (already normalised, de-bounced) scan. Never raises for any facts."""
    order, state = facts.order, facts.state
    if order is not None:
        return _decide_open(order, state)
    current = {"order_no": state.order_no} if state is not None else {}
    if facts.gs1_error is not None:
        # A label that breaks the GS1 rules is refused whole: its lot, expiry or serial could
        # not be checked, so its GTIN is not credited either.
        return Decision(False, "invalid_gs1", {**facts.gs1_error, **current})
    if facts.sscc is not None and (state is None or state.kit.line_for_keys(facts.keys) is None):
        return Decision(False, "logistic_unit", {"sscc": facts.sscc, **current})
    if state is None:
        if facts.catalog_sku is not None:
            return Decision(False, "waybill_required", {"sku": facts.catalog_sku})
        return Decision(False, "unknown_code", {"code": facts.code})
    if facts.open_order_status in (ON_HOLD, EXCEPTION, CANCELLED):
        return Decision(False, "order_blocked", {"order_no": state.order_no,
                                                 "status": facts.open_order_status})
    line = state.kit.line_for_keys(facts.keys or (facts.code,))
    if line is not None:
        return _decide_item(state, line, facts)
    if facts.waybill_candidate and not state.waybill_no:
        completes = not state.short_lines()
        return Decision(True, "accepted" if completes else "waybill_bound",
                        {"order_no": state.order_no, "waybill_no": facts.code},
                        action="bind_waybill", completes=completes)
    if facts.catalog_sku is None:
        return Decision(False, "unknown_code", {"code": facts.code, "order_no": state.order_no})
    if facts.other_orders:
        other_no, other_wave = facts.other_orders[0]
        return Decision(False, "other_order", {"sku": facts.catalog_sku, "order_no": state.order_no,
                                               "other_order_no": other_no, "other_wave_no": other_wave})
    return Decision(False, "wrong_item", {"sku": facts.catalog_sku, "order_no": state.order_no})


def decide_dock_scan(order: OrderRef | None, code: str, can_load: bool) -> Decision:
    """A waybill scanned at a dock station loads the parcel onto the truck."""
    if order is None:
        return Decision(False, "unknown_code", {"code": code})
    params = {"order_no": order.order_no, "status": order.status, "wave_no": order.wave_no}
    if order.status in (LOADED, HANDED_OVER):
        return Decision(False, "already_loaded", params)
    if order.status in (ON_HOLD, EXCEPTION, CANCELLED):
        return Decision(False, "order_blocked", params)
    if not can_load:
        return Decision(False, "not_ready_for_loading", params)
    return Decision(True, "loaded", params, action="load")


def _decide_open(order: OrderRef, state: PackState | None) -> Decision:
    params = {"order_no": order.order_no, "wave_no": order.wave_no}
    if order.status in PACKED_OR_LATER:
        return Decision(False, "already_packed", params)
    if order.status in (ON_HOLD, EXCEPTION, CANCELLED):
        return Decision(False, "order_blocked", {**params, "status": order.status})
    if not order.has_snapshot or order.wave_no is None:
        return Decision(False, "not_in_wave", params)
    if order.held_by is not None:
        station, device = order.held_by
        return Decision(False, "order_held", {**params, "station": station, "device_id": device})
    if state is not None and state.order_no == order.order_no:
        return Decision(True, "order_opened", {**params, "resumed": True}, action="open")
    return Decision(True, "order_opened", params, action="open")


def _decide_item(state: PackState, line: KitLine, facts: ScanFacts | None = None) -> Decision:
    params = {"order_no": state.order_no, "sku": line.sku, "name": line.name, "role": line.role,
              "line_no": line.line_no}
    if facts is not None and facts.expiry is not None and facts.today is not None \
            and facts.expiry < facts.today:
        return Decision(False, "expired", {**params, "expiry": facts.expiry.isoformat()},
                        line_no=line.line_no)
    if facts is not None and line.lot and facts.lot and facts.lot != line.lot:
        return Decision(False, "lot_mismatch", {**params, "lot": facts.lot, "pinned_lot": line.lot},
                        line_no=line.line_no)
    if state.packed(line) >= line.qty:
        return Decision(False, "over_scan", {**params, "qty": line.qty}, line_no=line.line_no)
    units = max(facts.units, 1) if facts is not None else 1
    if units > line.qty - state.packed(line):
        # A case holds more than the line still needs: never credited past the line.
        return Decision(False, "case_over_scan",
                        {**params, "count": units, "qty": line.qty,
                         "left": line.qty - state.packed(line)}, line_no=line.line_no)
    if line.role == "giftbox":
        missing = state.short_lines(state.giftbox_requires)
        if missing:
            return Decision(False, "giftbox_incomplete",
                            {**params, "missing": [{"sku": l.sku, "name": l.name,
                                                    "left": l.qty - state.packed(l)} for l in missing],
                             "missing_names": _names(state, missing)}, line_no=line.line_no)
    after = dict(state.counts)
    after[line.line_no] = after.get(line.line_no, 0) + units
    probe = PackState(state.order_no, state.wave_no, state.kit, after, set(state.waived), state.waybill_no,
                      state.giftbox_requires)
    units_left = sum(max(l.qty - probe.packed(l), 0) for l in state.kit.lines)
    return Decision(True, "accepted",
                    {**params, "scanned": probe.packed(line), "qty": line.qty,
                     "lines_total": len(state.kit.lines), "units_left": units_left,
                     "waybill_missing": not state.waybill_no,
                     **({"count": units} if units > 1 else {})},
                    action="credit", line_no=line.line_no, completes=probe.is_complete(),
                    units=units)


def apply_decision(state: PackState, decision: Decision, code: str) -> None:
    """Change the session state as the decision says (the operation persists it)."""
    if decision.action == "credit" and decision.line_no is not None:
        state.counts[decision.line_no] = state.counts.get(decision.line_no, 0) + decision.units
    elif decision.action == "bind_waybill":
        state.waybill_no = code


def waive_for_override(state: PackState, refused: Decision | str, line_no: int | None) -> list[int]:
    """A supervisor's override of a refused step: which lines it credits or waives.

    A refused gift box (`giftbox_incomplete`) is accepted and the lines it waits for that are
    still short are waived;
    any other refused item credits one unit to `line_no` (the line the supervisor names).
    Returns the line numbers waived.
    """
    code = refused if isinstance(refused, str) else refused.code
    if code == "giftbox_incomplete":
        waived = [l.line_no for l in state.short_lines(state.giftbox_requires)]
        state.waived.update(waived)
        if line_no is not None:
            state.counts[line_no] = state.counts.get(line_no, 0) + 1
        return waived
    if line_no is None:
        raise KitError("line_required", "Name the kit line the override credits.")
    line = state.kit.line(line_no)
    if state.packed(line) >= line.qty:
        raise KitError("line_full", f"{line.name} is already complete.")
    state.counts[line_no] = state.counts.get(line_no, 0) + 1
    return []


@dataclass(frozen=True)
class Actor:
    """Who changes state, through which device and station: recorded on every event."""
    name: str
    role: str
    device_id: str | None = None
    station: str | None = None


class DomainError(Exception):
    """A refused use case, mapped by entry points to a 4xx with a stable code."""

    status = 400

    def __init__(self, code: str, message: str, status: int | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.code, self.message, self.extra = code, message, extra
        if status is not None:
            self.status = status
