"""Every pure rule that takes outside input, fed generated input: it never raises anything but its
own declared error (which carries a stable `code`), and every verdict it gives has a code from a
known list that renders as text in both languages.

`make test` runs hypothesis's default number of examples per rule; `make fuzz` runs the long
profile (see tests/conftest.py).
"""
from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from floor import create_app
from floor.devices import domain as devices
from floor.evidence import domain as evidence
from floor.packing import domain as packing
from floor.returns import domain as returns
from floor.scan import domain as scan
from floor.scan import messages
from floor.stock import domain as stock
from floor.webhooks import domain as webhooks

UTC = dt.timezone.utc
FIXTURE_OK = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]

# What arrives from JSON bodies, socket payloads and CSV cells: anything JSON can carry.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20)
# Text as scanners and people type it: control characters, GS, lone surrogates, AIM prefixes,
# keyboard-wedge GS substitutes, long runs.
scanner_text = st.one_of(
    st.text(max_size=80),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF,
                                   blacklist_categories=()), max_size=60),
    st.builds(lambda prefix, body, gs, tail: prefix + body + gs + tail,
              st.sampled_from(["", "]C1", "]E0", "]d2", "]Q3", "]", "]z"]),
              st.text(alphabet="0123456789", max_size=30),
              st.sampled_from(["", "\x1d", "<GS>", "{GS}", "[GS]", "^]", "\\x1d"]),
              st.text(alphabet="0123456789ABCDEFabc\r\n\t\x00", max_size=30)),
    st.builds(lambda n: "9" * n, st.integers(min_value=500, max_value=1100)),
)

# Every code a pack-station verdict may carry; each must have a message.
PACK_VERDICTS = {"accepted", "order_opened", "waybill_bound", "wrong_item", "other_order",
                 "over_scan", "unknown_code", "duplicate_read", "giftbox_incomplete",
                 "waybill_required", "already_packed", "not_in_wave", "order_held",
                 "order_blocked", "expired", "lot_mismatch", "loaded", "already_loaded",
                 "not_ready_for_loading", "unreadable"}
UNREADABLE_REASONS = {"not_text", "empty", "too_long", "control_characters"}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    # Only for rendering messages (Babel); the database file is never opened.
    folder = tmp_path_factory.mktemp("fuzz")
    app = create_app({"DATABASE_URL": f"sqlite:///{folder / 'unused.db'}", "SECRET_KEY": "fuzz",
                      "TESTING": True, "INSTANCE_PATH": str(folder)})
    yield app
    app.extensions["floor.pump"].stop()


def _renders(app: Any, code: str, params: dict[str, Any]) -> None:
    for language in ("zh", "en"):
        with app.test_request_context(headers={"Accept-Language": language}):
            text = messages.render(code, params)
        assert isinstance(text, str) and text and text != code, (code, language)


# --- the scan normaliser --------------------------------------------------------------------------

@settings(suppress_health_check=FIXTURE_OK, deadline=None)
@given(raw=st.one_of(scanner_text, json_values, st.binary(max_size=40)))
def test_normalise_answers_every_input_with_a_code_or_a_reason(app: Any, raw: Any) -> None:
    code = scan.normalise(raw)
    assert isinstance(code, scan.NormalisedCode)
    if code.readable:
        assert code.text and len(code.text) <= scan.MAX_CODE_CHARS
        assert not any(scan._is_control(ch) for ch in code.text)
        assert code.item_keys()[0] == code.text
    else:
        assert code.error in UNREADABLE_REASONS and code.text == ""
        _renders(app, "unreadable", {"reason": code.error})
    stored = scan.storable(raw)
    assert isinstance(stored, str) and len(stored) <= scan.STORED_RAW_CHARS + 1
    assert not any(ord(ch) < 32 for ch in stored)
    stored.encode("utf-8")          # storable text is always valid UTF-8 (no lone surrogates)


@given(text=scanner_text, symbology=st.sampled_from([None, "]C1", "]E0", "]d2", "]Q3", "]X9"]))
def test_gs1_parsing_never_raises(text: str, symbology: str | None) -> None:
    data = scan.parse_gs1(scan.restore_gs(text), symbology)
    if data is not None:
        assert data.gtin is None or (len(data.gtin) == 14 and data.gtin.isdigit())
        json.dumps(data.as_dict())


@given(value=st.one_of(json_values, st.datetimes(timezones=st.none() | st.timezones()).map(str)))
def test_client_time_is_an_aware_datetime_or_nothing(value: Any) -> None:
    parsed = scan.parse_client_time(value)
    assert parsed is None or parsed.tzinfo is not None
    received = dt.datetime(2026, 12, 4, 12, tzinfo=UTC)
    effective = scan.effective_time(parsed, received)
    assert abs(effective - received) <= dt.timedelta(hours=24)


# --- the pack-station rules ---------------------------------------------------------------------

@given(raw=json_values)
def test_a_kit_from_the_oms_is_a_kit_or_a_kit_error(raw: Any) -> None:
    try:
        kit = packing.parse_kit(raw)
    except packing.KitError as exc:
        assert exc.code == "invalid_kit" and exc.message
        return
    assert kit.lines and all(line.qty >= 1 for line in kit.lines)
    assert len(kit.content_hash()) == 64


@st.composite
def pack_facts(draw: Any) -> packing.ScanFacts:
    roles = draw(st.lists(st.sampled_from(packing.ROLES), min_size=1, max_size=5))
    lot_pins = draw(st.lists(st.sampled_from([None, "L1", "L2"]), min_size=len(roles),
                             max_size=len(roles)))
    kit = packing.parse_kit([{"sku": f"SKU{i}", "name": f"品{i}", "qty": draw(st.integers(1, 3)),
                              "role": role, "barcodes": [f"C{i}"], "lot": lot}
                             for i, (role, lot) in enumerate(zip(roles, lot_pins))])
    counts = {line.line_no: draw(st.integers(0, line.qty)) for line in kit.lines}
    waived = set(draw(st.lists(st.sampled_from([l.line_no for l in kit.lines]), max_size=2)))
    state = draw(st.none() | st.just(packing.PackState(
        "TB1", "W-1", kit, counts, waived, draw(st.sampled_from([None, "SF123456789"])))))
    order = draw(st.none() | st.builds(
        packing.OrderRef, st.just("TB2"),
        st.sampled_from(packing.FLOW + packing.SIDE_STATES + ("weird",)),
        st.none() | st.just("W-1"), st.booleans(),
        st.none() | st.tuples(st.text(max_size=6), st.text(max_size=6))))
    code = draw(st.sampled_from([l.barcodes[0] for l in kit.lines]) | scanner_text)
    return packing.ScanFacts(
        code, state, order=order, catalog_sku=draw(st.none() | st.just("OTHER")),
        other_orders=draw(st.just(()) | st.just((("TB3", None),))),
        waybill_candidate=draw(st.booleans()),
        open_order_status=draw(st.none() | st.sampled_from(packing.FLOW + packing.SIDE_STATES)),
        lot=draw(st.none() | st.sampled_from(["L1", "L2", "L9"])),
        expiry=draw(st.none() | st.dates(dt.date(2020, 1, 1), dt.date(2030, 1, 1))),
        today=draw(st.none() | st.just(dt.date(2026, 12, 4))))


@settings(suppress_health_check=FIXTURE_OK, deadline=None)
@given(facts=pack_facts())
def test_every_scan_gets_a_known_verdict_that_renders(app: Any, facts: packing.ScanFacts) -> None:
    decision = packing.decide_scan(facts)
    assert decision.code in PACK_VERDICTS
    assert decision.ok == (decision.code in {"accepted", "order_opened", "waybill_bound"})
    if decision.action == "credit":
        assert facts.state is not None and decision.line_no is not None
        line = facts.state.kit.line(decision.line_no)
        assert facts.state.packed(line) < line.qty          # never credits a full line
    _renders(app, decision.code, {**decision.params, "code": facts.code})


@given(code=scanner_text, can_load=st.booleans(),
       status=st.sampled_from(packing.FLOW + packing.SIDE_STATES + ("weird",)))
def test_every_dock_scan_gets_a_known_verdict(code: str, can_load: bool, status: str) -> None:
    for order in (None, packing.OrderRef("TB1", status, "W-1", True)):
        assert packing.decide_dock_scan(order, code, can_load).code in PACK_VERDICTS


@given(current=st.text(max_size=20) | st.sampled_from(packing.FLOW + packing.SIDE_STATES),
       target=st.text(max_size=20) | st.sampled_from(packing.FLOW + packing.SIDE_STATES))
def test_any_pair_of_statuses_is_a_yes_or_a_no(current: str, target: str) -> None:
    assert packing.can_transition(current, target) in (True, False)


# --- returns ---------------------------------------------------------------------------------------

RETURN_KIT = packing.parse_kit([
    {"sku": "SERUM", "qty": 1, "role": "main", "barcodes": ["6901234567892"], "lot": "L1"},
    {"sku": "SAMPLE", "qty": 2, "role": "sample", "barcodes": ["S1"]},
    {"sku": "BOX", "qty": 1, "role": "giftbox", "barcodes": ["B1"]},
])
returned_units = st.builds(
    returns.ReturnedUnit, scan_id=st.text(max_size=8),
    code=st.sampled_from(["6901234567892", "S1", "B1", "X9"]) | scanner_text,
    condition=st.sampled_from(returns.CONDITIONS), lot=st.none() | st.sampled_from(["L1", "L2"]),
    serial=st.none() | st.text(max_size=6), readable=st.booleans(),
    catalog_sku=st.none() | st.just("OTHER"))
packed_units = st.builds(returns.PackedUnit, sku=st.sampled_from(["SERUM", "SAMPLE", "BOX", "??"]),
                         lot=st.none() | st.sampled_from(["L1", "L2"]),
                         serial=st.none() | st.text(max_size=6))


@given(packed=st.lists(packed_units, max_size=6), returned=st.lists(returned_units, max_size=8),
       waived=st.dictionaries(st.integers(0, 4), st.integers(-2, 3), max_size=2),
       substitutes=st.dictionaries(st.text(max_size=6), st.integers(0, 4), max_size=2))
def test_returns_always_compare_to_known_results(packed: list[Any], returned: list[Any],
                                                 waived: dict[int, int],
                                                 substitutes: dict[str, int]) -> None:
    for i, unit in enumerate(returned):
        verdict = returns.scan_verdict(RETURN_KIT, packed, returned[:i], unit, waived=waived,
                                       substitutes=substitutes)
        assert verdict.verdict in returns.VERDICTS
    comparison = returns.compare(RETURN_KIT, packed, returned, waived=waived,
                                 substitutes=substitutes)
    assert {line["result"] for line in comparison.lines} <= set(returns.RESULTS)
    assert comparison.suggested_outcome in returns.OUTCOMES
    assert len(returns.report_hash("RMA1", "TB1", "0" * 64, list(comparison.lines),
                                   comparison.suggested_outcome)) == 64


# --- stock --------------------------------------------------------------------------------------

@given(raw=json_values)
def test_stock_items_are_rows_or_a_stock_error(raw: Any) -> None:
    try:
        rows = stock.parse_items(raw)
    except stock.StockInputError as exc:
        assert exc.code and exc.message
        assert all(e.get("code") for e in exc.errors if "index" in e)
        return
    assert rows and all(0 <= row.on_hand for row in rows)


@given(data=st.binary(max_size=300) | st.lists(
    st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=10),
             max_size=4), max_size=6).map(
        lambda rows: "\n".join(",".join(cells) for cells in [["sku", "on_hand"], *rows]).encode()))
def test_a_stock_csv_is_rows_or_a_stock_error(data: bytes) -> None:
    try:
        rows, ignored = stock.parse_csv(data)
    except stock.StockInputError as exc:
        assert exc.code and exc.message
        return
    assert isinstance(ignored, list) and all(row.sku for row in rows)


@given(data=st.dictionaries(st.sampled_from(["release_anyway", "hold_short", "split", "reason", "x"]),
                            json_values, max_size=4))
def test_a_release_choice_is_one_option_or_a_stock_error(data: dict[str, Any]) -> None:
    try:
        option = stock.release_option(data)
    except stock.StockInputError as exc:
        assert exc.code in {"invalid_field", "conflicting_options", "reason_required"}
        return
    assert option.choice in (None, *stock.RELEASE_OPTIONS)


@given(on_hand=st.dictionaries(st.sampled_from(["GIFT", "BOX", "S"]), st.integers(0, 5)),
       orders=st.lists(st.dictionaries(st.sampled_from(["GIFT", "BOX", "S", "MAIN"]),
                                       st.integers(1, 3), min_size=1), max_size=6))
def test_allocation_never_promises_more_than_is_on_hand(on_hand: dict[str, int],
                                                        orders: list[dict[str, int]]) -> None:
    needs = [stock.order_need(f"TB{i}", [{"sku": sku, "qty": qty, "role": "gift"}
                                         for sku, qty in order.items()])
             for i, order in enumerate(orders)]
    allocation = stock.allocate(needs, on_hand)
    served = [need for need in needs if need.order_no in allocation.served]
    assert len(served) + len(allocation.short) == len(needs)
    for sku, available in on_hand.items():
        assert sum(n.units.get(sku, 0) for n in served) <= available


# --- webhooks -------------------------------------------------------------------------------------

@given(url=json_values | st.text(max_size=60).map(lambda t: "http://" + t),
       events=json_values, secret=json_values)
def test_a_subscription_is_valid_or_a_webhook_error(url: Any, events: Any, secret: Any) -> None:
    for rule, value in ((webhooks.validate_url, url), (webhooks.validate_events, events),
                        (webhooks.validate_secret, secret)):
        try:
            rule(value)
        except webhooks.WebhookRuleError as exc:
            assert exc.code in {"invalid_url", "invalid_events", "invalid_secret"}


@given(header=st.none() | st.text(max_size=200) | st.builds(
    lambda t, sigs: f"t={t}," + ",".join(f"v1={s}" for s in sigs),
    st.text(max_size=12), st.lists(st.text(alphabet="0123456789abcdef", min_size=60, max_size=66),
                                   max_size=3)),
       body=st.binary(max_size=50))
def test_a_signature_header_verifies_or_not_never_raises(header: str | None, body: bytes) -> None:
    assert webhooks.verify_signature("whsec_0123456789abcdef", header, body, 1.8e9) in (True, False)


def test_a_real_signature_verifies_and_a_changed_body_does_not() -> None:
    header = webhooks.signature_header("whsec_0123456789abcdef", 1_800_000_000, b'{"id":1}')
    assert webhooks.verify_signature("whsec_0123456789abcdef", header, b'{"id":1}', 1.8e9)
    assert not webhooks.verify_signature("whsec_0123456789abcdef", header, b'{"id":2}', 1.8e9)


# --- devices and recordings --------------------------------------------------------------------------

@given(data=json_values | st.fixed_dictionaries(
    {"device_id": json_values | st.text(max_size=70), "station": json_values | st.text(max_size=40)},
    optional={"kind": st.sampled_from(["serial", "handheld", "x"]) | json_values,
              "port": json_values, "baudrate": json_values | st.sampled_from(devices.BAUDRATES),
              "terminator": json_values, "enabled": json_values}))
def test_a_device_registration_is_a_device_or_a_registration_error(data: Any) -> None:
    try:
        spec = devices.parse_registration(data)
    except devices.RegistrationError as exc:
        assert exc.code in {"invalid_payload", "invalid_field", "missing_field",
                            "invalid_port"} and exc.message
        return
    assert isinstance(spec, (devices.SerialSpec, tuple))


@given(name=st.text(max_size=60) | st.builds(lambda cam, stamp, ext: f"{cam}_{stamp}{ext}",
                                              st.text(max_size=8), st.text(max_size=18),
                                              st.sampled_from(evidence.VIDEO_SUFFIXES)))
def test_a_recording_name_is_a_camera_and_time_or_nothing(name: str) -> None:
    parsed = evidence.parse_recording_name(name)
    if parsed is not None:
        camera, started = parsed
        assume(camera)
        assert started.tzinfo is not None
