"""The one normaliser every input path goes through: never raises, stable error codes."""
from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from floor.scan.domain import (effective_time, is_duplicate_read, looks_like_waybill, normalise,
                               parse_client_time, storable)


@pytest.mark.parametrize("raw, text, symbology, error", [
    ("6901234567892", "6901234567892", None, None),
    ("6901234567892\r\n", "6901234567892", None, None),
    ("  6901234567892\t", "6901234567892", None, None),
    ("]E06901234567892", "6901234567892", "]E0", None),
    ("]C1010950400005910121ABC\x1d10LOT", "010950400005910121ABC\x1d10LOT", "]C1", None),
    ("]Q3", "", "]Q3", "empty"),
    ("", "", None, "empty"),
    ("\r\n", "", None, "empty"),
    ("abc\x07def", "", None, "control_characters"),
    ("abc\x85def", "", None, "control_characters"),
    ("x" * 513, "", None, "too_long"),
    ("x" * 10_240, "", None, "too_long"),
    (None, "", None, "not_text"),
    (b"bytes", "", None, "not_text"),
])
def test_normalise(raw, text, symbology, error):
    result = normalise(raw)
    assert (result.text, result.symbology_id, result.error) == (text, symbology, error)


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(max_size=1200), st.binary(max_size=50), st.integers(), st.none()))
def test_normalise_never_raises_and_never_keeps_control_characters(raw):
    result = normalise(raw)
    assert result.readable == (result.error is None)
    assert all(ord(c) >= 32 or c == "\x1d" for c in result.text)
    stored = storable(raw)
    assert "\x00" not in stored and len(stored) <= 260


def test_duplicate_read_window():
    t0 = dt.datetime(2026, 11, 22, tzinfo=dt.timezone.utc)
    ms = dt.timedelta(milliseconds=1)
    assert is_duplicate_read("A", t0, "A", t0 + 499 * ms, 500)
    assert not is_duplicate_read("A", t0, "A", t0 + 500 * ms, 500)
    assert not is_duplicate_read("A", t0, "B", t0 + 10 * ms, 500)
    assert not is_duplicate_read(None, None, "A", t0, 500)
    assert not is_duplicate_read("A", t0, "A", t0 + 10 * ms, 0)


def test_client_time_is_trusted_within_a_day():
    now = dt.datetime(2026, 11, 22, 12, tzinfo=dt.timezone.utc)
    assert effective_time(now - dt.timedelta(hours=3), now) == now - dt.timedelta(hours=3)
    assert effective_time(now - dt.timedelta(days=2), now) == now
    assert effective_time(None, now) == now
    assert parse_client_time("2026-11-22T10:00:00Z") == dt.datetime(2026, 11, 22, 10, tzinfo=dt.timezone.utc)
    assert parse_client_time("2026-11-22T10:00:00") is None      # no zone: not trusted
    assert parse_client_time("yesterday") is None and parse_client_time(5) is None


@pytest.mark.parametrize("code, expected", [
    ("SF1400000000000", True), ("YT1234567890123", True), ("JD0012345678", True),
    ("6901234567892", False), ("TB2026112200001", True), ("sf123", False), ("ZY-SERUM-30", False),
])
def test_waybill_shape(code, expected):
    assert looks_like_waybill(code) is expected
