"""Reading barcodes from a photo (the handheld's camera fallback): zxing-cpp and pyzbar behind
one call, their results fused so that the answer holds everything either library read.

Adapters only: the libraries do the work, `fuse` decides what is answered.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

MAX_PIXELS = 40_000_000          # larger images are refused, not decoded for seconds

# Contract names of the formats, from each library's own.
_ZXING_FORMATS = {"EAN13": "EAN-13", "EAN8": "EAN-8", "UPCA": "UPC-A", "UPCE": "UPC-E",
                  "Code128": "Code128", "Code39": "Code39", "Code93": "Code93", "ITF": "ITF",
                  "QRCode": "QRCode", "MicroQRCode": "MicroQRCode", "DataMatrix": "DataMatrix",
                  "PDF417": "PDF417", "Aztec": "Aztec", "DataBar": "DataBar",
                  "DataBarExpanded": "DataBarExpanded", "DataBarExp": "DataBarExpanded",
                  "DataBarOmni": "DataBar", "DataBarStk": "DataBar", "DataBarStkOmni": "DataBar",
                  "DataBarLtd": "DataBarLimited", "DataBarExpStk": "DataBarExpanded",
                  "Codabar": "Codabar"}
_ZBAR_FORMATS = {"EAN13": "EAN-13", "EAN8": "EAN-8", "UPCA": "UPC-A", "UPCE": "UPC-E",
                 "CODE128": "Code128", "CODE39": "Code39", "CODE93": "Code93", "I25": "ITF",
                 "QRCODE": "QRCode", "PDF417": "PDF417", "DATABAR": "DataBar",
                 "DATABAR_EXP": "DataBarExpanded", "CODABAR": "Codabar"}


class ImageError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class Read:
    text: str
    format: str
    symbology_id: str | None
    engine: str


def load_gray(data: bytes) -> np.ndarray:
    if not data:
        raise ImageError("invalid_image", "The image is empty.")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise ImageError("invalid_image", "The file is not an image OpenCV can read.")
    if image.shape[0] * image.shape[1] > MAX_PIXELS:
        raise ImageError("image_too_large", "The image has more than 40 million pixels.")
    return image


def read_zxing(image: np.ndarray) -> list[Read]:
    import zxingcpp

    out = []
    for result in zxingcpp.read_barcodes(image, text_mode=zxingcpp.TextMode.Plain):
        name = result.format.name
        out.append(Read(result.text, _ZXING_FORMATS.get(name, name),
                        result.symbology_identifier or None, "zxing-cpp"))
    return out


def read_zbar(image: np.ndarray) -> list[Read]:
    """pyzbar needs the system's libzbar; without it this engine reads nothing."""
    try:
        from pyzbar import pyzbar
    except (ImportError, OSError):
        return []
    out = []
    for result in pyzbar.decode(image):
        text = result.data.decode("utf-8", "replace")
        out.append(Read(text, _ZBAR_FORMATS.get(result.type, result.type), None, "zbar"))
    return out


def fuse(*engine_reads: list[Read]) -> list[Read]:
    """Every distinct (text, format) any engine read, the first engine's version kept (zxing-cpp
    first: it reports AIM symbology identifiers)."""
    seen: dict[tuple[str, str], Read] = {}
    for reads in engine_reads:
        for read in reads:
            seen.setdefault((read.text, read.format), read)
    return list(seen.values())


def decode_array(gray: np.ndarray) -> list[Read]:
    return fuse(read_zxing(gray), read_zbar(gray))


def decode_image(data: bytes) -> list[Read]:
    return decode_array(load_gray(data))
