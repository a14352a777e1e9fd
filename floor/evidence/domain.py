"""Pure evidence rules: which frame of which recording shows an instant, the frames covering a
time window, and an NVR's playback reference.

No Flask, no SQLAlchemy, no OpenCV: `Segment`s in, frame numbers out. A recording's frame `n`
is shown from `started_at + n / fps` to `started_at + (n + 1) / fps`; the frame showing an
instant `t` is `floor((t − started_at) · fps)`, computed on exact fractions (microseconds ×
the float fps as a fraction) so that an instant on a frame boundary never rounds to the
frame before it.

Overlapping segments (an NVR that restarts exports a new file while the old one still runs,
or exports overlapping files around the restart) are resolved deterministically: at any
instant the segment that started *latest* among those covering it owns it (ties: the one
ending later, then the higher recording id). Why the later one: frame times are extrapolated
from each file's frame 0 at the nominal fps, so the error of `started_at + n / fps` grows with
`n`; the file whose frame 0 is nearest is the most accurate. The pre-restart file is also the
one whose last group of pictures is most likely cut short.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterable, Sequence

_US = dt.timedelta(microseconds=1)
UTC = dt.timezone.utc


@dataclass(frozen=True)
class Segment:
    """One recording file of one camera, as the rules need it."""
    recording_id: int
    camera_id: str
    path: str
    started_at: dt.datetime
    fps: float
    frames: int

    @property
    def ends_at(self) -> dt.datetime:
        """The end of the last frame's display (exclusive)."""
        return self.time_of(self.frames)

    def time_of(self, frame: int) -> dt.datetime:
        """When frame `frame` starts showing (microsecond precision, rounded down)."""
        us = Fraction(frame) * 1_000_000 / Fraction(self.fps)
        return self.started_at + dt.timedelta(microseconds=math.floor(us))

    def frame_at(self, at: dt.datetime) -> int:
        """floor((at − started_at) · fps), not clamped."""
        us = (at - self.started_at) // _US
        return math.floor(Fraction(us) * Fraction(self.fps) / 1_000_000)

    def contains(self, at: dt.datetime) -> bool:
        return self.frames > 0 and self.fps > 0 and self.started_at <= at < self.ends_at

    def offset_s(self, frame: int) -> float:
        return frame / self.fps


def _priority(seg: Segment) -> tuple[dt.datetime, dt.datetime, int]:
    return (seg.started_at, seg.ends_at, seg.recording_id)


def _usable(segments: Iterable[Segment]) -> list[Segment]:
    return [s for s in segments if s.frames > 0 and s.fps > 0]


def owner(segments: Iterable[Segment], at: dt.datetime) -> Segment | None:
    """The segment that shows `at`: the latest-started one covering it (see module doc)."""
    covering = [s for s in _usable(segments) if s.contains(at)]
    return max(covering, key=_priority) if covering else None


def locate(segments: Iterable[Segment], at: dt.datetime) -> tuple[Segment, int] | None:
    """(segment, 0-based frame) showing `at`; None in a gap or outside every segment."""
    seg = owner(segments, at)
    if seg is None:
        return None
    return seg, seg.frame_at(at)


def coverage(segments: Iterable[Segment]) -> list[tuple[Segment, dt.datetime, dt.datetime]]:
    """The timeline cut into (owner, from, to) pieces, half-open, in time order, gaps left out;
    adjacent pieces of the same owner merged."""
    segs = _usable(segments)
    bounds = sorted({t for s in segs for t in (s.started_at, s.ends_at)})
    pieces: list[tuple[Segment, dt.datetime, dt.datetime]] = []
    for lo, hi in zip(bounds, bounds[1:]):
        covering = [s for s in segs if s.started_at <= lo and hi <= s.ends_at]
        if not covering:
            continue
        best = max(covering, key=_priority)
        if pieces and pieces[-1][0] == best and pieces[-1][2] == lo:
            pieces[-1] = (best, pieces[-1][1], hi)
        else:
            pieces.append((best, lo, hi))
    return pieces


def window(segments: Iterable[Segment], start: dt.datetime, end: dt.datetime,
           margin_s: float = 0.0) -> list[tuple[Segment, int, int]]:
    """The frames showing [start − margin, end + margin] (both ends included), as
    (segment, first_frame, last_frame) parts in time order, crossing segment boundaries and
    skipping gaps. Every instant of the window that some segment shows is in one part, with
    the frame `locate` gives for it."""
    if end < start:
        start, end = end, start
    margin = dt.timedelta(seconds=max(float(margin_s), 0.0))
    lo, hi = start - margin, end + margin
    parts: list[tuple[Segment, int, int]] = []
    for seg, p0, p1 in coverage(segments):
        if p1 <= lo or p0 > hi:
            continue
        first = seg.frame_at(max(lo, p0))
        # The last instant of the piece is just before p1 (half-open).
        last = seg.frame_at(hi) if hi < p1 else seg.frame_at(p1 - _US)
        first, last = max(first, 0), min(last, seg.frames - 1)
        if first > last:
            continue
        if parts and parts[-1][0] == seg and parts[-1][2] + 1 >= first:
            parts[-1] = (seg, parts[-1][1], max(parts[-1][2], last))
        else:
            parts.append((seg, first, last))
    return parts


def _hik_time(at: dt.datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("naive datetime")
    return at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def hikvision_playback_url(host: str, port: int | None, channel: int, start: dt.datetime,
                           end: dt.datetime) -> str:
    """The RTSP playback reference of a Hikvision NVR channel between two instants:
    `rtsp://host:port/Streaming/tracks/<channel>01?starttime=…Z&endtime=…Z` (track 101 is
    channel 1's main stream). Times are UTC in Hikvision's compact form, the start rounded
    down and the end rounded up to the second so the span covers the window.

    Caveat: some NVR firmware reads these times as the recorder's *local* time despite the
    `Z`; for those, shift the times by the NVR's UTC offset (or set the NVR to UTC)."""
    if end < start:
        start, end = end, start
    start = start.replace(microsecond=0)
    if end.microsecond:
        end = end.replace(microsecond=0) + dt.timedelta(seconds=1)
    netloc = f"[{host}]" if ":" in host and not host.startswith("[") else host
    if port:
        netloc = f"{netloc}:{int(port)}"
    return (f"rtsp://{netloc}/Streaming/tracks/{int(channel)}01"
            f"?starttime={_hik_time(start)}&endtime={_hik_time(end)}")


def packing_window(opened: Iterable[dt.datetime], closed: Iterable[dt.datetime],
                   received: Iterable[dt.datetime]) -> tuple[dt.datetime, dt.datetime] | None:
    """An order's packing as the server saw it, from server times only: from the first opening
    of a pack session (or the first scan's arrival) to the last session's close (sealed,
    released) or the last scan's arrival, whichever is later. A device's clock (a scan's
    client `at`) places that scan's frame, never these bounds: a handheld sending times hours
    off cannot stretch the evidence (and its clip) over someone else's hours. None: never at
    a station."""
    received = list(received)
    starts = [*opened, *received]
    if not starts:
        return None
    start = min(starts)
    return start, max([start, *(t for t in closed if t >= start), *received])


def clip_duration_s(ranges: Iterable[tuple[int, int]], fps: float) -> float:
    """How long a clip of these (first, last) frame ranges plays at `fps`, one after the other."""
    return sum(last - first + 1 for first, last in ranges) / fps if fps > 0 else 0.0


def clip_offsets(parts: Sequence[tuple[Segment, int, int]]) -> list[int]:
    """Where each part starts, in frames, once the parts are exported one after the other."""
    offsets, total = [], 0
    for _seg, first, last in parts:
        offsets.append(total)
        total += last - first + 1
    return offsets


# --- watched folders -----------------------------------------------------------------------

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv")


def parse_recording_name(name: str) -> tuple[str, dt.datetime] | None:
    """`<camera_id>_<YYYYmmddTHHMMSSZ>.(mp4|avi|mkv)` → (camera_id, started_at in UTC)."""
    lower = name.lower()
    suffix = next((s for s in VIDEO_SUFFIXES if lower.endswith(s)), None)
    if suffix is None:
        return None
    stem = name[: -len(suffix)]
    camera_id, sep, stamp = stem.rpartition("_")
    if not sep or not camera_id:
        return None
    try:
        started = dt.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None
    return camera_id, started


# --- the frame and clip cache -------------------------------------------------------------------

@dataclass(frozen=True)
class CachedFile:
    name: str
    size: int
    used_at: float      # last use (the file's mtime, touched on every hit)


def cache_evictions(files: Sequence[CachedFile], limit_bytes: int, keep: frozenset[str] = frozenset(),
                    low_water: float = 0.8) -> list[str]:
    """Least recently used first, the files to delete so that the cache is back under
    `low_water` × `limit_bytes`; nothing while it is within the limit. `keep` (the file just
    written) is never chosen. Going down to the low-water mark, not just under the limit, spares a
    directory scan on every write of a full cache."""
    total = sum(f.size for f in files)
    if total <= limit_bytes:
        return []
    target = int(limit_bytes * low_water)
    out: list[str] = []
    for f in sorted(files, key=lambda f: (f.used_at, f.name)):
        if total <= target:
            break
        if f.name in keep:
            continue
        out.append(f.name)
        total -= f.size
    return out
