"""Pure returns rules: what came back compared with what was packed.

No Flask, no SQLAlchemy: dataclasses in, verdicts out. `operations.py` loads the frozen kit
snapshot, the order's accepted packing scans (`PackedUnit`) and the return's scans
(`ReturnedUnit`), and asks `compare` (the report lines and the suggested outcome) or
`scan_verdict` (the live word for the scan just made).

On a return, every line of the snapshot, the gift box included, is expected back, in the
quantity packed.

Results of a report line (one per snapshot line, plus one per returned unit no line lists):

- `matched`: the line's quantity came back, every unit of a lot that was packed.
- `missing`: fewer units came back than were packed (`missing_qty` says how many).
- `lot_mismatch`: a unit of the line's SKU came back with a lot that was not among the lots
  packed for it (`packed_lots` and `mismatched_lots` name both). Units scanned without a lot
  (a plain EAN) cannot be told apart and count as the packed lot; a line packed without lots
  (and without a lot fixed by the OMS) has nothing to compare a lot with.
- `over_returned`: more units of the line came back than were packed.
- `foreign_item`: a returned unit that matches no line of the snapshot (swapped goods).

A line that is both short and of another lot is `lot_mismatch`; every applicable word is also
listed in the line's `issues`, with `missing_qty` and `over_qty` always present.

What went into the box is what is expected back, not the kit as ordered: a unit a supervisor
credited to a line by an override (a substitute, a damaged label) counts as packed on that line,
and its code finds that line on return; units of a line a supervisor waived (out of stock) were
never shipped, so the line's `expected_qty` is the kit's quantity less `waived_qty`.

Serials are judged too, without a result word of their own (the five above are the contract's):
where packing recorded serials for a line, a returned unit whose serial is not among them adds
`serial_mismatch` to the line's `issues` and names it in `mismatched_serials`: same SKU, same lot
maybe, but not the unit that was shipped. Live, that scan's verdict is `serial_mismatch`.

Suggested outcome:

- any `foreign_item`, `lot_mismatch` or `serial_mismatch` → `manual_review`;
- any `over_returned` (a unit of the SKU beyond what was shipped) → `manual_review` too;
- otherwise, something `missing`, or a returned unit `opened` or `damaged` → `partial`;
- otherwise (every line matched, every unit resellable) → `refund`.

The report's content hash is the SHA-256 of the canonical JSON (sorted keys, no whitespace,
UTF-8) of `{rma_no, order_no, snapshot_hash, lines, suggested_outcome}`: it embeds the kit
snapshot's hash, chaining the report to what was packed. Lines and their scans are in a
canonical order (snapshot line order; scans by scan_id), so the order the items were taken
out of the box does not change the hash.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from floor.packing.domain import Kit, KitLine

CONDITIONS = ("resellable", "opened", "damaged")
RESULTS = ("matched", "missing", "lot_mismatch", "over_returned", "foreign_item")
DIFFERENCES = frozenset({"missing", "lot_mismatch", "over_returned", "foreign_item"})
VERDICTS = ("matched", "lot_mismatch", "serial_mismatch", "foreign_item", "over_returned",
            "unreadable", "invalid_gs1", "logistic_unit")
OUTCOMES = ("refund", "partial", "manual_review")


@dataclass(frozen=True)
class PackedUnit:
    """One accepted packing scan of the order: what went into the box."""
    sku: str
    lot: str | None = None
    serial: str | None = None
    scan_id: str = ""
    by: str = ""
    station: str = ""
    at: str = ""


@dataclass(frozen=True)
class ReturnedUnit:
    """One item QC took out of the returned box."""
    scan_id: str
    code: str
    keys: tuple[str, ...] = ()          # the code's item keys (as read, then its GTIN forms)
    condition: str = "resellable"
    lot: str | None = None
    serial: str | None = None
    readable: bool = True
    catalog_sku: str | None = None      # what the catalogue says a foreign code is, if anything
    catalog_name: str | None = None
    # A read that is no single unit (a malformed GS1 label, a case or pallet label): its verdict
    # code and parameters; such a unit is not counted (readable is False).
    refusal: tuple[str, Mapping[str, Any]] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"scan_id": self.scan_id, "code": self.code, "condition": self.condition,
                "lot": self.lot, "serial": self.serial}


@dataclass(frozen=True)
class ScanVerdict:
    verdict: str
    line_no: int | None = None
    sku: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.verdict == "matched"


@dataclass(frozen=True)
class Comparison:
    lines: tuple[dict[str, Any], ...]
    suggested_outcome: str

    def counts(self) -> dict[str, int]:
        out = {result: 0 for result in RESULTS}
        for line in self.lines:
            out[line["result"]] += 1
        return out

    def differences(self) -> int:
        """Lines with anything to say: a result other than `matched`, or a serial issue."""
        return sum(1 for line in self.lines if line["issues"])


def line_of(kit: Kit, unit: ReturnedUnit, substitutes: Mapping[str, int] | None = None) -> KitLine | None:
    """The snapshot line a returned unit belongs to, by any of its item keys; failing that, the
    line a supervisor credited that code to when packing."""
    if not unit.readable:
        return None
    keys = unit.keys or (unit.code,)
    line = kit.line_for_keys(keys)
    if line is None and substitutes:
        credited = next((substitutes[key] for key in keys if key in substitutes), None)
        # A credit names a line of this snapshot; one that does not (a stale record) matches nothing.
        line = next((l for l in kit.lines if l.line_no == credited), None)
    return line


def expected_qty(line: KitLine, waived: Mapping[int, int] | None) -> int:
    return max(line.qty - (waived or {}).get(line.line_no, 0), 0)


def expected_lots(line: KitLine, packed: Iterable[PackedUnit]) -> list[str]:
    """The lots that went out on this line: recorded by the packing scans, or fixed by the OMS."""
    lots = {unit.lot for unit in packed if unit.sku == line.sku and unit.lot}
    if line.lot:
        lots.add(line.lot)
    return sorted(lots)


def _lot_differs(unit: ReturnedUnit, lots: Sequence[str]) -> bool:
    return bool(lots) and unit.lot is not None and unit.lot not in lots


def packed_serials(line: KitLine, packed: Iterable[PackedUnit]) -> list[str]:
    return sorted({unit.serial for unit in packed if unit.sku == line.sku and unit.serial})


def _serial_differs(unit: ReturnedUnit, serials: Sequence[str]) -> bool:
    return bool(serials) and unit.serial is not None and unit.serial not in serials


def scan_verdict(kit: Kit, packed: Sequence[PackedUnit], earlier: Sequence[ReturnedUnit],
                 unit: ReturnedUnit, *, waived: Mapping[int, int] | None = None,
                 substitutes: Mapping[str, int] | None = None) -> ScanVerdict:
    """The live word for one scan, given the readable scans of this return made before it."""
    if unit.refusal is not None:
        return ScanVerdict(unit.refusal[0], params=dict(unit.refusal[1]))
    if not unit.readable:
        return ScanVerdict("unreadable")
    line = line_of(kit, unit, substitutes)
    if line is None:
        return ScanVerdict("foreign_item", None, unit.catalog_sku,
                           {"code": unit.code, "name": unit.catalog_name})
    lots = expected_lots(line, packed)
    before = sum(1 for other in earlier if line_of(kit, other, substitutes) is line)
    shipped = expected_qty(line, waived)
    params = {"name": line.name, "role": line.role, "qty": shipped, "returned": before + 1,
              "lot": unit.lot, "packed_lots": lots}
    if _lot_differs(unit, lots):
        return ScanVerdict("lot_mismatch", line.line_no, line.sku, params)
    serials = packed_serials(line, packed)
    if _serial_differs(unit, serials):
        return ScanVerdict("serial_mismatch", line.line_no, line.sku,
                           {**params, "serial": unit.serial, "packed_serials": serials})
    if before >= shipped:
        return ScanVerdict("over_returned", line.line_no, line.sku, params)
    return ScanVerdict("matched", line.line_no, line.sku, params)


def _scan_key(unit: ReturnedUnit) -> tuple[str, str]:
    return (unit.scan_id, unit.code)


def compare(kit: Kit, packed: Sequence[PackedUnit], returned: Sequence[ReturnedUnit], *,
            waived: Mapping[int, int] | None = None,
            substitutes: Mapping[str, int] | None = None) -> Comparison:
    """Every snapshot line against what came back, then every unit no line lists."""
    by_line: dict[int, list[ReturnedUnit]] = {line.line_no: [] for line in kit.lines}
    foreign: list[ReturnedUnit] = []
    for unit in returned:
        if not unit.readable:
            continue
        line = line_of(kit, unit, substitutes)
        if line is None:
            foreign.append(unit)
        else:
            by_line[line.line_no].append(unit)
    lines: list[dict[str, Any]] = []
    for line in kit.lines:
        units = sorted(by_line[line.line_no], key=_scan_key)
        lots = expected_lots(line, packed)
        mismatched = [u for u in units if _lot_differs(u, lots)]
        serials = packed_serials(line, packed)
        other_units = [u for u in units if _serial_differs(u, serials)]
        returned_qty = len(units)
        shipped = expected_qty(line, waived)
        missing_qty = max(shipped - returned_qty, 0)
        over_qty = max(returned_qty - shipped, 0)
        issues = (["lot_mismatch"] if mismatched else []) + \
            (["serial_mismatch"] if other_units else []) + \
            (["over_returned"] if over_qty else []) + (["missing"] if missing_qty else [])
        result = next((word for word in issues if word in RESULTS), "matched")
        lines.append({
            "result": result, "issues": issues, "line_no": line.line_no, "sku": line.sku,
            "name": line.name, "role": line.role, "snapshot_line": line.as_dict(),
            "expected_qty": shipped, "waived_qty": line.qty - shipped,
            "returned_qty": returned_qty, "missing_qty": missing_qty,
            "over_qty": over_qty, "packed_lots": lots,
            "packed_serials": serials,
            "mismatched_serials": sorted({u.serial for u in other_units if u.serial}),
            "returned_lots": sorted({u.lot for u in units if u.lot}),
            "mismatched_lots": sorted({u.lot for u in mismatched if u.lot}),
            "conditions": sorted({u.condition for u in units}),
            "scans": [u.as_dict() for u in units]})
    for unit in sorted(foreign, key=_scan_key):
        lines.append({
            "result": "foreign_item", "issues": ["foreign_item"], "line_no": None,
            "sku": unit.catalog_sku, "name": unit.catalog_name, "role": None,
            "snapshot_line": None, "expected_qty": 0, "waived_qty": 0, "returned_qty": 1,
            "missing_qty": 0,
            "over_qty": 1, "packed_lots": [], "packed_serials": [], "mismatched_serials": [],
            "returned_lots": [unit.lot] if unit.lot else [], "mismatched_lots": [],
            "conditions": [unit.condition], "scans": [unit.as_dict()]})
    return Comparison(tuple(lines), suggest_outcome(lines))


def suggest_outcome(lines: Sequence[Mapping[str, Any]]) -> str:
    """The rule in the module docstring: manual_review > partial > refund."""
    results = {line["result"] for line in lines} | {i for line in lines for i in line["issues"]}
    if results & {"foreign_item", "lot_mismatch", "serial_mismatch", "over_returned"}:
        return "manual_review"
    conditions = {c for line in lines for c in line["conditions"]}
    if "missing" in results or conditions - {"resellable"}:
        return "partial"
    return "refund"


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def report_content(rma_no: str, order_no: str, snapshot_hash: str,
                   lines: Sequence[Mapping[str, Any]], suggested_outcome: str) -> dict[str, Any]:
    return {"rma_no": rma_no, "order_no": order_no, "snapshot_hash": snapshot_hash,
            "lines": [dict(line) for line in lines], "suggested_outcome": suggested_outcome}


def report_hash(rma_no: str, order_no: str, snapshot_hash: str,
                lines: Sequence[Mapping[str, Any]], suggested_outcome: str) -> str:
    """SHA-256 of the canonical JSON of the report's content (see the module docstring)."""
    content = report_content(rma_no, order_no, snapshot_hash, lines, suggested_outcome)
    return hashlib.sha256(canonical_json(content).encode("utf-8")).hexdigest()
