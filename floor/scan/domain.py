"""Pure scan rules: one normaliser for every input path, the debounce rule, effective time.

No Flask, no SQLAlchemy. Whatever a scanner sends, `normalise` answers a `NormalisedCode`
and never raises.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

MAX_CODE_CHARS = 512          # longer input is a scanner fault, not a barcode
STORED_RAW_CHARS = 256        # what is kept of the raw input of an unreadable scan
GS = "\x1d"                   # GS1 FNC1 separator inside element strings
_AIM = re.compile(r"^\][A-Za-z][0-9A-Za-z]")
_WAYBILL = re.compile(r"^[A-Z]{2,4}\d{9,16}$")
# Client clocks within this distance of the server's are trusted for the timeline.
CLIENT_CLOCK_WINDOW = dt.timedelta(hours=24)


@dataclass(frozen=True)
class NormalisedCode:
    text: str                        # what the rules compare; "" when unreadable
    symbology_id: str | None = None  # AIM identifier the scanner prefixed, e.g. "]E0"
    error: str | None = None         # why it is unreadable: empty | too_long | control_characters

    @property
    def readable(self) -> bool:
        return self.error is None


def _is_control(ch: str) -> bool:
    o = ord(ch)
    return (o < 32 and ch != GS) or 127 <= o < 160 or 0xD800 <= o <= 0xDFFF or o in (0xFFFE, 0xFFFF)


def normalise(raw: object) -> NormalisedCode:
    if not isinstance(raw, str):
        return NormalisedCode("", error="not_text")
    if len(raw) > MAX_CODE_CHARS * 2:
        return NormalisedCode("", error="too_long")
    # Keyboard-wedge scanners end with CR/LF or TAB; people paste with spaces.
    text = raw.strip(" \t\r\n\x00")
    if not text:
        return NormalisedCode("", error="empty")
    if len(text) > MAX_CODE_CHARS:
        return NormalisedCode("", error="too_long")
    symbology = None
    match = _AIM.match(text)
    if match:
        symbology, text = match.group(0), text[match.end():]
        if not text:
            return NormalisedCode("", symbology, error="empty")
    if any(_is_control(ch) for ch in text):
        return NormalisedCode("", symbology, error="control_characters")
    return NormalisedCode(text, symbology)


def storable(raw: object) -> str:
    """The raw input as it can be stored and shown: control characters escaped, length capped."""
    if not isinstance(raw, str):
        raw = repr(raw)
    out = "".join(ch if not _is_control(ch) and ch != GS else f"\\x{ord(ch):02x}" if ord(ch) < 256
                  else f"\\u{ord(ch):04x}" for ch in raw[:STORED_RAW_CHARS])
    return out + ("…" if len(raw) > STORED_RAW_CHARS else "")


def looks_like_waybill(code: str) -> bool:
    """Carrier waybill numbers: 2-4 capital letters then 9-16 digits (SF…, YT…, JD…).

    Bare digit runs are left out on purpose: they collide with EAN-13 product codes.
    """
    return bool(_WAYBILL.match(code))


def is_duplicate_read(previous_code: str | None, previous_at: dt.datetime | None,
                      code: str, at: dt.datetime, window_ms: int) -> bool:
    """The same code from the same device inside the debounce window counts once."""
    if previous_code is None or previous_at is None or previous_code != code or window_ms <= 0:
        return False
    return dt.timedelta(0) <= at - previous_at < dt.timedelta(milliseconds=window_ms)


def effective_time(client_at: dt.datetime | None, received_at: dt.datetime) -> dt.datetime:
    """A client's `at` is used when it is within 24 h of the server clock, else receive time."""
    if client_at is None or client_at.tzinfo is None:
        return received_at
    if abs(client_at - received_at) <= CLIENT_CLOCK_WINDOW:
        return client_at
    return received_at


def parse_client_time(value: object) -> dt.datetime | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None
