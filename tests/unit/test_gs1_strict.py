"""GS1 read strictly: a malformed element string or Digital Link is refused whole, naming the AI
at fault; never half-read. Vectors from the GS1 General Specifications (AI table, predefined
lengths, check digits, dates with DD = 00, mandatory associations) and the GS1 Digital Link
standard's examples, not only from what a parser happens to accept."""
from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from floor.scan.domain import (DEFAULT_GS_SUBSTITUTES, Gs1Data, gs_substitutes_for, normalise,
                               parse_gs_substitute)
from floor.scan.gs1 import century_year

TODAY = dt.date(2026, 11, 22)
GTIN = "09506000134352"          # the GS1 Digital Link standard's example GTIN
SSCC = "106141412345678908"      # the GS1 Digital Link standard's example SSCC
G = "\x1d"


def read(raw: str, tokens: tuple[str, ...] = DEFAULT_GS_SUBSTITUTES):
    code = normalise(raw, tokens, today=TODAY)
    assert code.readable
    return code


@pytest.mark.parametrize("raw, ai, reason", [
    # Dates YYMMDD: impossible days and months (section 7.12); 17, 15, 11 alike.
    (f"]C101{GTIN}17270230", "17", "invalid_date"),          # 30 February
    (f"]C101{GTIN}17270229", "17", "invalid_date"),          # 2027 is no leap year
    (f"]C101{GTIN}17270031", "17", "invalid_date"),          # month 00
    (f"]C101{GTIN}17271301", "17", "invalid_date"),          # month 13
    (f"]C101{GTIN}17270431", "17", "invalid_date"),          # 31 April
    (f"]C101{GTIN}15271232{G}10A", "15", "invalid_date"),
    (f"]C101{GTIN}11991399", "11", "invalid_date"),
    (f"]C101{GTIN}{G}7006270200", "7006", "invalid_date"),   # 7006: DD = 00 is not allowed
    (f"]C101{GTIN}{G}70032701012460", "7003", "invalid_date"),  # hour 24
    # An AI not in the table, in front or after a good (01).
    (f"]C101{GTIN}23ABC", "23", "unknown_ai"),
    (f"]C101{GTIN}04123", "04", "unknown_ai"),
    (f"]C1{GTIN}", "09", "unknown_ai"),
    (f"]C101{GTIN}10LOT{G}XX", "XX", "unknown_ai"),
    # Predefined lengths (section 7.8.5): short, or cut by a separator.
    (f"]C101{GTIN[:-1]}", "01", "wrong_length"),
    (f"]C101{GTIN}172701", "17", "wrong_length"),
    (f"]C101{GTIN[:6]}{G}{GTIN[6:]}", "01", "wrong_length"),
    (f"]C101{GTIN}{G}7003270101", "7003", "wrong_length"),   # N10, not predefined: needs all 10
    # Check digits (section 7.9): GTIN in 01 and 02, SSCC in 00, GLN in 414.
    (f"]C101{GTIN[:-1]}3", "01", "check_digit"),
    (f"]C102{GTIN[:-1]}3{G}3712", "02", "check_digit"),
    (f"]C100{SSCC[:-1]}9", "00", "check_digit"),
    (f"]C101{GTIN}{G}4145412345678906", "414", "check_digit"),
    # Variable lengths over their maximum.
    (f"]C101{GTIN}10{'A' * 21}", "10", "too_long"),
    (f"]C101{GTIN}21{'1' * 21}", "21", "too_long"),
    (f"]C102{GTIN}37123456789", "37", "too_long"),
    # Character sets: 82 for alphanumeric data, digits for numeric.
    (f"]C101{GTIN}10AB CD", "10", "invalid_characters"),
    (f"]C101{GTIN}10AB#CD", "10", "invalid_characters"),
    (f"]C101{GTIN}21S\u00e91", "21", "invalid_characters"),
    (f"]C102{GTIN}3712A", "37", "not_digits"),
    (f"]C101{GTIN}{G}43212", "4321", "invalid_value"),       # a flag: 0 or 1
    # Mandatory associations and invalid pairs (section 4.14).
    (f"]C102{GTIN}", "02", "missing_association"),
    (f"]C102{GTIN}10LOT", "02", "missing_association"),
    (f"]C13712", "37", "missing_association"),
    (f"]C101{GTIN}3712", "37", "missing_association"),
    (f"]C101{GTIN}02{GTIN}3712", "02", "excluded_pair"),
    (f"]C102{GTIN}370", "37", "invalid_value"),              # a case of nothing
    # Structure: the same AI twice with different data, an empty element.
    (f"]C101{GTIN}10A{G}10B", "10", "conflicting_values"),
    (f"]C101{GTIN}10{G}21X", "10", "empty_element"),
    (f"]C101{GTIN}10A{G}{G}21X", "10", "empty_element"),
    # Without a symbology identifier: a digit run opening with a valid GTIN is GS1 all the same.
    (f"01{GTIN}17270230", "17", "invalid_date"),
    (f"01{GTIN}10LOT{G}17271301", "17", "invalid_date"),
    # Other GS1 symbologies: DataMatrix, QR, DotCode, DataBar.
    (f"]d201{GTIN}17270230", "17", "invalid_date"),
    (f"]Q301{GTIN}10{'A' * 21}", "10", "too_long"),
    (f"]J101{GTIN[:-1]}0", "01", "check_digit"),
    (f"]e001{GTIN}99", "99", "empty_element"),
])
def test_a_malformed_element_string_is_refused_whole(raw, ai, reason):
    assert_refused_whole(raw, ai, reason)


def assert_refused_whole(raw: str, ai: str, reason: str) -> None:
    code = read(raw)
    assert code.gs1 is None, "never half-read: no GTIN without its lot, expiry and serial"
    assert code.gs1_error is not None and (code.gs1_error.ai, code.gs1_error.reason) == (ai, reason)
    # Without GS1 data, the code names no item by a GTIN form.
    assert code.item_keys() == (code.text,)


@pytest.mark.parametrize("raw, expected", [
    (f"]C101{GTIN}17271231{G}10L2026A", Gs1Data(GTIN, "L2026A", dt.date(2027, 12, 31))),
    (f"]C101{GTIN}{G}17271231{G}10L2026A", Gs1Data(GTIN, "L2026A", dt.date(2027, 12, 31))),
    # DD = 00: the month's last day, leap years included.
    (f"]C101{GTIN}17270200", Gs1Data(GTIN, expiry=dt.date(2027, 2, 28))),
    (f"]C101{GTIN}17280200", Gs1Data(GTIN, expiry=dt.date(2028, 2, 29))),
    (f"]C101{GTIN}17280229", Gs1Data(GTIN, expiry=dt.date(2028, 2, 29))),
    # '<', '>' and the rest of set 82 are legal in lots and serials.
    (f"]C101{GTIN}10A<B>{G}21!\"%&'()*+,-./:;=?_z", Gs1Data(GTIN, "A<B>", serial="!\"%&'()*+,-./:;=?_z")),
    (f"]C101{GTIN}10{'A' * 20}{G}21{'9' * 20}", Gs1Data(GTIN, "A" * 20, serial="9" * 20)),
    # A case: 12 units of the contained GTIN; a logistic unit: an SSCC alone.
    (f"]C102{GTIN}3712{G}10LOT", Gs1Data(GTIN, "LOT", count=12)),
    (f"]C100{SSCC}02{GTIN}37{'9' * 8}", Gs1Data(GTIN, sscc=SSCC, count=99_999_999)),
    (f"]C100{SSCC}", Gs1Data(sscc=SSCC)),
    # A scanner sending the leading FNC1 as GS; the same AI twice with the same data.
    (f"]C1{G}01{GTIN}10A{G}10A", Gs1Data(GTIN, "A")),
    (f"01{GTIN}10LOT", Gs1Data(GTIN, "LOT")),
    (f"]J101{GTIN}21S1", Gs1Data(GTIN, serial="S1")),
])
def test_a_valid_element_string_is_read_whole(raw, expected):
    code = read(raw)
    assert code.gs1_error is None and code.gs1 == expected


@pytest.mark.parametrize("raw", [
    "01234567890123456789",          # 01 + a GTIN with a bad check digit: a number, not GS1
    "0012345678901234567890",
    "2026112200017",
    "https://example.com/news/2024",  # a URI naming no GS1 key
    "SF1400000000000",
])
def test_codes_that_do_not_claim_gs1_are_compared_as_they_are(raw):
    code = read(raw)
    assert (code.gs1, code.gs1_error, code.text) == (None, None, raw)


@pytest.mark.parametrize("raw, expected", [
    # The GS1 Digital Link standard's examples, any domain, with or without an AIM prefix.
    (f"https://id.gs1.org/01/{GTIN}/10/ABC/21/123456?17=201225",
     Gs1Data(GTIN, "ABC", dt.date(2020, 12, 25), "123456")),
    (f"]Q1https://example.com/01/{GTIN}/10/L2026A?17=271231",
     Gs1Data(GTIN, "L2026A", dt.date(2027, 12, 31))),
    (f"]d1https://brand.example.cn/p/shop/01/{GTIN}/21/S%2F1?linkType=gs1:pip",
     Gs1Data(GTIN, serial="S/1")),
    (f"]J1HTTPS://EXAMPLE.COM/01/{GTIN}?17=280200", Gs1Data(GTIN, expiry=dt.date(2028, 2, 29))),
    # GTIN-13, GTIN-12 and GTIN-8 in the path are GTIN-14 padded with zeros.
    ("https://example.com/01/9506000134352/10/L1", Gs1Data(GTIN, "L1")),
    ("https://example.com/01/614141123452", Gs1Data("00614141123452")),
    ("https://example.com/01/96385074/", Gs1Data("00000096385074")),
    (f"https://id.gs1.org/00/{SSCC}?02=00614141123452&37=25&10=ABC123",
     Gs1Data("00614141123452", "ABC123", sscc=SSCC, count=25)),
    # Digital Link 1.0 short names.
    (f"https://id.gs1.org/gtin/{GTIN}/lot/ABC1/ser/12345?exp=180426",
     Gs1Data(GTIN, "ABC1", dt.date(2018, 4, 26), "12345")),
])
def test_digital_link_uris_are_read(raw, expected):
    code = read(raw)
    assert code.gs1_error is None and code.gs1 == expected
    assert expected.gtin is None or expected.gtin in code.item_keys()


@pytest.mark.parametrize("raw, ai, reason", [
    (f"https://example.com/01/{GTIN}/10/L1?17=270230", "17", "invalid_date"),
    (f"]Q1https://example.com/01/{GTIN[:-1]}3", "01", "check_digit"),
    ("https://example.com/01/123456789", "01", "wrong_length"),
    (f"https://example.com/01/{GTIN}/10/{'A' * 21}", "10", "too_long"),
    (f"https://example.com/01/{GTIN}/10/A%20B", "10", "invalid_characters"),
    (f"https://example.com/01/{GTIN}/17/271231", "17", "malformed_uri"),  # not a qualifier
    (f"https://example.com/01/{GTIN}/21/S1/10/L1", "10", "malformed_uri"),  # out of order
    (f"https://example.com/01/{GTIN}/10", "10", "malformed_uri"),
    (f"https://example.com/01/{GTIN}?9999=1", "9999", "unknown_ai"),
    (f"https://example.com/01/{GTIN}?37=12", "37", "missing_association"),
    (f"https://example.com/01/{GTIN}/10/A?10=B", "10", "conflicting_values"),
    (f"https://example.com/00/{SSCC}?02={GTIN}", "02", "missing_association"),
])
def test_a_malformed_digital_link_is_refused(raw, ai, reason):
    assert_refused_whole(raw, ai, reason)


@pytest.mark.parametrize("yy, year", [(26, 2026), (76, 2076), (77, 1977), (99, 1999), (0, 2000)])
def test_the_century_of_a_two_digit_year(yy, year):
    # Section 7.12: within 50 years ahead and 49 behind the current year.
    assert century_year(yy, TODAY) == year


# --- the keyboard-wedge substitute for FNC1, per scanner profile ---------------------------

def test_a_lt_gs_gt_substitute_is_a_separator_only_where_the_profile_says_so():
    raw = f"]C101{GTIN}10LOT-9<GS>17291231"
    # No profile: '<GS>' is part of the lot (legal characters), the expiry is not read.
    plain = read(raw)
    assert plain.gs1 == Gs1Data(GTIN, "LOT-9<GS>17291231")
    profile = gs_substitutes_for({"gs_substitute": "<GS>"}, None)
    wedge = read(raw, profile)
    assert wedge.gs1 == Gs1Data(GTIN, "LOT-9", dt.date(2029, 12, 31)) and G in wedge.text
    # The device's profile comes before the warehouse's; "" means the scanner sends a real GS.
    assert gs_substitutes_for({"gs_substitute": ""}, {"gs_substitute": "<GS>"}) == ()
    assert gs_substitutes_for({}, {"gs_substitute": "<GS>"}) == ("<GS>",)
    assert gs_substitutes_for(None, None) == DEFAULT_GS_SUBSTITUTES
    assert "<GS>" not in DEFAULT_GS_SUBSTITUTES
    assert read(raw, ()).gs1 == plain.gs1


@pytest.mark.parametrize("typed", ["{GS}", "[GS]", "^]", "\\x1d"])
def test_substitutes_gs1_data_cannot_hold_are_separators_by_default(typed):
    code = read(f"]C101{GTIN}10LOT-9{typed}17291231")
    assert code.gs1 == Gs1Data(GTIN, "LOT-9", dt.date(2029, 12, 31))


@pytest.mark.parametrize("value, ok", [("<GS>", True), ("", True), ("~", True), ("GS", False),
                                       ("<G S>", False), ("x" * 9, False), (None, False), (1, False)])
def test_the_profile_setting_is_validated(value, ok):
    if ok:
        assert parse_gs_substitute(value) == value
    else:
        with pytest.raises(ValueError):
            parse_gs_substitute(value)


# --- property: whatever valid message is built, it is read whole; one fault names its AI ----

def _with_check_digit(body: str) -> str:
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


CSET82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
gtins = st.text("0123456789", min_size=13, max_size=13).map(_with_check_digit)
values = st.text(CSET82, min_size=1, max_size=20)
dates = st.dates(dt.date(1977, 1, 1), dt.date(2076, 12, 31))


@settings(max_examples=300, deadline=None)
@given(gtins, values, values, dates, st.booleans(), st.sampled_from(["]C1", "]d2", "]Q3", "]J1", ""]))
def test_any_valid_message_is_read_whole(gtin, lot, serial, expiry, lot_first, aim):
    date = expiry.strftime("%y%m%d")
    variable = [f"10{lot}", f"21{serial}"] if lot_first else [f"21{serial}", f"10{lot}"]
    raw = f"{aim}01{gtin}17{date}" + G.join(variable)
    code = read(raw)
    assert code.gs1_error is None
    assert code.gs1 == Gs1Data(gtin, lot, expiry, serial)
    link = read(f"https://example.com/01/{gtin}/10/{_quote(lot)}/21/{_quote(serial)}?17={date}")
    assert link.gs1 == code.gs1


def _quote(value: str) -> str:
    from urllib.parse import quote
    return quote(value, safe="")


@settings(max_examples=300, deadline=None)
@given(gtins, values, dates, st.sampled_from(["date", "check", "lot", "month"]))
def test_one_fault_refuses_the_whole_message_and_names_its_ai(gtin, lot, expiry, fault):
    date = expiry.strftime("%y%m%d")
    if fault == "date":
        date = date[:4] + "32"
    elif fault == "month":
        date = date[:2] + "13" + date[4:]
    elif fault == "check":
        gtin = gtin[:-1] + str((int(gtin[-1]) + 1) % 10)
    else:
        lot = (lot * 21)[:21]
    code = read(f"]C101{gtin}17{date}10{lot}")
    assert code.gs1 is None and code.gs1_error is not None
    assert code.gs1_error.ai == {"date": "17", "month": "17", "check": "01", "lot": "10"}[fault]
