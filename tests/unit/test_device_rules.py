"""Serial line framing, reconnect backoff, device states and registrations: pure rules."""
from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from floor.devices.domain import (DEFAULT_SERIAL_PORT_GLOBS, HANDHELD_TIMEOUT, MAX_LINE_BYTES,
                                  LineFramer, RegistrationError, SerialSpec, effective_state,
                                  parse_port_globs, parse_registration, port_allowed,
                                  reconnect_delay)


def frames(terminator, *chunks):
    framer = LineFramer(terminator)
    out = []
    for chunk in chunks:
        out += framer.feed(chunk)
    return [(f.text, f.error) for f in out], framer


@pytest.mark.parametrize("terminator, chunks, expected", [
    ("CR", [b"6901234567892\r"], [("6901234567892", None)]),
    ("LF", [b"6901234567892\n"], [("6901234567892", None)]),
    ("CRLF", [b"6901234567892\r\n"], [("6901234567892", None)]),
    (None, [b"A\r\nB\rC\n"], [("A", None), ("B", None), ("C", None)]),   # any terminator
    (None, [b"\r\n\r\n"], []),                                            # empty lines ignored
    ("CR", [b"690123", b"4567892", b"\r"], [("6901234567892", None)]),   # partial reads joined
    ("CRLF", [b"AB\r", b"\nCD\r\n"], [("AB", None), ("CD", None)]),      # CRLF split across reads
    ("CRLF", [b"AB\rCD\r\n"], [("AB\rCD", None)]),   # a lone CR is content (the normaliser refuses it)
    ("CR", [b"\xff\xfe\xfa\r", b"OK\r"], [(None, "invalid_encoding"), ("OK", None)]),
    ("CR", ["精华液".encode() + b"\r"], [("精华液", None)]),
    ("CR", [b"]C1\x1d0106901234567892\r"], [("]C1\x1d0106901234567892", None)]),  # GS kept
])
def test_lines(terminator, chunks, expected):
    assert frames(terminator, *chunks)[0] == expected


def test_an_over_long_line_is_reported_once_and_the_stream_recovers_at_the_next_terminator():
    junk = b"x" * (MAX_LINE_BYTES + 10)
    out, framer = frames("CR", junk[:1000], junk[1000:], b"more junk", b"\rNEXT\r")
    assert out == [(None, "too_long"), ("NEXT", None)]
    assert not framer.pending


def test_flush_reports_a_cut_off_line_and_nothing_when_idle():
    framer = LineFramer("CR")
    assert framer.feed(b"69012345") == []
    flushed = framer.flush()
    assert [(f.text, f.error, f.raw) for f in flushed] == [(None, "partial_line", b"69012345")]
    assert framer.flush() == [] and not framer.pending


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=600), max_size=12), st.sampled_from([None, "CR", "LF", "CRLF"]))
def test_any_bytes_give_frames_never_an_exception_and_a_bounded_buffer(chunks, terminator):
    framer = LineFramer(terminator)
    for chunk in chunks:
        for frame in framer.feed(chunk):
            assert (frame.text is None) == (frame.error is not None)
            assert len(frame.raw) <= 48
        assert len(framer._buffer) <= MAX_LINE_BYTES
    # After garbage, a clean line still comes through whole.
    tail = framer.feed(b"\r\n" if terminator in (None, "CRLF") else
                       {"CR": b"\r", "LF": b"\n"}[terminator])
    clean = {"CR": b"CLEAN\r", "LF": b"CLEAN\n", "CRLF": b"CLEAN\r\n", None: b"CLEAN\r"}[terminator]
    assert [(f.text, f.error) for f in framer.feed(clean)] == [("CLEAN", None)]
    assert all(f.error != "too_long" or f.text is None for f in tail)


def test_reconnect_backoff_doubles_and_is_capped():
    delays = [reconnect_delay(n) for n in range(10)]
    assert delays[:4] == [0.25, 0.5, 1.0, 2.0]
    assert max(delays) == 10.0 and delays == sorted(delays)
    assert reconnect_delay(10_000) == 10.0


NOW = dt.datetime(2026, 11, 22, 8, 0, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("kind, stored, seen_ago, state", [
    ("handheld", "online", dt.timedelta(seconds=5), "online"),
    ("handheld", "offline", dt.timedelta(seconds=5), "online"),       # heartbeats came back
    ("handheld", "online", HANDHELD_TIMEOUT + dt.timedelta(seconds=1), "offline"),
    ("serial", "online", dt.timedelta(hours=5), "online"),            # its reader says so
    ("serial", "offline", dt.timedelta(seconds=1), "offline"),
    ("serial", "error", dt.timedelta(seconds=1), "error"),
])
def test_effective_state(kind, stored, seen_ago, state):
    assert effective_state(kind, stored, NOW - seen_ago, NOW) == state


def test_a_handheld_marked_offline_stays_offline_until_heard_from():
    seen = NOW - dt.timedelta(seconds=5)
    assert effective_state("handheld", "offline", seen, NOW, changed_at=seen) == "offline"
    assert effective_state("handheld", "offline", seen, NOW,
                           changed_at=seen - dt.timedelta(seconds=1)) == "online"


def test_registration_of_a_serial_scanner_and_of_a_handheld():
    assert parse_registration({"device_id": "SCN-03", "kind": "serial", "port": "/dev/ttyUSB0",
                               "baudrate": 9600, "station": "P01"}) == SerialSpec(
        "SCN-03", "P01", "/dev/ttyUSB0", 9600, None, True)
    assert parse_registration({"device_id": "SCN-04", "port": "/dev/ttyACM0", "station": "P02",
                               "terminator": "CRLF", "baudrate": 115200}).terminator == "CRLF"
    assert parse_registration({"device_id": "PDA-07", "kind": "handheld", "station": "P01"}) == (
        "PDA-07", "P01")


@pytest.mark.parametrize("body, code, field", [
    ({"kind": "serial", "port": "/dev/x", "station": "P01"}, "missing_field", "device_id"),
    ({"device_id": "S 1", "port": "/dev/x", "station": "P01"}, "invalid_field", "device_id"),
    ({"device_id": "S1", "station": "P01"}, "missing_field", "port"),
    ({"device_id": "S1", "port": "/dev/x\n", "station": "P01"}, "invalid_field", "port"),
    ({"device_id": "S1", "port": "/dev/x", "station": "P01", "baudrate": 9601}, "invalid_field", "baudrate"),
    ({"device_id": "S1", "port": "/dev/x", "station": "P01", "baudrate": True}, "invalid_field", "baudrate"),
    ({"device_id": "S1", "port": "/dev/x", "station": "P01", "terminator": "TAB"}, "invalid_field", "terminator"),
    ({"device_id": "S1", "port": "/dev/x", "station": "P01", "kind": "printer"}, "invalid_field", "kind"),
    ({"device_id": "S1", "port": "/dev/x"}, "missing_field", "station"),
])
def test_bad_registrations_name_the_field(body, code, field):
    with pytest.raises(RegistrationError) as info:
        parse_registration(body)
    assert (info.value.code, info.value.field) == (code, field)


ALLOWED = DEFAULT_SERIAL_PORT_GLOBS + ("/srv/scanners/*",)


@pytest.mark.parametrize("port, allowed", [
    ("/dev/ttyUSB0", True),
    ("/dev/ttyACM12", True),
    ("/dev/ttyS0", True),
    ("/dev/serial/by-id/usb-Symbol_Technologies_DS4308-if00", True),
    ("/dev/serial/by-path/pci-0000:00:14.0-usb-0:2:1.0-port0", True),
    ("/srv/scanners/SCN-01", True),                       # a pattern from the setting
    ("socket://10.0.0.5:4001", False),                    # pyserial URLs, every one
    ("spy:///dev/ttyUSB0?file=/etc/passwd", False),
    ("rfc2217://10.0.0.5:2217", False),
    ("loop://", False),
    ("hwgrep://.*", False),
    ("/dev/ttyUSB0/../../etc/passwd", False),             # traversal, not normalised away
    ("/dev/serial/by-id/../../../etc/passwd", False),
    ("/dev/./ttyUSB0", False),
    ("//dev/ttyUSB0", False),
    ("/dev//ttyUSB0", False),
    ("/dev/serial/by-id/a/b", False),                     # `*` stays in one component
    ("/srv/scanners/x/../../../etc/passwd", False),
    ("dev/ttyUSB0", False),                               # relative
    ("/dev/tty0", False),                                 # a console, not a serial port
    ("/dev/pts/3", False),                                # not in this list
    ("/etc/passwd", False),
    ("/dev/ttyUSB0\x00", False),
])
def test_a_serial_port_is_an_allowed_device_path(port, allowed):
    assert port_allowed(port, ALLOWED) is allowed
    body = {"device_id": "SCN-1", "port": port, "station": "P01"}
    if allowed:
        assert parse_registration(body, ALLOWED).port == port
    else:
        with pytest.raises(RegistrationError) as info:
            parse_registration(body, ALLOWED)
        assert info.value.code in ("invalid_port", "invalid_field") and info.value.field == "port"


def test_port_patterns_from_the_setting():
    assert parse_port_globs(None) == DEFAULT_SERIAL_PORT_GLOBS
    assert parse_port_globs(" /dev/ttyUSB*, ,/dev/pts/* ") == ("/dev/ttyUSB*", "/dev/pts/*")
    for bad in ("socket://*", "dev/tty*", "/dev/../tmp/*"):
        with pytest.raises(ValueError):
            parse_port_globs(bad)
