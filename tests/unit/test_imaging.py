"""floor's photo decoding (floor/scan/imaging.py): the fallback passes read degraded labels that
zxing-cpp and zbar miss as they are, floor reads at least what either library reads alone, and
the decoding leaves a gevent event loop free. Cases picked from bench/decode.py's findings."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from floor.scan import imaging

zxingcpp = pytest.importorskip("zxingcpp")

TESTDATA = Path(__file__).resolve().parents[3] / "shared" / "testdata"
ZXING = TESTDATA / "zxing-cpp" / "test" / "samples"
PYZBAR = TESTDATA / "pyzbar" / "pyzbar" / "tests"


def label(fmt: str, text: str) -> np.ndarray:
    """A printed label: the symbol with a margin, ink not quite black, paper not quite white."""
    if fmt == "Code128":
        import barcode
        from barcode.writer import ImageWriter

        image = barcode.get("code128", text, writer=ImageWriter()).render(
            {"module_width": 0.25, "module_height": 9.0, "quiet_zone": 4.0, "font_size": 8,
             "text_distance": 3.0, "dpi": 240})
        symbol = np.asarray(image.convert("L"))
    else:
        barcode_ = zxingcpp.create_barcode(text, getattr(zxingcpp.BarcodeFormat, fmt))
        symbol = np.asarray(zxingcpp.write_barcode_to_image(barcode_, scale=4))
    canvas = cv2.copyMakeBorder(symbol, 24, 24, 24, 24, cv2.BORDER_CONSTANT, value=255)
    return (canvas.astype(np.float32) * 0.8 + 25).astype(np.uint8)


def noisy(image: np.ndarray, sigma: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(image + rng.normal(0, sigma, image.shape), 0, 255).astype(np.uint8)


def texts(reads: list[imaging.Read]) -> set[str]:
    return {r.text for r in reads}


def raw_union(gray: np.ndarray) -> set[tuple[str, str]]:
    return {(r.text, r.format) for r in imaging.read_zxing(gray) + imaging.read_zbar(gray)}


CODE128, QR, DM = "PKG-004211-JX", "https://floor.example/w/JX000123456", "SKU 004211 LOT L0042"


@pytest.mark.parametrize("case, image, text, by", [
    ("Code128, Gaussian noise sigma 60", lambda: noisy(label("Code128", CODE128), 60), CODE128, "denoise"),
    ("QR Code, Gaussian noise sigma 60", lambda: noisy(label("QRCode", QR), 60), QR, "denoise"),
    ("Code128 turned 45 degrees", lambda: imaging._rotate(label("Code128", CODE128), 45), CODE128, "deskew"),
    ("DataMatrix, Gaussian blur sigma 2", lambda: cv2.GaussianBlur(label("DataMatrix", DM), (0, 0), 2.0),
     DM, "sharpen"),
], ids=lambda v: v if isinstance(v, str) and " " in v else "")
def test_a_pass_reads_what_neither_library_reads_as_it_is(case, image, text, by):
    gray = image()
    assert text not in {t for t, _ in raw_union(gray)}, f"{case}: the libraries read it unaided now"
    reads, answered_by = imaging.decode_passes(gray)
    assert texts(reads) == {text} and answered_by == by


def test_a_clean_label_is_read_by_the_fast_pass():
    reads, by = imaging.decode_passes(label("QRCode", QR))
    assert texts(reads) == {QR} and by == "plain"


def test_nothing_to_read_is_an_empty_answer():
    assert imaging.decode_passes(np.full((120, 200), 200, np.uint8)) == ([], None)


def test_fallback_passes_drop_zbar_itf_read_out_of_noise():
    zbar_itf = imaging.Read("620837", "ITF", None, "zbar")
    zxing_itf = imaging.Read("00012345678905", "ITF", "]I0", "zxing-cpp")
    assert imaging._trusted([zbar_itf, zxing_itf]) == [zxing_itf]


def test_a_large_photo_is_read_shrunk_and_its_full_size_last():
    # A tiny DataMatrix (one pixel a module) on a 3200 px wide photo: gone when the photo is
    # shrunk to 1600 px, so only the full-size read at the end finds it.
    symbol = np.asarray(zxingcpp.write_barcode_to_image(
        zxingcpp.create_barcode(DM, zxingcpp.BarcodeFormat.DataMatrix), scale=1))
    photo = np.full((1800, 3200), 230, np.uint8)
    photo[900:900 + symbol.shape[0], 2000:2000 + symbol.shape[1]] = symbol
    reads, by = imaging.decode_passes(photo)
    assert texts(reads) == {DM} and by == "full size"
    big_label = cv2.resize(label("QRCode", QR), None, fx=8, fy=8, interpolation=cv2.INTER_NEAREST)
    photo = np.full((2000, 3000), 230, np.uint8)
    photo[100:100 + big_label.shape[0], 200:200 + big_label.shape[1]] = big_label
    assert imaging.decode_passes(photo) == (imaging.decode_array(photo), "plain")


def test_skew_is_measured_from_the_bars():
    bars = label("Code128", CODE128)
    assert abs(imaging.skew_degrees(bars)) < 1
    # the turn that stands the bars up again (OpenCV's sense: counter-clockwise positive)
    assert imaging.skew_degrees(imaging._rotate(bars, 30)) == pytest.approx(-30, abs=2)
    assert imaging.skew_degrees(imaging._rotate(bars, -20)) == pytest.approx(20, abs=2)
    assert imaging.skew_degrees(imaging._rotate(bars, 80)) == pytest.approx(-(80 - 90), abs=2)
    assert imaging.skew_degrees(np.full((50, 50), 128, np.uint8)) == 0.0


@pytest.mark.parametrize("sample", [
    "ean13-2/02.webp", "ean13-1/34.webp", "code128-1/1.png", "qrcode-2/16.webp", "itf-1/1-slanted.png",
    "datamatrix-1/gs1-figure-4.15.1-2-32x32.png", "rss14-2/22.webp", "rssexpanded-1/1.webp",
    "pyzbar:code128.png", "pyzbar:qrcode_rotated.png",
])
def test_floor_reads_at_least_the_union_of_both_libraries(sample):
    path = PYZBAR / sample.split(":", 1)[1] if sample.startswith("pyzbar:") else ZXING / sample
    if not path.exists():
        pytest.skip(f"shared test data not found at {path} (the repository is cloned without it)")
    gray = imaging.load_gray(path.read_bytes())
    fused = {(r.text, r.format) for r in imaging.decode_array(gray)}
    assert raw_union(gray) <= fused


# --- off the event loop ------------------------------------------------------------------------

def test_run_off_loop_calls_directly_without_gevent_patching():
    seen = []
    assert imaging.run_off_loop(lambda a, b: seen.append(threading.get_ident()) or a + b, 2, 3) == 5
    assert seen == [threading.get_ident()]
    with pytest.raises(imaging.ImageError):
        imaging.run_off_loop(imaging.decode_image, b"")


GEVENT_CHECK = textwrap.dedent("""
    import sys
    from gevent import monkey
    monkey.patch_all()
    import gevent
    from floor.scan import imaging

    real_ident = monkey.get_original("threading", "get_ident")
    real_sleep = monkey.get_original("time", "sleep")
    ticks = []

    def ticker():
        while True:
            ticks.append(1)
            gevent.sleep(0.01)

    def blocking(x):
        real_sleep(0.3)          # stands for 300 ms of decoding that holds its thread
        return x * 2, real_ident()

    main_ident = real_ident()
    beat = gevent.spawn(ticker)
    gevent.sleep(0)
    value, ident = imaging.run_off_loop(blocking, 21)
    beat.kill()
    try:
        imaging.run_off_loop(imaging.decode_image, b"not an image")
        raised = None
    except imaging.ImageError as exc:
        raised = exc.code
    # a real decode in a fresh process: the libraries' first import happens on the way
    reads = imaging.run_off_loop(imaging.decode_image, open(sys.argv[1], "rb").read())
    print(value, ident != main_ident, len(ticks) >= 10, raised, reads[0].text)
""")


def test_run_off_loop_uses_a_real_thread_under_gevent(tmp_path):
    pytest.importorskip("gevent")
    photo = tmp_path / "label.png"
    photo.write_bytes(cv2.imencode(".png", label("QRCode", "OFF-LOOP-1"))[1].tobytes())
    done = subprocess.run([sys.executable, "-c", GEVENT_CHECK, str(photo)], capture_output=True,
                          text=True, timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr[-2000:]
    # the answer; another OS thread; the event loop kept running; errors raised in the caller;
    # a photo decoded
    assert done.stdout.split() == ["42", "True", "True", "invalid_image", "OFF-LOOP-1"]


def test_fuse_keeps_one_reading_per_symbol_and_every_symbol():
    from floor.scan.imaging import Read, fuse

    zx = [Read("精华液", "QRCode", "]Q1", "zxing-cpp", (10, 10, 110, 110))]
    zbar_same_symbol_garbled = [Read("ç²¾å\x8d", "QRCode", None, "zbar", (12, 11, 108, 109))]
    zbar_other_symbol = [Read("SF1000000000001", "Code128", None, "zbar", (200, 10, 400, 60))]
    zbar_other_qr = [Read("ELSEWHERE", "QRCode", None, "zbar", (300, 300, 380, 380))]
    fused = fuse(zx, zbar_same_symbol_garbled + zbar_other_symbol + zbar_other_qr)
    assert [(r.text, r.engine) for r in fused] == [
        ("精华液", "zxing-cpp"), ("SF1000000000001", "zbar"), ("ELSEWHERE", "zbar")]
    # Two equal texts from one engine at two places are one answer (the same code twice).
    twice = [Read("A", "QRCode", None, "zbar", (0, 0, 5, 5)), Read("A", "QRCode", None, "zbar", (50, 50, 55, 55))]
    assert len(fuse([], twice)) == 1


# --- the size an image declares, from its header ----------------------------------------------

def _encoded(fmt: str, image: np.ndarray) -> bytes:
    """`image` saved as `fmt` by OpenCV, or by Pillow for GIF (OpenCV cannot write it)."""
    if fmt == "gif":
        import io

        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(image).save(buf, "GIF")
        return buf.getvalue()
    params = {"webp-lossy": [cv2.IMWRITE_WEBP_QUALITY, 60],
              "webp-lossless": [cv2.IMWRITE_WEBP_QUALITY, 101],
              "jpeg-progressive": [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]}.get(fmt, [])
    ext = {"webp-lossy": ".webp", "webp-lossless": ".webp", "jpeg-progressive": ".jpg"}.get(fmt, "." + fmt)
    ok, data = cv2.imencode(ext, image, params)
    assert ok
    return data.tobytes()


FORMATS = ["png", "jpg", "jpeg-progressive", "webp-lossy", "webp-lossless", "gif", "bmp", "tiff"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_header_size_is_the_decoded_size(fmt):
    image = (np.random.default_rng(3).random((37, 53)) * 255).astype(np.uint8)
    data = _encoded(fmt, image)
    _name, width, height = imaging.image_dimensions(data)
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert (width, height) == (decoded.shape[1], decoded.shape[0]) == (53, 37)


def _declaring(fmt: str, data: bytes, width: int, height: int) -> bytes:
    """`data` with its header edited to declare `width` x `height` (pixels left as they are)."""
    out = bytearray(data)
    if fmt == "png":
        out[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    elif fmt in ("jpg", "jpeg-progressive"):
        i = next(i for i in range(2, len(out)) if out[i] == 0xFF and out[i + 1] in (0xC0, 0xC2))
        out[i + 5:i + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    elif fmt == "webp-lossy":
        assert out[12:16] == b"VP8 "
        out[26:30] = width.to_bytes(2, "little") + height.to_bytes(2, "little")
    elif fmt == "webp-lossless":
        assert out[12:16] == b"VP8L"
        bits = int.from_bytes(out[21:25], "little") & ~((1 << 28) - 1)
        out[21:25] = (bits | (width - 1) | (height - 1) << 14).to_bytes(4, "little")
    elif fmt == "gif":
        out[6:10] = width.to_bytes(2, "little") + height.to_bytes(2, "little")
    elif fmt == "bmp":
        out[18:26] = width.to_bytes(4, "little") + (-height).to_bytes(4, "little", signed=True)
    elif fmt == "tiff":
        order = "little" if out[:2] == b"II" else "big"
        ifd = int.from_bytes(out[4:8], order)
        for k in range(int.from_bytes(out[ifd:ifd + 2], order)):
            entry = ifd + 2 + 12 * k
            tag, kind = int.from_bytes(out[entry:entry + 2], order), int.from_bytes(out[entry + 2:entry + 4], order)
            if tag in (256, 257):
                value = width if tag == 256 else height
                size = 2 if kind == 3 else 4
                out[entry + 8:entry + 8 + size] = value.to_bytes(size, order)
    return bytes(out)


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_image_declaring_too_many_pixels_is_refused_from_its_header(fmt):
    """Each format edited to declare the largest size it can (GIF and WebP's simple forms top
    out at 65535 and 16383 a side): refused, with the limit, without decoding."""
    side = {"gif": 65535, "webp-lossy": 16383, "webp-lossless": 16383}.get(fmt, 30000)
    data = _declaring(fmt, _encoded(fmt, np.full((37, 53), 200, np.uint8)), side, side)
    with pytest.raises(imaging.ImageError) as refused:
        imaging.check_dimensions(data, 40_000_000)
    assert refused.value.code == "image_too_large" and refused.value.status == 413
    assert refused.value.extra["params"] == {"max_pixels": 40_000_000, "width": side, "height": side}


@pytest.mark.parametrize("data", [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0\x00\x10JFIF",
                                  b"RIFF\x00\x00\x00\x00WEBPVP8X", b"GIF89a\x01", b"BM\x00",
                                  b"II*\x00\xff\xff\x00\x00", b"P5\n1 1\n255\n\x00", b"not an image"])
def test_a_header_cut_short_or_of_another_format_is_invalid(data):
    with pytest.raises(imaging.ImageError) as refused:
        imaging.check_dimensions(data)
    assert refused.value.code == "invalid_image" and refused.value.status == 400


def test_one_engine_failing_keeps_the_others_reads(monkeypatch):
    def broken(image):  # type: ignore[no-untyped-def]
        raise ValueError("4294967295 is not a valid ZBarOrientation")

    monkeypatch.setattr(imaging, "_read_zbar", broken)
    monkeypatch.setattr(imaging, "_FAILURES_LOGGED", set())
    reads, by = imaging.decode_passes(label("QRCode", QR))
    assert [(r.text, r.engine) for r in reads] == [(QR, "zxing-cpp")] and by == "plain"
    assert imaging._FAILURES_LOGGED == {("zbar", "ValueError")}
