"""Barcodes and labels: SVG and PNG images for screens and printed sheets (python-barcode), and
ZPL for 4×6 in thermal label printers at 203 dpi.

Everything here is pure: strings in, strings or bytes out. `LabelError` (with a stable `code`)
says why a text cannot become a barcode or a label.

ZPL notes:
- Every label starts `^XA^CI28`: field data is UTF-8.
- Field data goes through `^FH` with `_` as the hex indicator, and `^`, `~` and `_` are written as
  `_5E`, `_7E`, `_5F`: a caret or tilde in a customer's address can never end the field or start
  a command. Control characters become spaces.
- Code 128 is `^BC` in its plain mode (`N`) with explicit subsets: runs of digits are packed two
  to a symbol in subset C (`>;` starts in C, `>5` switches to it), everything else is subset B
  (`>:`, `>6`); a literal `>` is `>0` (`><` would be `^`). Only printable ASCII can be encoded.
- Text in ASCII uses the printer's scalable font 0. A line with any other character (Chinese
  names and addresses) uses a TrueType font stored on the printer, `^A@N,h,w,<font>`, by
  default `E:SIMSUN.TTF` (FLOOR_LABEL_CJK_FONT). Zebra printers do not ship a Chinese font unless
  bought with one: download it once to the printer's E: drive, or name the one it has
  (docs/devices.md). Without it the printer prints those lines in a fallback font or not at all;
  every barcode and the ASCII text still print.
"""
from __future__ import annotations

import functools
import io
import re
import unicodedata
from typing import Sequence

import barcode
from barcode.writer import ImageWriter, SVGWriter


class LabelError(ValueError):
    """A text that cannot become this barcode or label."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --- images for screens and sheets ---------------------------------------------------------

SYMBOLOGIES = ("code128", "ean13")
MAX_BARCODE_TEXT = 128

_MM = re.compile(r'(\b(?:x|y|width|height)=")([0-9.]+)mm"')
_STYLE = {'style="fill:white"': 'fill="white"', 'style="fill:black;"': 'fill="black"',
          'style="fill:black;font-size:8pt;text-anchor:middle;"':
              'fill="black" font-size="2.8" text-anchor="middle" font-family="monospace"'}


def _scalable(svg: str) -> str:
    """python-barcode writes millimetres and style attributes: make the inner units plain
    numbers under a viewBox (so CSS can size it) and the styles attributes (so a strict CSP
    does not block them). The root keeps its printed size in mm."""
    head, _, body = svg.partition(">")
    size = re.search(r'width="([0-9.]+)mm" height="([0-9.]+)mm"', head)
    body = _MM.sub(lambda m: f'{m.group(1)}{m.group(2)}"', body)
    for old, new in _STYLE.items():
        body = body.replace(old, new)
    if size:
        head += f' viewBox="0 0 {size.group(1)} {size.group(2)}"'
    return head + ">" + body


def is_ean13(code: str) -> bool:
    return len(code) == 13 and code.isascii() and code.isdigit() and ean13_check_digit(code[:12]) == code[12]


def check_barcode_text(code: str, symbology: str | None = None) -> tuple[str, str]:
    """(symbology, the data python-barcode is given). No symbology: EAN-13 for a 13-digit code
    with a valid check digit, Code 128 for everything else. EAN-13 takes 12 digits (the check
    digit is added) or 13 with the right one."""
    if symbology is None:
        symbology = "ean13" if is_ean13(code) else "code128"
    if symbology == "ean13":
        if not (code.isascii() and code.isdigit() and len(code) in (12, 13)):
            raise LabelError("invalid_ean13", "EAN-13 takes 12 or 13 digits.")
        if len(code) == 13 and not is_ean13(code):
            raise LabelError("invalid_ean13",
                             f"The check digit of {code} should be {ean13_check_digit(code[:12])}.")
        return symbology, code[:12]
    if symbology != "code128":
        raise LabelError("unknown_symbology", f"symbology must be one of {', '.join(SYMBOLOGIES)}.")
    if not code or len(code) > MAX_BARCODE_TEXT:
        raise LabelError("invalid_text", f"A barcode holds 1–{MAX_BARCODE_TEXT} characters.")
    if not all(32 <= ord(c) <= 126 for c in code):
        raise LabelError("not_code128", "Code 128 encodes printable ASCII only.")
    return symbology, code


# Bars of 0.3 mm (Code 128) read reliably off office printers.
_SVG_OPTIONS = {"module_height": 12.0, "module_width": 0.3, "font_size": 8, "text_distance": 4,
                "quiet_zone": 4, "compress": False}
# 0.254 mm is 3 pixels at 300 dpi: every bar a whole number of pixels.
_PNG_OPTIONS = {"module_height": 12.0, "module_width": 0.254, "font_size": 8, "text_distance": 4,
                "quiet_zone": 4, "dpi": 300}


@functools.lru_cache(maxsize=4096)
def barcode_svg(code: str, symbology: str | None = None) -> str:
    """An inline-ready SVG of `code` (see `check_barcode_text` for the symbology)."""
    kind, data = check_barcode_text(code, symbology)
    svg = barcode.get(kind, data, writer=SVGWriter()).render(dict(_SVG_OPTIONS)).decode("utf-8")
    # Drop the XML prolog so the SVG can be inlined in HTML.
    return _scalable(svg[svg.find("<svg"):])


@functools.lru_cache(maxsize=512)
def barcode_png(code: str, symbology: str | None = None) -> bytes:
    """A 300 dpi greyscale PNG of `code`, for A4 sheets and screens that want a bitmap."""
    kind, data = check_barcode_text(code, symbology)
    out = io.BytesIO()
    barcode.get(kind, data, writer=ImageWriter(mode="L")).write(out, dict(_PNG_OPTIONS))
    return out.getvalue()


def ean13_check_digit(first12: str) -> str:
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(first12))
    return str((10 - total % 10) % 10)


# --- ZPL for 4×6 in thermal labels -----------------------------------------------------------

LABEL_DPI = 203
LABEL_WIDTH, LABEL_HEIGHT = 812, 1218          # dots: 4 × 6 in at 203 dpi
MARGIN = 30
DEFAULT_CJK_FONT = "E:SIMSUN.TTF"
_FONT = re.compile(r"^[A-Z]:[A-Z0-9_-]{1,16}\.(TTF|TTE|FNT)$", re.IGNORECASE)
_HEX_ESCAPES = {"_": "_5F", "^": "_5E", "~": "_7E"}
QUIET_MODULES = 10
KIT_LINES = 6                                  # kit lines listed on a waybill label


def check_font(name: str) -> str:
    """A printer font name as `^A@` takes it: drive, name and extension (`E:SIMSUN.TTF`)."""
    if not isinstance(name, str) or not _FONT.match(name):
        raise LabelError("invalid_font", "A printer font is named like E:SIMSUN.TTF.")
    return name.upper()


def clean_text(text: str) -> str:
    """Control characters (line breaks included) become spaces; runs of spaces collapse."""
    text = "".join(" " if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp") else c
                   for c in str(text))
    return " ".join(text.split())


def zpl_escape(text: str) -> str:
    """Field data for `^FH^FD...^FS`: the characters ZPL would read as commands are hex."""
    return "".join(_HEX_ESCAPES.get(c, c) for c in text)


def code128_zpl(data: str) -> tuple[str, int]:
    """`^BC` (mode N) field data with explicit subsets, and the symbol's width in modules
    (start, data, subset changes, check and stop symbols; quiet zones not included)."""
    if not data or not all(32 <= ord(c) <= 126 for c in data):
        raise LabelError("not_code128", "Code 128 encodes printable ASCII only.")
    segments: list[tuple[str, str]] = []     # (subset, characters)

    def add(subset: str, chars: str) -> None:
        if not chars:
            return
        if segments and segments[-1][0] == subset:
            segments[-1] = (subset, segments[-1][1] + chars)
        else:
            segments.append((subset, chars))

    i, n = 0, len(data)
    while i < n:
        j = i
        while j < n and "0" <= data[j] <= "9":
            j += 1
        if j == i:                                   # a run of non-digits
            while j < n and not "0" <= data[j] <= "9":
                j += 1
            add("B", data[i:j])
            i = j
            continue
        run, at_start, at_end = j - i, i == 0, j == n
        worth = 2 if at_start and at_end else 4 if at_start or at_end else 6
        if run < worth:
            add("B", data[i:j])
        elif run % 2 == 0:
            add("C", data[i:j])
        elif at_start:                               # odd: the last digit goes in subset B
            add("C", data[i:j - 1])
            add("B", data[j - 1])
        else:                                        # odd: the first digit goes in subset B
            add("B", data[i])
            add("C", data[i + 1:j])
        i = j
    out: list[str] = []
    symbols = 2                                      # start and check
    for index, (subset, chars) in enumerate(segments):
        if index == 0:
            out.append(">;" if subset == "C" else ">:")
        else:
            out.append(">5" if subset == "C" else ">6")
            symbols += 1
        if subset == "C":
            out.append(chars)
            symbols += len(chars) // 2
        else:
            out.append(zpl_escape(chars).replace(">", ">0"))
            symbols += len(chars)
    return "".join(out), symbols * 11 + 13


# Advances of font 0 (CG Triumvirate Bold Condensed) at ^A0N,h,h, as fractions of h.
_FONT0_WIDTHS = {c: w for chars, w in (
    ("ijl", 0.25), (" !'(),./:;[]`Ift", 0.29), ("r", 0.35), ("z", 0.38), ("?Jckvsxy", 0.44),
    ("0123456789\"#$*L\\aeo", 0.47), ("EFTZ^_bdghnpqu{|}", 0.5), ("CSV", 0.53),
    ("ABKOPQXY", 0.57), ("DGR", 0.6), ("&HNU", 0.63), ("w", 0.66), ("Mm", 0.75), ("W", 0.82),
    ("%+-=@", 0.91), ("<>~", 1.0)) for c in chars}


def _char_width(c: str, height: int) -> float:
    """A slightly generous estimate of one character's advance: font 0 for ASCII, a CJK
    TrueType font (full-width ideographs, half-width Latin) for the rest."""
    if c in _FONT0_WIDTHS:
        return height * _FONT0_WIDTHS[c] * 1.05
    return height * (1.0 if unicodedata.east_asian_width(c) in ("W", "F") else 0.6)


def fit_lines(text: str, height: int, width: int = LABEL_WIDTH - 2 * MARGIN,
              max_lines: int = 1) -> list[str]:
    """Wrap `text` into at most `max_lines` lines that fit `width` dots; breaks at a space where
    it can, anywhere in CJK; a cut last line ends in '...'."""
    text = clean_text(text)
    lines: list[str] = []
    while text and len(lines) < max_lines:
        used, cut = 0.0, len(text)
        for k, c in enumerate(text):
            used += _char_width(c, height)
            if used > width:
                cut = k
                break
        if cut == len(text):
            lines.append(text)
            text = ""
            break
        space = text.rfind(" ", 0, cut + 1)
        if space > cut // 2:
            cut = space
        lines.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if text and lines:
        last = lines[-1]
        budget = width - 3 * _char_width(".", height)
        while last and sum(_char_width(c, height) for c in last) > budget:
            last = last[:-1]
        lines[-1] = last.rstrip() + "..."
    return lines


class _Label:
    """A 4×6 in ZPL label under construction; y grows downwards in dots."""

    def __init__(self, cjk_font: str) -> None:
        self.font = check_font(cjk_font)
        self.parts: list[str] = []

    def text(self, x: int, y: int, line: str, height: int) -> None:
        font = f"^A0N,{height},{height}" if line.isascii() else f"^A@N,{height},{height},{self.font}"
        self.parts.append(f"^FO{x},{y}{font}^FH^FD{zpl_escape(line)}^FS")

    def lines(self, y: int, text: str, height: int, max_lines: int = 1, gap: int = 8) -> int:
        """Left-aligned text at the margin; returns the y below it."""
        for line in fit_lines(text, height, max_lines=max_lines):
            self.text(MARGIN, y, line, height)
            y += height + gap
        return y

    def rule(self, y: int, thickness: int = 4) -> None:
        self.parts.append(f"^FO{MARGIN},{y}^GB{LABEL_WIDTH - 2 * MARGIN},{thickness},{thickness}^FS")

    def code128(self, y: int, data: str, height: int, max_module: int = 3) -> None:
        """A Code 128 barcode centred across the label, its bars as wide as the label allows
        (at most `max_module` dots) with quiet zones kept clear."""
        field, modules = code128_zpl(data)
        module = next((m for m in range(max_module, 0, -1)
                       if (modules + 2 * QUIET_MODULES) * m <= LABEL_WIDTH), 0)
        if module == 0:
            raise LabelError("barcode_too_long", f"{data[:20]}... is too long for a 4 in label.")
        x = (LABEL_WIDTH - modules * module) // 2
        self.parts.append(f"^FO{x},{y}^BY{module},3,{height}^BCN,{height},N,N,N^FH^FD{field}^FS")

    def zpl(self) -> str:
        return ("^XA^CI28^PW{w}^LL{h}^LH0,0\n".format(w=LABEL_WIDTH, h=LABEL_HEIGHT)
                + "\n".join(self.parts) + "\n^XZ\n")


def mask_phone(phone: str | None) -> str:
    """138****0000: a parcel label shows the phone's first three and last four digits."""
    digits = "".join(c for c in (phone or "") if c.isdigit())
    if len(digits) < 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def _code128_or_none(data: str) -> str | None:
    return data if data and all(32 <= ord(c) <= 126 for c in data) else None


def waybill_zpl(order_no: str, waybill_no: str, channel: str, name: str,
                address_lines: Sequence[str], kit_summary: Sequence[str], *,
                phone: str | None = None, cjk_font: str = DEFAULT_CJK_FONT) -> str:
    """The parcel label (a stand-in for the carrier's waybill): the waybill number as Code 128,
    the customer, what is in the box, and the order number as a second barcode."""
    waybill_no = clean_text(waybill_no)
    if not _code128_or_none(waybill_no):
        raise LabelError("waybill_not_printable",
                         "A waybill number must be printable ASCII to become a barcode.")
    label = _Label(cjk_font)
    label.lines(MARGIN, clean_text(channel).upper() or "-", 48)
    label.lines(90, f"ORDER {clean_text(order_no)}", 30)
    label.rule(136)
    label.code128(160, waybill_no, 220, max_module=3)
    label.lines(395, waybill_no, 44)
    label.rule(455)
    label.lines(475, "TO", 26)
    y = label.lines(510, " ".join(p for p in (clean_text(name), mask_phone(phone)) if p), 44)
    address = " ".join(clean_text(line) for line in address_lines if clean_text(line))
    label.lines(y + 4, address, 34, max_lines=3)
    label.rule(735)
    label.lines(755, "CONTENTS", 26)
    items = [clean_text(k) for k in kit_summary if clean_text(k)]
    if len(items) > KIT_LINES:
        items = items[:KIT_LINES - 1] + [f"+{len(items) - KIT_LINES + 1} more"]
    y = 790
    for item in items:
        y = label.lines(y, item, 30)
    label.rule(1030)
    order_code = _code128_or_none(clean_text(order_no))
    if order_code is not None:
        try:
            label.code128(1048, order_code, 90, max_module=2)
        except LabelError:
            pass                      # the number is printed above; the barcode is a convenience
    label.lines(1150, clean_text(order_no), 26)
    return label.zpl()


def trace_zpl(rma_no: str, trace_code: str, order_no: str, *,
              cjk_font: str = DEFAULT_CJK_FONT) -> str:
    """A return's trace-code label, stuck on the returned parcel at intake."""
    trace_code = clean_text(trace_code)
    if not _code128_or_none(trace_code):
        raise LabelError("not_code128", "A trace code must be printable ASCII.")
    label = _Label(cjk_font)
    label.lines(MARGIN, "RETURN", 72)
    label.lines(120, f"RMA {clean_text(rma_no)}", 40)
    label.rule(180)
    label.code128(220, trace_code, 260, max_module=4)
    label.lines(500, trace_code, 56, max_lines=2)
    label.rule(640)
    label.lines(670, f"ORDER {clean_text(order_no)}", 40, max_lines=2)
    rma_code = _code128_or_none(clean_text(rma_no))
    if rma_code is not None:
        try:
            label.code128(800, rma_code, 140, max_module=3)
        except LabelError:
            pass
    return label.zpl()


def _place_label(title: str, code: str, cjk_font: str) -> str:
    code = clean_text(code)
    if not _code128_or_none(code):
        raise LabelError("not_code128", f"A {title.lower()} code must be printable ASCII.")
    label = _Label(cjk_font)
    label.lines(MARGIN, title, 56)
    label.rule(110)
    height = next((h for h in (200, 160, 120, 96, 72) if len(fit_lines(code, h, max_lines=2)) == 1), 56)
    label.lines(150, code, height, max_lines=3)
    label.code128(560, code, 400, max_module=6)
    return label.zpl()


def station_zpl(station: str, *, cjk_font: str = DEFAULT_CJK_FONT) -> str:
    """A pack or dock station's sign: its code large and as Code 128."""
    return _place_label("STATION", station, cjk_font)


def location_zpl(code: str, *, cjk_font: str = DEFAULT_CJK_FONT) -> str:
    """A storage or staging location's label."""
    return _place_label("LOCATION", code, cjk_font)
