"""The packing rules, table-driven, plus properties no sequence of scans may break."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from floor.packing import domain
from floor.packing.domain import (Decision, KitError, OrderRef, PackState, ScanFacts, apply_decision,
                                  decide_scan, parse_kit)

KIT = parse_kit([
    {"sku": "SERUM", "name": "精华液", "qty": 1, "role": "main", "barcodes": ["M1", "M1-ALT"]},
    {"sku": "SAMPLE", "name": "试用装", "qty": 2, "role": "sample", "barcodes": ["S1"]},
    {"sku": "MIRROR", "name": "随身镜", "qty": 1, "role": "gift", "barcodes": ["G1"]},
    {"sku": "BOX", "name": "礼盒", "qty": 1, "role": "giftbox", "barcodes": ["B1"]},
])


def state(counts=None, waybill="SF1", waived=(), giftbox_requires=domain.ROLES_BEFORE_GIFTBOX):
    return PackState("TB1", "W-1", KIT, dict(counts or {}), set(waived), waybill, giftbox_requires)


def ref(status="wave_assigned", wave="W-1", snapshot=True, held=None):
    return OrderRef("TB1", status, wave, snapshot, held)


FULL = {1: 1, 2: 2, 3: 1}

CASES = [
    # (description, facts, expected code, ok)
    ("nothing open, known item", ScanFacts("S1", None, catalog_sku="SAMPLE"), "waybill_required", False),
    ("nothing open, unknown", ScanFacts("??", None), "unknown_code", False),
    ("open by waybill", ScanFacts("SF1", None, order=ref()), "order_opened", True),
    ("open, not in a wave", ScanFacts("SF1", None, order=ref(wave=None, snapshot=False)), "not_in_wave", False),
    ("open, already packed", ScanFacts("SF1", None, order=ref("packed")), "already_packed", False),
    ("open, loaded later", ScanFacts("SF1", None, order=ref("loaded")), "already_packed", False),
    ("open, on hold", ScanFacts("SF1", None, order=ref("on_hold")), "order_blocked", False),
    ("open, held elsewhere", ScanFacts("SF1", None, order=ref(held=("P02", "PDA-9"))), "order_held", False),
    ("item of the kit", ScanFacts("M1", state()), "accepted", True),
    ("second barcode", ScanFacts("M1-ALT", state()), "accepted", True),
    ("line already full", ScanFacts("M1", state({1: 1})), "over_scan", False),
    ("gift box first", ScanFacts("B1", state()), "giftbox_incomplete", False),
    ("gift box, sample short", ScanFacts("B1", state({1: 1, 2: 1})), "giftbox_incomplete", False),
    ("gift box, gift not yet in", ScanFacts("B1", state({1: 1, 2: 2})), "giftbox_incomplete", False),
    ("gift box, every free item in", ScanFacts("B1", state({1: 1, 2: 2, 3: 1})), "accepted", True),
    ("gift box, gift waived", ScanFacts("B1", state({1: 1, 2: 2}, waived=[3])), "accepted", True),
    ("gift box, sample waived", ScanFacts("B1", state({1: 1, 3: 1}, waived=[2])), "accepted", True),
    ("item of another order", ScanFacts("X1", state(), catalog_sku="CREAM",
                                        other_orders=(("TB2", "W-1"),)), "other_order", False),
    ("known item, no order", ScanFacts("X1", state(), catalog_sku="CREAM"), "wrong_item", False),
    ("unknown code, order open", ScanFacts("??", state()), "unknown_code", False),
    ("waybill bound at the end", ScanFacts("YT123456789", state(FULL | {4: 1}, waybill=None),
                                           waybill_candidate=True), "accepted", True),
    ("waybill bound early", ScanFacts("YT123456789", state(waybill=None), waybill_candidate=True),
     "waybill_bound", True),
    ("waybill-like code, waybill present", ScanFacts("YT123456789", state(), waybill_candidate=True),
     "unknown_code", False),
]


@pytest.mark.parametrize("name, facts, code, ok", CASES, ids=[c[0] for c in CASES])
def test_verdicts(name, facts, code, ok):
    decision = decide_scan(facts)
    assert (decision.code, decision.ok) == (code, ok)


def test_other_order_names_the_order_and_wave():
    decision = decide_scan(ScanFacts("X1", state(), catalog_sku="CREAM", other_orders=(("TB2", "W-7"),)))
    assert decision.params["other_order_no"] == "TB2" and decision.params["other_wave_no"] == "W-7"


def test_giftbox_refusal_lists_what_is_missing_with_units_left():
    decision = decide_scan(ScanFacts("B1", state({2: 1})))
    assert decision.params["missing_names"] == "精华液×1, 试用装×1, 随身镜×1"
    assert [m["sku"] for m in decision.params["missing"]] == ["SERUM", "SAMPLE", "MIRROR"]


def test_completion_needs_every_line_and_a_waybill():
    last = decide_scan(ScanFacts("B1", state(FULL)))
    assert last.completes
    no_waybill = decide_scan(ScanFacts("B1", state(FULL, waybill=None)))
    assert no_waybill.code == "accepted" and not no_waybill.completes
    assert no_waybill.params["units_left"] == 0 and no_waybill.params["waybill_missing"]


MAIN_SAMPLES = domain.GIFTBOX_REQUIRES["main_samples"]

# The warehouse setting `giftbox_requires`: what the gift box waits for.
GIFTBOX_RULES = [
    # (description, setting, counts before the gift box, expected code, names listed as missing)
    ("default, all short", None, {}, "giftbox_incomplete", "精华液×1, 试用装×2, 随身镜×1"),
    ("default, gift short", None, {1: 1, 2: 2}, "giftbox_incomplete", "随身镜×1"),
    ("default, sample short", None, {1: 1, 2: 1, 3: 1}, "giftbox_incomplete", "试用装×1"),
    ("default, all in", None, {1: 1, 2: 2, 3: 1}, "accepted", None),
    ("explicit default, gift short", "main_samples_gifts", {1: 1, 2: 2}, "giftbox_incomplete", "随身镜×1"),
    ("relaxed, gift short", "main_samples", {1: 1, 2: 2}, "accepted", None),
    ("relaxed, sample short", "main_samples", {1: 1, 2: 1}, "giftbox_incomplete", "试用装×1"),
    ("relaxed, main short", "main_samples", {2: 2, 3: 1}, "giftbox_incomplete", "精华液×1"),
    ("unknown value: the default", "gifts_optional", {1: 1, 2: 2}, "giftbox_incomplete", "随身镜×1"),
    ("not a string: the default", ["main"], {1: 1, 2: 2}, "giftbox_incomplete", "随身镜×1"),
]


@pytest.mark.parametrize("name, setting, counts, code, missing", GIFTBOX_RULES,
                         ids=[c[0] for c in GIFTBOX_RULES])
def test_giftbox_rule_by_warehouse_setting(name, setting, counts, code, missing):
    settings_ = {} if setting is None else {"giftbox_requires": setting}
    roles = domain.roles_before_giftbox(settings_)
    decision = decide_scan(ScanFacts("B1", state(counts, giftbox_requires=roles)))
    assert decision.code == code
    assert decision.params.get("missing_names") == missing
    assert state(counts, giftbox_requires=roles).progress()["giftbox_requires"] == sorted(roles)


@pytest.mark.parametrize("settings_, roles", [
    (None, {"main", "sample", "gift"}), ({}, {"main", "sample", "gift"}),
    ({"giftbox_requires": "main_samples"}, {"main", "sample"}),
    ({"giftbox_requires": "main_samples_gifts"}, {"main", "sample", "gift"}),
    ({"giftbox_requires": 3}, {"main", "sample", "gift"}), ("not a mapping", {"main", "sample", "gift"}),
])
def test_roles_before_giftbox(settings_, roles):
    assert domain.roles_before_giftbox(settings_) == roles


@pytest.mark.parametrize("roles, waived", [(domain.ROLES_BEFORE_GIFTBOX, [2, 3]), (MAIN_SAMPLES, [2])])
def test_giftbox_override_waives_what_the_box_waits_for(roles, waived):
    st_ = state({1: 1, 2: 1}, giftbox_requires=roles)
    assert domain.waive_for_override(st_, "giftbox_incomplete", 4) == waived
    assert st_.counts[4] == 1


def test_accepted_reports_progress():
    decision = decide_scan(ScanFacts("S1", state({1: 1})))
    assert decision.params["scanned"] == 1 and decision.params["qty"] == 2
    assert decision.params["units_left"] == 3 and decision.params["lines_total"] == 4


@pytest.mark.parametrize("lines, message", [
    ([], "non-empty"),
    ([{"sku": "A", "qty": 1, "role": "main", "barcodes": ["1"]}] * 2, "appears on two lines"),
    ([{"sku": "A", "qty": True, "role": "main", "barcodes": ["1"]}], "qty"),
    ([{"sku": "A", "qty": 1, "role": "main", "barcodes": ["1\x07"]}], "barcodes"),
    ([{"sku": "A", "qty": 1, "role": "main", "barcodes": ["1"]},
      {"sku": "B", "qty": 1, "role": "main", "barcodes": ["1"]}], "both"),
    ([{"sku": "A" * 65, "qty": 1, "role": "main", "barcodes": ["1"]}], "sku"),
    ("lines", "non-empty"),
])
def test_invalid_kits(lines, message):
    with pytest.raises(KitError, match=message):
        parse_kit(lines)


def test_snapshot_hash_is_stable_and_content_sensitive():
    same = parse_kit([l.as_dict() | {"barcodes": list(reversed(l.barcodes))} for l in KIT.lines])
    assert same.content_hash() == KIT.content_hash()
    changed = parse_kit([l.as_dict() | {"qty": l.qty + 1} for l in KIT.lines])
    assert changed.content_hash() != KIT.content_hash()


@pytest.mark.parametrize("current, target, allowed", [
    ("received", "wave_assigned", True), ("wave_assigned", "packing", True),
    ("packing", "packed", True), ("received", "packed", False), ("packed", "packing", False),
    ("packed", "labelling", True), ("handed_over", "on_hold", False), ("on_hold", "packing", True),
    ("on_hold", "packed", False), ("cancelled", "received", False), ("packing", "packing", False),
])
def test_status_transitions(current, target, allowed):
    assert domain.can_transition(current, target) is allowed


# --- properties -------------------------------------------------------------------------------

kit_lines = st.lists(
    st.tuples(st.sampled_from(domain.ROLES), st.integers(1, 3)), min_size=1, max_size=5)


@st.composite
def kits_and_scans(draw):
    spec = draw(kit_lines)
    kit = parse_kit([{"sku": f"SKU{i}", "qty": qty, "role": role, "barcodes": [f"C{i}", f"C{i}b"]}
                     for i, (role, qty) in enumerate(spec)])
    alphabet = [c for l in kit.lines for c in l.barcodes] + ["FOREIGN", "YT123456789", ""]
    scans = draw(st.lists(st.sampled_from(alphabet), max_size=40))
    waybill = draw(st.sampled_from([None, "SF1"]))
    return kit, scans, waybill


@settings(max_examples=300, deadline=None)
@given(kits_and_scans())
def test_no_sequence_of_scans_reaches_packed_with_a_line_short(case):
    kit, scans, waybill = case
    st_ = PackState("TB1", "W-1", kit, waybill_no=waybill)
    for code in scans:
        facts = ScanFacts(code, st_, catalog_sku="OTHER" if code == "FOREIGN" else None,
                          waybill_candidate=code == "YT123456789")
        decision = decide_scan(facts)
        assert isinstance(decision, Decision) and decision.code
        apply_decision(st_, decision, code)
        for line in kit.lines:
            assert st_.counts.get(line.line_no, 0) <= line.qty          # never over-counted
        if decision.completes:
            assert all(st_.packed(l) >= l.qty for l in kit.lines) and st_.waybill_no
            break
        # the gift box is never in while a main item, sample or gift is short
        boxes = [l for l in kit.lines if l.role == "giftbox" and st_.counts.get(l.line_no)]
        if boxes:
            assert not st_.short_lines({"main", "sample", "gift"})
    if st_.is_complete():
        assert not st_.short_lines()


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=20), st.one_of(st.none(), st.tuples(st.text(max_size=5), st.text(max_size=5))),
       st.sampled_from(["received", "wave_assigned", "packing", "packed", "on_hold", "weird"]))
def test_decide_never_raises_on_any_facts(code, held, status):
    order = OrderRef("X", status, "W", True, held) if held is not None else None
    decision = decide_scan(ScanFacts(code, state(), order=order, catalog_sku=code or None))
    assert decision.code
