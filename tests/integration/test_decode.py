"""POST /api/v1/decode on real barcode images from ../shared/testdata (read by path)."""
from __future__ import annotations

import io
from pathlib import Path

import pytest

TESTDATA = Path(__file__).resolve().parents[3] / "shared" / "testdata"
ZXING = TESTDATA / "zxing-cpp" / "test" / "samples"
PYZBAR = TESTDATA / "pyzbar" / "pyzbar" / "tests"


def _image(path: Path) -> bytes:
    if not path.exists():
        pytest.skip(f"shared test data not found at {path} (the repository is cloned without it)")
    return path.read_bytes()


def _decode(api, data: bytes, role: str = "packer", name: str = "photo.png"):
    return api.client.post("/api/v1/decode", data={"image": (io.BytesIO(data), name)},
                           headers={"Authorization": f"Bearer {api.tokens[role]}"},
                           content_type="multipart/form-data")


def _expected(path: Path) -> str:
    return path.with_suffix(".txt").read_bytes().decode("latin-1")


@pytest.mark.parametrize("sample", [
    "ean13-1/4.webp", "code128-1/1.png", "qrcode-1/1.webp",
    "datamatrix-1/gs1-figure-4.15.1-2-32x32.png", "qrcode-2/gs1-figure-4.15.1-2.png",
])
def test_decodes_shared_samples(api, sample):
    path = ZXING / sample
    response = _decode(api, _image(path))
    assert response.status_code == 200, response.get_json()
    texts = {c["text"] for c in response.get_json()["codes"]}
    assert _expected(path) in texts


def test_gs1_datamatrix_answers_its_element_strings(api):
    response = _decode(api, _image(ZXING / "datamatrix-1" / "gs1-figure-4.15.1-2-32x32.png"))
    code = response.get_json()["codes"][0]
    assert (code["format"], code["symbology_id"]) == ("DataMatrix", "]d2")
    assert code["gs1"]["gtin"] == "09504000059101" and code["gs1"]["lot"] == "1234567p"


def test_two_codes_in_one_photo_and_an_empty_one(api):
    response = _decode(api, _image(PYZBAR / "code128.png"))
    texts = sorted(c["text"] for c in response.get_json()["codes"])
    assert texts == ["Foramenifera", "Rana temporaria"]
    assert _decode(api, _image(PYZBAR / "empty.png")).get_json()["codes"] == []


def test_bad_uploads_are_4xx(api):
    assert _decode(api, b"not an image").get_json()["code"] == "invalid_image"
    assert _decode(api, b"").status_code == 400
    missing = api.client.post("/api/v1/decode", data={}, content_type="multipart/form-data",
                              headers={"Authorization": f"Bearer {api.tokens['packer']}"})
    assert missing.status_code == 400 and missing.get_json()["code"] == "missing_field"
    assert _decode(api, b"x", role="integration").status_code == 403


def _damaged_label_photo(text: str) -> bytes:
    """A Code128 shipping label, scuffed and stained, photographed askew on a noisy sensor and
    saved as a poor JPEG (generated: no photo of a real label is shipped)."""
    import barcode
    import cv2
    import numpy as np
    from barcode.writer import ImageWriter

    rendered = barcode.get("code128", text, writer=ImageWriter()).render(
        {"module_width": 0.25, "module_height": 9.0, "quiet_zone": 4.0, "font_size": 8,
         "text_distance": 3.0, "dpi": 240})
    img = cv2.copyMakeBorder(np.asarray(rendered.convert("L")), 24, 24, 24, 24,
                             cv2.BORDER_CONSTANT, value=255)
    img = (img.astype(np.float32) * 0.8 + 25).astype(np.uint8)
    h, w = img.shape
    cv2.line(img, (int(0.15 * w), int(0.45 * h)), (int(0.7 * w), int(0.55 * h)), 40, 2, cv2.LINE_AA)
    cv2.ellipse(img, (int(0.55 * w), int(0.4 * h)), (int(0.07 * w), int(0.1 * h)), 30, 0, 360, 200, -1,
                cv2.LINE_AA)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), -35, 1.0)
    size = int(h * 0.58 + w * 0.82) + 4
    m[0, 2] += size / 2 - w / 2
    m[1, 2] += size / 2 - h / 2
    img = cv2.warpAffine(img, m, (size, size), borderValue=230)
    img = cv2.GaussianBlur(img, (0, 0), 0.8)
    img = np.clip(img + np.random.default_rng(1).normal(0, 14, img.shape), 0, 255).astype(np.uint8)
    ok, jpeg = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 25])
    assert ok
    return jpeg.tobytes()


def test_a_photo_of_a_damaged_label_decodes(api):
    response = _decode(api, _damaged_label_photo("PKG-004211-JX"), name="label.jpg")
    assert response.status_code == 200, response.get_json()
    assert [(c["text"], c["format"]) for c in response.get_json()["codes"]] == [("PKG-004211-JX", "Code128")]


def test_decoding_is_bounded_busy_decoders_answer_503(api, monkeypatch):
    from floor.scan import imaging

    path = ZXING / "code128-1" / "1.png"
    data = _image(path)
    monkeypatch.setattr(imaging, "DECODE_WAIT_S", 0.05)
    taken = 0
    while imaging.DECODE_SLOTS.acquire(blocking=False):     # every slot busy
        taken += 1
    try:
        busy = _decode(api, data)
        assert busy.status_code == 503 and busy.get_json()["code"] == "decoder_busy"
    finally:
        for _ in range(taken):
            imaging.DECODE_SLOTS.release()
    assert _decode(api, data).status_code == 200
