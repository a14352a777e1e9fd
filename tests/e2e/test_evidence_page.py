"""The packing evidence in a real browser: the evidence page and the QC screen's thumbnails.

A simulated camera records a pack station (H.264 in MP4, a keyframe every 50 frames, B-frames;
each frame shows its own number as a block code). An order is packed there with timed scans.
In Chromium, every scan's thumbnail on the evidence page shows the number of the scan's frame,
clicking a scan stops the clip's video on exactly that frame (read back from the video element
through a canvas), the page prints without the video, and the returns screen shows the packing
frame beside each packed unit.
"""
from __future__ import annotations

import base64
import datetime as dt
import json
import math
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from screens import DEMO_PASSWORD, SCREENSHOTS, ean13

pytestmark = pytest.mark.e2e

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect
camera = pytest.importorskip("floor_sim.camera", reason="the device simulator is not installed")

FPS = 25
# Seconds after the recording's start of each scan; frame = floor(seconds * FPS).
SCAN_TIMES = (4.2, 6.44, 9.0, 11.96, 14.5)


def decode_image(data: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None, "not an image"
    return img


def post(server: Any, token: str, path: str, body: Any) -> tuple[int, Any]:
    req = urllib.request.Request(server.url + path, method="POST", data=json.dumps(body).encode())
    req.add_header("Authorization", f"Bearer {token}")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            return res.status, json.loads(res.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def is_problem(msg: Any) -> bool:
    text = msg.text
    return "Content Security Policy" in text or "Refused to" in text or msg.type == "error"


def login(page: Any, username: str) -> None:
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", DEMO_PASSWORD)
    with page.expect_navigation():
        page.click("#login-submit")
    assert "/login" not in page.url, f"login as {username} failed"


@pytest.fixture(scope="module")
def recorded_order(live_server: Any) -> dict[str, Any]:
    """An order packed at its own station while that station's camera was recording."""
    suffix = uuid.uuid4().hex[:6].upper()
    station, camera_id = f"PE{suffix[:4]}", f"CAM-E2E-{suffix}"
    status, body = live_server.api("POST", "/api/v1/cameras", {"camera_id": camera_id, "station": station})
    assert status == 201, body
    prefix = str(int(suffix, 16) % 10**6).zfill(6)
    codes = [ean13(f"697{prefix}{n:03d}") for n in range(4)]
    order_no, waybill = f"EV-E2E-{suffix}", f"SF8{int(suffix, 16) % 10**12:012d}"
    lines = [{"sku": f"EV-{role.upper()}-{suffix}", "name": name_, "qty": 1, "role": role, "barcodes": [code]}
             for (role, name_), code in zip((("main", "精华液 30ml"), ("sample", "试用装 5ml"),
                                             ("gift", "随身镜"), ("giftbox", "限定礼盒")), codes)]
    integration = live_server.new_token("integration", "e2e-evidence-oms")
    packer = live_server.new_token("packer", "e2e-evidence-packer")
    status, body = post(live_server, integration, "/api/v1/orders", {
        "order_no": order_no, "channel": "e2e", "warehouse": "JX", "waybill_no": waybill, "lines": lines})
    assert status == 201, body
    status, body = live_server.api("POST", "/api/v1/waves", {"wave_no": f"W-EV-{suffix}",
                                                             "order_nos": [order_no], "station": station})
    assert status == 200, body

    # The recording covers the next 30 s and the scans below are made in it, in real time: the
    # evidence window is bounded by the server's times, so the handheld's clock and the server's
    # must agree for the window to hold the scans. Made again, later, if the machine was too
    # slow to write and register it before its first scan is due.
    root = Path(live_server.env["FLOOR_INSTANCE_PATH"]) / "recordings"
    for lead in (5, 20, 60):
        started = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=lead)).replace(microsecond=0)
        name = camera.segment_name(camera_id, started)
        camera.record(root / "nvr" / name, frames=30 * FPS, fps=FPS, size=(320, 180), codec="h264",
                      gop=50, bframes=2, started_at=started, camera_id=camera_id)
        if dt.datetime.now(dt.timezone.utc) < started + dt.timedelta(seconds=SCAN_TIMES[0] - 2):
            break
    status, body = live_server.api("POST", f"/api/v1/cameras/{camera_id}/recordings",
                                   {"path": f"nvr/{name}", "started_at": started.isoformat()})
    assert status == 201 and body["frames"] == 30 * FPS, body
    frames = {}
    for code, seconds in zip([waybill, *codes], SCAN_TIMES):
        scan_id = uuid.uuid4().hex
        at = started + dt.timedelta(seconds=seconds)
        time.sleep(max(0.0, (at - dt.datetime.now(dt.timezone.utc)).total_seconds()))
        status, body = post(live_server, packer, "/api/v1/scans", {
            "scan_id": scan_id, "station": station, "device_id": f"PDA-{suffix}", "code": code,
            "at": at.isoformat()})
        assert status == 200 and body["ok"], body
        frames[scan_id] = math.floor(seconds * FPS)
    assert live_server.get(f"/api/v1/orders/{order_no}")["status"] == "packed"
    return {"order_no": order_no, "camera_id": camera_id, "frames": frames, "codes": codes}


def test_the_evidence_page_shows_every_scan_at_its_exact_frame(browser: Any, live_server: Any,
                                                               recorded_order: dict[str, Any]) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=live_server.url,
                                  locale="zh-CN")
    context.set_default_timeout(20_000)
    problems: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        page.on("console", lambda msg: problems.append(msg.text) if is_problem(msg) else None)
        login(page, "super1")
        page.goto(f"/orders/{recorded_order['order_no']}/evidence")
        expect(page.locator("h1")).to_have_text(recorded_order["order_no"])
        scans = page.locator(f'.clip[data-camera-id="{recorded_order["camera_id"]}"] .evidence-scan[data-scan-id]')
        expect(scans).to_have_count(len(recorded_order["frames"]))

        # Every thumbnail the browser shows is the scan's frame: fetched with the page's session
        # and decoded back to the number burned into the frame.
        for k in range(scans.count()):
            item = scans.nth(k)
            scan_id = item.get_attribute("data-scan-id")
            frame = recorded_order["frames"][scan_id]
            assert int(item.get_attribute("data-frame") or -1) == frame
            thumb = item.locator("img.frame-thumb")
            thumb.scroll_into_view_if_needed()
            page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle())
            res = page.request.get(thumb.get_attribute("src") or "")
            assert res.status == 200 and res.headers["content-type"] == "image/jpeg"
            assert camera.frame_number(decode_image(res.body())) == frame

        # The order's opening and sealing at the station stand on the same timeline, at their frames.
        # (Later changes within the margin, such as the label printed on sealing, stand there too.)
        statuses = page.locator(f'.clip[data-camera-id="{recorded_order["camera_id"]}"] '
                                '.evidence-status:is([data-status="packing"], [data-status="packed"])')
        expect(statuses).to_have_count(2)
        sealed = math.floor(SCAN_TIMES[-1] * FPS)
        assert [(statuses.nth(k).get_attribute("data-status"), int(statuses.nth(k).get_attribute("data-frame") or -1))
                for k in range(2)] == [("packing", math.floor(SCAN_TIMES[0] * FPS)), ("packed", sealed)]
        res = page.request.get(statuses.nth(1).locator("img.frame-thumb").get_attribute("src") or "")
        assert camera.frame_number(decode_image(res.body())) == sealed

        # Clicking a scan stops the clip on that very frame, read back from the video element.
        video = page.locator("#evidence-video")
        page.wait_for_function("v => v.readyState >= 1 && v.duration > 0", arg=video.element_handle())
        for k in (0, 2, scans.count() - 1):
            item = scans.nth(k)
            frame = recorded_order["frames"][item.get_attribute("data-scan-id")]
            shown = page.evaluate("""async ([video, button]) => {
                const seeked = new Promise(resolve => video.addEventListener("seeked", resolve, {once: true}));
                button.click();
                await seeked;
                if (video.readyState < 2) await new Promise(r => video.addEventListener("loadeddata", r, {once: true}));
                const canvas = document.createElement("canvas");
                canvas.width = video.videoWidth; canvas.height = video.videoHeight;
                canvas.getContext("2d").drawImage(video, 0, 0);
                return canvas.toDataURL("image/png");
            }""", [video.element_handle(), item.locator(".scan-seek").element_handle()])
            png = base64.b64decode(shown.split(",", 1)[1])
            assert camera.frame_number(decode_image(png)) == frame, f"scan {k}: the video shows another frame"
            expect(item).to_have_class("evidence-scan current")
        assert video.evaluate("v => v.paused") is True

        # Snapshot hash on the page is the order's; printing hides the video, keeps the frames.
        order = live_server.get(f"/api/v1/orders/{recorded_order['order_no']}")
        expect(page.locator("#snapshot-hash")).to_have_text(order["snapshot"]["hash"])
        if SCREENSHOTS.name == "screenshots":
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "evidence.png"), full_page=True, animations="disabled")
        page.emulate_media(media="print")
        expect(video).to_be_hidden()
        expect(page.locator("#print-button")).to_be_hidden()
        expect(scans.first.locator("img.frame-thumb")).to_be_visible()
        page.emulate_media(media="screen")

        # In English too.
        page.goto(f"/lang/en?next=/orders/{recorded_order['order_no']}/evidence")
        expect(page.locator("#scans-title")).to_have_text("Scans on camera")
    finally:
        context.close()
    assert not problems, problems


def test_the_qc_screen_shows_the_packing_frame_of_each_unit(handheld: Any, live_server: Any,
                                                             recorded_order: dict[str, Any]) -> None:
    qc_token = live_server.new_token("qc", "e2e-evidence-qc")
    status, ret = post(live_server, qc_token, "/api/v1/returns",
                       {"order_no": recorded_order["order_no"], "reason": "七天无理由"})
    assert status == 201, ret
    page = handheld.new_page()
    login(page, "qc1")
    assert page.url.endswith("/returns"), "a QC user lands on the returns screen"
    expect(page.locator("#scan-input")).to_be_focused()
    page.keyboard.type(ret["trace_code"])
    page.keyboard.press("Enter")
    expect(page.locator("body")).to_have_attribute("data-rma", ret["rma_no"])
    thumbs = page.locator("#lines img.rq-thumb")
    # One per packed item (the waybill scan opened the order; it is not a unit in the box).
    expect(thumbs).to_have_count(len(recorded_order["codes"]))
    packed_frames = sorted(recorded_order["frames"].values())[1:]
    seen = []
    for k in range(thumbs.count()):
        res = page.request.get(thumbs.nth(k).get_attribute("src") or "")
        assert res.status == 200
        seen.append(camera.frame_number(decode_image(res.body())))
    assert sorted(seen) == packed_frames
    assert page.evaluate("document.documentElement.scrollWidth") <= 360

    # Closed, the report's hash stands on the evidence page beside the snapshot's.
    status, report = post(live_server, qc_token, f"/api/v1/returns/{ret['rma_no']}/close", {})
    assert status == 200, report
    with page.expect_navigation():
        page.click("#evidence-button")
    assert page.url.endswith(f"/orders/{recorded_order['order_no']}/evidence")
    row = page.locator(f'#order-returns li[data-rma="{ret["rma_no"]}"]')
    expect(row.locator(".report-hash")).to_have_text(report["content_hash"])
    expect(page.locator("#snapshot-hash")).to_have_text(report["snapshot_hash"])
    expect(page.locator(".evidence-scan[data-scan-id]")).to_have_count(len(recorded_order["frames"]))
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
