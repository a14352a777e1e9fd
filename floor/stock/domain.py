"""Pure stock rules: what a wave needs against what is on the shelf, movements, low stock, CSV.

No Flask, no SQLAlchemy. Stock is kept per (warehouse, SKU) for the items that make or break a
kit (gifts, samples, gift boxes; main items if a warehouse wants). A SKU with no stock record
is not tracked and never holds a wave back.

Release check. What a wave may take is the SKU's `available` = `on_hand` − `reserved`, where
`reserved` is what orders already in released waves, not yet packed (nor cancelled), will take
by their frozen kit snapshots: without it two waves could each pass and together overcommit.
The wave's orders are served first come, first served, in the order the request lists them
(FIFO); an order is served whole or not at all (a kit missing its gift box is no kit), so an
order that cannot be served takes nothing and a later, smaller order may still be served. An
order is *short* when, at its turn, some tracked line of it needs more than is left.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping, Sequence

from floor.live.domain import AlertSpec

MOVEMENT_REASONS = ("set", "upload", "pack", "return_restock", "adjust")
RELEASE_OPTIONS = ("release_anyway", "hold_short", "split")
MAX_SKU_LEN = 64
MAX_ON_HAND = 10_000_000
MAX_ITEMS = 5_000
MAX_CSV_BYTES = 2 * 1024 * 1024
MAX_ERRORS_LISTED = 100
CSV_COLUMNS = ("sku", "on_hand", "low_threshold")
LOW_STOCK = "low_stock"
KIT_SHORT = "kit_short_of_stock"


# --- what a wave needs against what is there -----------------------------------------------

@dataclass(frozen=True)
class OrderNeed:
    """An order of a wave and the units of each SKU its kit needs (every line; the allocation
    looks only at tracked SKUs)."""
    order_no: str
    units: Mapping[str, int]


def order_need(order_no: str, lines: Iterable[Mapping[str, Any]]) -> OrderNeed:
    units: dict[str, int] = {}
    for line in lines:
        units[str(line["sku"])] = units.get(str(line["sku"]), 0) + int(line["qty"])
    return OrderNeed(order_no, units)


@dataclass(frozen=True)
class SkuShortfall:
    sku: str
    needed: int          # units of this SKU the whole wave needs
    on_hand: int
    reserved: int        # taken by orders of released waves not yet packed
    order_nos: tuple[str, ...]   # the orders left short of this SKU, in request order

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    @property
    def short_by(self) -> int:
        return self.needed - max(self.available, 0)

    def as_dict(self) -> dict[str, Any]:
        return {"sku": self.sku, "needed": self.needed, "on_hand": self.on_hand,
                "reserved": self.reserved, "available": self.available,
                "short_by": self.short_by, "order_nos": list(self.order_nos)}


@dataclass(frozen=True)
class ShortOrder:
    order_no: str
    missing: tuple[tuple[str, int, int], ...]    # (sku, units needed, units left at its turn)

    def as_dict(self) -> dict[str, Any]:
        return {"order_no": self.order_no,
                "missing": [{"sku": sku, "qty": qty, "left": left} for sku, qty, left in self.missing]}


@dataclass(frozen=True)
class Allocation:
    served: tuple[str, ...]
    short: tuple[ShortOrder, ...]
    shortfall: tuple[SkuShortfall, ...]
    taken: Mapping[str, int] = field(default_factory=dict)   # units the served orders take

    @property
    def short_order_nos(self) -> tuple[str, ...]:
        return tuple(o.order_no for o in self.short)

    def shortfall_dicts(self) -> list[dict[str, Any]]:
        return [s.as_dict() for s in self.shortfall]


def allocate(orders: Sequence[OrderNeed], on_hand: Mapping[str, int],
             reserved: Mapping[str, int] | None = None) -> Allocation:
    """Serve the orders in the given order from `on_hand − reserved` of the tracked SKUs (the
    keys of `on_hand`); see the module docstring. Never takes more than is available."""
    reserved = reserved or {}
    left = {sku: max(qty - reserved.get(sku, 0), 0) for sku, qty in on_hand.items()}
    served: list[str] = []
    short: list[ShortOrder] = []
    short_by_sku: dict[str, list[str]] = {}
    needed: dict[str, int] = {}
    taken: dict[str, int] = {}
    for order in orders:
        tracked = {sku: qty for sku, qty in order.units.items() if sku in on_hand and qty > 0}
        for sku, qty in tracked.items():
            needed[sku] = needed.get(sku, 0) + qty
        missing = tuple((sku, qty, left[sku]) for sku, qty in sorted(tracked.items())
                        if qty > left[sku])
        if missing:
            short.append(ShortOrder(order.order_no, missing))
            for sku, _qty, _left in missing:
                short_by_sku.setdefault(sku, []).append(order.order_no)
            continue
        for sku, qty in tracked.items():
            left[sku] -= qty
            taken[sku] = taken.get(sku, 0) + qty
        served.append(order.order_no)
    shortfall = tuple(SkuShortfall(sku, needed[sku], on_hand[sku], reserved.get(sku, 0),
                                   tuple(order_nos))
                      for sku, order_nos in sorted(short_by_sku.items()))
    return Allocation(tuple(served), tuple(short), shortfall, taken)


# --- the supervisor's choice when a wave is short --------------------------------------------

class StockInputError(ValueError):
    """Input that cannot be applied; `errors` names each bad row or field."""

    def __init__(self, code: str, message: str, errors: Sequence[Mapping[str, Any]] = ()) -> None:
        super().__init__(message)
        self.code, self.message, self.errors = code, message, list(errors)


@dataclass(frozen=True)
class ReleaseOption:
    choice: str | None           # None | release_anyway | hold_short | split
    reason: str | None


def release_option(data: Mapping[str, Any]) -> ReleaseOption:
    """At most one of release_anyway, hold_short, split; the first two need a reason."""
    chosen = []
    for name in RELEASE_OPTIONS:
        value = data.get(name)
        if value is None or value is False:
            continue
        if value is not True:
            raise StockInputError("invalid_field", f"{name} is true or false.", [{"field": name}])
        chosen.append(name)
    if len(chosen) > 1:
        raise StockInputError("conflicting_options",
                              f"Choose one of {', '.join(RELEASE_OPTIONS)}, not {' and '.join(chosen)}.")
    reason = data.get("reason")
    if reason is not None and reason != "":
        if not isinstance(reason, str) or len(reason.strip()) > 500 or not reason.strip() \
                or any((ord(c) < 32 and c not in "\t") or ord(c) == 127 for c in reason):
            raise StockInputError("invalid_field", "reason is 1–500 printable characters.",
                                  [{"field": "reason"}])
        reason = reason.strip()
    else:
        reason = None
    choice = chosen[0] if chosen else None
    if choice in ("release_anyway", "hold_short") and not reason:
        raise StockInputError("reason_required", f"{choice} needs a reason.")
    return ReleaseOption(choice, reason)


# --- movements and low stock -----------------------------------------------------------------

@dataclass(frozen=True)
class Movement:
    sku: str
    delta: int
    on_hand_after: int


def set_movement(sku: str, on_hand_before: int, on_hand_after: int) -> Movement:
    return Movement(sku, on_hand_after - on_hand_before, on_hand_after)


def delta_movement(sku: str, on_hand_before: int, delta: int) -> Movement:
    """Packing takes, returns give back. The record may go negative: what was packed was on the
    shelf, whatever the record said (it alerts)."""
    return Movement(sku, delta, on_hand_before + delta)


def effective_threshold(row_threshold: int | None, warehouse_default: int | None) -> int | None:
    return row_threshold if row_threshold is not None else warehouse_default


def low_level(on_hand: int, threshold: int | None) -> str | None:
    """red when the record is negative (something went out the record did not have), yellow at
    or below the threshold, None when fine."""
    if on_hand < 0:
        return "red"
    if threshold is not None and on_hand <= threshold:
        return "yellow"
    return None


def low_stock_key(warehouse: str, sku: str) -> str:
    return f"{LOW_STOCK}:{warehouse}:{sku}"


def low_stock_alert(warehouse: str, sku: str, on_hand: int, threshold: int | None) -> AlertSpec | None:
    level = low_level(on_hand, threshold)
    if level is None:
        return None
    return AlertSpec(LOW_STOCK, low_stock_key(warehouse, sku), level,
                     {"warehouse": warehouse, "sku": sku, "on_hand": on_hand,
                      "threshold": threshold})


def kit_short_key(channel: str, order_no: str) -> str:
    return f"{KIT_SHORT}:{channel}:{order_no}"


def kit_short_alert(warehouse: str, channel: str, order_no: str, wave_no: str | None,
                    short: ShortOrder | None) -> AlertSpec | None:
    """The alert of an order of a released wave whose changed kit no longer fits the stock (the
    release check's `ShortOrder` for it), or None when it fits."""
    if short is None:
        return None
    return AlertSpec(KIT_SHORT, kit_short_key(channel, order_no), "red",
                     {"warehouse": warehouse, "order_no": order_no, "channel": channel,
                      "wave_no": wave_no, "missing": short.as_dict()["missing"],
                      "skus": ", ".join(sku for sku, _qty, _left in short.missing)},
                     order_no=order_no)


# --- input: JSON items and CSV files ---------------------------------------------------------

@dataclass(frozen=True)
class StockRow:
    sku: str
    on_hand: int
    low_threshold: int | None = None
    threshold_given: bool = False       # absent keeps the current threshold; null clears it
    line: int | None = None             # CSV line number, for messages



def _whole(value: Any, low: int, high: int) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if low <= value <= high else None
    if isinstance(value, str):
        text = value.strip()
        digits = text[1:] if text[:1] in "+-" else text
        if digits.isdigit() and digits.isascii() and len(digits) <= 9:
            number = int(text)
            return number if low <= number <= high else None
    return None


def _sku(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or len(text) > MAX_SKU_LEN or any(ord(c) < 32 or ord(c) == 127 or 0xD800 <= ord(c) <= 0xDFFF
                                                   for c in text):
        return None
    return text


class _BadItem(Exception):
    def __init__(self, code: str, message: str, column: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.column = code, message, column


def _item(item: Any, seen: Mapping[str, Any], where: str) -> StockRow:
    """One item as a row, or _BadItem saying what is wrong with it."""
    if not isinstance(item, dict):
        raise _BadItem("invalid_item", "Each item is an object with sku and on_hand.")
    sku = _sku(item.get("sku"))
    if sku is None:
        raise _BadItem("invalid_sku", f"sku is 1–{MAX_SKU_LEN} printable characters.", "sku")
    if sku in seen:
        raise _BadItem("duplicate_sku", f"{sku} is given twice (also at {where} {seen[sku]}).", "sku")
    if "on_hand" not in item or item["on_hand"] is None or item["on_hand"] == "":
        raise _BadItem("missing_on_hand", f"{sku}: on_hand is missing.", "on_hand")
    on_hand = _whole(item["on_hand"], 0, MAX_ON_HAND)
    if on_hand is None:
        raise _BadItem("invalid_on_hand", f"{sku}: on_hand is a whole number from 0 to {MAX_ON_HAND}.",
                       "on_hand")
    value = item.get("low_threshold", "")
    if value == "":                      # absent, or an empty CSV cell: keep the current one
        return StockRow(sku, on_hand)
    if value is None:                    # cleared: the warehouse default applies
        return StockRow(sku, on_hand, None, True)
    threshold = _whole(value, 0, MAX_ON_HAND)
    if threshold is None:
        raise _BadItem("invalid_low_threshold",
                       f"{sku}: low_threshold is a whole number from 0 to {MAX_ON_HAND}.", "low_threshold")
    return StockRow(sku, on_hand, threshold, True)


def parse_items(raw: Any, where: str = "index") -> list[StockRow]:
    """Validate every item and report every bad one; nothing is applied unless all are good.
    `where` names the position in errors: `index` in a JSON list, `line` of a CSV file (the
    items then carry their `_line`)."""
    if not isinstance(raw, list) or not raw:
        raise StockInputError("invalid_field", "items is a non-empty list.", [{"field": "items"}])
    if len(raw) > MAX_ITEMS:
        raise StockInputError("too_many_items", f"At most {MAX_ITEMS} items at a time.")
    rows: list[StockRow] = []
    errors: list[dict[str, Any]] = []
    seen: dict[str, Any] = {}
    for position, item in enumerate(raw):
        from_csv = where == "line" and isinstance(item, dict)
        at = item.get("_line", position) if from_csv else position
        try:
            row = _item(item, seen, where)
        except _BadItem as bad:
            errors.append({where: at, "code": bad.code, "message": bad.message,
                           **({"column": bad.column} if bad.column else {})})
            continue
        seen[row.sku] = at
        rows.append(replace(row, line=at) if from_csv else row)
    if errors:
        raise StockInputError("invalid_items", f"{len(errors)} item(s) are not valid; nothing was applied.",
                              errors)
    return rows


def parse_csv(data: bytes) -> tuple[list[StockRow], list[str]]:
    """A CSV file of `sku,on_hand[,low_threshold]` with a header row; UTF-8 with or without a
    BOM. Blank lines are skipped; other columns are ignored (and named). Every bad row is
    reported with its line number and nothing is applied."""
    if len(data) > MAX_CSV_BYTES:
        raise StockInputError("file_too_large", f"The file is over {MAX_CSV_BYTES // 1024} KiB.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise StockInputError("invalid_encoding", "The file is not UTF-8 text.",
                              [{"line": line, "code": "invalid_encoding",
                                "message": f"Line {line} is not UTF-8 (save the file as CSV UTF-8)."}]) from None
    if "\x00" in text:
        raise StockInputError("invalid_csv", "The file is not CSV text.")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header: list[str] | None = None
        items: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        columns: dict[str, int] = {}
        ignored: list[str] = []
        for record in reader:
            if not any(cell.strip() for cell in record):
                continue
            if header is None:
                header = [cell.strip().lower() for cell in record]
                for name in CSV_COLUMNS:
                    if header.count(name) > 1:
                        raise StockInputError("invalid_csv", f"Column {name} appears twice.",
                                              [{"line": reader.line_num, "code": "duplicate_column",
                                                "message": f"Column {name} appears twice."}])
                columns = {name: header.index(name) for name in CSV_COLUMNS if name in header}
                ignored = [h for h in header if h not in CSV_COLUMNS]
                if "sku" not in columns or "on_hand" not in columns:
                    raise StockInputError("invalid_csv", "The first line names the columns: sku,on_hand[,low_threshold].",
                                          [{"line": reader.line_num, "code": "missing_header",
                                            "message": "The first line must name the columns sku and on_hand."}])
                continue
            if len(items) + len(errors) >= MAX_ITEMS:
                raise StockInputError("too_many_items", f"At most {MAX_ITEMS} rows at a time.")
            if len(record) > len(header):
                errors.append({"line": reader.line_num, "code": "too_many_cells",
                               "message": f"Line {reader.line_num} has {len(record)} cells; the header has {len(header)}."})
                continue
            item: dict[str, Any] = {"_line": reader.line_num}
            for name, index in columns.items():
                item[name] = record[index] if index < len(record) else ""
            items.append(item)
    except csv.Error as exc:
        raise StockInputError("invalid_csv", f"Line {reader.line_num}: {exc}.",
                              [{"line": reader.line_num, "code": "invalid_csv", "message": str(exc)}]) from None
    if header is None or (not items and not errors):
        raise StockInputError("empty_file", "The file has no rows.")
    rows: list[StockRow] = []
    try:
        rows = parse_items(items, where="line")
    except StockInputError as exc:
        errors += exc.errors
    if errors:
        errors.sort(key=lambda e: e.get("line") or 0)
        raise StockInputError("invalid_csv", f"{len(errors)} line(s) are not valid; nothing was applied.",
                              errors)
    return rows, ignored
