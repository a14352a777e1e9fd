"""GS1 in the normaliser: element strings parsed with biip, GTIN forms, lots and expiry in the
packing rules. Real payloads come from ../shared/testdata (zxing-cpp samples), read by path."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from floor.packing.domain import PackState, ScanFacts, decide_scan, parse_kit
from floor.scan.domain import gs_substitutes_for, gtin14, normalise

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "testdata" / "zxing-cpp" / "test" / "samples"


def _sample(name: str) -> tuple[str, str]:
    folder = SAMPLES / name.split("/")[0]
    stem = name.split("/")[1]
    if not (folder / f"{stem}.txt").exists():
        pytest.skip(f"shared test data not found at {folder} (the repository is cloned without it)")
    text = (folder / f"{stem}.txt").read_bytes().decode("latin-1")
    meta = (folder / f"{stem}.result.txt").read_text()
    symbology = next(line.split("=", 1)[1] for line in meta.splitlines()
                     if line.startswith("symbologyIdentifier="))
    return symbology, text


@pytest.mark.parametrize("name", ["datamatrix-1/gs1-figure-4.15.1-2-32x32", "qrcode-2/gs1-figure-4.15.1-2"])
def test_gs1_figure_from_datamatrix_and_qr(name):
    symbology, text = _sample(name)
    code = normalise(symbology + text)
    assert code.readable and code.symbology_id == symbology
    assert code.gs1 is not None
    assert (code.gs1.gtin, code.gs1.serial, code.gs1.lot, code.gs1.expiry) == (
        "09504000059101", "12345678p901", "1234567p", dt.date(2014, 11, 20))


def test_a_gs1_sample_without_an_item_key_is_compared_as_it_is():
    symbology, text = _sample("rssexpanded-1/1")       # dates and a weight, no GTIN
    code = normalise(symbology + text)
    assert code.readable and code.text == text and code.gs1_error is None
    assert code.item_keys() == (text,)


@pytest.mark.parametrize("name, ai, reason", [("code128-1/1", "16", "wrong_length"),
                                              ("code128-1/5", "81", "unknown_ai")])
def test_malformed_gs1_samples_are_refused(name, ai, reason):
    symbology, text = _sample(name)
    code = normalise(symbology + text)
    assert code.readable and code.text == text and code.gs1 is None
    assert code.gs1_error is not None and (code.gs1_error.ai, code.gs1_error.reason) == (ai, reason)


@pytest.mark.parametrize("raw, keys", [
    ("6901234567892", ("6901234567892", "06901234567892")),
    ("06901234567892", ("06901234567892", "6901234567892")),
    ("]C10106901234567892", ("0106901234567892", "06901234567892", "6901234567892")),
    ("6901234567893", ("6901234567893",)),                  # bad check digit: not a GTIN
    ("SF1400000000000", ("SF1400000000000",)),
])
def test_item_keys_cover_every_gtin_length(raw, keys):
    assert normalise(raw).item_keys() == keys


def test_gtin14():
    assert gtin14("96385074") == "00000096385074"            # EAN-8
    assert gtin14("036000291452") == "00036000291452"        # UPC-A
    assert gtin14("036000291453") is None


KIT = parse_kit([
    {"sku": "SERUM", "name": "精华液", "qty": 1, "role": "main", "barcodes": ["6901234567892"],
     "lot": "L2026A"},
    {"sku": "BOX", "name": "礼盒", "qty": 1, "role": "giftbox", "barcodes": ["6901234567915"]},
])
TODAY = dt.date(2026, 11, 22)


def _scan(raw: str):
    code = normalise(raw)
    state = PackState("TB1", "W-1", KIT, waybill_no="SF1")
    return decide_scan(ScanFacts(code.text, state, keys=code.item_keys(),
                                 lot=code.gs1.lot if code.gs1 else None,
                                 expiry=code.gs1.expiry if code.gs1 else None, today=TODAY))


@pytest.mark.parametrize("raw, verdict", [
    ("]C10106901234567892\x1d10L2026A\x1d17271231", "accepted"),     # GTIN-14 finds the EAN-13 line
    ("]C1010690123456789217271231\x1d10L2026A", "accepted"),
    ("]C10106901234567892\x1d10L2025Z", "lot_mismatch"),             # the order pins lot L2026A
    ("]C1010690123456789217251231\x1d10L2026A", "expired"),
    ("6901234567892", "accepted"),                                     # plain EAN: no lot to check
])
def test_lots_and_expiry(raw, verdict):
    assert _scan(raw).code == verdict


@pytest.mark.parametrize("typed", ["<GS>", "{GS}", "[GS]", "^]", "\\x1d"])
def test_keyboard_wedge_gs_substitutes_are_restored(typed):
    # '<GS>' only for a scanner whose profile says so (it is legal lot data); see test_gs1_strict.
    tokens = gs_substitutes_for({"gs_substitute": typed}, None)
    code = normalise(f"]C10106901234567892{typed}10LOT-9{typed}17291231", tokens)
    assert code.gs1 is not None and (code.gs1.lot, code.gs1.expiry) == ("LOT-9", dt.date(2029, 12, 31))
    assert "\x1d" in code.text


GS1_SYMBOLOGIES = ("]C1", "]d2", "]Q3", "]e0", "]J1")


def _gs1_corpus() -> list[tuple[str, str, str]]:
    """Every GS1 payload in the shared samples: DataBar (Expanded) is GS1 by definition (]e0);
    other symbologies where N.result.txt names a GS1 symbology identifier."""
    if not SAMPLES.exists():
        return []
    out = []
    for text_file in sorted(SAMPLES.glob("*/*.txt")):
        if text_file.name.endswith(".result.txt"):
            continue
        meta = text_file.with_name(text_file.stem + ".result.txt")
        symbology = None
        if meta.exists():
            symbology = next((line.split("=", 1)[1] for line in meta.read_text().splitlines()
                              if line.startswith("symbologyIdentifier=")), None)
        if symbology is None and text_file.parent.name.startswith("rss"):
            symbology = "]e0"
        if symbology in GS1_SYMBOLOGIES:
            out.append((f"{text_file.parent.name}/{text_file.stem}", symbology,
                        text_file.read_bytes().decode("latin-1")))
    return out


# Samples that break a rule of the GS1 General Specifications: refused whole, naming the AI.
MALFORMED_SAMPLES = {
    "code128-1/1": ("16", "wrong_length"), "code128-1/4": ("12", "wrong_length"),
    "code128-1/5": ("81", "unknown_ai"),
    "rssexpanded-1/32": ("423", "invalid_value"), "rssexpanded-3/76": ("423", "invalid_value"),
    "rssexpanded-3/100": ("10", "invalid_characters"), "rssexpanded-3/42": ("10", "invalid_characters"),
    "rssexpanded-3/13": ("3922", "too_long"), "rssexpanded-3/66": ("3922", "too_long"),
    "rssexpanded-3/68": ("3932", "not_digits"), "rssexpanded-3/69": ("3932", "not_digits"),
    "rssexpanded-3/70": ("3932", "not_digits"),
}


def test_every_gs1_sample_of_the_shared_data():
    corpus = _gs1_corpus()
    if not corpus:
        pytest.skip(f"shared test data not found at {SAMPLES} (the repository is cloned without it)")
    assert len(corpus) > 150
    parsed = 0
    for name, symbology, text in corpus:
        code = normalise(symbology + text)
        # The identifier is recorded and stripped, the content kept byte for byte.
        assert code.readable and (code.symbology_id, code.text) == (symbology, text), name
        # A keyboard-wedge scanner's GS substitute gives the same reading, where its profile
        # names it.
        wedge = normalise(symbology + text.replace("\x1d", "<GS>"), ("<GS>",))
        assert (wedge.text, wedge.gs1, wedge.gs1_error) == (code.text, code.gs1, code.gs1_error), name
        if code.gs1 is not None:
            parsed += 1
        if name in MALFORMED_SAMPLES:
            # Refused whole: never a GTIN without the rest.
            assert code.gs1 is None and code.gs1_error is not None, name
            assert (code.gs1_error.ai, code.gs1_error.reason) == MALFORMED_SAMPLES[name], name
            assert code.item_keys() == (text,), name
            continue
        assert code.gs1_error is None, (name, code.gs1_error)
        if text[:2] in ("01", "02") and text[2:16].isdigit():
            # A GTIN in front names the item, whatever follows; its GTIN-13 form too, when
            # the indicator digit is 0 (another indicator is another packaging level).
            assert code.gs1 is not None and code.gs1.gtin == text[2:16], name
            assert text[2:16] in code.item_keys(), name
            assert (text[3:16] in code.item_keys()) == (text[2] == "0"), name
        if "\x1d10" in text or text.startswith("10"):
            assert code.gs1 is None or code.gs1.lot is not None or code.gs1.gtin is not None, name
    # Left unparsed: the malformed samples above (a bad currency or country code, a short
    # date, a retired coupon AI) and payloads with no AI this service reads.
    assert parsed >= 0.9 * len(corpus)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=80), st.sampled_from(("",) + GS1_SYMBOLOGIES))
def test_gs1_parsing_never_raises_and_always_gives_a_verdict(text, symbology):
    code = normalise(symbology + text)
    assert code.readable or code.error
    state = PackState("TB1", "W-1", KIT, waybill_no="SF1")
    verdict = decide_scan(ScanFacts(code.text, state, keys=code.item_keys(),
                                    lot=code.gs1.lot if code.gs1 else None,
                                    expiry=code.gs1.expiry if code.gs1 else None, today=TODAY))
    assert verdict.code
