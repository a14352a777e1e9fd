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
