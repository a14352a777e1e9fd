"""A simulated station camera: recordings whose every frame says which frame it is.

Each frame carries its absolute frame number and its wall-clock time twice:

- as text (``cv2.putText``) for people looking at a thumbnail or a clip;
- as a block code along the bottom edge for machines: a row of 32 equal cells across the full
  width, black = 1, white = 0: a guard (black, white), 24 bits of the frame number (most
  significant first), a 4-bit check (the sum of the number's six nibbles, mod 16) and a closing
  guard (white, black). The cells are sized from the frame width, so the code survives H.264
  at small sizes and scaling; :func:`frame_number` reads it back from any decoded frame and
  raises ``ValueError`` when the guards or the check do not match.

:func:`record` writes one file: H.264 in MP4 through PyAV (libx264 with a fixed GOP,
B-frames, scene-cut detection off so every GOP has the same length) or Motion-JPEG in AVI
through OpenCV's ``VideoWriter`` (opencv-python-headless writes no H.264; PyAV's wheels carry
libx264). :func:`record_segments` writes a camera's consecutive segment files, with gaps and
restarts, named as an NVR exports them: ``<camera_id>_<YYYYmmddTHHMMSSZ>.<ext>``.
"""
from __future__ import annotations

import datetime as dt
import os
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import cv2
import numpy as np

CELLS = 32
DATA_BITS = 24
CHECK_BITS = 4
MAX_NUMBER = (1 << DATA_BITS) - 1
CODE_HEIGHT_FRACTION = 1 / 7       # of the frame height, at the bottom
DEFAULT_START = dt.datetime(2026, 11, 22, 8, 0, 0, tzinfo=dt.timezone.utc)
EXTENSIONS = {"h264": "mp4", "mjpg": "avi", "mpegts": "ts"}


def _check(number: int) -> int:
    return sum((number >> shift) & 0xF for shift in range(0, DATA_BITS, 4)) & 0xF


def code_bits(number: int) -> list[int]:
    """The 32 cells for `number` (1 = black)."""
    if not 0 <= number <= MAX_NUMBER:
        raise ValueError(f"frame number {number} does not fit in {DATA_BITS} bits")
    data = [(number >> (DATA_BITS - 1 - i)) & 1 for i in range(DATA_BITS)]
    check = [(_check(number) >> (CHECK_BITS - 1 - i)) & 1 for i in range(CHECK_BITS)]
    return [1, 0, *data, *check, 0, 1]


def _code_band(height: int) -> tuple[int, int]:
    band = max(6, int(round(height * CODE_HEIGHT_FRACTION)))
    return height - band, height


def _cell_edges(width: int) -> list[int]:
    return [int(round(i * width / CELLS)) for i in range(CELLS + 1)]


def draw_code(img: np.ndarray, number: int) -> None:
    """Burn the block code for `number` into the bottom band of `img` (BGR, in place)."""
    h, w = img.shape[:2]
    top, bottom = _code_band(h)
    edges = _cell_edges(w)
    for i, bit in enumerate(code_bits(number)):
        img[top:bottom, edges[i]:edges[i + 1]] = 0 if bit else 255


def frame_number(img: np.ndarray) -> int:
    """The frame number burned into a decoded frame (BGR or grayscale, any size the code
    survives). Raises ValueError when the code cannot be read."""
    gray = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    h, w = gray.shape[:2]
    top, bottom = _code_band(h)
    band_h = bottom - top
    y0, y1 = top + max(1, band_h // 4), bottom - max(1, band_h // 4)
    edges = _cell_edges(w)
    bits = []
    for i in range(CELLS):
        x0, x1 = edges[i], edges[i + 1]
        inset = max(0, (x1 - x0) // 4)
        cell = gray[y0:y1, x0 + inset:max(x0 + inset + 1, x1 - inset)]
        bits.append(1 if float(cell.mean()) < 128 else 0)
    if bits[:2] != [1, 0] or bits[-2:] != [0, 1]:
        raise ValueError("no frame code: guards not found")
    number = int("".join(map(str, bits[2:2 + DATA_BITS])), 2)
    check = int("".join(map(str, bits[2 + DATA_BITS:2 + DATA_BITS + CHECK_BITS])), 2)
    if check != _check(number):
        raise ValueError("frame code check failed")
    return number


def render_frame(number: int, at: dt.datetime, size: tuple[int, int] = (640, 360),
                 camera_id: str = "") -> np.ndarray:
    """One BGR frame: a moving scene, the frame number and time as text, the block code."""
    w, h = size
    img = np.empty((h, w, 3), np.uint8)
    # A slowly drifting background and a box that moves: something for the encoder to predict.
    shade = 90 + (number % 120)
    img[:] = (shade, 110, 160)
    bx = int((number * 3) % max(1, w - w // 5))
    by = int(h * 0.35)
    cv2.rectangle(img, (bx, by), (bx + w // 5, by + h // 4), (40, 200, 240), -1)
    scale = max(0.3, w / 640)
    thick = max(1, int(round(scale * 2)))
    text_h = int(24 * scale) + 4
    stamp = at.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"
    cv2.rectangle(img, (0, 0), (w, 2 * text_h + 6), (255, 255, 255), -1)
    cv2.putText(img, f"{camera_id} #{number}".strip(), (4, text_h), cv2.FONT_HERSHEY_SIMPLEX,
                scale * 0.8, (0, 0, 0), thick, cv2.LINE_AA)
    cv2.putText(img, stamp, (4, 2 * text_h), cv2.FONT_HERSHEY_SIMPLEX, scale * 0.6, (0, 0, 0),
                max(1, thick - 1), cv2.LINE_AA)
    draw_code(img, number)
    return img


def _slots(frames: int, dropped: Iterable[int]) -> list[int]:
    """The camera's frame slots (0-based, from the first) that reach the file."""
    gone = set(dropped)
    slots: list[int] = []
    j = 0
    while len(slots) < frames:
        if j not in gone:
            slots.append(j)
        j += 1
    return slots


def record(path: str | os.PathLike[str], *, frames: int, fps: float = 25, size: tuple[int, int] = (640, 360),
           codec: str = "h264", gop: int = 50, bframes: int = 2, first_number: int = 0,
           started_at: dt.datetime | None = None, camera_id: str = "", crf: int = 23,
           preset: str = "veryfast", container: str = "mp4", dropped: Iterable[int] = ()) -> None:
    """Write `frames` frames to `path`: ``codec="h264"`` is H.264 in MP4 (PyAV, libx264, a
    keyframe every `gop` frames, up to `bframes` B-frames, no scene-cut keyframes, closed
    GOPs; ``container="mpegts"`` for an MPEG-TS file instead); ``codec="mjpg"`` is Motion-JPEG
    in AVI (OpenCV). Frame i shows the number ``first_number + i`` and the time
    ``started_at + i / fps``.

    `dropped` (H.264 only): camera frame slots, counted from the first, that never reach the
    file, as when an NVR drops frames: the numbers and timestamps after a drop jump by one
    slot, so the file's frame index and its time / fps part ways."""
    if frames < 1:
        raise ValueError("frames must be at least 1")
    started_at = started_at or DEFAULT_START
    w, h = size
    path = os.fspath(path)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    slots = _slots(frames, dropped)

    def source() -> Iterator[tuple[int, np.ndarray]]:
        for j in slots:
            yield j, render_frame(first_number + j, started_at + dt.timedelta(seconds=j / fps), size, camera_id)

    if codec == "mjpg":
        if slots[-1] != frames - 1:
            raise ValueError("dropped frames need codec='h264' (OpenCV's writer sets no timestamps)")
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), float(fps), (w, h))
        if not writer.isOpened():
            raise RuntimeError(f"OpenCV cannot write MJPG to {path}")
        try:
            for _, img in source():
                writer.write(img)
        finally:
            writer.release()
        return
    if codec != "h264":
        raise ValueError(f"unknown codec {codec!r} (h264 or mjpg)")
    if w % 2 or h % 2:
        raise ValueError("H.264 (yuv420p) needs an even width and height")
    import av

    rate = Fraction(fps).limit_denominator(100000)
    with av.open(path, "w", format=container) as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.time_base = 1 / rate
        stream.codec_context.gop_size = gop
        stream.codec_context.max_b_frames = bframes
        stream.options = {
            "preset": preset, "crf": str(crf), "g": str(gop), "bf": str(bframes),
            "sc_threshold": "0",
            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes={bframes}:open-gop=0",
        }
        for j, img in source():
            frame = av.VideoFrame.from_ndarray(img, format="bgr24")
            frame.pts = j
            frame.time_base = stream.codec_context.time_base
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def segment_name(camera_id: str, started_at: dt.datetime, codec: str = "h264", container: str = "mp4") -> str:
    stamp = started_at.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    ext = EXTENSIONS["mpegts"] if codec == "h264" and container == "mpegts" else EXTENSIONS[codec]
    return f"{camera_id}_{stamp}.{ext}"


def record_segments(folder: str | os.PathLike[str], camera_id: str, start: dt.datetime,
                    layout: Sequence[tuple[float, float]], *, fps: float = 25,
                    size: tuple[int, int] = (640, 360), codec: str = "h264", gop: int = 50,
                    bframes: int = 2, restarts: Iterable[int] = (), **kwargs: object
                    ) -> list[tuple[str, dt.datetime]]:
    """Write a camera's consecutive segments into `folder`.

    `layout` is ``[(seconds, gap_after_seconds), ...]``: segment k lasts ``seconds`` and the
    next one starts ``gap_after_seconds`` after it ends (0 = back to back). Frame numbers
    count frames since `start` on the camera's clock, so they jump over a gap; a segment whose
    index is in `restarts` is a camera restart: its numbering starts again at 0 (and counts
    from there) while its time goes on. Answers ``[(path, started_at), ...]`` in order."""
    restarts = set(restarts)
    out: list[tuple[str, dt.datetime]] = []
    at = start
    origin = start                        # the camera's numbering counts from here
    for k, (seconds, gap_after) in enumerate(layout):
        if k in restarts:
            origin = at
        frames = max(1, int(round(seconds * fps)))
        first = int(round((at - origin).total_seconds() * fps))
        path = os.path.join(os.fspath(folder), segment_name(camera_id, at, codec, str(kwargs.get("container", "mp4"))))
        record(path, frames=frames, fps=fps, size=size, codec=codec, gop=gop, bframes=bframes,
               first_number=first, started_at=at, camera_id=camera_id, **kwargs)  # type: ignore[arg-type]
        out.append((path, at))
        at = at + dt.timedelta(seconds=frames / fps + gap_after)
    return out
