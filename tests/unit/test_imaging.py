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
