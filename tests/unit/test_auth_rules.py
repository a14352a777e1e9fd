"""Login throttling and socket admission, table-driven: the failing address is locked, the name
is only slowed down; sockets without a credential get a short probation, the rest are capped."""
from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from floor.auth.admission import socket_max_for
from floor.auth.domain import LoginLimits, SocketLimits, login_refusal, socket_admission

NOW = dt.datetime(2026, 12, 5, 8, 0, tzinfo=dt.timezone.utc)
LIMITS = LoginLimits()


def ago(*seconds: float) -> list[dt.datetime]:
    return [NOW - dt.timedelta(seconds=s) for s in seconds]


@pytest.mark.parametrize("pair, address, name, expected", [
    # nothing failed, or old failures only
    ([], [], [], None),
    (ago(301, 302, 303, 304, 305), ago(301, 302, 303, 304, 305), ago(301, 302, 303, 304, 305), None),
    # 4 failures of this name from this address: not yet locked, no backoff yet
    (ago(1, 2, 3, 4), ago(1, 2, 3, 4), ago(1, 2, 3, 4), None),
    # the 5th from this address locks it for this name until the oldest of them is 5 min old
    (ago(1, 2, 3, 4, 10), ago(1, 2, 3, 4, 10), ago(1, 2, 3, 4, 10), ("address", 290)),
    # 20 failures from this address over many names lock it for every name
    ([], ago(*range(1, 21)), [], ("address", 280)),
    # 5 failures of the name from elsewhere: wait 1 s after the last one
    ([], [], ago(0.5, 2, 3, 4, 5), ("name_backoff", 1)),
    ([], [], ago(1.5, 2, 3, 4, 5), None),
    # each further failure doubles the wait: 6 → 2 s, 7 → 4 s, ...
    ([], [], ago(1.5, 2, 3, 4, 5, 6), ("name_backoff", 1)),
    ([], [], ago(2.5, 3, 4, 5, 6, 7), None),
    ([], [], ago(1, 3, 4, 5, 6, 7, 8), ("name_backoff", 3)),
    # ... up to the maximum (60 s), however many
    ([], [], ago(10, *range(11, 40)), ("name_backoff", 50)),
    ([], [], ago(61, *range(62, 90)), None),
])
def test_login_refusal(pair, address, name, expected):
    refusal = login_refusal(pair, address, name, NOW, LIMITS)
    assert (None if refusal is None else (refusal.reason, refusal.retry_after_s)) == expected


@given(st.lists(st.floats(min_value=0, max_value=299), max_size=200))
def test_the_name_never_waits_longer_than_the_maximum_after_its_last_failure(seconds):
    """Whatever others do on the name, from addresses not locked: one correct attempt made the
    maximum backoff after the latest failure is never refused by the name's rule."""
    failures = ago(*seconds)
    latest = max(failures, default=NOW - dt.timedelta(days=1))
    later = latest + LIMITS.name_backoff_max
    assert login_refusal([], [], failures, later, LIMITS) is None


SOCKETS = SocketLimits(total=12, per_address=8, pending_total=4, pending_per_address=2)


@pytest.mark.parametrize("credential, open_total, open_here, pending_total, pending_here, expected", [
    ("valid", 0, 0, 0, 0, None),
    ("none", 0, 0, 0, 0, None),                                  # on probation: auth in CONNECT
    ("none", 3, 1, 1, 1, None),
    ("none", 3, 2, 2, 2, (401, "unauthenticated")),              # probation full for this address
    ("none", 4, 1, 4, 1, (401, "unauthenticated")),              # probation full in all
    ("invalid", 0, 0, 0, 0, (401, "unauthenticated")),           # a wrong credential, always
    ("valid", 7, 7, 4, 2, None),                                 # probation limits are not for it
    ("valid", 8, 8, 0, 0, (429, "socket_address_limit")),
    ("valid", 12, 1, 0, 0, (503, "socket_capacity")),
    ("none", 12, 0, 0, 0, (503, "socket_capacity")),
])
def test_socket_admission(credential, open_total, open_here, pending_total, pending_here, expected):
    refusal = socket_admission(credential, open_total, open_here, pending_total, pending_here, SOCKETS)
    assert (None if refusal is None else (refusal.status, refusal.code)) == expected


@pytest.mark.parametrize("capacity, expected", [(None, 1000), (16, 12), (256, 224), (1000, 875), (2, 1)])
def test_the_socket_cap_leaves_the_worker_room_for_http(capacity, expected):
    assert socket_max_for(capacity) == expected
