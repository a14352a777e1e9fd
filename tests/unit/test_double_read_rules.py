"""What a double read repeats: the first read's verdict, taken from the verdict the device's
previous read of the code got (a double read of a double read repeats the same first read)."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from floor.scan.domain import repeats_of

WRONG = {"ok": False, "code": "wrong_item", "params": {"sku": "MIRROR", "order_no": "TB001"}}
ACCEPTED = {"ok": True, "code": "accepted", "params": {"scanned": 1}}


def _repeat_of(first: dict) -> dict:
    repeats = repeats_of(first)
    return {"ok": False, "code": "duplicate_read", "params": {"code": "X", "repeats": repeats},
            "repeats": {"code": repeats["code"], "ok": repeats["ok"]}}


@pytest.mark.parametrize("previous, expected", [
    (WRONG, {"code": "wrong_item", "ok": False, "params": {"sku": "MIRROR", "order_no": "TB001"}}),
    (ACCEPTED, {"code": "accepted", "ok": True, "params": {"scanned": 1}}),
    ({"ok": False, "code": "over_scan"}, {"code": "over_scan", "ok": False, "params": {}}),
    # A third read repeats the first, never "a duplicate".
    (_repeat_of(WRONG), {"code": "wrong_item", "ok": False, "params": {"sku": "MIRROR", "order_no": "TB001"}}),
    (_repeat_of(ACCEPTED), {"code": "accepted", "ok": True, "params": {"scanned": 1}}),
    # Unknown: no previous verdict, a malformed one, a duplicate that repeats nothing.
    (None, None), ({}, None), ({"code": 3}, None), ("wrong_item", None),
    ({"ok": False, "code": "duplicate_read", "params": {"code": "X"}}, None),
    ({"ok": False, "code": "duplicate_read", "params": {"repeats": {"code": "duplicate_read", "ok": False}}}, None),
])
def test_repeats_of(previous, expected):
    assert repeats_of(previous) == expected


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.sampled_from(["ok", "code", "params", "repeats", "x"]), inner, max_size=4),
                    max_leaves=12))
def test_repeats_of_never_raises_and_says_ok_only_for_an_accepted_first_read(previous):
    repeats = repeats_of(previous)
    if repeats is not None:
        assert isinstance(repeats["code"], str) and repeats["code"] != "duplicate_read"
        assert isinstance(repeats["ok"], bool) and isinstance(repeats["params"], dict)
