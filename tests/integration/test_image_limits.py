"""Photos from outside never fail the service: POST /api/v1/decode keeps the reads of the
engines that did not fail, and an image declaring more pixels than IMAGE_MAX_PIXELS is refused
from its header, before any decoding, on /decode and on return photos alike; return photos
share the decoder's slots."""
from __future__ import annotations

import io
import logging
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from floor.scan import imaging

TESTDATA = Path(__file__).resolve().parents[3] / "shared" / "testdata"
PYZBAR = TESTDATA / "pyzbar" / "pyzbar" / "tests"


def _image(path: Path) -> bytes:
    if not path.exists():
        pytest.skip(f"shared test data not found at {path} (the repository is cloned without it)")
    return path.read_bytes()


def _decode(api, data: bytes):  # type: ignore[no-untyped-def]
    return api.client.post("/api/v1/decode", data={"image": (io.BytesIO(data), "photo.png")},
                           headers={"Authorization": f"Bearer {api.tokens['packer']}"},
                           content_type="multipart/form-data")


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_declaring(width: int, height: int, rows: int = 3000) -> bytes:
    """A well-formed PNG header for a `width` x `height` grayscale image, with the first `rows`
    rows of (blank) pixel data: about 100 KB that a decoder would give 900 MB for."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = zlib.compress(b"\0" * ((width + 1) * rows), 9)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", data)
            + _chunk(b"IEND", b""))


@pytest.fixture
def decoder_spy(monkeypatch):  # type: ignore[no-untyped-def]
    """cv2.imdecode, recorded: every decoder of an upload (/decode, return photos) goes through
    it. A call answers None (unreadable) rather than give a crafted image its gigabytes."""
    calls: list[int] = []

    def spy(buf, flags):  # type: ignore[no-untyped-def]
        calls.append(len(buf))
        return None

    monkeypatch.setattr(cv2, "imdecode", spy)
    return calls


# --- one engine failing ---------------------------------------------------------------------

def test_zbar_failing_on_an_unknown_orientation_keeps_zxing_reads(api, monkeypatch, caplog):
    """libzbar reports an orientation it cannot tell as -1; pyzbar reads it as an unsigned int
    (4294967295) and `ZBarOrientation(...)` raises ValueError (pyzbar issue 139): the answer is
    zxing-cpp's read, not a 500, and the failure is logged once, not once per photo."""
    pyzbar = imaging.engines()["pyzbar"]
    if pyzbar is None:
        pytest.skip("libzbar is not installed")
    data = _image(PYZBAR / "qrcode.png")
    monkeypatch.setattr(pyzbar, "zbar_symbol_get_orientation", lambda symbol: 0xFFFFFFFF)
    monkeypatch.setattr(imaging, "_FAILURES_LOGGED", set(), raising=False)
    with pytest.raises(ValueError):     # the condition is real: pyzbar itself raises
        pyzbar.decode(cv2.imread(str(PYZBAR / "qrcode.png"), cv2.IMREAD_GRAYSCALE))
    with caplog.at_level(logging.WARNING, logger="floor.scan.imaging"):
        for _ in range(3):
            response = _decode(api, data)
            assert response.status_code == 200, response.get_data(as_text=True)
            codes = response.get_json()["codes"]
            assert [(c["text"], c["format"], c["engine"]) for c in codes] == [
                ("Thalassiodracon", "QRCode", "zxing-cpp")]
    logged = [r for r in caplog.records if "zbar failed" in r.getMessage()]
    assert len(logged) == 1 and "ValueError" in logged[0].getMessage()


def test_an_opencv_pass_failing_is_skipped(api, monkeypatch):
    """A fallback pass raising cv2.error (a corner case of OpenCV) is skipped; the later passes
    and the full-size read still run."""
    def broken(gray):  # type: ignore[no-untyped-def]
        raise cv2.error("simulated OpenCV failure")

    monkeypatch.setattr(imaging, "PASSES", {"broken": broken, **imaging.PASSES})
    response = _decode(api, _image(PYZBAR / "empty.png"))
    assert response.status_code == 200 and response.get_json()["codes"] == []


# --- sizes read from the header --------------------------------------------------------------

def test_decode_refuses_a_small_png_declaring_30000_square_before_decoding(api, app, decoder_spy):
    data = png_declaring(30000, 30000)
    assert len(data) < 150_000
    response = _decode(api, data)
    assert response.status_code == 413, response.get_json()
    body = response.get_json()
    assert body["code"] == "image_too_large"
    assert body["params"] == {"max_pixels": app.config["IMAGE_MAX_PIXELS"],
                              "width": 30000, "height": 30000}
    assert decoder_spy == []


def test_a_format_whose_size_cannot_be_checked_is_refused(api, decoder_spy):
    """PGM (which OpenCV decodes) is not a photo format: refused, as its size goes unchecked."""
    response = _decode(api, b"P5\n30000 30000\n255\n" + b"\0" * 1000)
    assert (response.status_code, response.get_json()["code"]) == (400, "invalid_image")
    assert response.get_json()["formats"] == list(imaging.SUPPORTED_FORMATS)
    assert decoder_spy == []


def tiff_declaring(width_entries: list[tuple[int, int]], height: int = 10) -> bytes:
    """An uncompressed 8-bit grayscale TIFF whose first IFD holds the ImageWidth (256) entries
    given as (TIFF type, value), in that order; a LONG8 (16) value is held after the IFD, as a
    classic TIFF holds any value longer than 4 bytes. Pixel data for the widest is appended."""
    entries = [(256, kind, value) for kind, value in width_entries] + [
        (257, 3, height), (258, 3, 8), (259, 3, 1), (262, 3, 1), (273, 4, None), (277, 3, 1),
        (278, 3, height), (279, 4, height * max(v for _, v in width_entries))]
    after_ifd = 8 + 2 + 12 * len(entries) + 4
    long8_at, pixels_at = after_ifd, after_ifd + 8
    out = b"II*\x00" + struct.pack("<IH", 8, len(entries))
    extra = b""
    for tag, kind, value in entries:
        if kind == 16:
            out += struct.pack("<HHII", tag, kind, 1, long8_at)
            extra = struct.pack("<Q", value)
        elif kind == 3:
            out += struct.pack("<HHIHH", tag, kind, 1, value, 0)
        else:
            out += struct.pack("<HHII", tag, kind, 1, pixels_at if value is None else value)
    width = max(v for _, v in width_entries)
    return out + struct.pack("<I", 0) + extra.ljust(8, b"\0") + bytes(width * height)


@pytest.mark.parametrize("widths", [
    [(4, 3000), (4, 10)],      # libtiff keeps the first of a repeated tag: 3000 wide
    [(16, 3000)],              # a LONG8 width libtiff reads from after the IFD
], ids=["repeated-width-tag", "long8-width"])
def test_a_tiff_header_read_otherwise_by_libtiff_is_refused_before_decoding(api, widths):
    """The size check must read what the decoder will: OpenCV decodes these 3000 pixels wide
    (so one declaring 30000 x 30000 would cost 900 MB), while a reader taking the last tag or
    any 4 bytes saw 10 x 10 (or 122 x 10) and let them through."""
    data = tiff_declaring(widths)
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert decoded is not None and decoded.shape == (10, 3000)     # what OpenCV makes of it
    calls: list[int] = []
    real = cv2.imdecode

    def spy(buf, flags):  # type: ignore[no-untyped-def]
        calls.append(len(buf))
        return real(buf, flags)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cv2, "imdecode", spy)
        response = _decode(api, data)
    assert (response.status_code, response.get_json()["code"]) == (400, "invalid_image")
    assert calls == []
    # A plain TIFF still has its size read and is decoded.
    plain = _decode(api, tiff_declaring([(4, 30)]))
    assert plain.status_code == 200, plain.get_json()


def test_the_limit_is_configurable(api, app):
    image = np.full((300, 400), 255, np.uint8)
    ok, png = cv2.imencode(".png", image)
    assert ok
    app.config["IMAGE_MAX_PIXELS"] = 100_000
    refused = _decode(api, png.tobytes())
    assert refused.status_code == 413
    assert refused.get_json()["params"]["max_pixels"] == 100_000
    app.config["IMAGE_MAX_PIXELS"] = 120_000
    assert _decode(api, png.tobytes()).status_code == 200


# --- return photos ----------------------------------------------------------------------------

@pytest.fixture
def photo_url(api, waved):  # type: ignore[no-untyped-def]
    """A return of a packed order with one scan, and the URL its photo is posted to."""
    waved("TB001", lines=[{"sku": "SERUM", "name": "精华液", "qty": 1, "role": "main",
                           "barcodes": ["6901234567892"]}])
    for code in ("SF1000000000001", "6901234567892"):
        assert api.scan(code)["ok"]
    ret = api.post("/api/v1/returns", {"order_no": "TB001", "reason": "damaged"}, role="qc")
    assert ret.status_code == 201, ret.get_json()
    rma = ret.get_json()["rma_no"]
    scan = api.post(f"/api/v1/returns/{rma}/scans",
                    {"scan_id": "p-1", "code": "6901234567892", "condition": "resellable"},
                    role="qc")
    assert scan.status_code == 200, scan.get_json()
    return f"/api/v1/returns/{rma}/scans/p-1/photo"


def _post_photo(api, url: str, data: bytes):  # type: ignore[no-untyped-def]
    return api.client.post(url, data={"photo": (io.BytesIO(data), "p.png")},
                           headers={"Authorization": f"Bearer {api.tokens['qc']}"},
                           content_type="multipart/form-data")


def test_a_return_photo_declaring_30000_square_is_refused_before_decoding(api, app, photo_url,
                                                                           decoder_spy):
    response = _post_photo(api, photo_url, png_declaring(30000, 30000))
    assert response.status_code == 413, response.get_json()
    assert response.get_json()["code"] == "image_too_large"
    assert response.get_json()["params"]["max_pixels"] == app.config["IMAGE_MAX_PIXELS"]
    assert decoder_spy == []


def test_return_photos_share_the_decoders_slots(api, photo_url, monkeypatch):
    ok, png = cv2.imencode(".png", np.zeros((40, 60, 3), np.uint8))
    assert ok
    monkeypatch.setattr(imaging, "DECODE_WAIT_S", 0.05)
    taken = 0
    while imaging.DECODE_SLOTS.acquire(blocking=False):     # every slot busy decoding
        taken += 1
    try:
        busy = _post_photo(api, photo_url, png.tobytes())
        assert (busy.status_code, busy.get_json()["code"]) == (503, "decoder_busy")
    finally:
        for _ in range(taken):
            imaging.DECODE_SLOTS.release()
    assert _post_photo(api, photo_url, png.tobytes()).status_code == 200
