"""The printable demo sheet: every barcode on it, rendered by a real browser, decodes back to
the code the packer must scan (zxing-cpp reading a 3x screenshot, about 290 dpi)."""
from __future__ import annotations

import re

import cv2
import numpy as np
import zxingcpp


def test_every_barcode_on_the_sheet_reads_back(browser, live_server):
    context = browser.new_context(viewport={"width": 900, "height": 1400}, device_scale_factor=3,
                                  base_url=live_server.url)
    page = context.new_page()
    page.goto("/login")
    page.fill("input[name=username]", "super1")
    page.fill("input[name=password]", "floor-demo")
    page.click("button[type=submit]")
    page.goto("/sheet?limit=2")
    html = page.content()
    expected = set(re.findall(r">((?:SF|TB|DY)\d{10,16}|690\d{10})<", html))
    assert len(expected) >= 6, expected
    png = page.screenshot(full_page=True)
    context.close()
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
    read = {r.text for r in zxingcpp.read_barcodes(image)}
    assert expected <= read, f"not readable: {sorted(expected - read)}"
