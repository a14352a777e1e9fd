"""Recordings read by exact frame: probe, frame lookup, thumbnails, clip export.

No Flask and no database here: paths in, frames and bytes out.

Why ``CAP_PROP_POS_FRAMES`` is not trusted
------------------------------------------
OpenCV's FFmpeg backend turns "go to frame N" into a *timestamp* seek and then guesses which
frame it landed on from the decoded timestamps, the stream's start time and its nominal frame
rate. That guess is only as good as the file: H.264 with long GOPs and B-frames has decode order
!= presentation order and negative decode timestamps; MP4 exports carry edit lists and a start
time that is not 0; NVR files have variable frame timing and dropped frames; and in some
containers ``CAP_PROP_FRAME_COUNT`` is itself an estimate from duration × fps. Some of these
shift the answer by a frame or more, without an error. Measured with OpenCV 5.0.0: on a clean
constant-rate MP4 (GOP 50, B-frames, timestamps from 0 or offset) the naive seek lands exactly;
on the same stream in MPEG-TS (a 12 s file), 14 of 100 random seeks answered another frame (the
demuxer seeks by byte position; on a one-hour TS file none of 100 did), and with two dropped
frames in the file 20 of 100 did (it answers the frame at index / fps seconds, not the index-th
frame; tests/unit/test_video.py shows it). Evidence that is right "for the files we tried" is
not good enough, so it is not relied on.

How exactness is achieved
-------------------------
1. An index per file, built once from PyAV's demuxer (packets only, no decoding; a one-hour
   recording takes well under a second): the presentation timestamp (pts) of every frame,
   sorted, so frame ``i`` *is* the frame whose pts is ``pts[i]``; and the keyframes, the
   frames a decoder can start from (packet key flags, in presentation order).
2. ``read_frame(i)`` seeks the demuxer to the last keyframe at or before ``i`` and decodes
   forward until a frame with exactly ``pts[i]`` comes out; that frame is answered. Landing
   anywhere else (a decoded pts past the target, a missing pts) is detected, and the read is
   retried from an earlier keyframe, then from the start of the file. Nothing is guessed from
   a frame rate.
3. Reads going forward within a GOP continue decoding from where the previous read stopped
   instead of seeking again (thumbnails of consecutive scans, clip export).

Open containers and their indexes are kept in a small thread-safe LRU keyed by path (and checked
against the file's size and mtime). PyAV's seek + decode was measured against the OpenCV
alternative (set ``CAP_PROP_POS_FRAMES`` to the keyframe, then ``grab()`` forward): both exact,
PyAV 2-4× faster per lookup (bench/evidence.py), and its frames carry their pts, which is what
makes the answer verifiable.
"""
from __future__ import annotations

import bisect
import os
import threading
import uuid
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Iterator, Sequence

import cv2
import numpy as np

__all__ = ["VideoError", "VideoInfo", "probe", "read_frame", "frame_times", "thumbnail_jpeg",
           "export_clip", "clear_cache"]

CACHE_SIZE = 8


class VideoError(ValueError):
    """``code``: ``video_not_found`` | ``unreadable_video`` | ``frame_out_of_range``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass(frozen=True)
class VideoInfo:
    frames: int
    fps: float
    width: int
    height: int
    codec: str
    keyframes: tuple[int, ...]
    opencv_frames: int = 0          # CAP_PROP_FRAME_COUNT as OpenCV reported it (an estimate)

    @property
    def duration_s(self) -> float:
        return self.frames / self.fps if self.fps > 0 else 0.0


# --- the per-file index and open container -------------------------------------------------

class _Handle:
    """One open container with its index; use only under ``lock``."""

    def __init__(self, path: str, stamp: tuple[int, int]) -> None:
        import av

        self.path = path
        self.stamp = stamp
        self.lock = threading.Lock()
        try:
            self.container = av.open(path)
        except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
            raise VideoError("unreadable_video", f"cannot open {os.path.basename(path)}: {exc}") from None
        try:
            if not self.container.streams.video:
                raise VideoError("unreadable_video", f"{os.path.basename(path)} has no video stream")
            self.stream = self.container.streams.video[0]
            self.codec = self.stream.codec_context.name
            self._build_index()
        except BaseException:
            self.container.close()
            raise
        self._gen: Iterator[Any] | None = None
        self.pos = -1                      # index of the last frame the generator gave
        self.closed = False

    def _build_index(self) -> None:
        import av

        entries: list[tuple[int, bool]] = []
        missing_pts = False
        try:
            for packet in self.container.demux(self.stream):
                if packet.size == 0 or packet.is_discard:
                    continue
                if packet.pts is None:
                    missing_pts = True
                    break
                entries.append((packet.pts, packet.is_keyframe))
            if missing_pts:         # raw streams without timestamps: decode once to learn them
                self.container.seek(0)
                entries = []
                for n, frame in enumerate(self.container.decode(self.stream)):
                    entries.append((frame.pts if frame.pts is not None else n, bool(frame.key_frame)))
        except av.error.FFmpegError as exc:
            raise VideoError("unreadable_video", f"cannot read {os.path.basename(self.path)}: {exc}") from None
        if not entries:
            raise VideoError("unreadable_video", f"{os.path.basename(self.path)} has no video frames")
        entries.sort()
        self.pts = [p for p, _ in entries]
        if len(set(self.pts)) != len(self.pts):
            raise VideoError("unreadable_video", f"{os.path.basename(self.path)} repeats timestamps")
        self.keyframes = [i for i, (_, key) in enumerate(entries) if key] or [0]
        if self.keyframes[0] != 0:
            self.keyframes.insert(0, 0)    # the start of the file is always a place to start from
        self.index_of = {p: i for i, p in enumerate(self.pts)}
        self.container.seek(0)
        self._gen = None

    # -- decoding --
    def _seek(self, keyframe: int) -> None:
        if keyframe < 0:                   # from the very start: reopen, no seeking at all
            import av

            self.container.close()
            self.container = av.open(self.path)
            self.stream = self.container.streams.video[0]
        else:
            self.container.seek(self.pts[keyframe], stream=self.stream, backward=True, any_frame=False)
        self._gen = self.container.decode(self.stream)
        self.pos = -1

    def _next(self) -> Any | None:
        assert self._gen is not None
        try:
            frame = next(self._gen)
        except StopIteration:
            self._gen = None
            return None
        self.pos = self.index_of.get(frame.pts, self.pos) if frame.pts is not None else self.pos
        return frame

    def frames(self, first: int, last: int, keyframes: Sequence[int] | None = None) -> Iterator[Any]:
        """Yield the PyAV frames ``first..last`` (inclusive), in order, each verified by pts."""
        want = first
        starts = self._start_points(first, keyframes)
        while want <= last:
            if not starts:
                raise VideoError("unreadable_video",
                                 f"frame {want} of {os.path.basename(self.path)} cannot be decoded")
            start = starts.pop(0)
            # Continue where the last read stopped when no keyframe lies in between.
            if not (self._gen is not None and start <= self.pos < want):
                self._seek(start)
            while want <= last:
                frame = self._next()
                if frame is None or frame.pts is None:
                    break
                got = self.index_of.get(frame.pts)
                if got is None or got > want:
                    break                     # landed past the target: start earlier
                if got == want:
                    yield frame
                    want += 1
            else:
                return
            self._gen = None

    def _start_points(self, index: int, keyframes: Sequence[int] | None) -> list[int]:
        """Keyframes to seek to, best first: the last one <= index, then ones further back
        (1, 2, 4, 8 ... keyframes earlier: a demuxer that seeks by byte position, as MPEG-TS
        does, may land past the one asked for), then -1: reopen and decode from the start."""
        keys = self.keyframes
        if keyframes:
            given = sorted(k for k in keyframes if 0 <= k < len(self.pts))
            if given and set(given) <= set(keys):
                keys = given
        at = bisect.bisect_right(keys, index) - 1
        points: list[int] = []
        step = 0
        while at - step >= 0 and len(points) < 6:
            points.append(keys[at - step])
            step = 1 if step == 0 else step * 2
        return points + [-1]

    def close(self) -> None:
        self._gen = None
        self.closed = True
        try:
            self.container.close()
        except Exception:  # noqa: BLE001 - closing is best effort
            pass


_cache: OrderedDict[str, _Handle] = OrderedDict()
_cache_lock = threading.Lock()


def _stamp(path: str) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise VideoError("video_not_found", f"no such recording: {os.path.basename(path)}") from None
    except OSError as exc:
        raise VideoError("video_not_found", f"cannot read {os.path.basename(path)}: {exc}") from None
    if not os.path.isfile(path):
        raise VideoError("video_not_found", f"not a file: {os.path.basename(path)}")
    return (st.st_size, st.st_mtime_ns)


def _handle(path: str) -> _Handle:
    """The cached handle for `path` (opened and indexed when missing or the file changed)."""
    path = os.path.abspath(os.fspath(path))
    stamp = _stamp(path)
    with _cache_lock:
        handle = _cache.get(path)
        if handle is not None and handle.stamp == stamp:
            _cache.move_to_end(path)
            return handle
    fresh = _Handle(path, stamp)          # opened and indexed outside the cache lock
    evicted: list[_Handle] = []
    with _cache_lock:
        current = _cache.get(path)
        if current is not None and current.stamp == stamp:
            evicted.append(fresh)         # another thread was quicker
            fresh = current
            _cache.move_to_end(path)
        else:
            if current is not None:
                evicted.append(current)
            _cache[path] = fresh
            while len(_cache) > CACHE_SIZE:
                evicted.append(_cache.popitem(last=False)[1])
    for old in evicted:
        with old.lock:
            old.close()
    return fresh


@contextmanager
def _using(path: str) -> Iterator[_Handle]:
    """The cached handle for `path`, its lock held. A handle evicted meanwhile is still used
    if it is open (the evicting thread closes it once this one is done); when eviction keeps
    winning (more files in use than the cache holds), a private handle is used and closed."""
    for _ in range(3):
        handle = _handle(path)
        with handle.lock:
            if not handle.closed:
                yield handle
                return
    abspath = os.path.abspath(os.fspath(path))
    private = _Handle(abspath, _stamp(abspath))
    try:
        yield private
    finally:
        private.close()


def clear_cache() -> None:
    """Close every cached container (tests; before deleting or replacing files)."""
    with _cache_lock:
        handles = list(_cache.values())
        _cache.clear()
    for h in handles:
        with h.lock:
            h.close()


# --- public API ----------------------------------------------------------------------------

def probe(path: str) -> VideoInfo:
    """Frame count, fps, size and codec of a recording, and its keyframes.

    Count, fps and size are read with OpenCV; the count is cross-checked against PyAV's
    demuxer, whose packet count is exact (``CAP_PROP_FRAME_COUNT`` is duration × fps for some
    containers), and the exact count is answered (OpenCV's is kept in ``opencv_frames``)."""
    path = os.fspath(path)
    _stamp(path)
    cap = cv2.VideoCapture(path)
    try:
        cv_ok = cap.isOpened()
        cv_frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cv_ok else 0
        cv_fps = float(cap.get(cv2.CAP_PROP_FPS)) if cv_ok else 0.0
        cv_w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) if cv_ok else 0
        cv_h = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) if cv_ok else 0
    finally:
        cap.release()
    with _using(path) as handle:
        stream = handle.stream
        frames = len(handle.pts)
        rate = stream.average_rate or stream.guessed_rate
        av_fps = float(rate) if rate else 0.0
        fps = cv_fps if cv_fps > 0 else av_fps     # nominal rate; frame_times() has the exact times
        if fps <= 0 and frames > 1 and stream.time_base:
            span = (handle.pts[-1] - handle.pts[0]) * float(stream.time_base)
            fps = (frames - 1) / span if span > 0 else 0.0
        width = cv_w or stream.codec_context.width
        height = cv_h or stream.codec_context.height
        if not width or not height:
            raise VideoError("unreadable_video", f"{os.path.basename(path)}: no frame size")
        return VideoInfo(frames=frames, fps=fps, width=width, height=height, codec=handle.codec,
                         keyframes=tuple(handle.keyframes), opencv_frames=cv_frames)


def _check_range(handle: _Handle, first: int, last: int) -> None:
    n = len(handle.pts)
    if not (0 <= first <= last < n):
        raise VideoError("frame_out_of_range",
                         f"frames {first}..{last} not in 0..{n - 1} of {os.path.basename(handle.path)}")


def read_frame(path: str, index: int, keyframes: Sequence[int] | None = None) -> np.ndarray:
    """Frame `index` (0-based, presentation order) as a BGR array, exactly that frame."""
    with _using(path) as handle:
        _check_range(handle, index, index)
        for frame in handle.frames(index, index, keyframes):
            return frame.to_ndarray(format="bgr24")
    raise VideoError("unreadable_video", f"frame {index} of {os.path.basename(path)} cannot be decoded")


def frame_times(path: str) -> list[float]:
    """Each frame's presentation time in seconds from the first frame, by index: the exact
    time -> frame mapping when a file has dropped frames or uneven timing (otherwise i / fps)."""
    with _using(path) as handle:
        base = float(handle.stream.time_base or 0)
        first = handle.pts[0]
        return [(p - first) * base for p in handle.pts]


def thumbnail_jpeg(path: str, index: int, keyframes: Sequence[int] | None = None,
                   width: int = 320, quality: int = 80) -> bytes:
    """Frame `index` as a JPEG `width` pixels wide (aspect kept; never enlarged)."""
    img = read_frame(path, index, keyframes)
    h, w = img.shape[:2]
    if width and width < w:
        height = max(1, int(round(h * width / w)))
        img = cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise VideoError("unreadable_video", "cannot encode the thumbnail")
    return buf.tobytes()


def _even(v: float) -> int:
    return max(2, int(round(v / 2)) * 2)


def export_clip(parts: Sequence[tuple[str, int, int]], out_path: str, fps: float,
                width: int | None = None, *, preset: str = "veryfast", crf: int = 23) -> int:
    """Write frames ``first..last`` (inclusive) of each ``(path, first, last)`` in turn into one
    H.264 MP4 (libx264, yuv420p, moov atom first) at `out_path`, atomically (a temporary file in
    the same folder, then a rename). Scaled to `width` (aspect kept) if given, else the first
    part's size; sizes are rounded to even numbers. Answers the number of frames written."""
    import av

    if not parts:
        raise VideoError("frame_out_of_range", "no frames to export")
    if not fps or fps <= 0:
        raise ValueError("fps must be positive")
    for path, first, last in parts:                # every range checked before writing anything
        with _using(path) as handle:
            _check_range(handle, first, last)
    with _using(parts[0][0]) as handle:
        src_w, src_h = handle.stream.codec_context.width, handle.stream.codec_context.height
    if width:
        out_w, out_h = _even(width), _even(src_h * width / src_w)
    else:
        out_w, out_h = _even(src_w), _even(src_h)

    out_path = os.fspath(out_path)
    folder = os.path.dirname(os.path.abspath(out_path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(out_path)}.{uuid.uuid4().hex[:8]}.part")
    rate = Fraction(fps).limit_denominator(100000)
    written = 0
    try:
        with av.open(tmp, "w", format="mp4", options={"movflags": "+faststart"}) as out:
            stream = out.add_stream("libx264", rate=rate)
            stream.width, stream.height, stream.pix_fmt = out_w, out_h, "yuv420p"
            stream.codec_context.time_base = 1 / rate
            stream.options = {"preset": preset, "crf": str(crf)}
            for path, first, last in parts:
                with _using(path) as handle:
                    _check_range(handle, first, last)
                    for frame in handle.frames(first, last):
                        pic = frame.reformat(width=out_w, height=out_h, format="yuv420p")
                        pic.pts = written
                        pic.pict_type = 0     # NONE: let the encoder place keyframes (MJPEG frames are all I)
                        pic.time_base = stream.codec_context.time_base
                        for packet in stream.encode(pic):
                            out.mux(packet)
                        written += 1
            for packet in stream.encode():
                out.mux(packet)
        os.replace(tmp, out_path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return written
