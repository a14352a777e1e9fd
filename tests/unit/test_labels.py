"""Barcode images and ZPL labels: structure checked as text, then rendered with a ZPL renderer
(zplkit) and every barcode read back with zxing-cpp."""
from __future__ import annotations

import io
import os
import re

import barcode
import pytest
import zxingcpp
from PIL import Image

from floor import labels
from floor.labels import LABEL_HEIGHT, LABEL_WIDTH, MARGIN, LabelError

CUSTOMER = dict(name="Zhang San", address_lines=["No. 88 Honggutan Avenue", "Nanchang, Jiangxi"],
                kit_summary=["Serum 30ml x1", "Sample 5ml x2", "Gift box x1"], phone="13800001234")
HOSTILE = "^XZ^XA^FO0,0^FDevil^FS~JA_x>"          # what a customer address must never do


def waybill(**kw: object) -> str:
    args = {"order_no": "TB2026112200017", "waybill_no": "SF1234567890123", "channel": "taobao",
            **CUSTOMER, **kw}
    return labels.waybill_zpl(**args)  # type: ignore[arg-type]


def all_labels() -> dict[str, str]:
    return {"waybill": waybill(), "trace": labels.trace_zpl("RMA-000123", "RT12345678901", "TB001"),
            "station": labels.station_zpl("P01"), "location": labels.location_zpl("A-01-02-03")}


# --- images ----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, symbology, expected, fmt", [
    ("SF1000000000001", None, ("SF1000000000001", "Code128"), "Code128"),
    ("6901234567892", None, ("6901234567892", "EAN13"), "EAN13"),
    ("690123456789", "ean13", ("6901234567892", "EAN13"), "EAN13"),
    ("6901234567892", "code128", ("6901234567892", "Code128"), "Code128"),
    ("A-01 ^~_>", "code128", ("A-01 ^~_>", "Code128"), "Code128"),
])
def test_barcode_png_reads_back(text, symbology, expected, fmt):
    png = labels.barcode_png(text, symbology)
    assert png.startswith(b"\x89PNG")
    image = Image.open(io.BytesIO(png))
    assert image.info.get("dpi", (300, 300))[0] == pytest.approx(300, abs=1)
    [read] = zxingcpp.read_barcodes(image)
    assert (read.text, read.format.name) == expected


def test_barcode_svg_keeps_its_scalable_form():
    svg = labels.barcode_svg("6901234567892")
    assert svg.startswith("<svg") and "viewBox" in svg and "style=" not in svg
    assert labels.barcode_svg("6901234567892", "code128") != svg


@pytest.mark.parametrize("text, symbology, code", [
    ("6901234567893", "ean13", "invalid_ean13"),
    ("69012345678", "ean13", "invalid_ean13"),
    ("６901234567892", "ean13", "invalid_ean13"),     # a full-width digit is no digit here
    ("精华液", None, "not_code128"),
    ("", None, "invalid_text"),
    ("A" * 129, None, "invalid_text"),
    ("A\x07", "code128", "not_code128"),
    ("A", "qr", "unknown_symbology"),
])
def test_texts_that_are_not_barcodes(text, symbology, code):
    with pytest.raises(LabelError) as err:
        labels.check_barcode_text(text, symbology)
    assert err.value.code == code


# --- ZPL as text -----------------------------------------------------------------------------

def test_code128_subsets():
    assert labels.code128_zpl("123456") == (">;123456", (2 + 3) * 11 + 13)
    assert labels.code128_zpl("12345")[0] == ">;1234>65"
    assert labels.code128_zpl("SF1234567890123")[0] == ">:SF1>5234567890123"
    assert labels.code128_zpl("JD123")[0] == ">:JD123"                 # too short for subset C
    assert labels.code128_zpl("AB123456CD")[0] == ">:AB>5123456>6CD"
    assert labels.code128_zpl("A1234B")[0] == ">:A1234B"               # 4 digits mid-way: B
    assert labels.code128_zpl("a>b^c~d_e")[0] == ">:a>0b_5Ec_7Ed_5Fe"
    with pytest.raises(LabelError):
        labels.code128_zpl("货架")
    with pytest.raises(LabelError):
        labels.code128_zpl("")


def _fields(zpl: str) -> list[str]:
    return re.findall(r"\^FD(.*?)\^FS", zpl, flags=re.S)


@pytest.mark.parametrize("name", ["waybill", "trace", "station", "location"])
def test_labels_are_well_formed(name):
    zpl = all_labels()[name]
    assert zpl.startswith("^XA^CI28^PW812^LL1218") and zpl.rstrip().endswith("^XZ")
    assert zpl.count("^XA") == 1 and zpl.count("^XZ") == 1
    assert zpl.count("^FD") == zpl.count("^FS") - zpl.count("^GB") == len(_fields(zpl))
    for data in _fields(zpl):
        assert "^" not in data and "~" not in data
    assert "~" not in zpl
    for x, y in re.findall(r"\^FO(\d+),(\d+)", zpl):
        assert 0 <= int(x) < LABEL_WIDTH and 0 <= int(y) < LABEL_HEIGHT
    for command in re.findall(r"\^F[DO]", zpl):
        assert command in ("^FD", "^FO")
    assert zpl.count("^FH^FD") == zpl.count("^FD")           # every field is hex-escaped


def test_hostile_text_stays_field_data():
    zpl = waybill(name=HOSTILE, address_lines=[HOSTILE, "line\r\nbreak"], kit_summary=[HOSTILE],
                  order_no="TB^XZ")
    assert zpl.count("^XA") == 1 and zpl.count("^XZ") == 1 and "~JA" not in zpl
    assert "_5EXZ_5EXA_5EFO0,0_5EFDevil_5EFS_7EJA_5Fx>" in zpl
    assert "line break" in zpl


def test_non_ascii_lines_use_the_configured_printer_font():
    zpl = waybill(name="张三", address_lines=["江西省南昌市红谷滩区"], kit_summary=["精华液 30ml x1"],
                  cjk_font="e:anmds.ttf")
    assert "^A@N,44,44,E:ANMDS.TTF^FH^FD张三 138****1234^FS" in zpl
    assert "^A@N,30,30,E:ANMDS.TTF^FH^FD精华液 30ml x1^FS" in zpl
    assert "^A0N,48,48^FH^FDTAOBAO^FS" in zpl                   # ASCII stays in font 0
    for bad in ("SIMSUN.TTF", "E:SIM SUN.TTF", "E:SIMSUN.TTF^FS", "E:SIMSUN.EXE"):
        with pytest.raises(LabelError) as err:
            labels.check_font(bad)
        assert err.value.code == "invalid_font"


def test_text_is_fitted_not_overflowed():
    lines = labels.fit_lines("word " * 60, 34, max_lines=3)
    assert len(lines) == 3 and lines[-1].endswith("...")
    assert labels.fit_lines("短" * 100, 30, max_lines=2)[0] == "短" * 25
    assert labels.fit_lines("", 30) == []
    items = [f"item {n} x1" for n in range(10)]
    zpl = waybill(kit_summary=items)
    assert "item 4 x1" in zpl and "item 5 x1" not in zpl and "+5 more" in zpl


def test_waybills_that_cannot_be_barcodes_are_refused():
    with pytest.raises(LabelError) as err:
        waybill(waybill_no="顺丰123")
    assert err.value.code == "waybill_not_printable"
    with pytest.raises(LabelError):
        labels.location_zpl("货架 A")


def test_phone_masking():
    assert labels.mask_phone("138 0000 1234") == "138****1234"
    assert labels.mask_phone("+86 13800001234") == "861******1234"
    assert labels.mask_phone("12345") == "*****"
    assert labels.mask_phone(None) == ""


# --- ZPL rendered ----------------------------------------------------------------------------

try:
    import zplkit
except ImportError:                                   # no wheel for this platform
    zplkit = None
needs_renderer = pytest.mark.skipif(zplkit is None, reason="zplkit (the ZPL renderer) is not installed")


def render(zpl: str, font: bytes | None = None, font_name: str = "E:SIMSUN.TTF") -> Image.Image:
    """One label as the printer would print it. `font` is downloaded first (~DU), as a printer
    holds its TrueType fonts."""
    data = zpl.encode("utf-8")
    limits = None
    if font is not None:
        data = f"~DU{font_name},{len(font)},{font.hex().upper()}".encode() + data
        limits = zplkit._native.RenderLimits(input_bytes=len(data) + 1024, font_bytes=len(font) + 1024)
    options = zplkit.Options(profile="specification", width=LABEL_WIDTH, height=LABEL_HEIGHT, dpi=203)
    document = zplkit.render(data, options, limits=limits) if limits else zplkit.render(data, options)
    assert len(document.labels) == 1
    assert all("Resident fonts use captured bitmap strikes" in w for w in document.warnings), document.warnings
    scene = document.labels[0]
    assert (scene.width, scene.height, scene.dpi) == (LABEL_WIDTH, LABEL_HEIGHT, 203)
    return Image.open(io.BytesIO(scene.png())).convert("L")


def codes_in(image: Image.Image) -> list[str]:
    found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.Code128)
    return [r.text for r in sorted(found, key=lambda r: r.position.top_left.y)]


def ink_columns(image: Image.Image) -> tuple[int, int]:
    xs = [x for x in range(image.width) if image.crop((x, 0, x + 1, image.height)).getextrema()[0] < 128]
    return xs[0], xs[-1]


@needs_renderer
@pytest.mark.parametrize("name, expected", [
    ("waybill", ["SF1234567890123", "TB2026112200017"]),
    ("trace", ["RT12345678901", "RMA-000123"]),
    ("station", ["P01"]),
    ("location", ["A-01-02-03"]),
])
def test_rendered_labels_read_back(name, expected):
    image = render(all_labels()[name])
    assert codes_in(image) == expected
    left, right = ink_columns(image)
    assert left >= MARGIN - 1 and right <= LABEL_WIDTH - MARGIN      # nothing off the label


@needs_renderer
@pytest.mark.parametrize("data", ["SF1234567890123", "12345", "JD0012345678901-1-1-",
                                  "A>B^C~D_E", "1234567890" * 6 + "1234", "X" * 64])
def test_code128_data_reads_back_exactly(data):
    image = render(labels.location_zpl(data))
    assert codes_in(image) == [data]


@needs_renderer
def test_hostile_waybill_renders_as_one_label_with_exact_barcodes():
    zpl = waybill(waybill_no="SF12^XZ~JA>_9", name=HOSTILE, address_lines=[HOSTILE],
                  kit_summary=[HOSTILE, "W" * 200])
    image = render(zpl)
    assert codes_in(image) == ["SF12^XZ~JA>_9", "TB2026112200017"]
    left, right = ink_columns(image)
    assert left >= MARGIN - 1 and right <= LABEL_WIDTH - MARGIN


@needs_renderer
def test_barcode_width_matches_the_module_count():
    field, modules = labels.code128_zpl("SF1234567890123")
    image = render(labels.waybill_zpl("TB1", "SF1234567890123", "t", "n", [], []))
    band = image.crop((0, 200, LABEL_WIDTH, 201))
    xs = [x for x in range(LABEL_WIDTH) if band.getpixel((x, 0)) < 128]
    assert xs[-1] - xs[0] + 1 == modules * 3                     # 3-dot modules, bar to bar


CJK_FONT = "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"


@needs_renderer
@pytest.mark.skipif(not os.path.exists(CJK_FONT), reason="no CJK TrueType font to download")
def test_chinese_text_renders_with_a_downloaded_printer_font():
    # DroidSansFallback holds CJK glyphs only: the customer lines here are all Chinese.
    zpl = labels.waybill_zpl("TB001", "SF1000000000001", "taobao", "张三", ["江西省南昌市红谷滩区"],
                             ["精华液", "试用装"], cjk_font="E:SIMSUN.TTF")
    with open(CJK_FONT, "rb") as fh:
        image = render(zpl, font=fh.read())
    assert codes_in(image) == ["SF1000000000001", "TB001"]
    name_band = image.crop((MARGIN, 510, LABEL_WIDTH - MARGIN, 554))
    assert name_band.getextrema()[0] < 128                        # the name printed


@needs_renderer
def test_ascii_font_file_is_enough_for_ascii_through_the_cjk_path():
    # python-barcode ships DejaVu Sans Mono: a Latin text in an ^A@ field renders through it.
    font = os.path.join(os.path.dirname(barcode.__file__), "fonts", "DejaVuSansMono.ttf")
    zpl = labels.waybill_zpl("TB001", "SF1000000000001", "taobao", "José", [], [])
    assert "^A@N,44,44,E:SIMSUN.TTF^FH^FDJosé" in zpl
    with open(font, "rb") as fh:
        image = render(zpl, font=fh.read())
    assert codes_in(image) == ["SF1000000000001", "TB001"]
