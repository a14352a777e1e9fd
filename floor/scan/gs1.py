"""GS1 element strings and GS1 Digital Link URIs, read strictly (pure rules, no Flask/SQLAlchemy).

A GS1 read is either fully valid or refused with the AI at fault: a label whose lot, expiry or
serial cannot be read must not pass as its GTIN alone. The rules are those of the GS1 General
Specifications: the AI table (biip bundles GS1's syntax dictionary: each AI's format and
pattern, character set 82 for alphanumeric data), the predefined-length AIs that need no FNC1
separator (section 7.8.5), check digits (section 7.9), dates YYMMDD where DD = 00 means the
month's last day (section 7.12), and the mandatory associations and exclusions of AIs
(section 4.14). Digital Link URIs follow the GS1 Digital Link standard: a primary key in the
path (GTIN-8/12/13 padded to 14 digits), its qualifiers in order, data attributes as numeric
query parameters.
"""
from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable
from urllib.parse import parse_qsl, unquote, urlsplit

GS = "\x1d"
_CSET82 = re.compile(r'[!"%-?A-Z_a-z]*')

# Section 7.8.5: the AI prefixes of predefined length, whose element string needs no separator.
PREDEFINED_LENGTH_PREFIXES = frozenset({"00", "01", "02", "03", "04", "11", "12", "13", "14", "15",
                                        "16", "17", "18", "19", "20", "31", "32", "33", "34", "35",
                                        "36", "41"})
# AIs whose data (or the slice named) ends with a GS1 check digit: (start, end) of the key.
CHECK_DIGIT_AIS = {"00": (0, 18), "01": (0, 14), "02": (0, 14), "03": (0, 14), "253": (0, 13),
                   "255": (0, 13), "410": (0, 13), "411": (0, 13), "412": (0, 13), "413": (0, 13),
                   "414": (0, 13), "415": (0, 13), "416": (0, 13), "417": (0, 13),
                   "8003": (1, 14), "8006": (0, 14), "8017": (0, 18), "8018": (0, 18),
                   "8026": (0, 14)}
# Dates YYMMDD (section 7.12): where DD may be 00 (the month's end), and where it may not.
DATES_DAY_00 = frozenset({"11", "12", "13", "15", "16", "17"})
DATES_STRICT = {"4326": (0,), "7006": (0,), "7007": (0, 6)}
DATE_TIMES = frozenset({"7003", "8008"})          # YYMMDDHH, then minutes (and seconds)
# Mandatory associations (section 4.14.2) that change what a read counts: an AI needs one of
# these beside it. (A lot or date without any item key names nothing here and is compared as
# it is, never credited, so those associations are not enforced.)
REQUIRES = {"02": ("37",), "37": ("02", "8026"), "254": ("414",)}
# Invalid pairs (section 4.14.1): never in one message.
EXCLUDES = (("01", "02"), ("01", "03"), ("02", "03"), ("21", "235"))

# GS1 Digital Link: the primary keys a path may carry, each with its qualifiers in order.
DL_PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    "01": ("22", "10", "21"), "00": (), "253": (), "255": (), "401": (), "402": (),
    "414": ("254",), "417": (), "8003": (), "8004": (), "8006": ("22", "10", "21"),
    "8010": ("8011",), "8013": (), "8017": ("8019",), "8018": ("8019",)}
# The short names of Digital Link 1.0, still printed on older labels.
DL_SHORT_NAMES = {"gtin": "01", "cpv": "22", "lot": "10", "ser": "21", "sscc": "00", "exp": "17"}


@dataclass(frozen=True)
class Gs1Error:
    """Why a GS1 read is refused, naming the AI at fault (None where no AI can be named)."""
    ai: str | None
    reason: str      # unknown_ai | wrong_length | too_long | not_digits | invalid_characters |
    #                  check_digit | invalid_date | invalid_value | missing_association |
    #                  excluded_pair | conflicting_values | empty_element | malformed_uri
    requires: str | None = None     # the AI(s) missing, or the one it may not be read with

    def params(self) -> dict[str, str | None]:
        return {"ai": self.ai if self.ai is not None else "—", "reason": self.reason,
                "requires": self.requires}


class Gs1Invalid(ValueError):
    def __init__(self, error: Gs1Error) -> None:
        super().__init__(f"({error.ai}) {error.reason}")
        self.error = error


@dataclass(frozen=True)
class _Ai:
    ai: str
    pattern: re.Pattern[str]
    predefined: bool
    min_len: int
    max_len: int
    digits_only: bool


def _lengths(fmt: str) -> tuple[int, int, bool]:
    """Min and max data length and whether the data is all digits, from a syntax dictionary
    format such as 'N2+N14', 'N2+X..20' or 'N3+N13[+X..17]' (the first part is the AI)."""
    low = high = 0
    digits_only = True
    for part in fmt.split("+")[1:]:
        optional = part.startswith("[") or part.endswith("]")
        token = part.strip("[]")
        numbers = [int(n) for n in re.findall(r"\d+", token)]
        if not numbers:
            continue
        if not token.startswith("N"):
            digits_only = False
        high += max(numbers)
        if not optional:
            low += 1 if ".." in token else max(numbers)
    return low, high, digits_only


@lru_cache(maxsize=1024)
def _ai_at(head: str) -> _Ai | None:
    """The AI that `head` (up to four characters) opens with; AIs are prefix-free."""
    from biip import ParseError
    from biip.gs1_application_identifiers import GS1ApplicationIdentifier

    if not head[:2].isdigit():
        return None
    try:
        found = GS1ApplicationIdentifier.extract(head)
    except ParseError:
        return None
    low, high, digits = _lengths(found.format)
    return _Ai(found.ai, re.compile(found.pattern), found.ai[:2] in PREDEFINED_LENGTH_PREFIXES,
               low, high, digits)


def check_digit_ok(digits: str) -> bool:
    # ASCII only: str.isdigit() also takes '²' and the like, which int() then refuses.
    if not (digits.isascii() and digits.isdigit()):
        return False
    body = digits[:-1]
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return str((10 - total % 10) % 10) == digits[-1]


def century_year(yy: int, today: dt.date) -> int:
    """Section 7.12: the year of YY, in the century that puts it within -49..+50 of today."""
    current = today.year % 100
    century = today.year - current
    diff = yy - current
    if 51 <= diff <= 99:
        return century - 100 + yy
    if -99 <= diff <= -50:
        return century + 100 + yy
    return century + yy


def date_of(yymmdd: str, today: dt.date, day_00: bool = True) -> dt.date | None:
    """The date YYMMDD names (DD = 00: the month's last day, where allowed); None if impossible."""
    if len(yymmdd) != 6 or not yymmdd.isdigit():
        return None
    year = century_year(int(yymmdd[:2]), today)
    month, day = int(yymmdd[2:4]), int(yymmdd[4:6])
    if not 1 <= month <= 12:
        return None
    last = calendar.monthrange(year, month)[1]
    if day == 0 and day_00:
        day = last
    if not 1 <= day <= last:
        return None
    return dt.date(year, month, day)


def _time_ok(hhmmss: str) -> bool:
    """HH, then optional MM and SS, as in AIs 7003 and 8008."""
    limits = (24, 60, 60)
    pairs = [hhmmss[i:i + 2] for i in range(0, len(hhmmss), 2)]
    return len(pairs) <= 3 and all(len(p) == 2 and p.isdigit() and int(p) < limit
                                   for p, limit in zip(pairs, limits))


def _check_value(ai: _Ai, value: str, today: dt.date) -> Gs1Error | None:
    code = ai.ai
    if not value:
        return Gs1Error(code, "empty_element")
    if len(value) > ai.max_len:
        return Gs1Error(code, "too_long")
    if len(value) < ai.min_len:
        return Gs1Error(code, "wrong_length")
    if ai.digits_only and not value.isdigit():
        return Gs1Error(code, "not_digits")
    if not _CSET82.fullmatch(value):
        return Gs1Error(code, "invalid_characters")
    if code in CHECK_DIGIT_AIS:
        start, end = CHECK_DIGIT_AIS[code]
        if not check_digit_ok(value[start:end]):
            return Gs1Error(code, "check_digit")
    if code in DATES_DAY_00 and date_of(value, today) is None:
        return Gs1Error(code, "invalid_date")
    if code in DATES_STRICT and any(
            date_of(value[i:i + 6], today, day_00=False) is None
            for i in DATES_STRICT[code] if len(value) >= i + 6):
        return Gs1Error(code, "invalid_date")
    if code in DATE_TIMES and (date_of(value[:6], today, day_00=False) is None
                               or not _time_ok(value[6:])):
        return Gs1Error(code, "invalid_date")
    if not ai.pattern.fullmatch(code + value):
        return Gs1Error(code, "invalid_date" if code in DATE_TIMES else "invalid_value")
    return None


def _element(head: str, value: str, today: dt.date) -> tuple[str, str]:
    ai = _ai_at(head)
    if ai is None or ai.ai != head:
        raise Gs1Invalid(Gs1Error(_printable(head), "unknown_ai"))
    error = _check_value(ai, value, today)
    if error is not None:
        raise Gs1Invalid(error)
    return ai.ai, value


def _printable(text: str) -> str:
    return "".join(ch if 32 < ord(ch) < 127 else "?" for ch in text[:4]) or "?"


def element_strings(text: str, today: dt.date) -> list[tuple[str, str]]:
    """The (AI, data) pairs of a GS1 element string (FNC1 in first position implied, GS
    between elements); raises Gs1Invalid naming the AI at fault."""
    pos = 1 if text.startswith(GS) else 0   # a scanner may transmit the leading FNC1 as GS
    out: list[tuple[str, str]] = []
    while pos < len(text):
        if text[pos] == GS:
            raise Gs1Invalid(Gs1Error(out[-1][0] if out else None, "empty_element"))
        ai = _ai_at(text[pos:pos + 4])
        if ai is None:
            raise Gs1Invalid(Gs1Error(_printable(text[pos:pos + 2]), "unknown_ai"))
        start = pos + len(ai.ai)
        if ai.predefined:
            value = text[start:start + ai.max_len]
            pos = start + ai.max_len
            if len(value) < ai.max_len or GS in value:
                raise Gs1Invalid(Gs1Error(ai.ai, "wrong_length"))
            if text[pos:pos + 1] == GS:
                pos += 1     # a separator after a predefined-length element is redundant, not wrong
        else:
            end = text.find(GS, start)
            end = len(text) if end < 0 else end
            value = text[start:end]
            pos = end + 1
        error = _check_value(ai, value, today)
        if error is not None:
            raise Gs1Invalid(error)
        out.append((ai.ai, value))
    if not out:
        raise Gs1Invalid(Gs1Error(None, "empty_element"))
    return out


def looks_like_digital_link(text: str) -> bool:
    """An http(s) URI whose path names a GS1 primary key followed by a value."""
    if not text[:8].lower().startswith(("http://", "https://")):
        return False
    try:
        segments = urlsplit(text).path.split("/")
    except ValueError:
        return False
    return any(DL_SHORT_NAMES.get(seg, seg) in DL_PRIMARY_KEYS and i + 1 < len(segments)
               and segments[i + 1] != "" for i, seg in enumerate(segments))


def digital_link(text: str, today: dt.date) -> list[tuple[str, str]]:
    """The (AI, data) pairs of a GS1 Digital Link URI; raises Gs1Invalid naming the AI at fault."""
    try:
        parts = urlsplit(text)
    except ValueError:
        raise Gs1Invalid(Gs1Error(None, "malformed_uri")) from None
    segments = parts.path.split("/")
    if segments and segments[-1] == "":
        segments.pop()         # a trailing slash
    start = next((i for i, seg in enumerate(segments)
                  if DL_SHORT_NAMES.get(seg, seg) in DL_PRIMARY_KEYS and i + 1 < len(segments)), None)
    if start is None:
        raise Gs1Invalid(Gs1Error(None, "malformed_uri"))
    tail = segments[start:]
    if len(tail) % 2:
        raise Gs1Invalid(Gs1Error(_printable(tail[-1]), "malformed_uri"))
    # Percent-decoded after the split: an encoded "/" belongs to the value.
    pairs = [(DL_SHORT_NAMES.get(tail[i], tail[i]), unquote(tail[i + 1]))
             for i in range(0, len(tail), 2)]
    key, key_value = pairs[0]
    if key == "01" and key_value.isdigit() and len(key_value) in (8, 12, 13):
        key_value = key_value.zfill(14)     # GTIN-8/12/13 as GTIN-14
    out = [_element(key, key_value, today)]
    expected = list(DL_PRIMARY_KEYS[key])
    for qualifier, value in pairs[1:]:
        # Qualifiers come in the order the standard gives, each at most once.
        while expected and expected[0] != qualifier:
            expected.pop(0)
        if not expected:
            raise Gs1Invalid(Gs1Error(_printable(qualifier), "malformed_uri"))
        expected.pop(0)
        out.append(_element(qualifier, value, today))
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        ai = DL_SHORT_NAMES.get(name, name)
        if not ai.isdigit():
            continue             # other query parameters (linkType, ...) are not GS1 data
        out.append(_element(ai, value, today))
    return out


def check_message(elements: Iterable[tuple[str, str]]) -> None:
    """Associations and exclusions between the AIs of one message; the same AI twice must
    carry the same data."""
    seen: dict[str, str] = {}
    for ai, value in elements:
        if ai in seen and seen[ai] != value:
            raise Gs1Invalid(Gs1Error(ai, "conflicting_values"))
        seen[ai] = value
    for first, second in EXCLUDES:
        if first in seen and second in seen:
            raise Gs1Invalid(Gs1Error(second, "excluded_pair", first))
    for ai in seen:
        needed = REQUIRES.get(ai)
        if needed and not any(other in seen for other in needed):
            raise Gs1Invalid(Gs1Error(ai, "missing_association", "/".join(needed)))
