"""Evidence use cases: cameras, recordings, and the frames showing an order's scans.

Never commit, never emit. Reading a video file (probing, frames, clips) never happens inside a
write transaction: the entry points probe first and store after (`validate_recording`, then
`store_recording`), or read the evidence, end the read, then decode.

Recording paths: the service reads these files, so a caller may only name files under the
recordings root (`RECORDINGS_ROOT`), as a path relative to it or an absolute path inside it;
symlinks are resolved before the check, and again on every read.
"""
from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from floor.evidence import domain
from floor.evidence.domain import Segment
from floor.evidence.models import Camera, Recording
from floor.packing import operations as packing
from floor.packing.domain import Actor, DomainError
from floor.packing.models import Order, PackSession, StatusEvent

CAMERA_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_PATH = 1000
UTC = dt.timezone.utc


# --- cameras ----------------------------------------------------------------------------------

def _int_field(data: dict[str, Any], name: str, lo: int, hi: int, default: int | None) -> int | None:
    value = data.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise DomainError("invalid_field", f"nvr.{name} must be a whole number from {lo} to {hi}.",
                          field=f"nvr.{name}")
    return value


def register_camera(s: Session, data: dict[str, Any], actor: Actor) -> tuple[Camera, bool]:
    """Create or update a camera bound to a station (created on first use)."""
    camera_id = packing.clean_text(data, "camera_id", 64)
    assert camera_id is not None
    if not CAMERA_ID.match(camera_id):
        raise DomainError("invalid_field", "camera_id: letters, digits, '.', '_' and '-'.",
                          field="camera_id")
    station = packing.clean_text(data, "station", 32)
    assert station is not None
    nvr = data.get("nvr")
    host = port = channel = None
    if nvr is not None:
        if not isinstance(nvr, dict):
            raise DomainError("invalid_field", "nvr is an object {host, port, channel}.", field="nvr")
        host = packing.clean_text(nvr, "host", 255)
        if host is not None and not re.match(r"^[A-Za-z0-9.:\[\]_-]+$", host):
            raise DomainError("invalid_field", "nvr.host is a host name or IP address.", field="nvr.host")
        port = _int_field(nvr, "port", 1, 65535, 554)
        channel = _int_field(nvr, "channel", 1, 999, 1)
    packing.station_by_code(s, station)
    row = s.scalar(select(Camera).where(Camera.camera_id == camera_id))
    created = row is None
    if row is None:
        row = Camera(camera_id=camera_id, station=station, registered_by=actor.name)
        s.add(row)
    row.station = station
    if nvr is not None:
        row.nvr_host, row.nvr_port, row.nvr_channel = host, port, channel
    s.flush()
    return row, created


def camera_view(row: Camera) -> dict[str, Any]:
    return {"camera_id": row.camera_id, "station": row.station,
            "nvr": None if not row.nvr_host else {"host": row.nvr_host, "port": row.nvr_port,
                                                  "channel": row.nvr_channel},
            "registered_by": row.registered_by, "registered_at": row.registered_at.isoformat()}


def list_cameras(s: Session) -> list[dict[str, Any]]:
    cameras = s.scalars(select(Camera).order_by(Camera.camera_id)).all()
    counts = {cam: n for cam, n in s.execute(select(Recording.camera_id, func.count())
                                             .group_by(Recording.camera_id))}
    return [{**camera_view(c), "recordings": counts.get(c.id, 0)} for c in cameras]


def camera_by_id(s: Session, camera_id: str) -> Camera:
    row = s.scalar(select(Camera).where(Camera.camera_id == camera_id))
    if row is None:
        raise DomainError("unknown_camera", f"No camera {camera_id}.", 404)
    return row


# --- recording paths --------------------------------------------------------------------------

def recordings_root(config: dict[str, Any]) -> Path:
    return Path(config["RECORDINGS_ROOT"]).resolve()


def stored_path(root: Path, raw: Any) -> str:
    """The form a path is stored in: relative to the root when given inside it. Refuses
    (400 path_not_allowed) anything that, symlinks resolved, is not under the root."""
    if not isinstance(raw, str) or not raw.strip() or len(raw) > MAX_PATH or "\x00" in raw:
        raise DomainError("invalid_field", f"path is 1–{MAX_PATH} characters.", field="path")
    raw = raw.strip()
    given = Path(raw)
    if given.is_absolute():
        normal = Path(os.path.normpath(given))
        try:
            text = str(normal.relative_to(root))
        except ValueError:
            text = str(normal)
    else:
        text = os.path.normpath(raw)
    resolve_path(root, text)
    return text


def resolve_path(root: Path, stored: str) -> Path:
    """The real file a stored path names, re-checked against the root (symlinks resolved)."""
    candidate = Path(stored)
    if not candidate.is_absolute():
        candidate = root / candidate
    real = candidate.resolve()
    if real != root and root not in real.parents:
        raise DomainError("path_not_allowed",
                          "Recordings must be files under the configured recordings folder.",
                          field="path")
    return real


def parse_instant(value: Any, name: str) -> dt.datetime:
    """An ISO 8601 instant with a UTC offset (an NVR's local time without one is ambiguous)."""
    if not isinstance(value, str) or len(value) > 40:
        raise DomainError("invalid_field", f"{name} is an ISO 8601 time with a UTC offset.", field=name)
    try:
        parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise DomainError("invalid_field", f"{name} is an ISO 8601 time with a UTC offset.",
                          field=name) from None
    if parsed.tzinfo is None:
        raise DomainError("invalid_field", f"{name} needs a UTC offset (Z or +08:00).", field=name)
    return parsed.astimezone(UTC)


# --- recordings -------------------------------------------------------------------------------

@dataclass(frozen=True)
class RecordingRequest:
    camera_id: str
    path: str            # as stored
    real_path: Path      # the file read
    started_at: dt.datetime


def validate_recording(root: Path, camera_id: str, data: dict[str, Any]) -> RecordingRequest:
    """Check a registration's body (no database, no file reading beyond existence)."""
    if data.get("path") in (None, ""):
        raise DomainError("missing_field", "Missing field: path.", fields=["path"])
    if data.get("started_at") in (None, ""):
        raise DomainError("missing_field", "Missing field: started_at.", fields=["started_at"])
    path = stored_path(root, data.get("path"))
    real = resolve_path(root, path)
    started_at = parse_instant(data.get("started_at"), "started_at")
    if not real.is_file():
        raise DomainError("video_not_found", f"No video file at {path}.", field="path")
    return RecordingRequest(camera_id, path, real, started_at)


def cameras_of_file(s: Session, root: Path, req: RecordingRequest) -> list[str]:
    """The cameras a file is footage of: those it is registered under (by its stored path or
    the file it resolves to) and the one its name gives the folder watcher. The recordings
    folder is the site's, so this is what ties a file to a warehouse."""
    paths = {req.path}
    try:
        paths.add(str(req.real_path.relative_to(root)))
    except ValueError:
        pass
    cameras = set(s.scalars(select(Camera.camera_id).join(Recording, Recording.camera_id == Camera.id)
                            .where(Recording.path.in_(sorted(paths)))))
    named = domain.parse_recording_name(req.real_path.name)
    if named is not None and s.scalar(select(Camera.id).where(Camera.camera_id == named[0])):
        cameras.add(named[0])
    return sorted(cameras)


def probe(real_path: Path) -> Any:
    """video.probe, its refusals as DomainErrors (400 video_not_found / unreadable_video)."""
    from floor.evidence import video

    try:
        return video.probe(str(real_path))
    except video.VideoError as exc:
        raise DomainError(exc.code, exc.message, field="path") from None


def store_recording(s: Session, req: RecordingRequest, info: Any, actor: Actor) -> tuple[Recording, bool]:
    """Store a probed recording; the same (camera, path) again updates it."""
    camera = camera_by_id(s, req.camera_id)
    if info.frames <= 0 or not info.fps or info.fps <= 0:
        raise DomainError("unreadable_video", "The file holds no frames at a known rate.", field="path")
    seg = Segment(0, camera.camera_id, req.path, req.started_at, float(info.fps), int(info.frames))
    row = s.scalar(select(Recording).where(Recording.camera_id == camera.id,
                                           Recording.path == req.path))
    created = row is None
    if row is None:
        row = Recording(camera_id=camera.id, camera=camera, path=req.path, registered_by=actor.name)
        s.add(row)
    row.started_at, row.ends_at = req.started_at, seg.ends_at
    row.frames, row.fps = int(info.frames), float(info.fps)
    row.width, row.height, row.codec = int(info.width), int(info.height), str(info.codec)[:32]
    row.keyframes = [int(k) for k in info.keyframes]
    s.flush()
    return row, created


def recording_view(row: Recording) -> dict[str, Any]:
    return {"recording_id": row.id, "camera_id": row.camera.camera_id, "path": row.path,
            "started_at": row.started_at.isoformat(), "ends_at": row.ends_at.isoformat(),
            "frames": row.frames, "fps": row.fps, "width": row.width, "height": row.height,
            "codec": row.codec}


def recording_by_id(s: Session, recording_id: int) -> Recording:
    row = s.get(Recording, recording_id)
    if row is None:
        raise DomainError("unknown_recording", f"No recording {recording_id}.", 404)
    return row


def segment_of(row: Recording) -> Segment:
    return Segment(row.id, row.camera.camera_id, row.path, row.started_at, row.fps, row.frames)


# --- watched folder ---------------------------------------------------------------------------

def new_folder_files(s: Session, root: Path, folder: Path) -> list[RecordingRequest]:
    """Files in `folder` named `<camera_id>_<YYYYmmddTHHMMSSZ>.(mp4|avi|mkv)` of a known
    camera and not registered yet."""
    folder_real = resolve_path(root, str(folder))
    if not folder_real.is_dir():
        return []
    cameras = {c.camera_id: c for c in s.scalars(select(Camera))}
    known = {(cid, p) for cid, p in s.execute(select(Recording.camera_id, Recording.path))}
    found: list[RecordingRequest] = []
    for entry in sorted(folder_real.iterdir()):
        parsed = domain.parse_recording_name(entry.name)
        if parsed is None or parsed[0] not in cameras or not entry.is_file():
            continue
        try:
            path = stored_path(root, str(entry))
            real = resolve_path(root, path)
        except DomainError:
            continue
        if (cameras[parsed[0]].id, path) in known:
            continue
        found.append(RecordingRequest(parsed[0], path, real, parsed[1]))
    return found


def probe_all(requests: Iterable[RecordingRequest]) -> list[tuple[RecordingRequest, Any]]:
    """Probe each file; unreadable ones (still being written, say) are left for next time."""
    out = []
    for req in requests:
        try:
            out.append((req, probe(req.real_path)))
        except DomainError:
            continue
    return out


def scan_recordings_folder(s: Session, folder: str | Path, root: Path | None = None,
                           actor: Actor | None = None) -> list[Recording]:
    """Register the new recording files of known cameras found in `folder` (idempotent).
    Probes inside the caller's session: background work should rather plan with
    `new_folder_files`, probe with `probe_all`, then store in a short write."""
    from flask import current_app

    root = root or recordings_root(current_app.config)
    actor = actor or Actor("recordings-watch", "system")
    planned = probe_all(new_folder_files(s, root, Path(folder)))
    return [store_recording(s, req, info, actor)[0] for req, info in planned]


# --- evidence of an order ---------------------------------------------------------------------

def order_window(s: Session, order: Order) -> tuple[dt.datetime, dt.datetime] | None:
    """The order's packing in server times (`domain.packing_window`): its pack sessions'
    opening and closing, its scans' arrival. An order that never had either (its statuses set
    by hand) falls back to its `packing` and `packed` statuses."""
    from floor.scan.models import ScanEvent

    sessions = s.execute(select(PackSession.opened_at, PackSession.closed_at)
                         .where(PackSession.order_id == order.id)).all()
    received = list(s.scalars(select(ScanEvent.received_at).where(ScanEvent.order_id == order.id)))
    span = domain.packing_window([o for o, _ in sessions], [c for _, c in sessions if c is not None],
                                 received)
    if span is not None:
        return span
    events = s.execute(select(StatusEvent.status, StatusEvent.at)
                       .where(StatusEvent.order_id == order.id,
                              StatusEvent.status.in_(("packing", "packed")))).all()
    opened = [at for status, at in events if status == "packing"]
    if not opened:
        return None
    start = min(opened)
    return start, max([start, *(at for status, at in events if status == "packed" and at >= start)])


def order_evidence(s: Session, order: Order, margin_s: float, root: Path,
                   frame_url: Callable[[int, int], str]) -> dict[str, Any]:
    """The clips covering the order's packing, each scan at its exact frame."""
    from floor.scan.models import ScanEvent

    snapshot_hash = order.snapshot.content_hash if order.snapshot is not None else None
    span = order_window(s, order)
    if span is None:
        return {"order_no": order.order_no, "clips": [], "snapshot_hash": snapshot_hash,
                "window": None}
    start, end = span
    margin = dt.timedelta(seconds=margin_s)
    lo, hi = start - margin, end + margin
    scans = s.scalars(select(ScanEvent).where(ScanEvent.order_id == order.id)
                      .order_by(ScanEvent.at, ScanEvent.id)).all()
    # Status changes made at a station (opened, packed, labelled, loaded at a dock, ...) are
    # placed on that station's cameras like scans are.
    statuses = s.scalars(select(StatusEvent).where(StatusEvent.order_id == order.id,
                                                   StatusEvent.station.is_not(None))
                         .order_by(StatusEvent.seq)).all()
    stations = {e.station for e in scans}
    stations.update(e.station for e in statuses
                    if e.station and e.status in ("packing", "packed"))
    cameras = s.scalars(select(Camera).where(Camera.station.in_(sorted(stations)))
                        .order_by(Camera.camera_id)).all() if stations else []
    clips: list[dict[str, Any]] = []
    for camera in cameras:
        rows = s.scalars(select(Recording).where(Recording.camera_id == camera.id,
                                                 Recording.started_at <= hi,
                                                 Recording.ends_at >= lo)
                         .order_by(Recording.started_at, Recording.id)).all()
        segments = [segment_of(r) for r in rows]
        parts = domain.window(segments, start, end, margin_s)
        offsets = domain.clip_offsets(parts)
        located = [(e, domain.locate(segments, e.at)) for e in scans if e.station == camera.station]
        placed = [(e, domain.locate(segments, e.at)) for e in statuses if e.station == camera.station]
        for (seg, first, last), offset in zip(parts, offsets):
            clip_scans = [
                {"scan_id": e.scan_id, "code": e.raw, "frame": frame, "at": e.at.isoformat(),
                 "offset_s": round(seg.offset_s(frame - first), 6),
                 "verdict": {"ok": e.ok, "code": e.verdict, "message": e.message},
                 "station": e.station, "device_id": e.device_id, "sku": e.sku,
                 "thumbnail_url": frame_url(seg.recording_id, frame)}
                for e, hit in located
                if hit is not None and hit[0] == seg and first <= hit[1] <= last
                for frame in (hit[1],)]
            clip_events = [
                {"seq": e.seq, "status": e.status, "from_status": e.from_status,
                 "at": e.at.isoformat(), "by": e.by, "device_id": e.device_id,
                 "station": e.station, "reason": e.reason, "frame": frame,
                 "offset_s": round(seg.offset_s(frame - first), 6),
                 "thumbnail_url": frame_url(seg.recording_id, frame)}
                for e, hit in placed
                if hit is not None and hit[0] == seg and first <= hit[1] <= last
                for frame in (hit[1],)]
            playback = None
            if camera.nvr_host:
                playback = domain.hikvision_playback_url(
                    camera.nvr_host, camera.nvr_port, camera.nvr_channel or 1,
                    seg.time_of(first), seg.time_of(last + 1))
            clips.append({
                "camera_id": camera.camera_id, "station": camera.station,
                "recording_id": seg.recording_id, "path": seg.path,
                "start_frame": first, "end_frame": last,
                "started_at": seg.started_at.isoformat(), "fps": seg.fps,
                "from": seg.time_of(first).isoformat(), "to": seg.time_of(last + 1).isoformat(),
                "clip_offset_frames": offset, "scans": clip_scans, "events": clip_events,
                "playback_url": playback})
    return {"order_no": order.order_no, "clips": clips, "snapshot_hash": snapshot_hash,
            "window": {"from": lo.isoformat(), "to": hi.isoformat(),
                       "opened_at": start.isoformat(), "sealed_at": end.isoformat()}}


def export_parts(evidence: dict[str, Any], root: Path, camera_id: str | None,
                 max_s: float = float("inf")) -> tuple[str, list[tuple[str, int, int]], float]:
    """The (real path, first, last) parts of one camera's clips, for `video.export_clip`;
    refused (422 clip_too_long) when they would play longer than `max_s`."""
    clips = evidence["clips"]
    if camera_id is None and clips:
        camera_id = clips[0]["camera_id"]
    chosen = [c for c in clips if c["camera_id"] == camera_id]
    if not chosen:
        raise DomainError("no_recordings", "No recording covers this order's packing.", 404)
    fps = float(chosen[0]["fps"])
    length = domain.clip_duration_s([(c["start_frame"], c["end_frame"]) for c in chosen], fps)
    if length > max_s:
        raise DomainError("clip_too_long",
                          f"The clip would play {length:.0f} s; an export is at most {max_s:.0f} s. "
                          "Use the frames or the NVR playback link.", 422,
                          params={"max_s": max_s, "length_s": round(length, 3)})
    parts = [(str(resolve_path(root, c["path"])), c["start_frame"], c["end_frame"]) for c in chosen]
    return camera_id or "", parts, fps
