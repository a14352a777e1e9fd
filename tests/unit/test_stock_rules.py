"""Stock rules: wave allocation and shortfall (table-driven and hypothesis), release options,
movements and low stock, stock items and CSV parsing."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from floor.stock import domain
from floor.stock.domain import OrderNeed, StockInputError


def need(order_no: str, **units: int) -> OrderNeed:
    return OrderNeed(order_no, units)


# --- allocation ------------------------------------------------------------------------------

ALLOCATION_CASES = [
    pytest.param([need("A", BOX=1), need("B", BOX=1)], {"BOX": 2}, {}, ("A", "B"), [], id="enough"),
    pytest.param([need("A", BOX=1), need("B", BOX=1), need("C", BOX=1)], {"BOX": 2}, {},
                 ("A", "B"), [("BOX", 3, 2, 0, ("C",))], id="fifo-last-is-short"),
    pytest.param([need("A", BOX=1, SERUM=1)], {"BOX": 5}, {}, ("A",), [], id="untracked-sku-ignored"),
    pytest.param([need("A", BOX=2), need("B", BOX=1)], {"BOX": 1}, {},
                 ("B",), [("BOX", 3, 1, 0, ("A",))], id="short-order-takes-nothing-later-fits"),
    pytest.param([need("A", BOX=1), need("B", BOX=1)], {"BOX": 3}, {"BOX": 2},
                 ("A",), [("BOX", 2, 3, 2, ("B",))], id="reserved-by-released-waves"),
    pytest.param([need("A", BOX=1, GIFT=1), need("B", BOX=1, GIFT=1)], {"BOX": 2, "GIFT": 1}, {},
                 ("A",), [("GIFT", 2, 1, 0, ("B",))], id="short-on-one-of-two"),
    pytest.param([need("A", BOX=1, GIFT=1)], {"BOX": 0, "GIFT": 0}, {},
                 (), [("BOX", 1, 0, 0, ("A",)), ("GIFT", 1, 0, 0, ("A",))], id="short-on-both"),
    pytest.param([need("A", BOX=1)], {"BOX": -4}, {}, (), [("BOX", 1, -4, 0, ("A",))],
                 id="negative-record-serves-nothing"),
    pytest.param([], {"BOX": 1}, {}, (), [], id="no-orders"),
]


@pytest.mark.parametrize("orders, on_hand, reserved, served, shortfall", ALLOCATION_CASES)
def test_allocation(orders, on_hand, reserved, served, shortfall):
    result = domain.allocate(orders, on_hand, reserved)
    assert result.served == served
    assert [(s.sku, s.needed, s.on_hand, s.reserved, s.order_nos) for s in result.shortfall] == shortfall


def test_three_hundred_gift_box_orders_with_a_hundred_and_twenty_boxes():
    orders = [need(f"O{i:03d}", BOX=1, SERUM=1) for i in range(300)]
    result = domain.allocate(orders, {"BOX": 120})
    assert result.served == tuple(f"O{i:03d}" for i in range(120))
    [short] = result.shortfall_dicts()
    assert short == {"sku": "BOX", "needed": 300, "on_hand": 120, "reserved": 0, "available": 120,
                     "short_by": 180, "order_nos": [f"O{i:03d}" for i in range(120, 300)]}
    assert result.short[0].as_dict() == {"order_no": "O120",
                                         "missing": [{"sku": "BOX", "qty": 1, "left": 0}]}


SKUS = ("BOX", "GIFT", "SAMPLE", "SERUM")
orders_strategy = st.lists(
    st.dictionaries(st.sampled_from(SKUS), st.integers(1, 4), min_size=1, max_size=4), max_size=25)
stock_strategy = st.dictionaries(st.sampled_from(SKUS), st.integers(-3, 30), max_size=4)
reserved_strategy = st.dictionaries(st.sampled_from(SKUS), st.integers(0, 10), max_size=4)


@settings(max_examples=300, deadline=None)
@given(orders_strategy, stock_strategy, reserved_strategy)
def test_allocation_properties(raw_orders, on_hand, reserved):
    orders = [OrderNeed(f"O{i}", units) for i, units in enumerate(raw_orders)]
    result = domain.allocate(orders, on_hand, reserved)
    served = set(result.served)
    short = set(result.short_order_nos)
    # every order is either served or short, never both
    assert served | short == {o.order_no for o in orders} and not served & short
    # never over-allocates: what the served orders take fits in what was available
    for sku, qty in on_hand.items():
        taken = sum(o.units.get(sku, 0) for o in orders if o.order_no in served)
        assert taken == result.taken.get(sku, 0)
        assert taken <= max(qty - reserved.get(sku, 0), 0)
    # short iff, at its turn (FIFO), some tracked line needs more than is left
    left = {sku: max(qty - reserved.get(sku, 0), 0) for sku, qty in on_hand.items()}
    for order in orders:
        tracked = {sku: q for sku, q in order.units.items() if sku in on_hand}
        fits = all(q <= left[sku] for sku, q in tracked.items())
        assert (order.order_no in served) == fits
        if fits:
            for sku, q in tracked.items():
                left[sku] -= q
    # untracked SKUs never make an order short
    for order in orders:
        if not set(order.units) & set(on_hand):
            assert order.order_no in served
    # the shortfall names exactly the short orders, each under a SKU it lacked
    named = {n for s in result.shortfall for n in s.order_nos}
    assert named == short
    for s in result.shortfall:
        assert s.needed == sum(o.units.get(s.sku, 0) for o in orders)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 30), st.integers(0, 40))
def test_orders_needing_one_box_each_are_served_first_come_first_served(count, boxes):
    orders = [need(f"O{i:02d}", BOX=1) for i in range(count)]
    result = domain.allocate(orders, {"BOX": boxes})
    assert result.served == tuple(o.order_no for o in orders[:boxes])


def test_order_need_sums_lines_of_the_same_sku():
    assert domain.order_need("A", [{"sku": "X", "qty": 1}, {"sku": "X", "qty": 2},
                                   {"sku": "Y", "qty": 1}]).units == {"X": 3, "Y": 1}


# --- release options -------------------------------------------------------------------------

@pytest.mark.parametrize("body, expected", [
    ({}, (None, None)),
    ({"split": True}, ("split", None)),
    ({"split": True, "reason": " late truck "}, ("split", "late truck")),
    ({"release_anyway": True, "reason": "boxes arriving at 14:00"}, ("release_anyway", "boxes arriving at 14:00")),
    ({"hold_short": True, "reason": "wait for boxes"}, ("hold_short", "wait for boxes")),
    ({"release_anyway": False, "split": True}, ("split", None)),
])
def test_release_option_accepted(body, expected):
    option = domain.release_option(body)
    assert (option.choice, option.reason) == expected


@pytest.mark.parametrize("body, code", [
    ({"release_anyway": True}, "reason_required"),
    ({"hold_short": True, "reason": "  "}, "invalid_field"),
    ({"release_anyway": True, "split": True, "reason": "x"}, "conflicting_options"),
    ({"hold_short": True, "split": True, "release_anyway": True, "reason": "x"}, "conflicting_options"),
    ({"split": "yes"}, "invalid_field"),
    ({"split": 1}, "invalid_field"),
    ({"release_anyway": True, "reason": 5}, "invalid_field"),
    ({"release_anyway": True, "reason": "x" * 501}, "invalid_field"),
    ({"release_anyway": True, "reason": "bad\x00"}, "invalid_field"),
])
def test_release_option_refused(body, code):
    with pytest.raises(StockInputError) as exc:
        domain.release_option(body)
    assert exc.value.code == code


# --- movements and low stock -----------------------------------------------------------------

@pytest.mark.parametrize("before, delta, after", [(5, -2, 3), (1, -3, -2), (-2, 4, 2), (0, 0, 0)])
def test_delta_movements_may_go_negative(before, delta, after):
    movement = domain.delta_movement("BOX", before, delta)
    assert (movement.delta, movement.on_hand_after) == (delta, after)


def test_set_movement_records_the_difference():
    assert domain.set_movement("BOX", 12, 5) == domain.Movement("BOX", -7, 5)


@pytest.mark.parametrize("on_hand, threshold, level", [
    (10, 5, None), (5, 5, "yellow"), (0, 5, "yellow"), (-1, 5, "red"), (-1, None, "red"),
    (0, None, None), (0, 0, "yellow"), (1, 0, None)])
def test_low_level(on_hand, threshold, level):
    assert domain.low_level(on_hand, threshold) == level


def test_low_stock_alert_and_threshold_default():
    assert domain.effective_threshold(None, 3) == 3 and domain.effective_threshold(7, 3) == 7
    assert domain.effective_threshold(None, None) is None
    spec = domain.low_stock_alert("JX", "BOX", 2, 5)
    assert spec is not None and (spec.kind, spec.key, spec.level) == ("low_stock", "low_stock:JX:BOX", "yellow")
    assert spec.params == {"warehouse": "JX", "sku": "BOX", "on_hand": 2, "threshold": 5}
    assert domain.low_stock_alert("JX", "BOX", 6, 5) is None


# An order of a released wave whose kit changed, checked alone against on hand less what the
# other released orders reserve: (its units, on hand, reserved by the others, short SKUs).
KIT_EDITS = [
    ({"BOX": 1}, {"BOX": 3}, {"BOX": 2}, None),                    # still fits, exactly
    ({"BOX": 2}, {"BOX": 3}, {"BOX": 2}, "BOX"),                   # the edit takes one too many
    ({"BOX": 1, "POUCH": 2}, {"BOX": 5, "POUCH": 1}, {}, "POUCH"),  # a new gift line, one pouch
    ({"BOX": 1, "CARD": 9}, {"BOX": 1}, {}, None),                 # untracked SKUs never count
    ({"BOX": 2, "POUCH": 2}, {"BOX": 1, "POUCH": 1}, {}, "BOX, POUCH"),
]


@pytest.mark.parametrize("units, on_hand, reserved, skus", KIT_EDITS)
def test_a_changed_kit_is_checked_with_the_release_rule(units, on_hand, reserved, skus):
    allocation = domain.allocate([OrderNeed("TB1", units)], on_hand, reserved)
    short = allocation.short[0] if allocation.short else None
    spec = domain.kit_short_alert("JX", "taobao", "TB1", "W-1", short)
    if skus is None:
        assert spec is None
        return
    assert spec is not None and (spec.kind, spec.key, spec.level, spec.order_no) == (
        "kit_short_of_stock", "kit_short_of_stock:taobao:TB1", "red", "TB1")
    assert spec.params["skus"] == skus and spec.params["wave_no"] == "W-1"
    assert [m["sku"] for m in spec.params["missing"]] == skus.split(", ")


# --- JSON items ------------------------------------------------------------------------------

def test_items_are_parsed_with_thresholds_kept_set_or_cleared():
    rows = domain.parse_items([{"sku": " BOX ", "on_hand": 5}, {"sku": "GIFT", "on_hand": "7", "low_threshold": 2},
                               {"sku": "SAMPLE", "on_hand": 0, "low_threshold": None}])
    assert [(r.sku, r.on_hand, r.low_threshold, r.threshold_given) for r in rows] == [
        ("BOX", 5, None, False), ("GIFT", 7, 2, True), ("SAMPLE", 0, None, True)]


def test_every_bad_item_is_named_and_nothing_passes():
    with pytest.raises(StockInputError) as exc:
        domain.parse_items([{"sku": "BOX", "on_hand": 5}, {"sku": "", "on_hand": 1},
                            {"sku": "GIFT", "on_hand": -1}, {"sku": "BOX", "on_hand": 2},
                            {"sku": "X", "on_hand": True}, {"sku": "Y"}, "nope",
                            {"sku": "Z", "on_hand": 1, "low_threshold": "lots"}, {"sku": "W", "on_hand": 1.5}])
    assert exc.value.code == "invalid_items"
    assert [(e["index"], e["code"]) for e in exc.value.errors] == [
        (1, "invalid_sku"), (2, "invalid_on_hand"), (3, "duplicate_sku"), (4, "invalid_on_hand"),
        (5, "missing_on_hand"), (6, "invalid_item"), (7, "invalid_low_threshold"), (8, "invalid_on_hand")]


@pytest.mark.parametrize("raw", [None, [], {}, "x", [{}] * (domain.MAX_ITEMS + 1)])
def test_items_must_be_a_bounded_non_empty_list(raw):
    with pytest.raises(StockInputError):
        domain.parse_items(raw)


# --- CSV -------------------------------------------------------------------------------------

def test_csv_with_bom_crlf_blank_lines_and_extra_columns():
    data = "\ufeffSKU,name,on_hand,low_threshold\r\nBOX,礼盒,120,30\r\n\r\nGIFT,,5,\r\n".encode("utf-8")
    rows, ignored = domain.parse_csv(data)
    assert [(r.sku, r.on_hand, r.low_threshold, r.threshold_given, r.line) for r in rows] == [
        ("BOX", 120, 30, True, 2), ("GIFT", 5, None, False, 4)]
    assert ignored == ["name"]


def test_csv_without_bom_and_without_threshold_column():
    rows, ignored = domain.parse_csv(b"sku,on_hand\nBOX,3\n")
    assert [(r.sku, r.on_hand, r.threshold_given) for r in rows] == [("BOX", 3, False)] and ignored == []


def test_csv_bad_rows_are_all_reported_with_their_line_numbers():
    data = b"sku,on_hand,low_threshold\nBOX,12\nGIFT,many\n,4\nBOX,1\nSAMPLE,3,-1\nMIRROR,2,1,extra\n"
    with pytest.raises(StockInputError) as exc:
        domain.parse_csv(data)
    assert exc.value.code == "invalid_csv"
    assert [(e["line"], e["code"]) for e in exc.value.errors] == [
        (3, "invalid_on_hand"), (4, "invalid_sku"), (5, "duplicate_sku"),
        (6, "invalid_low_threshold"), (7, "too_many_cells")]
    assert "line 2" in exc.value.errors[2]["message"]


def test_csv_line_numbers_count_quoted_line_breaks():
    data = b'sku,on_hand\n"BOX\nTWO",1\nGIFT,x\n'
    with pytest.raises(StockInputError) as exc:
        domain.parse_csv(data)
    assert [(e["line"], e["code"]) for e in exc.value.errors] == [(3, "invalid_sku"), (4, "invalid_on_hand")]


@pytest.mark.parametrize("data, code", [
    (b"", "empty_file"),
    (b"sku,on_hand\n", "empty_file"),
    (b"\n\n", "empty_file"),
    (b"product,count\nBOX,1\n", "invalid_csv"),
    (b"sku,on_hand,sku\nBOX,1,BOX\n", "invalid_csv"),
    ("sku,on_hand\n礼盒,1\n".encode("gb18030"), "invalid_encoding"),
    (b"sku,on_hand\nBOX,1\x00\n", "invalid_csv"),
    (b"x" * (domain.MAX_CSV_BYTES + 1), "file_too_large"),
])
def test_csv_refused_whole(data, code):
    with pytest.raises(StockInputError) as exc:
        domain.parse_csv(data)
    assert exc.value.code == code


def test_csv_not_utf8_names_the_line():
    data = "sku,on_hand\nBOX,1\n礼盒,2\n".encode("gb18030")
    with pytest.raises(StockInputError) as exc:
        domain.parse_csv(data)
    assert exc.value.errors[0]["line"] == 3


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_csv_parser_never_crashes(data):
    try:
        rows, _ = domain.parse_csv(b"sku,on_hand\n" + data)
    except StockInputError as exc:
        assert exc.code and exc.message
    else:
        assert all(0 <= r.on_hand <= domain.MAX_ON_HAND for r in rows)
