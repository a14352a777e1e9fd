"""Pure scan rules: one normaliser for every input path, the debounce rule, effective time.

No Flask, no SQLAlchemy. Whatever a scanner sends, `normalise` answers a `NormalisedCode`
and never raises.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Mapping

from floor.scan import gs1 as gs1_rules
from floor.scan.gs1 import Gs1Error

MAX_CODE_CHARS = 512          # longer input is a scanner fault, not a barcode
STORED_RAW_CHARS = 256        # what is kept of the raw input of an unreadable scan
GS = "\x1d"                   # GS1 FNC1 separator inside element strings
_AIM = re.compile(r"^\][A-Za-z][0-9A-Za-z]")
_WAYBILL = re.compile(r"^[A-Z]{2,4}\d{9,16}$")
# Client clocks within this distance of the server's are trusted for the timeline.
CLIENT_CLOCK_WINDOW = dt.timedelta(hours=24)


@dataclass(frozen=True)
class Gs1Data:
    """What a GS1 element string says about the item (AIs 01/02, 10, 17, 21, 00, 37)."""
    gtin: str | None = None          # GTIN-14 (of the contained items, when from AI 02)
    lot: str | None = None
    expiry: dt.date | None = None
    serial: str | None = None
    sscc: str | None = None
    count: int | None = None         # AI 37: how many units of the AI 02 GTIN a case holds

    @property
    def logistic_unit(self) -> bool:
        """An SSCC naming no trade item: a pallet or parcel, not a unit to pack."""
        return self.sscc is not None and self.gtin is None

    def as_dict(self) -> dict[str, Any]:
        return {"gtin": self.gtin, "lot": self.lot, "serial": self.serial, "sscc": self.sscc,
                "expiry": self.expiry.isoformat() if self.expiry else None, "count": self.count}


@dataclass(frozen=True)
class NormalisedCode:
    text: str                        # what the rules compare; "" when unreadable
    symbology_id: str | None = None  # AIM identifier the scanner prefixed, e.g. "]E0"
    error: str | None = None         # why it is unreadable: empty | too_long | control_characters
    gs1: Gs1Data | None = None       # parsed GS1 data, when the code carries it
    gs1_error: Gs1Error | None = None  # a GS1 read refused whole: never half-read

    @property
    def readable(self) -> bool:
        return self.error is None

    def item_keys(self) -> tuple[str, ...]:
        """The codes this scan may be listed as on a kit line or in the catalogue: as read, then
        its GTIN in every length (GTIN-14, EAN-13, UPC-A, EAN-8), so a GS1-128 scan of a GTIN-14
        finds the EAN-13 the OMS sent, and the other way round."""
        keys = [self.text]
        if self.gs1_error is not None:
            return tuple(keys)      # a refused GS1 read names no item by a GTIN form
        gtin = self.gs1.gtin if self.gs1 is not None else gtin14(self.text)
        if gtin is not None:
            for length in (14, 13, 12, 8):
                short = gtin[14 - length:]
                if gtin[:14 - length].strip("0") == "" and short not in keys:
                    keys.append(short)
        return tuple(keys)


# What keyboard-wedge scanners type for the GS1 separator (FNC1/GS), which a keyboard cannot:
# configurable on most scanners; these are the usual choices.
GS_SUBSTITUTES = ("<GS>", "{GS}", "[GS]", "^]", "\\x1d", "\\u001d", "\\u001D")
# Without a scanner profile only the substitutes that GS1 data can never hold are separators
# ('{', '[', '^', '\\' are outside GS1 character set 82); '<GS>' is a legal lot or serial.
DEFAULT_GS_SUBSTITUTES = ("{GS}", "[GS]", "^]", "\\x1d", "\\u001d", "\\u001D")
MAX_GS_SUBSTITUTE = 8


def restore_gs(text: str, tokens: tuple[str, ...] = DEFAULT_GS_SUBSTITUTES) -> str:
    for token in tokens:
        if token and token in text:
            text = text.replace(token, GS)
    return text


def parse_gs_substitute(value: object) -> str:
    """A scanner profile's `gs_substitute`: what the scanner types for FNC1 ("" for a real GS
    or none). Raises ValueError with the rule broken."""
    if not isinstance(value, str) or len(value) > MAX_GS_SUBSTITUTE or \
            any(not 32 < ord(ch) < 127 for ch in value):
        raise ValueError(f"gs_substitute must be up to {MAX_GS_SUBSTITUTE} printable ASCII "
                         "characters without spaces, or \"\" for none.")
    if value and value.isalnum():
        raise ValueError("gs_substitute must hold a character that is not a letter or digit.")
    return value


def gs_substitutes_for(device_profile: Mapping[str, Any] | None,
                       warehouse_settings: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The separators a scan's text may carry for FNC1: the device's scanner profile first,
    else the warehouse's setting, else the unambiguous defaults."""
    for source in (device_profile, warehouse_settings):
        value = source.get("gs_substitute") if isinstance(source, Mapping) else None
        if isinstance(value, str):
            try:
                token = parse_gs_substitute(value)
            except ValueError:
                continue
            return (token,) if token else ()
    return DEFAULT_GS_SUBSTITUTES


# AIM identifiers of symbols that carry GS1 element strings (GS1-128, GS1 DataMatrix,
# GS1 QR, GS1 DataBar, GS1 DotCode).
GS1_SYMBOLOGIES = ("]C1", "]d2", "]Q3", "]e0", "]J1")


def gtin14(code: str) -> str | None:
    """EAN-8, UPC-A, EAN-13 or GTIN-14 with a valid check digit, as GTIN-14; else None."""
    if len(code) not in (8, 12, 13, 14) or not gs1_rules.check_digit_ok(code):
        return None
    return code.zfill(14)


def read_gs1(text: str, symbology: str | None,
             today: dt.date | None = None) -> tuple[Gs1Data | None, Gs1Error | None]:
    """A GS1 element string or Digital Link URI, read whole or refused whole.

    Tried where GS1 is certain or claimed: a GS1 symbology identifier, a GS separator, an
    http(s) URI with a GS1 key in its path. A bare digit run (a wedge scanner sends no
    identifier) is GS1 only when it opens with a valid (01)/(02) GTIN or (00) SSCC: another
    long number (an order or waybill number) is compared as it is."""
    today = today or dt.date.today()
    try:
        if gs1_rules.looks_like_digital_link(text):
            elements = gs1_rules.digital_link(text, today)
        elif (symbology in GS1_SYMBOLOGIES or GS in text
              or (text[:2] in ("01", "02") and gs1_rules.check_digit_ok(text[2:16])
                  and len(text) >= 16)
              or (text[:2] == "00" and len(text) >= 20 and gs1_rules.check_digit_ok(text[2:20]))):
            elements = gs1_rules.element_strings(text, today)
        else:
            return None, None
        gs1_rules.check_message(elements)
    except gs1_rules.Gs1Invalid as exc:
        return None, exc.error
    values: dict[str, Any] = {}
    for ai, value in elements:
        if ai in ("01", "02"):
            values["gtin"] = value
        elif ai == "10":
            values["lot"] = value
        elif ai == "17":
            values["expiry"] = gs1_rules.date_of(value, today)
        elif ai == "21":
            values["serial"] = value
        elif ai == "00":
            values["sscc"] = value
        elif ai == "37":
            values["count"] = int(value)
    if values.get("count") == 0:
        return None, Gs1Error("37", "invalid_value")
    return (Gs1Data(**values) if values else None), None


def parse_gs1(text: str, symbology: str | None) -> Gs1Data | None:
    """The GS1 data of a code already recorded (None when it carries none or is invalid)."""
    return read_gs1(text, symbology)[0]


def _is_control(ch: str) -> bool:
    o = ord(ch)
    return (o < 32 and ch != GS) or 127 <= o < 160 or 0xD800 <= o <= 0xDFFF or o in (0xFFFE, 0xFFFF)


def normalise(raw: object, gs_substitutes: tuple[str, ...] = DEFAULT_GS_SUBSTITUTES,
              today: dt.date | None = None) -> NormalisedCode:
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
    text = restore_gs(text, gs_substitutes)
    if any(_is_control(ch) for ch in text):
        return NormalisedCode("", symbology, error="control_characters")
    gs1, gs1_error = read_gs1(text, symbology, today)
    return NormalisedCode(text, symbology, gs1=gs1, gs1_error=gs1_error)


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


def repeats_of(previous: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What a double read repeats, from the verdict the previous read got (as answered): its
    code, whether it was accepted, and its parameters (to say the refusal again). A double read
    of a double read repeats the same first read. None when the previous verdict is unknown."""
    if not isinstance(previous, Mapping) or not isinstance(previous.get("code"), str):
        return None
    if previous["code"] == "duplicate_read":
        params = previous.get("params")
        earlier = params.get("repeats") if isinstance(params, Mapping) else None
        if not isinstance(earlier, Mapping) or earlier.get("code") == "duplicate_read":
            return None
        return repeats_of(earlier)
    params = previous.get("params")
    return {"code": previous["code"], "ok": previous.get("ok") is True,
            "params": dict(params) if isinstance(params, Mapping) else {}}


def effective_time(client_at: dt.datetime | None, received_at: dt.datetime) -> dt.datetime:
    """A client's `at` is used when it is within 24 h of the server clock, else receive time."""
    if client_at is None or client_at.tzinfo is None:
        return received_at
    if abs(client_at - received_at) <= CLIENT_CLOCK_WINDOW:
        return client_at
    return received_at


def local_day(instant: dt.datetime, utc_offset_minutes: int) -> dt.date:
    """The warehouse's calendar day at `instant`: an expiry date (AI 17) is a local day, so a
    unit expires at the warehouse's midnight, not UTC's (eight hours later at UTC+8). The offset
    is the merged settings' (a valid one: floor.live.domain.merged_settings checks it)."""
    return instant.astimezone(dt.timezone(dt.timedelta(minutes=utc_offset_minutes))).date()


def parse_client_time(value: object) -> dt.datetime | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None
