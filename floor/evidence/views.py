"""Entry points of CCTV evidence: cameras, recordings, an order's clips, exact frames, the
exported clip and the evidence page."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Callable, Iterator

from flask import (Blueprint, current_app, jsonify, render_template, request, send_file,
                   url_for)

from floor.api import actor_of, run
from floor.auth.security import actor, requires
from floor.auth.scope import (WITHIN, allows, bind_station_to_scope, check_not_elsewhere,
                               check_station_code, order_warehouse_id, scope_filtered, scoped,
                               upserts, warehouse_scope, warehouses_of)
from floor.db import db_session
from floor.errors import ApiError, json_body
from floor.evidence import domain, operations
from floor.live import domain as live
from floor.packing import operations as packing
from floor.packing.domain import DomainError
from floor.returns import operations as returns_operations

bp = Blueprint("evidence", __name__)
WRITERS = ("supervisor", "integration")
READERS = ("supervisor", "qc", "integration")
THUMB_WIDTH = 320
JPEG_QUALITY = 80


def _root() -> Path:
    return operations.recordings_root(current_app.config)


def _cache_dir(kind: str) -> Path:
    path = Path(current_app.instance_path) / "evidence-cache" / kind
    path.mkdir(parents=True, exist_ok=True)
    return path


def _cached(target: Path, produce: Callable[[str], None], suffix: str) -> None:
    """Make `target` if it is not cached yet (off the event loop), else mark it used; a new file
    may push the least recently used ones out of the cache."""
    if target.exists():
        try:
            os.utime(target)
        except OSError:
            pass   # pruned by another process meanwhile: served if still there, else rebuilt
        else:
            return
    _off_loop(_write_atomically, target, produce, suffix)
    _prune_cache(target)


def _prune_cache(just_written: Path) -> None:
    root = Path(current_app.instance_path) / "evidence-cache"
    limit = int(float(current_app.config.get("EVIDENCE_CACHE_MB", 2048)) * 1024 * 1024)
    files = []
    for path in root.glob("*/*"):
        if path.name.startswith(".tmp-"):
            continue
        try:
            st = path.stat()
        except OSError:
            continue
        files.append(domain.CachedFile(str(path.relative_to(root)), st.st_size, st.st_mtime))
    keep = frozenset({str(just_written.relative_to(root))})
    for name in domain.cache_evictions(files, limit, keep):
        # A file being sent stays readable through its open handle (POSIX).
        (root / name).unlink(missing_ok=True)


@contextmanager
def _export_slot() -> Iterator[None]:
    """One of the app's EVIDENCE_CLIP_EXPORTS clip export slots; none free within
    EVIDENCE_CLIP_WAIT_S: 503 clip_export_busy."""
    config = current_app.config
    slots = current_app.extensions.get("evidence_clip_slots")
    if slots is None:
        slots = current_app.extensions.setdefault(
            "evidence_clip_slots", threading.BoundedSemaphore(int(config["EVIDENCE_CLIP_EXPORTS"])))
    if not slots.acquire(timeout=float(config["EVIDENCE_CLIP_WAIT_S"])):
        raise ApiError("clip_export_busy", "Too many clips are being exported; try again shortly.",
                       503, params={"exports": int(config["EVIDENCE_CLIP_EXPORTS"])})
    try:
        yield
    finally:
        slots.release()


def _refused(exc: DomainError) -> ApiError:
    return ApiError(exc.code, exc.message, exc.status, **exc.extra)


def _off_loop(fn: Callable[..., Any], *args: Any) -> Any:
    from floor.scan.imaging import run_off_loop

    return run_off_loop(fn, *args)


def _write_atomically(target: Path, produce: Callable[[str], None], suffix: str) -> None:
    """`produce(tmp)` writes a temporary file next to `target`, renamed into place when done:
    a concurrent reader sees the whole file or none."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=target.parent)
    os.close(fd)
    try:
        produce(tmp)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _file_identity(path: Path) -> str:
    st = path.stat()
    return f"{path}|{st.st_size}|{st.st_mtime_ns}"


def _video_error(exc: Exception) -> ApiError:
    code = getattr(exc, "code", "unreadable_video")
    status = 404 if code in ("video_not_found", "frame_out_of_range") else 409
    return ApiError(code, getattr(exc, "message", str(exc)), status)


# --- cameras and recordings ---------------------------------------------------------------------

@bp.post("/api/v1/cameras")
@requires(*WRITERS)
@scope_filtered("the station and the camera's current station must be the caller's warehouse's")
@upserts(camera_id="camera")
def register_camera():  # type: ignore[no-untyped-def]
    data = json_body()
    principal = actor()

    def op(s):  # type: ignore[no-untyped-def]
        check_station_code(s, data.get("station"))
        row, created = operations.register_camera(s, data, actor_of(principal))
        bind_station_to_scope(s, row.station)
        return operations.camera_view(row), created

    body, created = run(op)
    return jsonify(body), 201 if created else 200


@bp.get("/api/v1/cameras")
@requires(*READERS)
@scope_filtered("cameras of stations of the caller's warehouse")
def list_cameras():  # type: ignore[no-untyped-def]
    s = db_session()
    scope = warehouse_scope()
    cameras = [c for c in operations.list_cameras(s)
               if allows(scope, warehouses_of(s, "camera", c["camera_id"]))]
    return jsonify({"cameras": cameras})


@bp.post("/api/v1/cameras/<camera_id>/recordings")
@requires(*WRITERS)
@scoped(camera_id="camera")
def register_recording(camera_id: str):  # type: ignore[no-untyped-def]
    data = json_body()
    principal = actor()
    s = db_session()
    try:
        operations.camera_by_id(s, camera_id)
        req = operations.validate_recording(_root(), camera_id, data)
    except DomainError as exc:
        raise _refused(exc) from None
    # Another warehouse's footage under one's own camera would show in one's own evidence.
    for other in operations.cameras_of_file(s, _root(), req):
        check_not_elsewhere(s, "camera", other, "path")
    s.rollback()   # no transaction stays open while the file is read
    try:
        info = _off_loop(operations.probe, req.real_path)
    except DomainError as exc:
        raise _refused(exc) from None

    def op(s):  # type: ignore[no-untyped-def]
        row, created = operations.store_recording(s, req, info, actor_of(principal))
        return operations.recording_view(row), created

    view, created = run(op)
    body = {"frames": view["frames"], "fps": view["fps"], "ends_at": view["ends_at"], **view}
    return jsonify(body), 201 if created else 200


# --- an order's evidence ----------------------------------------------------------------------------

def _frame_url(recording_id: int, frame: int) -> str:
    return url_for("evidence.frame_jpeg", recording_id=recording_id, frame=frame)


def _evidence(order_no: str) -> tuple[Any, dict[str, Any]]:
    s = db_session()
    try:
        order = packing.find_order(s, order_no, request.args.get("channel"),
                                   warehouse_id=order_warehouse_id(s))
        margin = float(current_app.config["EVIDENCE_MARGIN_S"])
        body = operations.order_evidence(s, order, margin, _root(), _frame_url)
    except DomainError as exc:
        raise _refused(exc) from None
    return order, body


def _clip_url(order: Any, body: dict[str, Any]) -> str | None:
    """The export's URL, or None when there is nothing to export or the first camera's clip is
    longer than an export may be (then `clip_refused` says why)."""
    if not body["clips"]:
        return None
    try:
        operations.export_parts(body, _root(), None, float(current_app.config["EVIDENCE_CLIP_MAX_S"]))
    except DomainError as exc:
        body["clip_refused"] = {"code": exc.code, **exc.extra}
        return None
    # Order numbers are per warehouse: the URL names this order's, so an account of every
    # warehouse gets this clip, not 409 ambiguous_order when another warehouse uses the number.
    return url_for("evidence.order_clip", order_no=order.order_no, channel=order.channel,
                   warehouse=order.warehouse.code)


@bp.get("/api/v1/orders/<order_no>/evidence")
@requires(*READERS)
@scoped(order_no="order")
def order_evidence(order_no: str):  # type: ignore[no-untyped-def]
    order, body = _evidence(order_no)
    body["clip_url"] = _clip_url(order, body)
    return jsonify(body)


@bp.get("/api/v1/evidence/frames/<int:recording_id>/<int:frame>.jpg")
@requires(*READERS)
@scoped(recording_id="recording", frame=WITHIN)
def frame_jpeg(recording_id: int, frame: int):  # type: ignore[no-untyped-def]
    raw_width = request.args.get("width")
    width = THUMB_WIDTH
    if raw_width is not None:
        if not raw_width.isdigit() or not 80 <= int(raw_width) <= 1280:
            raise ApiError("invalid_field", "width is a whole number from 80 to 1280.", field="width")
        width = int(raw_width)
    s = db_session()
    try:
        row = operations.recording_by_id(s, recording_id)
        if not 0 <= frame < row.frames:
            raise DomainError("frame_out_of_range",
                              f"Recording {recording_id} has frames 0 to {row.frames - 1}.", 404)
        real = operations.resolve_path(_root(), row.path)
    except DomainError as exc:
        raise _refused(exc) from None
    keyframes = list(row.keyframes or [])
    s.rollback()
    if not real.is_file():
        raise ApiError("video_not_found", "The recording's file is gone.", 404)
    key = hashlib.sha256(f"{_file_identity(real)}|{frame}|{width}|{JPEG_QUALITY}".encode()).hexdigest()
    target = _cache_dir("frames") / f"{recording_id}-{frame}-{key[:24]}.jpg"
    from floor.evidence import video

    def produce(tmp: str) -> None:
        data = video.thumbnail_jpeg(str(real), frame, keyframes or None, width=width,
                                    quality=JPEG_QUALITY)
        with open(tmp, "wb") as fh:
            fh.write(data)

    try:
        _cached(target, produce, ".jpg")
    except video.VideoError as exc:
        raise _video_error(exc) from None
    response = send_file(target, mimetype="image/jpeg", conditional=True, max_age=3600)
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


@bp.get("/api/v1/orders/<order_no>/evidence/clip.mp4")
@requires(*READERS)
@scoped(order_no="order")
def order_clip(order_no: str):  # type: ignore[no-untyped-def]
    camera = request.args.get("camera") or None
    if camera is not None and not operations.CAMERA_ID.match(camera):
        raise ApiError("invalid_field", "camera is a camera id.", field="camera")
    _order, body = _evidence(order_no)
    try:
        _cam, parts, fps = operations.export_parts(body, _root(), camera,
                                                   float(current_app.config["EVIDENCE_CLIP_MAX_S"]))
    except DomainError as exc:
        raise _refused(exc) from None
    db_session().rollback()
    try:
        identity = [[_file_identity(Path(p)), first, last] for p, first, last in parts]
    except OSError:
        raise ApiError("video_not_found", "A recording's file is gone.", 404) from None
    key = hashlib.sha256(json.dumps([identity, fps]).encode()).hexdigest()
    target = _cache_dir("clips") / f"{key[:40]}.mp4"
    from floor.evidence import video

    def produce(tmp: str) -> None:
        video.export_clip(parts, tmp, fps)

    try:
        # A cached clip is sent as it is; building one (CPU-bound, seconds) takes an export slot.
        with nullcontext() if target.exists() else _export_slot():
            _cached(target, produce, ".mp4")
    except video.VideoError as exc:
        raise _video_error(exc) from None
    response = send_file(target, mimetype="video/mp4", conditional=True, max_age=3600,
                         download_name=f"{order_no}-evidence.mp4")
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


# --- the evidence page ------------------------------------------------------------------------------

@bp.get("/orders/<order_no>/evidence")
@requires("supervisor", "qc")
@scoped(order_no="order")
def evidence_page(order_no: str):  # type: ignore[no-untyped-def]
    s = db_session()
    order, body = _evidence(order_no)
    detail = packing.order_detail(s, order)
    settings = live.merged_settings(order.warehouse.settings)
    clip_url = _clip_url(order, body)
    return render_template("evidence.html", order=detail, evidence=body, clip_url=clip_url,
                           returns=returns_operations.returns_of_order(s, order),
                           utc_offset_minutes=settings["utc_offset_minutes"])
