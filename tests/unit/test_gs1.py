"""GS1 in the normaliser: element strings parsed with biip, GTIN forms, lots and expiry in the
packing rules. Real payloads come from ../shared/testdata (zxing-cpp samples), read by path."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from floor.packing.domain import PackState, ScanFacts, decide_scan, parse_kit
from floor.scan.domain import gtin14, normalise

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


@pytest.mark.parametrize("name", ["code128-1/1", "code128-1/5", "rssexpanded-1/1"])
def test_other_gs1_samples_parse_without_error(name):
    symbology, text = _sample(name)
    code = normalise(symbology + text)
    assert code.readable and code.text == text    # no GTIN in these: compared as they are


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
    code = normalise(f"]C10106901234567892{typed}10LOT-9{typed}17291231")
    assert code.gs1 is not None and (code.gs1.lot, code.gs1.expiry) == ("LOT-9", dt.date(2029, 12, 31))
    assert "\x1d" in code.text
