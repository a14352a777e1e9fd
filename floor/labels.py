"""Barcode images for screens and printed sheets (python-barcode, SVG)."""
from __future__ import annotations

import functools

import barcode
from barcode.writer import SVGWriter


@functools.lru_cache(maxsize=4096)
def barcode_svg(code: str) -> str:
    """EAN-13 for 13-digit codes with a valid check digit, Code 128 for everything else."""
    options = {"module_height": 12.0, "font_size": 8, "text_distance": 4, "quiet_zone": 4,
               "compress": False}
    if len(code) == 13 and code.isdigit() and ean13_check_digit(code[:12]) == code[12]:
        symbol = barcode.get("ean13", code[:12], writer=SVGWriter())
    else:
        symbol = barcode.get("code128", code, writer=SVGWriter())
    svg = symbol.render(options).decode("utf-8")
    # Drop the XML prolog so the SVG can be inlined in HTML.
    return svg[svg.find("<svg"):]


def ean13_check_digit(first12: str) -> str:
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(first12))
    return str((10 - total % 10) % 10)
