"""CCTV evidence through the whole stack: simulated camera recordings (H.264 with B-frames in
MP4, split in segments with a gap; Motion-JPEG in AVI) registered via the API, an order packed
with timed scans, and every scan's frame JPEG decoded back to the number burned into it."""
from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import threading
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np
import pytest

from floor.db import standalone_session
from floor.evidence import operations
from floor.evidence.watcher import RecordingWatcher
from floor_sim.camera import frame_number, record, record_segments

UTC = dt.timezone.utc
FPS_H264, FPS_MJPG = 25, 10
# Recent (scans' `at` counts only within 24 h of the server clock), on a whole second.
BASE = (dt.datetime.now(UTC) - dt.timedelta(hours=2)).replace(microsecond=0)
# CAM-P01, H.264: 0–8 s, 8–14 s back to back, a 4 s gap, 18–24 s.
LAYOUT = [(8, 0), (6, 4), (6, 0)]
FIRST_NUMBERS = [0, 200, 450]     # burned-in numbers count frames since BASE
LINES = [{"sku": "SERUM", "name": "精华液", "qty": 1, "role": "main", "barcodes": ["6901234567892"]},
         {"sku": "SAMPLE", "name": "试用装", "qty": 1, "role": "sample", "barcodes": ["6901234567908"]},
         {"sku": "GIFT", "name": "赠品", "qty": 1, "role": "gift", "barcodes": ["6901234567922"]},
         {"sku": "GIFTBOX", "name": "礼盒", "qty": 1, "role": "giftbox", "barcodes": ["6901234567915"]}]
# (code, seconds after BASE, expected burned number on CAM-P01 or None in the gap)
SCANS = [("SF1000000000001", 3.0, 75),       # opens the order (waybill)
         ("6901234567892", 5.52, 138),
         ("6901234567908", 7.99, 199),       # the last frame of segment 0
         ("6901234567922", 9.0, 225),        # segment 1, frame 25
         ("6901234567915", 15.0, None)]      # in the gap: sealed, but on no recording


def at(seconds: float) -> dt.datetime:
    return BASE + dt.timedelta(seconds=seconds)


def iso(seconds: float) -> str:
    return at(seconds).isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="session")
def footage(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    folder = tmp_path_factory.mktemp("footage")
    segments = record_segments(folder, "CAM-P01", BASE, LAYOUT, fps=FPS_H264, size=(160, 90),
                               codec="h264", gop=50, bframes=2)
    top = folder / "CAM-P01-TOP_overhead.avi"
    record(top, frames=250, fps=FPS_MJPG, size=(160, 90), codec="mjpg", started_at=at(-2))
    return {"folder": folder, "segments": segments, "top": top}


@pytest.fixture
def root(app, footage) -> Path:  # type: ignore[no-untyped-def]
    path = Path(app.config["RECORDINGS_ROOT"])
    (path / "nvr").mkdir(parents=True, exist_ok=True)
    for src, _start in footage["segments"]:
        shutil.copy(src, path / "nvr" / Path(src).name)
    shutil.copy(footage["top"], path / "top.avi")
    return path


def register_cameras(api, root, footage):  # type: ignore[no-untyped-def]
    r = api.post("/api/v1/cameras", {"camera_id": "CAM-P01", "station": "P01",
                                     "nvr": {"host": "10.0.0.9", "port": 554, "channel": 3}})
    assert r.status_code == 201, r.get_json()
    r = api.post("/api/v1/cameras", {"camera_id": "CAM-P01-TOP", "station": "P01"}, role="supervisor")
    assert r.status_code == 201, r.get_json()
    answers = []
    for k, (src, started) in enumerate(footage["segments"]):
        # Relative to the root and absolute inside it are both accepted.
        path = f"nvr/{Path(src).name}" if k % 2 == 0 else str(root / "nvr" / Path(src).name)
        r = api.post("/api/v1/cameras/CAM-P01/recordings", {"path": path, "started_at": started.isoformat()})
        assert r.status_code == 201, r.get_json()
        answers.append(r.get_json())
    r = api.post("/api/v1/cameras/CAM-P01-TOP/recordings", {"path": "top.avi", "started_at": iso(-2)})
    assert r.status_code == 201, r.get_json()
    answers.append(r.get_json())
    return answers


@contextlib.contextmanager
def server_clock() -> Iterator[Callable[[dt.datetime], None]]:
    """The server's clock as the scan and packing use cases read it, set by the test: the
    evidence window is bounded by server times, so a test that needs it at exact instants
    sets the server's clock to the handheld's."""
    import floor.packing.operations
    import floor.scan.operations

    now: list[dt.datetime] = []

    def set_to(instant: dt.datetime) -> None:
        now[:] = [instant]

    with pytest.MonkeyPatch.context() as mp:
        for module in (floor.scan.operations, floor.packing.operations):
            mp.setattr(module, "utcnow", lambda: now[0])
        yield set_to


def pack(api, waved):  # type: ignore[no-untyped-def]
    """TB001 packed with the SCANS, handheld and server agreeing on the time of each."""
    waved("TB001", lines=LINES)
    verdicts = []
    with server_clock() as set_clock:
        for code, seconds, _ in SCANS:
            set_clock(at(seconds))
            verdicts.append(api.scan(code, at=iso(seconds)))
    assert [v["ok"] for v in verdicts] == [True] * len(SCANS), verdicts
    assert verdicts[-1]["status"] == "packed"
    return verdicts


def decode_jpeg(data: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None
    return img


def test_registration_reads_frames_and_fps_from_the_file(api, root, footage):
    answers = register_cameras(api, root, footage)
    assert [(a["frames"], a["fps"]) for a in answers] == [(200, 25.0), (150, 25.0), (150, 25.0), (250, 10.0)]
    assert answers[0]["ends_at"] == at(8).isoformat()
    assert answers[3]["ends_at"] == at(23).isoformat()
    # Registering again updates, not duplicates.
    src, started = footage["segments"][0]
    r = api.post("/api/v1/cameras/CAM-P01/recordings",
                 {"path": f"nvr/{Path(src).name}", "started_at": started.isoformat()})
    assert r.status_code == 200
    cams = api.get("/api/v1/cameras", role="qc").get_json()["cameras"]
    assert [(c["camera_id"], c["station"], c["recordings"]) for c in cams] == [
        ("CAM-P01", "P01", 3), ("CAM-P01-TOP", "P01", 1)]
    assert cams[0]["nvr"] == {"host": "10.0.0.9", "port": 554, "channel": 3}


def test_every_scan_is_shown_at_its_exact_frame(api, waved, root, footage):
    register_cameras(api, root, footage)
    pack(api, waved)
    r = api.get("/api/v1/orders/TB001/evidence", role="qc")
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    order = api.get("/api/v1/orders/TB001").get_json()
    assert body["snapshot_hash"] == order["snapshot"]["hash"]
    assert body["window"]["from"] == at(3 - 5).isoformat()
    assert body["window"]["to"] == at(15 + 5).isoformat()

    h264 = [c for c in body["clips"] if c["camera_id"] == "CAM-P01"]
    # The window (−2 s … 20 s) crosses segment boundaries: a clip per segment, the gap skipped.
    assert [(Path(c["path"]).name, c["start_frame"], c["end_frame"]) for c in h264] == [
        (Path(footage["segments"][0][0]).name, 0, 199),
        (Path(footage["segments"][1][0]).name, 0, 149),
        (Path(footage["segments"][2][0]).name, 0, 50)]
    assert [c["clip_offset_frames"] for c in h264] == [0, 200, 350]
    assert h264[0]["playback_url"] == (
        "rtsp://10.0.0.9:554/Streaming/tracks/301?starttime="
        + at(0).strftime("%Y%m%dT%H%M%SZ") + "&endtime=" + at(8).strftime("%Y%m%dT%H%M%SZ"))

    listed = [(s["code"], s["frame"] + FIRST_NUMBERS[k], s["scan_id"])
              for k, c in enumerate(h264) for s in c["scans"]]
    assert [(code, n) for code, n, _ in listed] == [(code, n) for code, _, n in SCANS if n is not None]
    # The scan in the gap is on no H.264 clip; every listed one's JPEG is exactly its frame.
    for clip in h264:
        for scan in clip["scans"]:
            assert scan["verdict"]["ok"] is True
            r = api.get(scan["thumbnail_url"], role="integration")
            assert r.status_code == 200 and r.mimetype == "image/jpeg"
            expected = scan["frame"] + FIRST_NUMBERS[h264.index(clip)]
            assert frame_number(decode_jpeg(r.data)) == expected
            # Cached: the second answer is the same bytes.
            assert api.get(scan["thumbnail_url"], role="supervisor").data == r.data

    # The Motion-JPEG overhead camera at 10 fps saw all five, the gap scan included.
    top = [c for c in body["clips"] if c["camera_id"] == "CAM-P01-TOP"]
    assert len(top) == 1 and top[0]["start_frame"] == 0 and top[0]["end_frame"] == 220
    assert top[0]["playback_url"] is None
    frames = [s["frame"] for s in top[0]["scans"]]
    assert frames == [int((seconds + 2) * FPS_MJPG) for _, seconds, _ in SCANS]
    for scan in top[0]["scans"]:
        img = decode_jpeg(api.get(scan["thumbnail_url"] + "?width=80").data)
        assert img.shape[1] == 80
        assert frame_number(decode_jpeg(api.get(scan["thumbnail_url"]).data)) == scan["frame"]
    assert list(Path(api.client.application.instance_path, "evidence-cache", "frames").glob("*.jpg"))

    # Status changes made at the station are placed on its cameras too: opened with the waybill
    # scan (3 s), sealed by the gift box (15 s: in the H.264 camera's gap, on the overhead one).
    assert [(e["status"], e["frame"]) for e in top[0]["events"]] == [
        ("packing", int(5 * FPS_MJPG)), ("packed", int(17 * FPS_MJPG))]
    for e in top[0]["events"]:
        assert frame_number(decode_jpeg(api.get(e["thumbnail_url"]).data)) == e["frame"]
    assert [(e["status"], e["frame"]) for c in h264 for e in c["events"]] == [("packing", 75)]


def test_the_clip_mp4_holds_exactly_the_window_frames(api, waved, root, footage, tmp_path):
    register_cameras(api, root, footage)
    pack(api, waved)
    url = api.get("/api/v1/orders/TB001/evidence").get_json()["clip_url"]
    r = api.get(url, role="qc")
    assert r.status_code == 200 and r.mimetype == "video/mp4"
    assert r.headers.get("Accept-Ranges") == "bytes"
    out = tmp_path / "clip.mp4"
    out.write_bytes(r.data)
    cap = cv2.VideoCapture(str(out))
    numbers = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        numbers.append(frame_number(img))
    cap.release()
    assert numbers == list(range(0, 200)) + list(range(200, 350)) + list(range(450, 501))
    # A <video> element seeks with range requests.
    part = api.client.get(url, headers={**api._headers("qc"), "Range": "bytes=0-99"})
    assert part.status_code == 206 and len(part.data) == 100
    # Cached by its parts: the same bytes again; the other camera on demand.
    assert api.get(url).data == r.data
    other = api.get("/api/v1/orders/TB001/evidence/clip.mp4?camera=CAM-P01-TOP")
    assert other.status_code == 200 and other.data != r.data
    assert api.get("/api/v1/orders/TB001/evidence/clip.mp4?camera=NOPE").status_code == 404


def test_the_clip_url_names_the_orders_warehouse(api, waved, root, footage):
    """Order numbers are per warehouse: the evidence's clip URL of an order whose number another
    warehouse also uses plays that order's clip for an account of every warehouse."""
    from tests.conftest import make_order
    register_cameras(api, root, footage)
    pack(api, waved)
    other = {**make_order("TB001", waybill=None), "warehouse": "WH2"}
    assert api.post("/api/v1/orders", other).status_code in (200, 201)
    assert api.get("/api/v1/orders/TB001/evidence").status_code == 409
    url = api.get("/api/v1/orders/TB001/evidence?warehouse=JX").get_json()["clip_url"]
    r = api.get(url, role="qc")
    assert r.status_code == 200 and r.mimetype == "video/mp4", r.get_json()


def test_an_order_without_recordings_has_no_clips(api, waved, root):
    waved("TB001", lines=LINES)
    api.scan("SF1000000000001", at=iso(3))
    body = api.get("/api/v1/orders/TB001/evidence").get_json()
    assert body["clips"] == [] and body["clip_url"] is None and body["snapshot_hash"]
    r = api.get("/api/v1/orders/TB001/evidence/clip.mp4")
    assert r.status_code == 404 and r.get_json()["code"] == "no_recordings"
    waved("TB002", wave="W-2", waybill="SF2", lines=LINES)
    assert api.get("/api/v1/orders/TB002/evidence").get_json()["window"] is None
    assert api.get("/api/v1/orders/NOPE/evidence").status_code == 404


def test_roles(api, root, footage):
    register_cameras(api, root, footage)
    for path in ("/api/v1/orders/TB001/evidence", "/api/v1/orders/TB001/evidence/clip.mp4",
                 "/api/v1/evidence/frames/1/0.jpg", "/api/v1/cameras"):
        for role in ("packer", "device"):
            r = api.get(path, role=role)
            assert r.status_code == 403 and r.get_json()["code"] == "forbidden", (path, role)
        assert api.get(path, role=None).status_code == 401
    for role in ("packer", "qc", "device"):
        r = api.post("/api/v1/cameras", {"camera_id": "X", "station": "P01"}, role=role)
        assert r.status_code == 403
        r = api.post("/api/v1/cameras/CAM-P01/recordings", {"path": "/etc/passwd"}, role=role)
        assert r.status_code == 403
    assert api.post("/api/v1/cameras", "not json", role=None).status_code == 401
    assert api.get("/orders/TB001/evidence", role="packer").status_code == 403


def test_bad_input(api, root, footage, tmp_path):
    register_cameras(api, root, footage)
    outside = tmp_path / "outside.mp4"
    shutil.copy(footage["segments"][0][0], outside)
    os.symlink(outside, root / "link.mp4")
    (root / "notes.mp4").write_text("not a video")
    started = iso(0)
    cases = [
        ({"path": "/etc/passwd", "started_at": started}, 400, "path_not_allowed"),
        ({"path": str(outside), "started_at": started}, 400, "path_not_allowed"),
        ({"path": "../outside.mp4", "started_at": started}, 400, "path_not_allowed"),
        ({"path": "link.mp4", "started_at": started}, 400, "path_not_allowed"),
        ({"path": "nvr/missing.mp4", "started_at": started}, 400, "video_not_found"),
        ({"path": "nvr", "started_at": started}, 400, "video_not_found"),
        ({"path": "notes.mp4", "started_at": started}, 400, "unreadable_video"),
        ({"path": "top.avi", "started_at": "yesterday"}, 400, "invalid_field"),
        ({"path": "top.avi", "started_at": "2026-03-01T08:00:00"}, 400, "invalid_field"),
        ({"path": "top.avi", "started_at": 12}, 400, "invalid_field"),
        ({"path": "top.avi"}, 400, "missing_field"),
        ({"path": ["top.avi"], "started_at": started}, 400, "invalid_field"),
        ({"path": "x\u0000.mp4", "started_at": started}, 400, "invalid_field"),
    ]
    for body, status, code in cases:
        r = api.post("/api/v1/cameras/CAM-P01/recordings", body)
        assert (r.status_code, r.get_json()["code"]) == (status, code), body
    r = api.post("/api/v1/cameras/NOPE/recordings", {"path": "top.avi", "started_at": started})
    assert (r.status_code, r.get_json()["code"]) == (404, "unknown_camera")
    for body in ({"camera_id": "bad id!", "station": "P01"}, {"camera_id": "C"},
                 {"camera_id": "C", "station": "P01", "nvr": {"host": "h", "port": 70000}},
                 {"camera_id": "C", "station": "P01", "nvr": "rtsp://x"}):
        r = api.post("/api/v1/cameras", body)
        assert r.status_code == 400 and r.get_json()["code"] in ("invalid_field", "missing_field"), body
    assert api.get("/api/v1/evidence/frames/1/200.jpg").get_json()["code"] == "frame_out_of_range"
    assert api.get("/api/v1/evidence/frames/999/0.jpg").status_code == 404
    r = api.get("/api/v1/evidence/frames/1/0.jpg?width=5000")
    assert (r.status_code, r.get_json()["code"]) == (400, "invalid_field")
    assert api.get("/api/v1/evidence/frames/1/0.jpg?width=120").status_code == 200


def test_the_frame_cache_stays_within_its_size(app, api, waved, root, footage):
    register_cameras(api, root, footage)
    pack(api, waved)
    body = api.get("/api/v1/orders/TB001/evidence").get_json()
    urls = [s["thumbnail_url"] for c in body["clips"] for s in c["scans"]]
    one = len(api.get(urls[0]).data)
    app.config["EVIDENCE_CACHE_MB"] = 3.5 * one / (1024 * 1024)   # room for about three frames
    cache = Path(app.instance_path, "evidence-cache")
    for url in urls:
        r = api.get(url)
        assert r.status_code == 200
        assert sum(p.stat().st_size for p in cache.glob("*/*")) <= 3.5 * one * 1.2
    # Pruned frames are rebuilt on demand, still exact (the overhead camera: numbers = frames).
    for clip in body["clips"]:
        if clip["camera_id"] == "CAM-P01-TOP":
            for scan in clip["scans"]:
                assert frame_number(decode_jpeg(api.get(scan["thumbnail_url"]).data)) == scan["frame"]


def test_watched_folder_registers_new_files_of_known_cameras(app, api, root, footage):
    api.post("/api/v1/cameras", {"camera_id": "CAM-P01", "station": "P01"})
    (root / "CAM-P09_20260301T080000Z.mp4").write_bytes(b"unknown camera")
    (root / "CAM-P01_20260301T080000Z.mp4").write_bytes(b"not readable yet")
    with app.app_context(), standalone_session(app) as s:
        found = operations.scan_recordings_folder(s, root / "nvr")
        assert sorted((r.path, r.frames, r.started_at) for r in found) == sorted(
            (f"nvr/{Path(p).name}", n, start) for (p, start), n in zip(footage["segments"], (200, 150, 150)))
    with app.app_context(), standalone_session(app) as s:
        assert operations.scan_recordings_folder(s, root / "nvr") == []
    # The background watcher watches the root; the unreadable file is left for later.
    shutil.copy(footage["segments"][0][0], root / "CAM-P01_20260301T090000Z.mp4")
    watcher = RecordingWatcher(app)
    assert watcher.run_once() == 1
    assert watcher.run_once() == 0
    cams = api.get("/api/v1/cameras").get_json()["cameras"]
    assert cams[0]["recordings"] == 4


def test_the_evidence_page(app, api, waved, root, footage, users):
    register_cameras(api, root, footage)
    pack(api, waved)
    client = app.test_client()
    page = client.get("/orders/TB001/evidence")
    assert page.status_code == 302   # to the login page
    login = client.get("/login")
    import re
    token = re.search(r'name="csrf_token" value="([^"]+)"', login.get_data(as_text=True)).group(1)
    client.post("/login", data={"username": users["qc"], "password": "correct horse", "csrf_token": token})
    html = client.get("/orders/TB001/evidence").get_data(as_text=True)
    assert "打包证据" in html   # Chinese by default
    body = api.get("/api/v1/orders/TB001/evidence").get_json()
    assert body["snapshot_hash"] in html
    assert "<script>" not in html and "style=" not in html
    assert html.count('class="frame-thumb" loading="lazy"') == sum(len(c["scans"]) + len(c["events"]) for c in body["clips"])
    assert 'id="evidence-video"' in html and body["clip_url"].replace("&", "&amp;") in html
    assert "rtsp://10.0.0.9:554/Streaming/tracks/301" in html
    assert "/static/js/evidence.js" in html
    timeline = client.get("/orders/TB001").get_data(as_text=True)
    assert "/orders/TB001/evidence" in timeline
    client.set_cookie("lang", "en")
    assert "Packing evidence" in client.get("/orders/TB001/evidence").get_data(as_text=True)


# --- client times and the window; clip exports bounded ---------------------------------------

@pytest.mark.parametrize("skew_h", [-5, 5])
def test_a_device_time_hours_off_moves_its_frame_not_the_window(api, waved, root, footage, skew_h):
    """A handheld sends times hours before (or after) the server's clock: its scans are placed
    at those times (their frames), but the order's window stays within the pack session's real
    opening and sealing (server times) plus the margin, and so does its clip."""
    register_cameras(api, root, footage)
    waved("TB001", lines=LINES)
    before = dt.datetime.now(UTC)
    off = dt.datetime.now(UTC) + dt.timedelta(hours=skew_h)
    for k, (code, _seconds, _n) in enumerate(SCANS):
        verdict = api.scan(code, at=(off + dt.timedelta(seconds=k)).isoformat())
        assert verdict["ok"], verdict
    after = dt.datetime.now(UTC)
    assert api.get("/api/v1/orders/TB001").get_json()["status"] == "packed"
    margin = dt.timedelta(seconds=api.client.application.config["EVIDENCE_MARGIN_S"])
    window = api.get("/api/v1/orders/TB001/evidence").get_json()["window"]
    opened, sealed = (dt.datetime.fromisoformat(window[k]) for k in ("opened_at", "sealed_at"))
    lo, hi = (dt.datetime.fromisoformat(window[k]) for k in ("from", "to"))
    assert before <= opened <= sealed <= after
    assert before - margin <= lo and hi <= after + margin
    # The scans themselves kept the device's times (the stretch came from them before).
    with api.client.application.app_context(), standalone_session(api.client.application) as s:
        from sqlalchemy import select

        from floor.scan.models import ScanEvent
        times = list(s.scalars(select(ScanEvent.at)))
    assert all(abs((t - off).total_seconds()) < 60 for t in times)


def test_a_clip_longer_than_the_export_limit_is_refused(api, app, waved, root, footage):
    register_cameras(api, root, footage)
    pack(api, waved)
    app.config["EVIDENCE_CLIP_MAX_S"] = 10          # the H.264 clip: 200 + 150 + 51 frames at 25 fps
    body = api.get("/api/v1/orders/TB001/evidence").get_json()
    assert body["clip_url"] is None
    assert body["clip_refused"] == {"code": "clip_too_long",
                                    "params": {"max_s": 10.0, "length_s": 16.04}}
    r = api.get("/api/v1/orders/TB001/evidence/clip.mp4", role="qc")
    assert (r.status_code, r.get_json()["code"]) == (422, "clip_too_long")
    assert r.get_json()["params"] == {"max_s": 10.0, "length_s": 16.04}
    # The overhead camera's clip (221 frames at 10 fps: 22.1 s) is refused as well; within the
    # limit both are exported.
    r = api.get("/api/v1/orders/TB001/evidence/clip.mp4?camera=CAM-P01-TOP")
    assert r.status_code == 422 and r.get_json()["params"]["length_s"] == 22.1
    app.config["EVIDENCE_CLIP_MAX_S"] = 30
    assert api.get("/api/v1/orders/TB001/evidence/clip.mp4?camera=CAM-P01-TOP").status_code == 200


def test_clip_exports_are_limited_in_number(api, app, waved, root, footage):
    """While every export slot is busy building a clip, a request for another one answers 503
    clip_export_busy; a clip already built is still sent."""
    register_cameras(api, root, footage)
    pack(api, waved)
    app.config.update(EVIDENCE_CLIP_EXPORTS=1, EVIDENCE_CLIP_WAIT_S=0.05)
    from floor.evidence import video

    building, release = threading.Event(), threading.Event()
    real_export = video.export_clip

    def slow_export(*args, **kwargs):  # type: ignore[no-untyped-def]
        building.set()
        release.wait(30)
        return real_export(*args, **kwargs)

    answers: dict[str, int] = {}

    def first_export() -> None:
        client = app.test_client()
        answers["first"] = client.get("/api/v1/orders/TB001/evidence/clip.mp4",
                                      headers=api._headers("qc")).status_code

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(video, "export_clip", slow_export)
        worker = threading.Thread(target=first_export)
        worker.start()
        try:
            assert building.wait(30)
            busy = api.get("/api/v1/orders/TB001/evidence/clip.mp4?camera=CAM-P01-TOP")
            assert (busy.status_code, busy.get_json()["code"]) == (503, "clip_export_busy")
            assert busy.get_json()["params"] == {"exports": 1}
        finally:
            release.set()
            worker.join(60)
    assert answers["first"] == 200
    # Built: sent from the cache without a slot; the other camera's export now has one.
    assert api.get("/api/v1/orders/TB001/evidence/clip.mp4").status_code == 200
    assert api.get("/api/v1/orders/TB001/evidence/clip.mp4?camera=CAM-P01-TOP").status_code == 200
