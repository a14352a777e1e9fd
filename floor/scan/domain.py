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
class Gs1Data:
    """What a GS1 element string says about the item (AIs 01/02, 10, 17, 21, 00)."""
    gtin: str | None = None          # GTIN-14
    lot: str | None = None
    expiry: dt.date | None = None
    serial: str | None = None
    sscc: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {"gtin": self.gtin, "lot": self.lot, "serial": self.serial, "sscc": self.sscc,
                "expiry": self.expiry.isoformat() if self.expiry else None}


@dataclass(frozen=True)
class NormalisedCode:
    text: str                        # what the rules compare; "" when unreadable
    symbology_id: str | None = None  # AIM identifier the scanner prefixed, e.g. "]E0"
    error: str | None = None         # why it is unreadable: empty | too_long | control_characters
    gs1: Gs1Data | None = None       # parsed GS1 data, when the code carries it

    @property
    def readable(self) -> bool:
        return self.error is None

    def item_keys(self) -> tuple[str, ...]:
        """The codes this scan may be listed as on a kit line or in the catalogue: as read, then
        its GTIN in every length (GTIN-14, EAN-13, UPC-A, EAN-8), so a GS1-128 scan of a GTIN-14
        finds the EAN-13 the OMS sent, and the other way round."""
        keys = [self.text]
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


def restore_gs(text: str) -> str:
    for token in GS_SUBSTITUTES:
        if token in text:
            text = text.replace(token, GS)
    return text


# AIM identifiers of symbols that carry GS1 element strings (GS1-128, GS1 DataMatrix,
# GS1 QR, GS1 DataBar).
GS1_SYMBOLOGIES = ("]C1", "]d2", "]Q3", "]e0")


def gs1_check_digit(body: str) -> str:
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return str((10 - total % 10) % 10)


def gtin14(code: str) -> str | None:
    """EAN-8, UPC-A, EAN-13 or GTIN-14 with a valid check digit, as GTIN-14; else None."""
    if len(code) not in (8, 12, 13, 14) or not code.isdigit():
        return None
    if gs1_check_digit(code[:-1]) != code[-1]:
        return None
    return code.zfill(14)


def parse_gs1(text: str, symbology: str | None) -> Gs1Data | None:
    """GS1 element strings, parsed with biip. Only tried where GS1 is plausible: a GS1
    symbology identifier, a GS separator, or a long all-digit string that opens with AI 01/02/00."""
    plausible = (symbology in GS1_SYMBOLOGIES or GS in text
                 or (len(text) >= 16 and text[:2] in ("01", "02", "00") and text[:16].isdigit()))
    if not plausible:
        return None
    try:
        import biip

        message = biip.parse(text).gs1_message
    except Exception:  # noqa: BLE001 - not GS1 after all: the code is compared as it is
        message = None
    if message is None:
        return _leading_gtin(text)
    values: dict[str, object] = {}
    for element in message.element_strings:
        ai = element.ai.ai
        if ai in ("01", "02") and element.gtin is not None:
            values.setdefault("gtin", element.gtin.value.zfill(14))
        elif ai == "10":
            values["lot"] = element.value
        elif ai == "17" and element.date is not None:
            values["expiry"] = element.date
        elif ai == "21":
            values["serial"] = element.value
        elif ai == "00":
            values["sscc"] = element.value
    return Gs1Data(**values) if values else None  # type: ignore[arg-type]


def _leading_gtin(text: str) -> Gs1Data | None:
    """A malformed element further on (an unknown currency, a bad country code) must not hide
    the product: AI 01/02 is fixed-length, so a valid GTIN at the front still names it."""
    head = text[2:16]
    if text[:2] in ("01", "02") and len(head) == 14 and head.isdigit() and \
            gs1_check_digit(head[:-1]) == head[-1]:
        return Gs1Data(gtin=head)
    return None


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
    text = restore_gs(text)
    if any(_is_control(ch) for ch in text):
        return NormalisedCode("", symbology, error="control_characters")
    return NormalisedCode(text, symbology, gs1=parse_gs1(text, symbology))


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
