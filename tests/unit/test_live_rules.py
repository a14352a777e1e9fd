"""Status machine, SLA ageing, alert rules and wave projections: pure, table-driven."""
from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from floor.live import domain as live
from floor.packing.domain import FLOW, STATUSES, StatusMachine

T0 = dt.datetime(2026, 11, 22, 2, 0, tzinfo=dt.timezone.utc)     # 10:00 in Shanghai
M = StatusMachine()


@pytest.mark.parametrize("current, target, allowed", [
    ("packed", "labelled", True),            # labelling is optional
    ("labelled", "loaded", True),            # awaiting_loading and loading are optional
    ("packed", "handed_over", False),        # labelled and loaded are not
    ("loaded", "handed_over", True),
    ("handed_over", "loaded", False),        # never backwards
    ("wave_assigned", "picked", True),
    ("received", "packing", False),          # a kit must be frozen in a wave first
    ("packing", "on_hold", True), ("on_hold", "packing", True), ("on_hold", "packed", False),
    ("packed", "cancelled", True), ("labelled", "cancelled", False),
    ("on_hold", "on_hold", False), ("cancelled", "on_hold", False),
])
def test_default_status_machine(current, target, allowed):
    assert M.can_transition(current, target) is allowed


def test_a_warehouse_can_make_steps_mandatory_or_drop_them():
    strict = StatusMachine.from_settings({"optional_steps": []})
    assert not strict.can_transition("packed", "labelled")
    assert strict.can_transition("packed", "labelling")
    short = StatusMachine.from_settings({"flow": ["received", "wave_assigned", "packing", "packed",
                                                  "labelled", "handed_over"], "optional_steps": []})
    assert short.can_transition("labelled", "handed_over")
    broken = StatusMachine.from_settings({"flow": ["received", "packed"]})   # missing required steps
    assert broken.flow == FLOW


@given(st.sampled_from(STATUSES), st.sampled_from(STATUSES))
def test_nothing_reaches_packed_except_from_packing(current, target):
    if target == "packed" and M.can_transition(current, target):
        assert current == "packing"


@pytest.mark.parametrize("status, minutes, level", [
    ("awaiting_loading", 59, "green"), ("awaiting_loading", 61, "yellow"),
    ("awaiting_loading", 121, "red"), ("handed_over", 10_000, "green"), ("received", 10_000, "green"),
])
def test_age_levels(status, minutes, level):
    assert live.age_level(status, minutes, live.DEFAULT_SLAS) == level


def test_alert_rules():
    orders = [live.OrderAge("A", "awaiting_loading", T0 - dt.timedelta(minutes=130)),
              live.OrderAge("B", "packed", T0 - dt.timedelta(minutes=16), waybill_no=None),
              live.OrderAge("C", "packed", T0 - dt.timedelta(minutes=16), waybill_no="SF1"),
              live.OrderAge("D", "packing", T0 - dt.timedelta(minutes=5))]
    stations = [live.StationWindow("P01", 20, 7), live.StationWindow("P02", 5, 5),
                live.StationWindow("P03", 20, 1)]
    devices = [live.DeviceSeen("PDA-1", "P01", T0 - dt.timedelta(minutes=6), busy=True),
               live.DeviceSeen("PDA-2", "P01", T0 - dt.timedelta(minutes=60), busy=False)]
    specs = live.evaluate_alerts(T0, {}, orders, stations, devices)
    assert sorted((s.kind, s.key, s.level) for s in specs) == [
        ("device_silent", "device_silent:PDA-1", "yellow"),
        ("no_tracking_number", "no_tracking_number:B", "red"),
        ("station_error_rate", "station_error_rate:P01", "yellow"),
        ("status_sla", "status_sla:A:awaiting_loading", "red"),
    ]


@pytest.mark.parametrize("status, complete_minutes_ago, waybill, raised", [
    ("packing", 16, None, True),       # every line packed, waiting for its waybill
    ("packing", 14, None, False),
    ("packing", None, None, False),    # still packing: lines are short
    ("packing", 16, "SF1", False),
])
def test_a_kit_waiting_for_its_waybill_counts_as_packed_without_tracking(status, complete_minutes_ago,
                                                                        waybill, raised):
    complete_at = T0 - dt.timedelta(minutes=complete_minutes_ago) if complete_minutes_ago else None
    order = live.OrderAge("W", status, T0 - dt.timedelta(minutes=30), waybill_no=waybill,
                          kit_complete_at=complete_at)
    specs = [s for s in live.evaluate_alerts(T0, {}, [order], [], []) if s.kind == "no_tracking_number"]
    assert bool(specs) == raised
    if raised:
        assert specs[0].params == {"order_no": "W", "minutes": 16, "status": "packing"}


def test_alert_diff_raises_relevels_and_clears():
    wanted = [live.AlertSpec("k", "a", "red"), live.AlertSpec("k", "b", "yellow")]
    changes = live.diff_alerts({"a": "yellow", "c": "red"}, wanted)
    assert sorted((c.action, c.key) for c in changes) == [("clear", "c"), ("raise", "b"), ("update", "a")]


def test_wave_projection_and_cutoff():
    cutoff = live.local_cutoff(T0, "17:00", 480)
    assert cutoff == dt.datetime(2026, 11, 22, 9, 0, tzinfo=dt.timezone.utc)
    start = T0 - dt.timedelta(hours=1)
    finish = live.project_finish(T0, total=100, done=20, started=start, first_done=start)
    assert finish == T0 + dt.timedelta(hours=4)
    assert live.project_finish(T0, 10, 0, None, None) is None
    assert live.project_finish(T0, 10, 10, start, start) == T0
