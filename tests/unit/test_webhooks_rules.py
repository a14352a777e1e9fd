"""Webhook rules: signing and its check, retry timing, which deliveries may go, dead letters."""
from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from floor.webhooks import domain
from floor.webhooks.domain import DEAD, DELIVERED, DISCARDED, HELD, PENDING, DeliveryView

SECRET = "whsec_test_secret_0123456789"
BODY = (b'{"id":"evt_7_status","type":"status","seq":7,"order_no":"TB001","status":"packed",'
        b'"at":"2026-11-22T08:00:00+00:00"}')
# openssl dgst -sha256 -hmac "$SECRET" of "1700000000.<BODY>"
KNOWN_V1 = "0777b5e8659385857efae1d843cb2585c793de535bcc4fc6fe28ce4f2a162a42"


# --- signature --------------------------------------------------------------------------------

def test_the_signature_is_hmac_sha256_of_timestamp_dot_body_a_known_vector():
    assert domain.signature(SECRET, 1700000000, BODY) == KNOWN_V1
    assert domain.signature_header(SECRET, 1700000000, BODY) == f"t=1700000000,v1={KNOWN_V1}"


def test_a_receiver_accepts_the_header_and_refuses_what_was_changed_or_replayed_late():
    header = domain.signature_header(SECRET, 1700000000, BODY)
    assert domain.verify_signature(SECRET, header, BODY, now_s=1700000010)
    assert not domain.verify_signature(SECRET, header, BODY + b" ", now_s=1700000010)
    assert not domain.verify_signature("another-secret-0123456", header, BODY, now_s=1700000010)
    assert not domain.verify_signature(SECRET, header, BODY, now_s=1700000000 + 301)
    assert not domain.verify_signature(SECRET, header, BODY, now_s=1700000000 - 301)
    assert domain.verify_signature(SECRET, header, BODY, now_s=1700000000 + 3600, tolerance_s=7200)


@pytest.mark.parametrize("header, parsed", [
    (f"t=1700000000,v1={KNOWN_V1}", (1700000000, [KNOWN_V1])),
    (f" t=1700000000 , v1={KNOWN_V1} ", (1700000000, [KNOWN_V1])),
    (f"t=1,v1={KNOWN_V1},v1={'0' * 64}", (1, [KNOWN_V1, "0" * 64])),
    (f"t=1,v0=abc,v1={KNOWN_V1}", (1, [KNOWN_V1])),          # unknown schemes are skipped
    (f"v1={KNOWN_V1}", None),                                # no time
    ("t=1700000000", None),                                  # no signature
    (f"t=abc,v1={KNOWN_V1}", None),
    (f"t=-5,v1={KNOWN_V1}", None),
    (f"t=1,t=2,v1={KNOWN_V1}", None),
    (f"t=1,v1={KNOWN_V1.upper()}", None),                    # lower-case hex only
    ("t=1,v1=abcd", None),
    ("garbage", None), ("", None), (None, None),
])
def test_the_header_parser(header, parsed):
    assert domain.parse_signature_header(header) == parsed


@given(st.binary(max_size=300), st.integers(0, 2**40),
       st.text(min_size=16, max_size=64, alphabet=st.characters(min_codepoint=33, max_codepoint=126)))
def test_whatever_is_signed_verifies_with_its_own_secret(body, timestamp, secret):
    header = domain.signature_header(secret, timestamp, body)
    assert domain.verify_signature(secret, header, body, now_s=timestamp)


# --- backoff ----------------------------------------------------------------------------------

@given(st.integers(1, 200), st.floats(0, 10_000, allow_nan=False), st.floats(0, 1, exclude_max=True))
def test_the_backoff_is_positive_capped_and_in_the_upper_half_of_its_step(failures, cap, jitter):
    wait = domain.backoff_s(failures, cap, jitter)
    step = min(cap, domain.BACKOFF_BASE_S * 2 ** min(failures - 1, 60))
    assert 0 <= wait <= cap
    assert step / 2 <= wait <= step


@given(st.integers(1, 60), st.floats(1, 10_000, allow_nan=False))
def test_the_backoff_never_shrinks_from_one_failure_to_the_next(failures, cap):
    # Compared at the same jitter: the schedule's steps only grow until the cap.
    for jitter in (0.0, 0.5, 0.999):
        assert domain.backoff_s(failures, cap, jitter) <= domain.backoff_s(failures + 1, cap, jitter)


def test_the_default_schedule_doubles_from_one_second_to_the_cap():
    ceilings = [domain.backoff_s(n, 300, 0.999999) for n in range(1, 13)]
    assert [round(c) for c in ceilings] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]


@pytest.mark.parametrize("status, acknowledged", [
    (200, True), (201, True), (204, True), (299, True), (None, False), (199, False),
    (301, False), (302, False), (400, False), (409, False), (500, False), (503, False)])
def test_only_a_2xx_acknowledges(status, acknowledged):
    assert domain.is_acknowledged(status) is acknowledged


def test_after_an_attempt_delivered_rescheduled_or_dead():
    ok = domain.after_attempt(3, 204, max_attempts=5, max_backoff_s=60, jitter=0.5)
    assert (ok.state, ok.attempts, ok.retry_in_s, ok.hold_followers) == (DELIVERED, 4, None, False)
    retry = domain.after_attempt(0, 500, max_attempts=5, max_backoff_s=60, jitter=0.0)
    assert (retry.state, retry.attempts, retry.retry_in_s) == (PENDING, 1, 0.5)
    no_answer = domain.after_attempt(3, None, max_attempts=5, max_backoff_s=60, jitter=0.0)
    assert (no_answer.state, no_answer.attempts, no_answer.retry_in_s) == (PENDING, 4, 4.0)
    dead = domain.after_attempt(4, 500, max_attempts=5, max_backoff_s=60, jitter=0.0)
    assert (dead.state, dead.attempts, dead.retry_in_s, dead.hold_followers) == (DEAD, 5, None, True)
    # The last attempt may still succeed.
    assert domain.after_attempt(4, 200, max_attempts=5, max_backoff_s=60, jitter=0.0).state == DELIVERED


# --- which deliveries may go now ----------------------------------------------------------------

def view(id_, seq, state=PENDING, order="o1", sub=1, due=0.0):
    return DeliveryView(id_, sub, order, seq, state, due)


@pytest.mark.parametrize("deliveries, now, busy, expected", [
    # Only the earliest unfinished event of an order may go.
    ([view(1, 10), view(2, 11), view(3, 12)], 0, [], [1]),
    # Once it is acknowledged (or discarded), the next one.
    ([view(1, 10, DELIVERED), view(2, 11), view(3, 12)], 0, [], [2]),
    ([view(1, 10, DISCARDED), view(2, 11), view(3, 12)], 0, [], [2]),
    # Its retry not due yet: the order waits, the next event does not jump ahead.
    ([view(1, 10, due=50), view(2, 11)], 10, [], []),
    ([view(1, 10, due=50), view(2, 11)], 50, [], [1]),
    # Dead: the order's later events wait (held), whatever their own timing.
    ([view(1, 10, DEAD), view(2, 11, HELD), view(3, 12, HELD)], 99, [], []),
    # Other orders go on, in parallel, earliest due first.
    ([view(1, 10, DEAD), view(2, 11, HELD), view(3, 12, order="o2", due=5),
      view(4, 13, order="o3", due=1)], 99, [], [4, 3]),
    # Each subscription has its own order queue.
    ([view(1, 10, sub=1), view(2, 10, sub=2), view(3, 11, sub=1)], 0, [], [1, 2]),
    # An order whose head is being sent right now is not sent again.
    ([view(1, 10), view(2, 11, order="o2")], 0, [(1, "o1")], [2]),
    # Events without an order are independent.
    ([view(1, 10, order=None), view(2, 11, order=None), view(3, 12, DEAD, order=None)], 0, [], [1, 2]),
    # Same seq, two types (status then pack_result): the lower id goes first.
    ([view(5, 20), view(6, 20)], 0, [], [5]),
])
def test_eligibility(deliveries, now, busy, expected):
    assert [d.id for d in domain.eligible(deliveries, now, busy)] == expected


@given(st.lists(st.tuples(st.integers(1, 2), st.sampled_from(["a", "b", "c"]),
                          st.sampled_from([PENDING, HELD, DEAD, DELIVERED, DISCARDED]),
                          st.floats(0, 100, allow_nan=False)), max_size=30),
       st.floats(0, 100, allow_nan=False))
def test_never_two_of_one_order_at_once_and_never_past_an_unfinished_earlier_one(rows, now):
    deliveries = [DeliveryView(i, sub, key, i, state, due)
                  for i, (sub, key, state, due) in enumerate(rows, start=1)]
    chosen = domain.eligible(deliveries, now)
    keys = [(d.subscription_id, d.order_key) for d in chosen]
    assert len(keys) == len(set(keys))
    for d in chosen:
        assert d.state == PENDING and d.next_attempt_at <= now
        assert not any(e.subscription_id == d.subscription_id and e.order_key == d.order_key
                       and e.seq < d.seq and e.state in domain.UNFINISHED for e in deliveries)


# --- dead letters -------------------------------------------------------------------------------

def test_a_new_event_of_an_order_with_a_dead_letter_is_held():
    assert domain.initial_state(order_blocked=True) == HELD
    assert domain.initial_state(order_blocked=False) == PENDING


@pytest.mark.parametrize("state", [PENDING, HELD, DELIVERED, DISCARDED])
def test_only_a_dead_delivery_is_redelivered_or_discarded(state):
    with pytest.raises(domain.TransitionRefused) as refused:
        domain.redeliver(state)
    assert refused.value.code == "not_dead"
    with pytest.raises(domain.TransitionRefused):
        domain.discard(state)


def test_redelivery_and_discard_of_a_dead_one():
    assert domain.redeliver(DEAD) == PENDING
    assert domain.discard(DEAD) == DISCARDED


# --- routes and bodies --------------------------------------------------------------------------

def test_one_mapping_from_log_types_to_webhook_types():
    packed = {"status": "packed", "order_no": "TB001"}
    assert domain.routes_for("status", packed, ["status", "pack_result"]) == ["status", "pack_result"]
    assert domain.routes_for("status", {"status": "packing"}, ["status", "pack_result"]) == ["status"]
    assert domain.routes_for("status", packed, ["pack_result"]) == ["pack_result"]
    assert domain.routes_for("waybill", {}, ["status", "waybill"]) == ["waybill"]
    assert domain.routes_for("scan_rejected", {}, domain.WEBHOOK_TYPES) == []
    assert set(domain.WEBHOOK_TYPES) == {"status", "pack_result", "waybill"}


def test_event_ids_are_derived_from_seq_and_type():
    assert domain.event_id(42, "status") == "evt_42_status"
    assert domain.event_id(42, "pack_result") != domain.event_id(42, "status")


def test_the_status_body_carries_the_contract_fields_first():
    payload = {"seq": 9, "order_no": "TB001", "channel": "taobao", "status": "packed",
               "from": "packing", "at": "2026-11-22T08:00:00+00:00", "by": "packer1",
               "role": "packer", "device_id": "PDA-01", "station": "P01", "reason": "kit complete",
               "wave_no": "W-1"}
    body = domain.status_body(9, payload, ["warehouse:JX", "order:TB001"])
    assert list(body)[:6] == ["id", "type", "seq", "order_no", "status", "at"]
    assert body["id"] == "evt_9_status" and body["from_status"] == "packing"
    assert body["warehouse"] == "JX" and body["channel"] == "taobao"
    text = domain.encode_body(body)
    assert json.loads(text) == body and "\n" not in text


def test_pack_result_lines_put_each_unit_on_its_line():
    lines = domain.pack_result_lines(
        [{"line_no": 1, "sku": "A", "name": "a", "qty": 1, "role": "main"},
         {"line_no": 2, "sku": "B", "name": "b", "qty": 2, "role": "sample"}],
        {"1": 1, "2": 1}, [2],
        [{"line_no": 1, "scan_id": "s1", "lot": "L1", "serial": None},
         {"line_no": 2, "scan_id": "s2", "lot": None, "serial": "X"}])
    assert lines[0]["units"] == [{"scan_id": "s1", "lot": "L1", "serial": None}]
    assert (lines[1]["packed_qty"], lines[1]["waived"], len(lines[1]["units"])) == (1, True, 1)


# --- subscriptions ------------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "https://oms.example.com/hooks/floor", "http://127.0.0.1:8080/x?y=1", "HTTP://A.B/c"])
def test_good_urls(url):
    assert domain.validate_url(url) == url


@pytest.mark.parametrize("url", [
    None, 5, "", "  ", "ftp://x/y", "oms.example.com/x", "https://", "http:///path",
    "https://user:pw@oms.example.com/x", "https://oms.example.com/x#frag",
    "https://oms.example.com/a b", "https://oms.example.com/\x00", "https://x:99999/",
    "https://oms.example.com/" + "a" * 2000])
def test_bad_urls(url):
    with pytest.raises(domain.WebhookRuleError) as refused:
        domain.validate_url(url)
    assert refused.value.code == "invalid_url"


@pytest.mark.parametrize("events, code", [
    ([], "invalid_events"), ("status", "invalid_events"), ([1], "invalid_events"),
    (["status", "nope"], "invalid_events"), (None, "invalid_events")])
def test_bad_event_lists(events, code):
    with pytest.raises(domain.WebhookRuleError) as refused:
        domain.validate_events(events)
    assert refused.value.code == code


def test_event_lists_are_put_in_a_fixed_order_without_repeats():
    assert domain.validate_events(["waybill", "status", "status"]) == ["status", "waybill"]


@pytest.mark.parametrize("secret", [None, 1234567890123456, "short", "x" * 15, "x" * 129,
                                    "sixteen chars ok", "tab\there-0123456789"])
def test_bad_secrets(secret):
    with pytest.raises(domain.WebhookRuleError) as refused:
        domain.validate_secret(secret)
    assert refused.value.code == "invalid_secret"


def test_generated_secrets_are_long_random_and_only_hinted_at():
    one, two = domain.new_secret(), domain.new_secret()
    assert one != two and len(one) >= 32 and domain.validate_secret(one) == one
    assert domain.secret_hint(one).endswith(one[-4:]) and one[:-4] not in domain.secret_hint(one)


BLOCKED = domain.parse_networks(None)


@pytest.mark.parametrize("address, blocked", [
    ("169.254.169.254", True),            # cloud metadata
    ("fe80::1%eth0", True),               # link-local with a zone
    ("::ffff:169.254.169.254", True),     # IPv4-mapped counts as IPv4
    ("0.0.0.0", True), ("224.0.0.1", True), ("ff02::1", True),
    ("127.0.0.1", False), ("::1", False), ("10.1.2.3", False), ("192.168.1.20", False),
    ("203.0.113.9", False), ("2001:db8::1", False),
    ("not-an-address", True),
])
def test_default_blocked_networks(address, blocked):
    assert domain.blocked_address(address, BLOCKED) is blocked


def test_blocked_networks_are_configurable_and_empty_blocks_nothing():
    assert domain.parse_networks("") == ()
    assert domain.blocked_address("10.9.9.9", domain.parse_networks(" 10.0.0.0/8 , ::1/128"))
    with pytest.raises(ValueError):
        domain.parse_networks("10.0.0.0/8,nonsense")
    assert domain.literal_host_blocked("http://[::1]:8080/x", domain.parse_networks("::1/128"))
    assert not domain.literal_host_blocked("http://oms.example/x", BLOCKED)
