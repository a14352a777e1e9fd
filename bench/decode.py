"""The decode benchmark: pyzbar alone, zxing-cpp alone and floor's pipeline on barcode images.

Run by `make bench` after the scan and push benchmarks (``bench/run.py``), or alone with
``.venv/bin/python bench/run.py --only decode`` (or ``.venv/bin/python bench/decode.py``).

Two corpora:

- ``shared``: the real images in ``../shared/testdata/`` (next to the repository, never copied
  into it): zxing-cpp's test samples (expected text in ``N.txt``, the ``.bin`` payloads skipped)
  and pyzbar's test images with the texts its own tests expect;
- ``generated``: EAN-13 and Code128 labels rendered by python-barcode, QR Code and DataMatrix by
  zxing-cpp's writer, each degraded (seeded): Gaussian blur, rotation, Gaussian noise, low
  contrast, a scratch, an occlusion, a perspective/crumple warp, a low-quality JPEG, all of
  these at once (a damaged label) and a 12 MP phone photo with the label in it.

For each image and engine: was every expected text read (detection), and how long the engine
took on the grayscale array (the best of ``--repeats`` runs; the image decoding is not timed).
The engines all get the same array: ``pyzbar`` and ``zxing-cpp`` are floor's adapters called
alone (``imaging.read_zbar`` / ``imaging.read_zxing``), ``floor`` is ``imaging.decode_array``.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
try:
    import floor_sim  # noqa: F401
except ImportError:  # not installed: use the source tree
    sys.path.insert(0, str(ROOT / "device-sim"))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from floor.scan import imaging  # noqa: E402

TESTDATA = ROOT.parent / "shared" / "testdata"
MEDIAN_TARGET_MS = 10.0
ENGINES: dict[str, Callable[[np.ndarray], tuple[list[imaging.Read], str | None]]] = {
    "pyzbar": lambda gray: (imaging.read_zbar(gray), None),
    "zxing-cpp": lambda gray: (imaging.read_zxing(gray), None),
    "floor": imaging.decode_passes,   # = imaging.decode_array, and which pass read
}
FORMAT_ORDER = ["EAN-13", "Code128", "ITF", "QRCode", "DataMatrix", "DataBar", "DataBarExpanded"]
# zxing-cpp's sample folders, by format.
SHARED_FOLDERS = {"ean13": "EAN-13", "code128": "Code128", "itf": "ITF", "qrcode": "QRCode",
                  "datamatrix": "DataMatrix", "rss14": "DataBar", "rssexpanded": "DataBarExpanded"}
# pyzbar's test images and the texts pyzbar's own tests expect (empty.png and short_codeI25.png
# are left out: no barcode, and a code whose text its tests do not give).
PYZBAR_SAMPLES = {"code128.png": ("Code128", (b"Foramenifera", b"Rana temporaria")),
                  "code128_null_character.png": ("Code128", (b"Hello\x00Goodbye",)),
                  "qrcode.png": ("QRCode", (b"Thalassiodracon",)),
                  "qrcode_rotated.png": ("QRCode", (b"Thalassiodracon",))}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@dataclass
class Sample:
    corpus: str                   # "shared" | "generated"
    format: str                   # contract name: "EAN-13", "QRCode", ...
    name: str                     # e.g. "qrcode-2/12.webp" or "EAN-13 #1 blur 2.5"
    gray: np.ndarray
    expected: tuple[bytes, ...]   # every one must be read
    variant: str = ""             # generated: the degradation


def _encodings(read: imaging.Read) -> set[bytes]:
    return {read.text.encode("utf-8", "surrogateescape"), read.text.encode("latin-1", "replace")}


def matches(reads: list[imaging.Read], expected: tuple[bytes, ...]) -> bool:
    """Every expected payload among the reads (texts compared as UTF-8 or as Latin-1 bytes)."""
    got: set[bytes] = set()
    for read in reads:
        got |= _encodings(read)
    return all(e in got for e in expected)


def wrong(reads: list[imaging.Read], expected: tuple[bytes, ...]) -> list[str]:
    """The texts read that are none of the expected ones."""
    return [r.text for r in reads if not _encodings(r) & set(expected)]


# --- corpus (a): the shared test data ------------------------------------------------------------

def shared_samples(root: Path = TESTDATA) -> list[Sample]:
    samples: list[Sample] = []
    zx = root / "zxing-cpp" / "test" / "samples"
    if zx.is_dir():
        for folder in sorted(zx.iterdir()):
            fmt = SHARED_FOLDERS.get(folder.name.rsplit("-", 1)[0])
            if fmt is None:
                continue
            for image in sorted(folder.iterdir()):
                text = image.with_suffix(".txt")
                if image.suffix not in (".png", ".webp", ".jpg") or not text.exists():
                    continue  # .bin payloads have no text to compare
                gray = cv2.imread(str(image), cv2.IMREAD_GRAYSCALE)
                if gray is not None:
                    samples.append(Sample("shared", fmt, f"{folder.name}/{image.name}", gray,
                                          (text.read_bytes(),)))
    pz = root / "pyzbar" / "pyzbar" / "tests"
    for name, (fmt, expected) in PYZBAR_SAMPLES.items():
        gray = cv2.imread(str(pz / name), cv2.IMREAD_GRAYSCALE) if (pz / name).exists() else None
        if gray is not None:
            samples.append(Sample("shared", fmt, f"pyzbar/{name}", gray, expected))
    return samples


# --- corpus (b): generated, degraded labels --------------------------------------------------------

PAPER = 235


def _render(fmt: str, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """One label: the symbol on white with its quiet zone, grayscale uint8; and its text."""
    import zxingcpp

    if fmt in ("EAN-13", "Code128"):
        import barcode
        from barcode.writer import ImageWriter

        if fmt == "EAN-13":
            code = barcode.get("ean13", "".join(str(d) for d in rng.integers(0, 10, 12)),
                               writer=ImageWriter())
            text = code.get_fullcode()
        else:
            letters = "".join(chr(65 + int(c)) for c in rng.integers(0, 26, 2))
            text = f"PKG-{int(rng.integers(0, 10**6)):06d}-{letters}"
            code = barcode.get("code128", text, writer=ImageWriter())
        image = code.render({"module_width": 0.25, "module_height": 9.0, "quiet_zone": 4.0,
                             "font_size": 8, "text_distance": 3.0, "dpi": 240})
        return np.asarray(image.convert("L")), text
    if fmt == "QRCode":
        text = f"https://floor.example/w/JX{int(rng.integers(0, 10**9)):09d}"
        fmt_z, scale, opts = zxingcpp.BarcodeFormat.QRCode, 4, {"ec_level": "M"}
    else:
        text = f"SKU {int(rng.integers(0, 10**6)):06d} LOT L{int(rng.integers(0, 10**4)):04d}"
        fmt_z, scale, opts = zxingcpp.BarcodeFormat.DataMatrix, 5, {"force_square": True}
    symbol = zxingcpp.write_barcode_to_image(zxingcpp.create_barcode(text, fmt_z, **opts), scale=scale)
    return np.asarray(symbol).astype(np.uint8), text


def _on_paper(symbol: np.ndarray, margin: int = 24) -> np.ndarray:
    h, w = symbol.shape
    canvas = np.full((h + 2 * margin, w + 2 * margin), 255, np.uint8)
    canvas[margin:margin + h, margin:margin + w] = symbol
    # the ink is not quite black and the paper not quite white
    return (canvas.astype(np.float32) * (PAPER - 25) / 255 + 25).astype(np.uint8)


def _rotate(img: np.ndarray, degrees: float) -> np.ndarray:
    h, w = img.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(h * sin + w * cos), int(h * cos + w * sin)
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    return cv2.warpAffine(img, m, (nw, nh), flags=cv2.INTER_LINEAR, borderValue=PAPER)


def _noise(img: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(img, (0, 0), sigma)


def _low_contrast(img: np.ndarray, levels: int = 40) -> np.ndarray:
    lo = 128 - levels // 2
    f = (img.astype(np.float32) - img.min()) / max(1, int(img.max()) - int(img.min()))
    return (lo + f * (levels - 1)).round().astype(np.uint8)


def _scratch(img: np.ndarray, rng: np.random.Generator, width: int = 3) -> np.ndarray:
    """A dark scuff right across, and a light scratch (torn-off ink) over a part of the symbol."""
    out = img.copy()
    h, w = img.shape
    y0, y1 = int(rng.uniform(0.2, 0.8) * h), int(rng.uniform(0.2, 0.8) * h)
    cv2.line(out, (0, y0), (w - 1, y1), 30, width, cv2.LINE_AA)
    x0 = rng.uniform(0.3, 0.6)
    cv2.line(out, (int(x0 * w), int(0.15 * h)), (int((x0 + 0.15) * w), int(0.55 * h)), 250,
             max(1, width - 1), cv2.LINE_AA)
    return out


def _occlude(img: np.ndarray, rng: np.random.Generator, fraction: float = 0.06) -> np.ndarray:
    """A stain or a torn patch, somewhere around the middle of the label (not on the edges, where
    a matrix code's finder patterns are)."""
    out = img.copy()
    h, w = img.shape
    ry, rx = int(h * np.sqrt(fraction) / 2), int(w * np.sqrt(fraction) / 2)
    cy, cx = int(rng.uniform(0.4, 0.6) * h), int(rng.uniform(0.4, 0.6) * w)
    cv2.ellipse(out, (cx, cy), (rx, ry), float(rng.uniform(0, 180)), 0, 360,
                int(rng.choice([PAPER, 90])), -1, cv2.LINE_AA)
    return out


def _warp(img: np.ndarray, rng: np.random.Generator, amount: float = 0.08) -> np.ndarray:
    """Perspective (the camera not square to the label) and a gentle crumple (a sine wave)."""
    h, w = img.shape
    pad = int(max(h, w) * amount) + 4
    img = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=PAPER)
    h, w = img.shape
    src = np.float32([[pad, pad], [w - pad, pad], [w - pad, h - pad], [pad, h - pad]])
    dst = src + rng.uniform(-1, 1, (4, 2)).astype(np.float32) * amount * np.float32([w, h])
    img = cv2.warpPerspective(img, cv2.getPerspectiveTransform(src, dst), (w, h),
                              borderValue=PAPER)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    amp, period = 0.006 * max(h, w), rng.uniform(0.6, 1.2) * max(h, w)
    map_y = ys + amp * np.sin(2 * np.pi * xs / period)
    map_x = xs + amp * np.sin(2 * np.pi * ys / period + 1.0)
    return cv2.remap(img, map_x, map_y, cv2.INTER_LINEAR, borderValue=PAPER)


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)


def damaged_label(label: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A photo of a damaged label: scuffed, stained, creased, turned, slightly out of focus,
    noisy, a poor JPEG."""
    h, w = label.shape
    img = label.copy()
    x0, y0 = rng.uniform(0.1, 0.3), rng.uniform(0.3, 0.7)
    cv2.line(img, (int(x0 * w), int(y0 * h)), (int((x0 + 0.5) * w), int((y0 + rng.uniform(-0.2, 0.2)) * h)),
             40, 2, cv2.LINE_AA)
    img = _occlude(img, rng, 0.02)
    img = _rotate(img, float(rng.uniform(-30, 30)))
    img = _warp(img, rng, 0.05)
    img = _blur(img, 0.8)
    img = _noise(img, 14, rng)
    return _jpeg(img, 25)


def phone_photo(label: np.ndarray, rng: np.random.Generator, size: tuple[int, int] = (3000, 4000)) -> np.ndarray:
    """A 12 MP photo: the label, five times its print size, somewhere on an unevenly lit desk."""
    h, w = size
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    desk = 120 + 40 * (xs / w) + 25 * np.sin(ys / h * 3.0)
    big = cv2.resize(label, None, fx=5, fy=5, interpolation=cv2.INTER_CUBIC)
    big = _rotate(big, float(rng.uniform(-8, 8)))
    bh, bw = big.shape
    y, x = int(rng.uniform(0.1, 0.9) * (h - bh)), int(rng.uniform(0.1, 0.9) * (w - bw))
    desk[y:y + bh, x:x + bw] = big * (0.85 + 0.15 * (xs[y:y + bh, x:x + bw] / w))
    img = _blur(desk.astype(np.float32), 2.0)
    return _noise(img, 6, rng)


def degradations(rng: np.random.Generator) -> list[tuple[str, Callable[[np.ndarray], np.ndarray]]]:
    return [
        ("clean", lambda im: im),
        ("blur 1.2", lambda im: _blur(im, 1.2)),
        ("blur 2", lambda im: _blur(im, 2.0)),
        ("blur 3", lambda im: _blur(im, 3.0)),
        ("rotate 10", lambda im: _rotate(im, 10)),
        ("rotate 45", lambda im: _rotate(im, 45)),
        ("rotate 90", lambda im: _rotate(im, 90)),
        ("rotate 180", lambda im: _rotate(im, 180)),
        ("noise 30", lambda im: _noise(im, 30, rng)),
        ("noise 60", lambda im: _noise(im, 60, rng)),
        ("low contrast", _low_contrast),
        ("low contrast + blur 1.2", lambda im: _blur(_low_contrast(im), 1.2)),
        ("scratch", lambda im: _scratch(im, rng)),
        ("occlusion", lambda im: _occlude(im, rng)),
        ("warp", lambda im: _warp(im, rng)),
        ("jpeg q10", lambda im: _jpeg(im, 10)),
        ("damaged label", lambda im: damaged_label(im, rng)),
    ]


GENERATED_FORMATS = ["EAN-13", "Code128", "QRCode", "DataMatrix"]


def generated_samples(seed: int = 20261122, per_format: int = 3, phone_photos: int = 1) -> list[Sample]:
    rng = np.random.default_rng(seed)
    samples: list[Sample] = []
    for fmt in GENERATED_FORMATS:
        for i in range(per_format):
            symbol, text = _render(fmt, rng)
            label = _on_paper(symbol)
            for variant, degrade in degradations(rng):
                samples.append(Sample("generated", fmt, f"{fmt} #{i + 1} {variant}", degrade(label),
                                      (text.encode(),), variant))
            if i < phone_photos:
                samples.append(Sample("generated", fmt, f"{fmt} #{i + 1} 12 MP photo",
                                      phone_photo(label, rng), (text.encode(),), "12 MP photo"))
    return samples


# --- measuring ---------------------------------------------------------------------------------

@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """zbar prints assertion warnings (its DataBar decoder) on fd 2; keep them out of the report."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def measure(samples: list[Sample], repeats: int = 2) -> list[dict[str, Any]]:
    """Per sample and engine: detected (bool), ms (best of `repeats`), texts read."""
    for fn in ENGINES.values():  # warm up: imports, first-call set-up
        fn(np.full((64, 64), 255, np.uint8))
    rows = []
    for n, sample in enumerate(samples):
        row: dict[str, Any] = {"corpus": sample.corpus, "format": sample.format, "name": sample.name,
                               "variant": sample.variant, "size": list(sample.gray.shape)}
        with quiet_stderr():
            for engine, fn in ENGINES.items():
                best, reads, by = float("inf"), [], None
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    reads, by = fn(sample.gray)
                    best = min(best, time.perf_counter() - t0)
                row[engine] = {"ok": matches(reads, sample.expected), "ms": best * 1000,
                               "texts": [r.text for r in reads],
                               "wrong": wrong(reads, sample.expected)}
                if engine == "floor":
                    row[engine]["pass"] = by
        rows.append(row)
        if (n + 1) % 100 == 0:
            log(f"  {n + 1}/{len(samples)} images")
    return rows


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def summarise(rows: list[dict[str, Any]], key: str = "format") -> dict[str, dict[str, Any]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[row[key]].append(row)
        groups["all"].append(row)
    out = {}
    for group, members in groups.items():
        out[group] = {"images": len(members)}
        for engine in ENGINES:
            ms = [m[engine]["ms"] for m in members]
            out[group][engine] = {"detected": sum(m[engine]["ok"] for m in members),
                                  "rate": sum(m[engine]["ok"] for m in members) / len(members),
                                  "p50_ms": _pct(ms, 50), "p99_ms": _pct(ms, 99)}
    return out


def exceptions(rows: list[dict[str, Any]]) -> list[str]:
    """Images pyzbar or zxing-cpp read alone that floor's pipeline did not."""
    return [row["name"] for row in rows
            if (row["pyzbar"]["ok"] or row["zxing-cpp"]["ok"]) and not row["floor"]["ok"]]


# --- report ------------------------------------------------------------------------------------

def _ordered(groups: dict[str, Any], order: list[str]) -> list[str]:
    known = [g for g in order if g in groups]
    return known + sorted(g for g in groups if g not in known and g != "all") + ["all"]


def table(summary: dict[str, dict[str, Any]], order: list[str], label: str) -> list[str]:
    lines = [f"| {label} | images | pyzbar | zxing-cpp | floor | pyzbar ms p50 / p99 "
             "| zxing-cpp ms p50 / p99 | floor ms p50 / p99 | floor p50 vs zxing-cpp |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for group in _ordered(summary, order):
        s = summary[group]
        rates = " | ".join(f"{s[e]['rate']:.0%}" for e in ENGINES)
        times = " | ".join(f"{s[e]['p50_ms']:.1f} / {s[e]['p99_ms']:.1f}" for e in ENGINES)
        ratio = s["floor"]["p50_ms"] / s["zxing-cpp"]["p50_ms"] if s["zxing-cpp"]["p50_ms"] else float("nan")
        name = f"**{group}**" if group == "all" else group
        lines.append(f"| {name} | {s['images']} | {rates} | {times} | {ratio:.2f}× |")
    return lines


def pass_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Which of floor's passes read the images (the first that read anything answers)."""
    order = ["plain", *imaging.PASSES, "full size"]
    counts = {name: [0, 0, []] for name in order}
    for row in rows:
        by = row["floor"].get("pass")
        if by is not None:
            counts[by][0] += 1
            counts[by][1] += row["floor"]["ok"]
            counts[by][2].append(row["floor"]["ms"])
    lines = ["| floor pass that answered | images | of them correct | ms p50 |", "|---|---:|---:|---:|"]
    for name in order:
        n, ok, ms = counts[name]
        if n:
            lines.append(f"| {name} | {n} | {ok} | {_pct(ms, 50):.1f} |")
    unread = sum(1 for row in rows if row["floor"].get("pass") is None)
    lines.append(f"| nothing read | {unread} | | |")
    return lines


def verdict_lines(rows: list[dict[str, Any]], summary: dict[str, dict[str, Any]]) -> list[str]:
    missed = exceptions(rows)
    union = sum(1 for r in rows if r["pyzbar"]["ok"] or r["zxing-cpp"]["ok"])
    beyond = sum(1 for r in rows if r["floor"]["ok"] and not (r["pyzbar"]["ok"] or r["zxing-cpp"]["ok"]))
    median = summary["all"]["floor"]["p50_ms"]
    lines = [f"- floor reads every image either library reads: **{'yes' if not missed else 'no'}** "
             f"({len(missed)} exceptions{': ' + ', '.join(missed) if missed else ''}); either "
             f"library alone reads {union} of {len(rows)}, floor {summary['all']['floor']['detected']} "
             f"({beyond} that neither reads)",
             "- images with a text read that is not the expected one: " + ", ".join(
                 f"{e} {sum(1 for r in rows if r[e]['wrong'])}" for e in ENGINES),
             f"- floor's median {median:.1f} ms/image (target under {MEDIAN_TARGET_MS:g} ms: "
             f"{'met' if median < MEDIAN_TARGET_MS else 'missed'}); "
             f"{median / summary['all']['zxing-cpp']['p50_ms']:.2f}× zxing-cpp alone "
             f"({summary['all']['zxing-cpp']['p50_ms']:.1f} ms) in the same run"]
    return lines


def report(rows: list[dict[str, Any]], started: dt.datetime, elapsed: float,
           repeats: int) -> tuple[str, dict[str, Any]]:
    from floor_sim.server import cpu_model

    cores = os.cpu_count() or 0
    lines = [f"## Decode benchmark, {started.strftime('%Y-%m-%d %H:%M')} UTC", "",
             f"- CPU: {cpu_model()}, {cores} cores; Python {platform.python_version()}; "
             f"OpenCV {cv2.__version__}; zxing-cpp {_version('zxing-cpp')}; pyzbar "
             f"{_version('pyzbar')}",
             f"- ms/image: the engines called in turn from one thread (OpenCV as configured, "
             f"{cv2.getNumThreads()} threads), the grayscale array given to each, best of {repeats} "
             "runs per image (decoding the file is not counted). Detection: every expected text "
             "read. floor answers with the first pass that reads anything (see "
             "`floor/scan/imaging.py`).", ""]
    data: dict[str, Any] = {"date": started.isoformat(), "cpu": cpu_model(), "cores": cores,
                            "python": platform.python_version(), "opencv": cv2.__version__,
                            "repeats": repeats, "corpora": {}}
    for corpus, title in (("shared", "Real images (`../shared/testdata/`: zxing-cpp and pyzbar samples)"),
                          ("generated", "Generated labels, degraded")):
        members = [r for r in rows if r["corpus"] == corpus]
        if not members:
            lines += [f"### {title}", "", "Skipped: no images (the shared test data is not next to "
                      "the repository)." if corpus == "shared" else "Skipped.", ""]
            continue
        summary = summarise(members)
        lines += [f"### {title}", "", *table(summary, FORMAT_ORDER, "format"), "",
                  *verdict_lines(members, summary), "", *pass_lines(members), ""]
        entry: dict[str, Any] = {"by_format": summary, "exceptions": exceptions(members),
                                 "rows": members}
        if corpus == "generated":
            by_variant = summarise(members, "variant")
            order = [v for v, _ in degradations(np.random.default_rng(0))] + ["12 MP photo"]
            lines += ["<details><summary>Generated, by degradation</summary>", "",
                      *table(by_variant, order, "degradation"), "", "</details>", ""]
            entry["by_variant"] = by_variant
        data["corpora"][corpus] = entry
    lines += [f"Whole run: {elapsed:.0f} s.", ""]
    return "\n".join(lines), data


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


def add_arguments(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    p = prefix
    parser.add_argument(f"--{p}testdata", type=Path, default=TESTDATA,
                        help="the shared test data folder (default: ../shared/testdata)")
    parser.add_argument(f"--{p}per-format", type=int, default=3,
                        help="generated labels per format (each in every degradation)")
    parser.add_argument(f"--{p}repeats", type=int, default=2, help="runs per image and engine (best kept)")
    parser.add_argument(f"--{p}corpora", default="shared,generated", help="which corpora, comma-separated")


def run(args: argparse.Namespace, out: Path) -> str:
    """Run the decode benchmark; write `out` (and .json beside it); answer the Markdown."""
    started = dt.datetime.now(dt.timezone.utc)
    t0 = time.perf_counter()
    corpora = [c.strip() for c in args.corpora.split(",") if c.strip()]
    samples: list[Sample] = []
    if "shared" in corpora:
        shared = shared_samples(args.testdata)
        if not shared:
            log(f"no shared test data at {args.testdata}: that corpus is skipped")
        samples += shared
    if "generated" in corpora:
        samples += generated_samples(args.seed if args.seed is not None else 20261122, args.per_format)
    log(f"decode: {len(samples)} images, engines {', '.join(ENGINES)}")
    rows = measure(samples, args.repeats)
    text, data = report(rows, started, time.perf_counter() - t0, args.repeats)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n", encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    log(f"wrote {out} and {out.with_suffix('.json').name}")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "decode.md")
    args = parser.parse_args(argv)
    print(run(args, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
