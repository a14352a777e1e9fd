"""The returns comparison, table-driven, plus properties no order of scans may break."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from floor.packing.domain import parse_kit
from floor.returns import domain
from floor.returns.domain import PackedUnit, ReturnedUnit

KIT = parse_kit([
    {"sku": "SERUM", "name": "精华液", "qty": 1, "role": "main", "barcodes": ["M1"]},
    {"sku": "SAMPLE", "name": "试用装", "qty": 2, "role": "sample", "barcodes": ["S1"]},
    {"sku": "MIRROR", "name": "随身镜", "qty": 1, "role": "gift", "barcodes": ["G1"]},
    {"sku": "BOX", "name": "礼盒", "qty": 1, "role": "giftbox", "barcodes": ["B1"]},
])
PACKED = (PackedUnit("SERUM", "LM"), PackedUnit("SAMPLE", "LS"), PackedUnit("SAMPLE", "LS"),
          PackedUnit("MIRROR"), PackedUnit("BOX"))
CODES = {"SERUM": "M1", "SAMPLE": "S1", "MIRROR": "G1", "BOX": "B1"}


def unit(code, lot=None, condition="resellable", n=[0], scan_id=None, readable=True):  # noqa: B006
    n[0] += 1
    return ReturnedUnit(scan_id or f"r{n[0]:04d}", code, (code,), condition, lot,
                        readable=readable)


def everything(condition="resellable"):
    return [unit("M1", "LM", condition), unit("S1", "LS"), unit("S1"), unit("G1"), unit("B1")]


def results(comparison):
    return [(line["sku"], line["result"]) for line in comparison.lines]


CASES = [
    # (description, returned, expected results by line, suggested outcome)
    ("all back, resellable", everything(),
     ["matched", "matched", "matched", "matched"], "refund"),
    ("all back, one opened", everything("opened"),
     ["matched", "matched", "matched", "matched"], "partial"),
    ("gift missing", [u for u in everything() if u.code != "G1"],
     ["matched", "matched", "missing", "matched"], "partial"),
    ("nothing back", [], ["missing"] * 4, "partial"),
    ("a sample of another lot", everything()[:1] + [unit("S1", "LX"), unit("S1", "LS")] + everything()[3:],
     ["matched", "lot_mismatch", "matched", "matched"], "manual_review"),
    ("one sample short and of another lot", [unit("M1"), unit("S1", "LX"), unit("G1"), unit("B1")],
     ["matched", "lot_mismatch", "matched", "matched"], "manual_review"),
    ("a third sample", everything() + [unit("S1")],
     ["matched", "over_returned", "matched", "matched"], "manual_review"),
    ("unreadable scans count for nothing", everything() + [unit("", readable=False)],
     ["matched", "matched", "matched", "matched"], "refund"),
]


@pytest.mark.parametrize("description,returned,expected,outcome", CASES, ids=[c[0] for c in CASES])
def test_comparison_table(description, returned, expected, outcome):
    comparison = domain.compare(KIT, PACKED, returned)
    assert [line["result"] for line in comparison.lines] == expected, description
    assert comparison.suggested_outcome == outcome


def test_foreign_item_missing_gift_and_swapped_lot_yield_exactly_those_lines():
    returned = [unit("M1", "LM"), unit("S1", "LS"), unit("S1", "LX"), unit("B1", condition="damaged"),
                unit("6901234567946")]
    comparison = domain.compare(KIT, PACKED, returned)
    assert results(comparison) == [("SERUM", "matched"), ("SAMPLE", "lot_mismatch"),
                                   ("MIRROR", "missing"), ("BOX", "matched"), (None, "foreign_item")]
    sample, gift, foreign = comparison.lines[1], comparison.lines[2], comparison.lines[4]
    assert (sample["packed_lots"], sample["mismatched_lots"]) == (["LS"], ["LX"])
    assert sample["snapshot_line"]["sku"] == "SAMPLE" and len(sample["scans"]) == 2
    assert (gift["missing_qty"], gift["snapshot_line"]["role"], gift["scans"]) == (1, "gift", [])
    assert foreign["snapshot_line"] is None and foreign["scans"][0]["code"] == "6901234567946"
    assert comparison.suggested_outcome == "manual_review"
    assert comparison.counts() == {"matched": 2, "missing": 1, "lot_mismatch": 1,
                                   "over_returned": 0, "foreign_item": 1}


def test_a_missing_line_also_reports_its_lot_mismatch_and_its_shortfall():
    line = domain.compare(KIT, PACKED, [unit("S1", "LX")]).lines[1]
    assert line["issues"] == ["lot_mismatch", "missing"] and line["missing_qty"] == 1


def test_a_lot_fixed_by_the_oms_is_expected_even_when_packing_recorded_none():
    kit = parse_kit([{"sku": "A", "qty": 1, "barcodes": ["A1"], "lot": "OMS-LOT"}])
    assert domain.compare(kit, (), [unit("A1", "OMS-LOT")]).lines[0]["result"] == "matched"
    assert domain.compare(kit, (), [unit("A1", "OTHER")]).lines[0]["result"] == "lot_mismatch"


def test_no_lot_to_compare_with_is_no_mismatch():
    kit = parse_kit([{"sku": "A", "qty": 1, "barcodes": ["A1"]}])
    assert domain.compare(kit, (PackedUnit("A"),), [unit("A1", "ANY")]).lines[0]["result"] == "matched"


SERIAL_KIT = parse_kit([{"sku": "PHONE", "qty": 2, "barcodes": ["P1"]}])
SERIAL_PACKED = (PackedUnit("PHONE", "L1", "SN-1"), PackedUnit("PHONE", "L1", "SN-2"))


def serial_unit(serial, lot="L1"):
    return ReturnedUnit(f"s-{serial}", "P1", ("P1",), "resellable", lot, serial)


@pytest.mark.parametrize("serials, result, issues, mismatched, outcome", [
    (["SN-1", "SN-2"], "matched", [], [], "refund"),
    (["SN-2", "SN-1"], "matched", [], [], "refund"),
    (["SN-1", "SN-9"], "matched", ["serial_mismatch"], ["SN-9"], "manual_review"),
    (["SN-9"], "missing", ["serial_mismatch", "missing"], ["SN-9"], "manual_review"),
    (["SN-1", None], "matched", [], [], "refund"),          # no serial read: nothing to compare
])
def test_a_unit_that_was_not_the_one_shipped_is_named_by_its_serial(serials, result, issues,
                                                                    mismatched, outcome):
    returned = [serial_unit(s) if s else ReturnedUnit("s-none", "P1", ("P1",), lot="L1") for s in serials]
    comparison = domain.compare(SERIAL_KIT, SERIAL_PACKED, returned)
    line = comparison.lines[0]
    assert (line["result"], line["issues"], line["mismatched_serials"]) == (result, issues, mismatched)
    assert line["packed_serials"] == ["SN-1", "SN-2"]
    assert comparison.suggested_outcome == outcome
    assert comparison.differences() == (1 if issues else 0)
    verdict = domain.scan_verdict(SERIAL_KIT, SERIAL_PACKED, [], serial_unit("SN-9"))
    assert (verdict.verdict, verdict.params["packed_serials"]) == ("serial_mismatch", ["SN-1", "SN-2"])
    assert domain.scan_verdict(SERIAL_KIT, SERIAL_PACKED, [], serial_unit("SN-2")).verdict == "matched"


@pytest.mark.parametrize("returned, waived, substitutes, expected, outcome", [
    # One sample waived at packing (out of stock): one back is all of it, two is one too many.
    (lambda: everything()[:2] + everything()[3:], {2: 1}, {}, ["matched"] * 4, "refund"),
    (lambda: everything(), {2: 1}, {}, ["matched", "over_returned", "matched", "matched"], "manual_review"),
    # The gift swapped for an approved substitute: its code finds the gift's line.
    (lambda: everything()[:3] + [unit("SUB"), unit("B1")], {}, {"SUB": 3}, ["matched"] * 4, "refund"),
    (lambda: everything()[:3] + [unit("SUB"), unit("B1")], {}, {}, ["matched", "matched", "missing",
                                                                    "matched", "foreign_item"], "manual_review"),
    # The original gift, not the substitute shipped, still belongs to its line.
    (lambda: everything(), {}, {"SUB": 3}, ["matched"] * 4, "refund"),
])
def test_waived_units_and_credited_substitutes(returned, waived, substitutes, expected, outcome):
    comparison = domain.compare(KIT, PACKED, returned(), waived=waived, substitutes=substitutes)
    assert [line["result"] for line in comparison.lines] == expected
    assert comparison.suggested_outcome == outcome
    sample = comparison.lines[1]
    assert (sample["expected_qty"], sample["waived_qty"]) == (2 - waived.get(2, 0), waived.get(2, 0))
    if substitutes:
        assert domain.scan_verdict(KIT, PACKED, [], unit("SUB"), substitutes=substitutes).line_no == 3


def test_serials_are_not_judged_where_packing_recorded_none():
    comparison = domain.compare(SERIAL_KIT, (PackedUnit("PHONE", "L1"),) * 2,
                                [serial_unit("SN-7"), serial_unit("SN-8")])
    assert comparison.lines[0]["issues"] == [] and comparison.suggested_outcome == "refund"


LIVE = [
    # (description, earlier, this scan, verdict)
    ("a packed unit", [], unit("M1", "LM"), "matched"),
    ("plain EAN of a lot-tracked line", [], unit("M1"), "matched"),
    ("another lot", [], unit("S1", "LX"), "lot_mismatch"),
    ("never in the order", [], unit("X9"), "foreign_item"),
    ("one too many", [unit("M1")], unit("M1"), "over_returned"),
    ("the second sample", [unit("S1")], unit("S1", "LS"), "matched"),
    ("the third sample", [unit("S1"), unit("S1")], unit("S1"), "over_returned"),
    ("unreadable", [], unit("", readable=False), "unreadable"),
]


@pytest.mark.parametrize("description,earlier,scan,verdict", LIVE, ids=[c[0] for c in LIVE])
def test_live_verdicts(description, earlier, scan, verdict):
    assert domain.scan_verdict(KIT, PACKED, earlier, scan).verdict == verdict, description


def test_a_gs1_gtin_form_finds_the_ean_line():
    from floor.scan.domain import normalise

    kit = parse_kit([{"sku": "SERUM", "qty": 1, "barcodes": ["6901234567892"]}])
    norm = normalise("]C10106901234567892" + "10L1")
    scan = ReturnedUnit("a", norm.text, norm.item_keys(), lot=norm.gs1.lot)
    assert domain.scan_verdict(kit, (PackedUnit("SERUM", "L1"),), [], scan).verdict == "matched"


def test_the_report_hash_embeds_the_snapshot_hash():
    comparison = domain.compare(KIT, PACKED, everything())
    args = ("RMA1", "TB1", KIT.content_hash(), comparison.lines, comparison.suggested_outcome)
    first = domain.report_hash(*args)
    assert len(first) == 64 and first == domain.report_hash(*args)
    assert domain.report_hash("RMA1", "TB1", "0" * 64, *args[3:]) != first
    assert domain.report_hash("RMA1", "TB1", args[2], comparison.lines, "partial") != first


def _exact_units():
    return [ReturnedUnit(f"u{i}", code, (code,), "resellable", lot)
            for i, (code, lot) in enumerate([("M1", "LM"), ("S1", "LS"), ("S1", None),
                                            ("G1", None), ("B1", None)])]


@settings(max_examples=60, deadline=None)
@given(st.permutations(_exact_units()))
def test_returning_exactly_the_packed_units_in_any_order_is_a_refund(order):
    comparison = domain.compare(KIT, PACKED, order)
    assert {line["result"] for line in comparison.lines} == {"matched"}
    assert comparison.suggested_outcome == "refund"
    earlier: list[ReturnedUnit] = []
    for scan in order:
        assert domain.scan_verdict(KIT, PACKED, earlier, scan).verdict == "matched"
        earlier.append(scan)


POOL = [ReturnedUnit(f"p{i}", code, (code,), cond, lot)
        for i, (code, lot, cond) in enumerate([
            ("M1", "LM", "resellable"), ("S1", "LX", "opened"), ("S1", "LS", "resellable"),
            ("S1", None, "damaged"), ("B1", None, "resellable"), ("ZZ", None, "resellable"),
            ("G1", "LQ", "resellable"), ("M1", None, "opened")])]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.sampled_from(range(len(POOL))), unique=True, max_size=len(POOL)), st.randoms())
def test_the_report_hash_does_not_depend_on_the_scan_order(picked, rnd):
    units = [POOL[i] for i in picked]
    shuffled = list(units)
    rnd.shuffle(shuffled)
    a, b = domain.compare(KIT, PACKED, units), domain.compare(KIT, PACKED, shuffled)
    assert a.lines == b.lines and a.suggested_outcome == b.suggested_outcome
    assert domain.report_hash("R", "O", "h", a.lines, a.suggested_outcome) == \
        domain.report_hash("R", "O", "h", b.lines, b.suggested_outcome)
    # Every snapshot line has exactly one report line; every unit is on exactly one line.
    assert [line["line_no"] for line in a.lines if line["line_no"]] == [1, 2, 3, 4]
    assert sum(len(line["scans"]) for line in a.lines) == len(units)
