"""Barcode images for screens and printed sheets (python-barcode, SVG)."""
from __future__ import annotations

import functools
import re

import barcode
from barcode.writer import SVGWriter


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


@functools.lru_cache(maxsize=4096)
def barcode_svg(code: str) -> str:
    """EAN-13 for 13-digit codes with a valid check digit, Code 128 for everything else.
    Bars of 0.3 mm (Code 128) read reliably off office printers."""
    options = {"module_height": 12.0, "module_width": 0.3, "font_size": 8, "text_distance": 4,
               "quiet_zone": 4, "compress": False}
    if len(code) == 13 and code.isdigit() and ean13_check_digit(code[:12]) == code[12]:
        symbol = barcode.get("ean13", code[:12], writer=SVGWriter())
    else:
        symbol = barcode.get("code128", code, writer=SVGWriter())
    svg = symbol.render(options).decode("utf-8")
    # Drop the XML prolog so the SVG can be inlined in HTML.
    return _scalable(svg[svg.find("<svg"):])


def ean13_check_digit(first12: str) -> str:
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(first12))
    return str((10 - total % 10) % 10)
