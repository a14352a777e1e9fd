"""Evidence rules: instants to frames, windows across segments, overlaps, playback URLs."""
from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from floor.evidence.domain import (CachedFile, Segment, cache_evictions, clip_offsets,
                                   hikvision_playback_url, locate, parse_recording_name, window)

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 3, 1, 8, 0, 0, tzinfo=UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(microseconds=round(seconds * 1_000_000))


def seg(rid: int, start_s: float, frames: int, fps: float = 25.0, camera: str = "CAM-P01") -> Segment:
    return Segment(rid, camera, f"{camera}_{rid}.mp4", at(start_s), fps, frames)


# Three files: 0–10 s, a 5 s gap, 15–25 s, then straight on 25–35 s.
A, B, C = seg(1, 0, 250), seg(2, 15, 250), seg(3, 25, 250)
SEGMENTS = [C, A, B]   # any order in


@pytest.mark.parametrize("seconds, expected", [
    (0.0, (1, 0)),
    (0.039999, (1, 0)),
    (0.04, (1, 1)),              # exactly on a frame boundary: the later frame
    (9.96, (1, 249)),
    (9.999999, (1, 249)),
    (10.0, None),                # the end is exclusive
    (12.5, None),                # in the gap
    (15.0, (2, 0)),
    (24.999, (2, 249)),
    (25.0, (3, 0)),              # the next file's frame 0, not past the end of the last
    (34.99, (3, 249)),
    (35.0, None),
    (-0.001, None),
])
def test_locate(seconds, expected):
    found = locate(SEGMENTS, at(seconds))
    assert (None if found is None else (found[0].recording_id, found[1])) == expected


@pytest.mark.parametrize("fps, seconds, frame", [
    (30.0, 1.0, 30), (29.97, 10.0, 299), (12.5, 0.08, 1), (12.5, 0.0799, 0), (1.0, 59.9, 59)])
def test_frame_is_floor_of_elapsed_times_fps(fps, seconds, frame):
    found = locate([seg(9, 0, 10_000, fps)], at(seconds))
    assert found is not None and found[1] == frame


@pytest.mark.parametrize("start, end, margin, expected", [
    (2.0, 3.0, 0.0, [(1, 50, 75)]),
    (2.0, 3.0, 1.0, [(1, 25, 100)]),
    (0.5, 1.0, 5.0, [(1, 0, 150)]),                      # clipped at the file's start
    (8.0, 16.0, 0.0, [(1, 200, 249), (2, 0, 25)]),      # across the gap: two parts
    (20.0, 30.0, 0.0, [(2, 125, 249), (3, 0, 125)]),    # across a boundary without a gap
    (11.0, 14.0, 0.0, []),                               # wholly in the gap
    (11.0, 14.0, 1.5, [(1, 237, 249), (2, 0, 12)]),
    (3.0, 2.0, 0.0, [(1, 50, 75)]),                      # reversed ends are swapped
    (-10.0, 100.0, 0.0, [(1, 0, 249), (2, 0, 249), (3, 0, 249)]),
])
def test_window(start, end, margin, expected):
    parts = window(SEGMENTS, at(start), at(end), margin)
    assert [(s.recording_id, a, b) for s, a, b in parts] == expected


def test_overlap_prefers_the_later_started_segment():
    # An NVR restart: the old file runs to 12 s, the new one started at 10 s.
    old, new = seg(1, 0, 300), seg(2, 10, 250)
    assert locate([old, new], at(11.0))[0] is new
    assert locate([new, old], at(11.0))[1] == 25
    assert locate([old, new], at(9.99))[0] is old
    parts = window([new, old], at(9.0), at(13.0))
    assert [(s.recording_id, a, b) for s, a, b in parts] == [(1, 225, 249), (2, 0, 75)]


def test_a_short_file_inside_a_long_one_hands_back_to_the_long_one():
    long, short = seg(1, 0, 1000), seg(2, 10, 50)   # 0–40 s and 10–12 s
    parts = window([long, short], at(9.0), at(13.0))
    assert [(s.recording_id, a, b) for s, a, b in parts] == [(1, 225, 249), (2, 0, 49), (1, 300, 325)]
    assert locate([long, short], at(12.0)) == (long, 300)


def test_same_start_ties_are_deterministic():
    a, b = seg(1, 0, 250), seg(2, 0, 250)
    assert locate([a, b], at(1.0))[0] is b
    assert locate([b, a], at(1.0))[0] is b


def test_empty_or_broken_segments_are_ignored():
    assert locate([seg(1, 0, 0)], at(0.0)) is None
    assert window([Segment(1, "c", "p", T0, 0.0, 100)], at(0), at(1)) == []


def test_clip_offsets():
    assert clip_offsets([(A, 200, 249), (B, 0, 25)]) == [0, 50]


@pytest.mark.parametrize("host, port, channel, start, end, expected", [
    ("10.0.0.5", 554, 1, T0, at(65.5),
     "rtsp://10.0.0.5:554/Streaming/tracks/101?starttime=20260301T080000Z&endtime=20260301T080106Z"),
    ("nvr.local", None, 12, at(1.9), at(2.0),
     "rtsp://nvr.local/Streaming/tracks/1201?starttime=20260301T080001Z&endtime=20260301T080002Z"),
    ("fe80::1", 554, 2, T0.astimezone(dt.timezone(dt.timedelta(hours=8))), at(1),
     "rtsp://[fe80::1]:554/Streaming/tracks/201?starttime=20260301T080000Z&endtime=20260301T080001Z"),
])
def test_hikvision_playback_url(host, port, channel, start, end, expected):
    assert hikvision_playback_url(host, port, channel, start, end) == expected


@pytest.mark.parametrize("name, expected", [
    ("CAM-P01_20260301T080000Z.mp4", ("CAM-P01", T0)),
    ("CAM_P01_20260301T080000Z.AVI", ("CAM_P01", T0)),
    ("CAM-P01_20260301T080000Z.mkv", ("CAM-P01", T0)),
    ("CAM-P01_20260301T080000.mp4", None),
    ("CAM-P01_20260301T080000Z.mov", None),
    ("_20260301T080000Z.mp4", None),
    ("notes.txt", None),
])
def test_recording_names(name, expected):
    assert parse_recording_name(name) == expected


# --- properties ------------------------------------------------------------------------------

fps_values = st.sampled_from([1.0, 12.5, 15.0, 24.0, 25.0, 29.97, 30.0, 59.94, 60.0])
segment_lists = st.lists(
    st.tuples(st.integers(-50_000_000, 50_000_000), st.integers(1, 2_000), fps_values),
    min_size=1, max_size=5).map(
    lambda rows: [Segment(i + 1, "CAM", f"f{i}", T0 + dt.timedelta(microseconds=start), fps, frames)
                  for i, (start, frames, fps) in enumerate(rows)])


@settings(max_examples=200, deadline=None)
@given(segment_lists, st.data())
def test_every_instant_inside_a_segment_maps_to_a_frame_in_range(segments, data):
    chosen = data.draw(st.sampled_from(segments))
    span = (chosen.ends_at - chosen.started_at) // dt.timedelta(microseconds=1)
    instant = chosen.started_at + dt.timedelta(microseconds=data.draw(st.integers(0, span - 1)))
    found = locate(segments, instant)
    assert found is not None
    owner, frame = found
    assert 0 <= frame < owner.frames
    assert owner.started_at <= instant < owner.ends_at
    assert owner.started_at >= chosen.started_at   # the latest-started covering file owns it


@settings(max_examples=200, deadline=None)
@given(segment_lists, st.integers(-60_000_000, 60_000_000), st.integers(0, 40_000_000),
       st.floats(0, 5), st.data())
def test_window_parts_are_contiguous_and_agree_with_locate(segments, start_us, length_us, margin, data):
    start = T0 + dt.timedelta(microseconds=start_us)
    end = start + dt.timedelta(microseconds=length_us)
    parts = window(segments, start, end, margin)
    for seg_, first, last in parts:
        assert 0 <= first <= last < seg_.frames
    # Parts are in time order and never overlap in time.
    for (s1, _f1, l1), (s2, f2, _l2) in zip(parts, parts[1:]):
        assert s1.time_of(l1) < s2.time_of(f2) or s1 is not s2
    # Every instant of the window that a segment shows is in a part, with locate's frame.
    lo = start - dt.timedelta(seconds=margin)
    hi = end + dt.timedelta(seconds=margin)
    span = (hi - lo) // dt.timedelta(microseconds=1)
    instant = lo + dt.timedelta(microseconds=data.draw(st.integers(0, max(span, 0))))
    found = locate(segments, instant)
    if found is not None:
        owner, frame = found
        assert any(s is owner and first <= frame <= last for s, first, last in parts)


def cached(*specs: tuple[str, int, float]) -> list[CachedFile]:
    return [CachedFile(name, size, used) for name, size, used in specs]


@pytest.mark.parametrize("files, limit, keep, evicted", [
    (cached(("a", 40, 1), ("b", 40, 2)), 100, (), []),                      # within the limit
    (cached(("a", 50, 1), ("b", 50, 2)), 100, (), []),                      # exactly at it
    (cached(("a", 40, 3), ("b", 40, 1), ("c", 40, 2)), 100, (), ["b"]),     # down to 80
    (cached(("a", 40, 3), ("b", 40, 1), ("c", 45, 2)), 100, (), ["b", "c"]),
    (cached(("a", 40, 3), ("b", 40, 1), ("c", 40, 2)), 100, ("b",), ["c"]),
    (cached(("new", 500, 9), ("old", 10, 1)), 100, ("new",), ["old"]),       # never the new one
    (cached(("a", 30, 5), ("b", 30, 5), ("c", 60, 1)), 100, (), ["c"]),
])
def test_cache_evictions_least_recently_used_first(files, limit, keep, evicted):
    assert cache_evictions(files, limit, frozenset(keep)) == evicted


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**6), st.floats(0, 1e9)), max_size=30),
       st.integers(1, 5 * 10**6))
def test_after_eviction_the_cache_is_under_the_low_water_mark(specs, limit):
    files = [CachedFile(f"f{k}", size, used) for k, (size, used) in enumerate(specs)]
    gone = set(cache_evictions(files, limit))
    left = [f for f in files if f.name not in gone]
    total = sum(f.size for f in files)
    assert not gone if total <= limit else sum(f.size for f in left) <= limit * 0.8
    # Whatever stays was used no earlier than whatever went.
    if gone and left:
        assert min(f.used_at for f in left) >= max(f.used_at for f in files if f.name in gone)


# --- the packing window: server times only ---------------------------------------------------

from floor.evidence.domain import clip_duration_s, packing_window  # noqa: E402

T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.timezone.utc)


def _t(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("opened, closed, received, expected", [
    ([], [], [], None),                                          # never at a station
    ([0], [], [], (0, 0)),                                       # opened, nothing scanned yet
    ([0], [30], [1, 2, 29], (0, 30)),                            # sealed after its last scan
    ([0], [], [1, 2, 40], (0, 40)),                              # still open: its last scan
    ([0, 100], [50, 130], [1, 120], (0, 130)),                   # released, packed elsewhere
    ([], [], [5, 3], (3, 5)),                                    # scans without a session
    ([10], [5], [], (10, 10)),                                   # a close before the opening
])
def test_packing_window_from_server_times(opened, closed, received, expected):
    span = packing_window([_t(x) for x in opened], [_t(x) for x in closed], [_t(x) for x in received])
    assert span == (None if expected is None else (_t(expected[0]), _t(expected[1])))


@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=5),
       st.lists(st.integers(0, 10**6), max_size=5), st.lists(st.integers(0, 10**6), max_size=8))
def test_packing_window_never_leaves_the_server_times(opened, closed, received):
    span = packing_window([_t(x) for x in opened], [_t(x) for x in closed], [_t(x) for x in received])
    assert span is not None
    start, end = span
    every = [_t(x) for x in (*opened, *closed, *received)]
    assert min(every) <= start <= end <= max(every)
    assert start == _t(min([*opened, *received]))


def test_clip_duration():
    assert clip_duration_s([(0, 199), (0, 149), (0, 50)], 25) == pytest.approx(16.04)
    assert clip_duration_s([], 25) == 0 and clip_duration_s([(0, 9)], 0) == 0
