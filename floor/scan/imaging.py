"""Reading barcodes from a photo (the handheld's camera fallback): zxing-cpp and pyzbar behind
one call, their results fused so that the answer holds everything either library read, with
OpenCV pre-processing passes for the photos neither library reads as they are.

The pipeline (`decode_passes`):

1. the fast pass: zxing-cpp and zbar on the grayscale image as it is, fused (`fuse`: every
   distinct text and format either read). A photo whose long side is over `WORK_SIDE`
   (1600 px; a phone's is 4000) is first shrunk to it (`INTER_AREA`);
2. only when that reads nothing, the fallback passes below, one after the other, each again
   zxing-cpp and zbar on the prepared image; the first that reads anything answers;
3. for a shrunk photo, last, the full-size image: so floor always reads at least what either
   library reads alone on the image as sent. Below `WORK_SIDE` that holds by construction (the
   fast pass *is* both libraries on the image).

Passes kept, in order, each because the decode benchmark (`make bench`, bench/decode.py,
2026-11-22) showed that it adds reads. Of the 691 images of its two corpora (487 real samples
from ../shared/testdata, 204 generated degraded labels, the 12 MP photos aside) the fast pass
leaves 78 unread; of those, each pass alone reads "alone", "first" of them are read by no
earlier pass, "only" are lost if the pass is dropped; ms = its mean cost on an unread image
(the pass's OpenCV work plus both libraries):

| pass | what | alone | first | only | ms |
|---|---|---:|---:|---:|---:|
| denoise | Gaussian blur, sigma 1 (noise, JPEG artefacts) | 21 | 21 | 2 | 9 |
| deskew | turn by the structure tensor's angle when 5-45 degrees off an axis: 1-D codes at 45 degrees (zxing-cpp tries only quarter turns) | 6 | 6 | 0 | 6 |
| binarise | Otsu threshold after the Gaussian blur | 19 | 1 | 1 | 7 |
| sharpen | CLAHE, then an unsharp mask (sigma 2, amount 1.5): blur, low contrast | 6 | 6 | 2 | 17 |
| unsharp | the unsharp mask without CLAHE | 8 | 2 | 2 | 16 |
| upscale | twice the size (cubic) when the long side is under 800 px | 11 | 2 | 2 | 39 |
| restore | non-local-means de-noising (h 20) at most 1000 px, then deskewed: damaged labels | 16 | 3 | 3 | 117 |

deskew's 6 are read by restore too, at 20 times the cost; it stays for that. Measured and
dropped (nothing beyond the kept passes): median 3 and 5, a bilateral filter, CLAHE or a
percentile stretch alone, an adaptive threshold, halving the size, trying fixed turns of
22.5 and 45 degrees (deskew finds the angle instead), zxing-cpp's GlobalHistogram binariser.
In the fallback passes zbar's ITF reads are dropped unless zxing-cpp reads them too: on the
noisy generated labels zbar found 6-digit ITF codes in the noise.

With the passes floor reads 476 of the 487 real samples (either library alone: 469) and 182
of the 208 generated images (either alone: 148), at a median of 4-5 ms (an image the fast pass
reads costs both libraries: about 2.5 times zxing-cpp alone). An image that nothing reads
costs the whole chain: about 0.2 s for a label-sized image, several seconds for a 12 MP photo
(its full size is read last).

The decoding is CPU-bound (the libraries release the GIL): `run_off_loop` keeps it off a
gevent worker's event loop.

Untrusted input: an image's size is read from its header (`image_dimensions`) and an image of
more than `MAX_PIXELS` is refused before any pixel is decoded (a 100 KB PNG may declare
30000 x 30000 pixels: gigabytes once decoded). One engine failing (pyzbar raises `ValueError`
on a symbol whose orientation zbar reports as unknown, an OpenCV pass raising `cv2.error`)
costs only that engine's reads: the others' are kept and the failure is logged once per engine
and kind of error per process.
"""
from __future__ import annotations

import logging
import os
import struct
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, TypeVar

import cv2
import numpy as np

MAX_PIXELS = 40_000_000          # larger images are refused, not decoded (config IMAGE_MAX_PIXELS)
T = TypeVar("T")

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


log = logging.getLogger(__name__)


class ImageError(ValueError):
    def __init__(self, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code, self.message, self.extra = code, message, extra    # extra: fields of the answer

    @property
    def status(self) -> int:
        return {"image_too_large": 413, "decoder_busy": 503}.get(self.code, 400)


@dataclass(frozen=True)
class Read:
    text: str
    format: str
    symbology_id: str | None
    engine: str
    # Where in the image (x0, y0, x1, y1): tells two engines' reads of one symbol apart from
    # two symbols.
    box: tuple[int, int, int, int] | None = field(default=None, compare=False)


# --- the size an image declares, read from its header ----------------------------------------

SUPPORTED_FORMATS = ("JPEG", "PNG", "WebP", "GIF", "BMP", "TIFF")
# JPEG start-of-frame markers (SOF0-15 less DHT C4, JPG C8 and DAC CC): they carry the size.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _unreadable(what: str) -> ImageError:
    return ImageError("invalid_image", f"The image's {what} header is not readable.")


def _jpeg_size(data: bytes) -> tuple[int, int]:
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            raise _unreadable("JPEG")
        marker = data[i + 1]
        if marker == 0xFF:              # fill byte
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):   # stand-alone markers
            i += 2
            continue
        if marker in (0xD9, 0xDA):      # end of image / start of scan before any frame header
            break
        (length,) = struct.unpack(">H", data[i + 2:i + 4])
        if marker in _JPEG_SOF:
            if i + 9 > len(data):
                break
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            return width, height
        if length < 2:
            break
        i += 2 + length
    raise _unreadable("JPEG")


def _webp_size(data: bytes) -> tuple[int, int]:
    chunk, body = data[12:16], data[20:30]
    if chunk == b"VP8X" and len(body) >= 10:
        return (1 + int.from_bytes(body[4:7], "little"), 1 + int.from_bytes(body[7:10], "little"))
    if chunk == b"VP8L" and len(body) >= 5 and body[0] == 0x2F:
        bits = int.from_bytes(body[1:5], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8 " and len(body) >= 10 and body[3:6] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", body[6:10])
        return width & 0x3FFF, height & 0x3FFF
    raise _unreadable("WebP")


def _tiff_size(data: bytes) -> tuple[int, int]:
    """Of the first image (the one OpenCV decodes): tags 256 (width) and 257 (length), each
    once, one SHORT or LONG. libtiff keeps the first of a repeated tag and also reads other
    integer types (a LONG8 held elsewhere in the file): a header read differently from it could
    declare a small image and decode a huge one, so anything else is unreadable."""
    order = "<" if data[:2] == b"II" else ">"
    try:
        (ifd,) = struct.unpack(order + "I", data[4:8])
        (count,) = struct.unpack(order + "H", data[ifd:ifd + 2])
        size: dict[int, int] = {}
        for k in range(count):
            entry = data[ifd + 2 + 12 * k: ifd + 14 + 12 * k]
            tag, kind, values = struct.unpack(order + "HHI", entry[:8])
            if tag in (256, 257):
                if tag in size or kind not in (3, 4) or values != 1:
                    raise KeyError(tag)
                size[tag] = struct.unpack(order + ("H" if kind == 3 else "I"),
                                          entry[8:10] if kind == 3 else entry[8:12])[0]
        return size[256], size[257]
    except (struct.error, KeyError):
        raise _unreadable("TIFF") from None


def image_dimensions(data: bytes) -> tuple[str, int, int]:
    """(format, width, height) as the file's header declares them, without decoding a pixel.
    Only the formats of SUPPORTED_FORMATS are accepted (each told by its leading bytes, as
    OpenCV tells them); anything else is refused: its size could not be checked."""
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
            width, height = struct.unpack(">II", data[16:24])
            return "PNG", width, height
        if data[:3] == b"\xff\xd8\xff":
            return ("JPEG", *_jpeg_size(data))
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return ("WebP", *_webp_size(data))
        if data[:6] in (b"GIF87a", b"GIF89a"):
            # The logical screen: every frame is drawn on it.
            width, height = struct.unpack("<HH", data[6:10])
            return "GIF", width, height
        if data[:2] == b"BM":
            (header,) = struct.unpack("<I", data[14:18])
            if header == 12:             # OS/2 BITMAPCOREHEADER
                width, height = struct.unpack("<HH", data[18:22])
            else:                        # height < 0: stored top-down
                width, height = struct.unpack("<ii", data[18:26])
            return "BMP", abs(width), abs(height)
        if data[:4] in (b"II*\x00", b"MM\x00*"):
            return ("TIFF", *_tiff_size(data))
    except struct.error:
        raise ImageError("invalid_image", "The image's header is cut short.") from None
    raise ImageError("invalid_image", "The file is not a JPEG, PNG, WebP, GIF, BMP or TIFF image.",
                     formats=list(SUPPORTED_FORMATS))


def check_dimensions(data: bytes, max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """The declared (width, height); refused (image_too_large, 413) over `max_pixels`, before
    anything is decoded."""
    if not data:
        raise ImageError("invalid_image", "The image is empty.")
    _fmt, width, height = image_dimensions(data)
    if width <= 0 or height <= 0:
        raise ImageError("invalid_image", "The image declares no pixels.")
    if width * height > max_pixels:
        raise ImageError("image_too_large",
                         f"The image has {width} x {height} pixels; at most {max_pixels} are read.",
                         params={"max_pixels": max_pixels, "width": width, "height": height})
    return width, height


def load_gray(data: bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    check_dimensions(data, max_pixels)
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    except cv2.error:
        image = None
    if image is None or image.size == 0:
        raise ImageError("invalid_image", "The file is not an image OpenCV can read.")
    if image.shape[0] * image.shape[1] > max_pixels:   # a header that lied
        raise ImageError("image_too_large", f"The image has more than {max_pixels} pixels.",
                         params={"max_pixels": max_pixels})
    return image


# --- one engine failing costs only its own reads ------------------------------------------------

_FAILURES_LOGGED: set[tuple[str, str]] = set()
_FAILURES_LOCK = threading.Lock()


def _engine_failed(engine: str, exc: Exception) -> None:
    """Logged once per (engine, kind of error) per process: a flood of such photos must not
    flood the log."""
    key = (engine, type(exc).__name__)
    with _FAILURES_LOCK:
        if key in _FAILURES_LOGGED:
            return
        _FAILURES_LOGGED.add(key)
    log.warning("%s failed on an image (%s: %s); its reads are dropped, the other engines' kept "
                "(logged once per engine and kind of error)", engine, type(exc).__name__, exc,
                exc_info=exc)


def _guarded(engine: str, fn: Callable[[np.ndarray], T], image: np.ndarray, failed: T) -> T:
    try:
        return fn(image)
    except Exception as exc:  # noqa: BLE001 - any library failure is that engine's alone
        _engine_failed(engine, exc)
        return failed


_ENGINES: dict[str, Any] = {}


def engines() -> dict[str, Any]:
    """The decoding libraries, imported once: zxingcpp, and pyzbar's module or None without the
    system's libzbar. The first call must not be in a gevent thread-pool thread: pyzbar finds
    libzbar by running ldconfig, and gevent's subprocess works only on the hub's own thread."""
    if not _ENGINES:
        import zxingcpp

        try:
            from pyzbar import pyzbar
        except (ImportError, OSError):
            pyzbar = None
        _ENGINES.update(zxingcpp=zxingcpp, pyzbar=pyzbar)
    return _ENGINES


def read_zxing(image: np.ndarray) -> list[Read]:
    return _guarded("zxing-cpp", _read_zxing, image, [])


def read_zbar(image: np.ndarray) -> list[Read]:
    """pyzbar needs the system's libzbar; without it this engine reads nothing."""
    return _guarded("zbar", _read_zbar, image, [])


def _read_zxing(image: np.ndarray) -> list[Read]:
    zxingcpp = engines()["zxingcpp"]
    out = []
    for result in zxingcpp.read_barcodes(image, text_mode=zxingcpp.TextMode.Plain):
        name = result.format.name
        p = result.position
        xs = (p.top_left.x, p.top_right.x, p.bottom_left.x, p.bottom_right.x)
        ys = (p.top_left.y, p.top_right.y, p.bottom_left.y, p.bottom_right.y)
        out.append(Read(result.text, _ZXING_FORMATS.get(name, name),
                        result.symbology_identifier or None, "zxing-cpp",
                        (min(xs), min(ys), max(xs), max(ys))))
    return out


def _read_zbar(image: np.ndarray) -> list[Read]:
    pyzbar = engines()["pyzbar"]
    if pyzbar is None:
        return []
    out = []
    for result in pyzbar.decode(image):
        text = result.data.decode("utf-8", "replace")
        left, top, width, height = result.rect
        out.append(Read(text, _ZBAR_FORMATS.get(result.type, result.type), None, "zbar",
                        (left, top, left + width, top + height)))
    return out


def _same_symbol(a: Read, b: Read) -> bool:
    """Two engines' reads of one symbol: same format, and the centre of one inside the other."""
    if a.format != b.format or a.box is None or b.box is None:
        return False
    cx, cy = (b.box[0] + b.box[2]) / 2, (b.box[1] + b.box[3]) / 2
    return a.box[0] - 2 <= cx <= a.box[2] + 2 and a.box[1] - 2 <= cy <= a.box[3] + 2


def fuse(*engine_reads: list[Read]) -> list[Read]:
    """Every symbol any engine read, once. Engines come in order of trust (zxing-cpp first: it
    reports AIM identifiers and decodes Shift-JIS and ECI text that zbar garbles): a later
    engine's read of a symbol an earlier one already read, at the same place, is dropped."""
    kept: list[Read] = []
    for index, reads in enumerate(engine_reads):
        earlier = list(kept)
        for read in reads:
            if any((k.text, k.format) == (read.text, read.format) for k in kept):
                continue
            if index > 0 and any(_same_symbol(k, read) or _same_symbol(read, k) for k in earlier):
                continue
            kept.append(read)
    return kept


FALLBACK_BUDGET_S = 1.5         # the fallback passes stop trying after this long
WORK_SIDE = 1600                 # larger photos are first read at this long side
UPSCALE_BELOW = 800              # the upscale pass: only images whose long side is under this
RESTORE_SIDE = 1000              # the restore pass works at most at this long side


def _shrink(gray: np.ndarray, side: int) -> np.ndarray:
    if max(gray.shape) <= side:
        return gray
    f = side / max(gray.shape)
    return cv2.resize(gray, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)


def _rotate(gray: np.ndarray, degrees: float) -> np.ndarray:
    """Turned about its centre on a canvas large enough to keep the corners."""
    h, w = gray.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(h * sin + w * cos), int(h * cos + w * sin)
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    return cv2.warpAffine(gray, m, (nw, nh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def skew_degrees(gray: np.ndarray) -> float:
    """The turn (degrees, -45..45, counter-clockwise positive as in OpenCV) that brings the
    dominant edges back onto the nearest axis: from the angle of the gradients' structure
    tensor, i.e. a linear barcode's bars. 0 when no direction dominates (a matrix code, noise)."""
    small = _shrink(gray, 640)
    small = cv2.GaussianBlur(small, (0, 0), 1.0).astype(np.float32)
    gx = cv2.Sobel(small, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(small, cv2.CV_32F, 0, 1, ksize=3)
    jxx, jyy, jxy = float((gx * gx).sum()), float((gy * gy).sum()), float((gx * gy).sum())
    if jxx + jyy == 0 or np.hypot(jxx - jyy, 2 * jxy) / (jxx + jyy) < 0.2:
        return 0.0
    angle = 0.5 * np.degrees(np.arctan2(2 * jxy, jxx - jyy))   # gradient direction, -90..90
    return float((angle + 45) % 90 - 45)


def _denoise(gray: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(gray, (0, 0), 1.0)


def _deskew(gray: np.ndarray) -> np.ndarray | None:
    angle = skew_degrees(gray)
    return _rotate(gray, angle) if abs(angle) >= 5 else None


def _binarise(gray: np.ndarray) -> np.ndarray:
    return cv2.threshold(_denoise(gray), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)[1]


def _sharpen(gray: np.ndarray) -> np.ndarray:
    equalised = cv2.createCLAHE(clipLimit=3.0, tileGridSize=(8, 8)).apply(gray)
    return cv2.addWeighted(equalised, 2.5, cv2.GaussianBlur(equalised, (0, 0), 2.0), -1.5, 0)


def _unsharp(gray: np.ndarray) -> np.ndarray:
    return cv2.addWeighted(gray, 2.5, cv2.GaussianBlur(gray, (0, 0), 2.0), -1.5, 0)


def _upscale(gray: np.ndarray) -> np.ndarray | None:
    if max(gray.shape) >= UPSCALE_BELOW:
        return None
    return cv2.resize(gray, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)


def _restore(gray: np.ndarray) -> np.ndarray:
    clean = cv2.fastNlMeansDenoising(_shrink(gray, RESTORE_SIDE), None, 20, 7, 21)
    return _deskew(clean) if abs(skew_degrees(clean)) >= 5 else clean


# The fallback passes, in the order tried (see the module docstring for what each adds).
# A pass answering None does not apply to that image.
PASSES: dict[str, Callable[[np.ndarray], np.ndarray | None]] = {
    "denoise": _denoise,
    "deskew": _deskew,
    "binarise": _binarise,
    "sharpen": _sharpen,
    "unsharp": _unsharp,
    "upscale": _upscale,
    "restore": _restore,
}


def _both(gray: np.ndarray) -> list[Read]:
    return fuse(read_zxing(gray), read_zbar(gray))


def _trusted(reads: list[Read]) -> list[Read]:
    """A fallback pass's reads, less zbar's interleaved 2 of 5 that zxing-cpp did not read too:
    ITF has no check digit, and on a noisy image zbar finds short ITF codes in the noise."""
    return [r for r in reads if not (r.engine == "zbar" and r.format == "ITF")]


def decode_passes(gray: np.ndarray, passes: Iterable[str] | None = None) -> tuple[list[Read], str | None]:
    """The reads in a grayscale image and the pass that found them: "plain" (the fast pass),
    one of PASSES, "full size" (a large photo read at its own size), or None (nothing read)."""
    work = _shrink(gray, WORK_SIDE)
    reads = _both(work)
    if reads:
        return reads, "plain"
    started = time.perf_counter()
    for name in PASSES if passes is None else passes:
        if time.perf_counter() - started > FALLBACK_BUDGET_S:
            break   # a photo of nothing must not hold a core for seconds
        prepared = _guarded(f"OpenCV ({name})", PASSES[name], work, None)
        if prepared is not None:
            reads = _trusted(_both(prepared))
            if reads:
                return reads, name
    if work is not gray:
        reads = _both(gray)
        if reads:
            return reads, "full size"
    return [], None


def decode_array(gray: np.ndarray) -> list[Read]:
    return decode_passes(gray)[0]


def run_off_loop(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` where it blocks no event loop: under a gevent worker (threading
    monkey-patched) in a real OS thread of gevent's hub thread pool, the calling greenlet
    waiting and every other one running meanwhile (zxing-cpp, zbar and OpenCV release the GIL);
    otherwise (gthread: a thread per request already) right here."""
    monkey = sys.modules.get("gevent.monkey")   # never imported: nothing is patched
    if monkey is None or not monkey.is_module_patched("threading"):
        return fn(*args)
    import gevent

    engines()   # imported here, on the hub's thread (see engines())
    return gevent.get_hub().threadpool.apply(fn, args)


# At most this many photos (decoded for barcodes, or return photos re-encoded) are worked on at
# once; more wait briefly, then get "busy". The work is CPU-bound: without a limit a burst of
# uploads would starve the scan path.
DECODE_SLOTS = threading.BoundedSemaphore(max(1, (os.cpu_count() or 2)))
DECODE_WAIT_S = 5.0


@contextmanager
def image_slot() -> Iterator[None]:
    """One of DECODE_SLOTS, taken where the request runs (thread or greenlet)."""
    if not DECODE_SLOTS.acquire(timeout=DECODE_WAIT_S):
        raise ImageError("decoder_busy", "Too many photos are being decoded; try again shortly.")
    try:
        yield
    finally:
        DECODE_SLOTS.release()


def decode_image(data: bytes, max_pixels: int = MAX_PIXELS) -> list[Read]:
    return decode_array(load_gray(data, max_pixels))


def decode_upload(data: bytes, max_pixels: int = MAX_PIXELS) -> list[Read]:
    """The service's entry: the size checked from the header first (no slot is taken for an
    image refused anyway), then a decode slot, the work itself off any event loop."""
    check_dimensions(data, max_pixels)
    with image_slot():
        return run_off_loop(decode_image, data, max_pixels)
