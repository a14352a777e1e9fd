"""Device rules: how a serial line is cut into scans, when a reader retries, when a device counts
as online, what a registration must say. Pure: no I/O, no Flask, no SQLAlchemy."""
from __future__ import annotations

import datetime as dt
import fnmatch
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

TERMINATORS = {"CR": b"\r", "LF": b"\n", "CRLF": b"\r\n"}
# A barcode is at most 512 characters (scan.domain.MAX_CODE_CHARS), 4 bytes each in UTF-8.
MAX_LINE_BYTES = 2048
PREVIEW_BYTES = 48
BAUDRATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400)
KINDS = ("handheld", "serial")
STATES = ("online", "offline", "error")
# A handheld sends a heartbeat every 20 s while its screen is open; three missed make it offline.
HANDHELD_TIMEOUT = dt.timedelta(seconds=60)
_DEVICE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
_STATION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
# Where a serial scanner may be opened (FLOOR_SERIAL_PORT_GLOBS): device paths only. pyserial
# would also take URLs (socket://, spy://, rfc2217://, loop://, hwgrep://) that connect anywhere
# or write files; a path that is not on this list never reaches the opener.
DEFAULT_SERIAL_PORT_GLOBS = ("/dev/serial/by-id/*", "/dev/serial/by-path/*", "/dev/ttyUSB*",
                             "/dev/ttyACM*", "/dev/ttyS*")


class RegistrationError(ValueError):
    def __init__(self, code: str, message: str, field_name: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.field = code, message, field_name


@dataclass(frozen=True)
class Frame:
    """One line from a scanner: its text, or why it cannot be a barcode."""
    text: str | None
    error: str | None = None          # too_long | invalid_encoding | partial_line
    raw: bytes = b""                  # the first bytes, for the record

    @property
    def readable(self) -> bool:
        return self.error is None


@dataclass
class LineFramer:
    """Cuts a serial byte stream into lines at the terminator (CR, LF, CRLF; None: any of them).

    Garbage does not derail it: an over-long line is reported once and skipped up to the next
    terminator; bytes that are not UTF-8 make that one line `invalid_encoding`; the next line
    is read normally. Empty lines (the LF of a CRLF when reading "any") are ignored.
    """
    terminator: str | None = None
    max_bytes: int = MAX_LINE_BYTES
    _buffer: bytearray = field(default_factory=bytearray)
    _discarding: bool = False

    def __post_init__(self) -> None:
        if self.terminator is not None and self.terminator not in TERMINATORS:
            raise ValueError(f"terminator must be one of {', '.join(TERMINATORS)} or None")

    @property
    def pending(self) -> bool:
        return bool(self._buffer) or self._discarding

    def feed(self, data: bytes) -> list[Frame]:
        frames: list[Frame] = []
        self._buffer.extend(data)
        while True:
            cut = self._find_terminator()
            if cut is None:
                break
            start, end = cut
            line = bytes(self._buffer[:start])
            del self._buffer[:end]
            if self._discarding:
                self._discarding = False      # the over-long line ends here; already reported
                continue
            if line:
                frames.append(self._frame(line))
        if len(self._buffer) > self.max_bytes:
            if not self._discarding:
                frames.append(Frame(None, "too_long", bytes(self._buffer[:PREVIEW_BYTES])))
            self._discarding = True
            self._buffer.clear()
        return frames

    def flush(self, reason: str = "partial_line") -> list[Frame]:
        """The stream stopped mid-line (unplugged, or a scanner with no terminator): what was
        read is not a whole barcode, and is reported as such rather than guessed at."""
        discarding, line = self._discarding, bytes(self._buffer)
        self._buffer.clear()
        self._discarding = False
        if discarding or not line.strip(b"\r\n"):
            return []
        return [Frame(None, reason, line[:PREVIEW_BYTES])]

    def _find_terminator(self) -> tuple[int, int] | None:
        if self.terminator is not None:
            sep = TERMINATORS[self.terminator]
            at = self._buffer.find(sep)
            return None if at < 0 else (at, at + len(sep))
        positions = [p for p in (self._buffer.find(b"\r"), self._buffer.find(b"\n")) if p >= 0]
        if not positions:
            return None
        return min(positions), min(positions) + 1

    @staticmethod
    def _frame(line: bytes) -> Frame:
        try:
            return Frame(line.decode("utf-8"), raw=line[:PREVIEW_BYTES])
        except UnicodeDecodeError:
            return Frame(None, "invalid_encoding", line[:PREVIEW_BYTES])


def reconnect_delay(attempt: int, base: float = 0.25, cap: float = 10.0) -> float:
    """Seconds before reconnect attempt `attempt` (0-based): doubling from `base`, capped, so a
    replugged scanner is back within seconds and a missing one costs nothing."""
    return min(cap, base * (2 ** min(attempt, 16)))


def effective_state(kind: str, stored: str, last_seen: dt.datetime | None, now: dt.datetime,
                    changed_at: dt.datetime | None = None) -> str:
    """A serial scanner's state is what its reader last set. A handheld has no reader: it is
    online while its heartbeats (or scans) keep coming; the newest news wins, so a handheld
    marked offline stays so until it is heard from again."""
    if kind != "handheld":
        return stored
    if changed_at is not None and last_seen is not None and changed_at >= last_seen:
        if stored != "online":
            return stored
    if last_seen is None or now - last_seen > HANDHELD_TIMEOUT:
        return "offline"
    return "online"


def parse_port_globs(text: str | None) -> tuple[str, ...]:
    """`/dev/ttyUSB*, /dev/pts/*` → patterns (None: the default list). Each is an absolute
    path pattern; a bad one is a configuration error (ValueError)."""
    if text is None:
        return DEFAULT_SERIAL_PORT_GLOBS
    globs = tuple(part.strip() for part in text.split(",") if part.strip())
    for glob in globs:
        if not glob.startswith("/") or posixpath.normpath(glob) != glob:
            raise ValueError(f"serial port pattern {glob!r} is not a plain absolute path pattern")
    return globs


def port_allowed(path: str, globs: Iterable[str]) -> bool:
    """Whether `path` is a plain absolute path (no `..`, `.`, `//`, no URL) matching one of the
    patterns. `*` stays within one path component: `/dev/ttyUSB*` does not take
    `/dev/ttyUSB0/../../etc/passwd`, nor `/dev/serial/by-id/*` a deeper path."""
    if (not isinstance(path, str) or not path.startswith("/") or "\x00" in path
            or posixpath.normpath(path) != path or path.startswith("//")):
        return False
    parts = path.split("/")
    for glob in globs:
        pattern = glob.split("/")
        if len(pattern) == len(parts) and all(
                fnmatch.fnmatchcase(part, want) for part, want in zip(parts, pattern)):
            return True
    return False


def check_port(port: str, globs: Sequence[str]) -> str:
    if not port_allowed(port, globs):
        raise RegistrationError(
            "invalid_port", "port must be a serial device path such as /dev/ttyUSB0 or "
            "/dev/serial/by-id/... (allowed: " + ", ".join(globs) + "); URLs are refused.", "port")
    return port


@dataclass(frozen=True)
class SerialSpec:
    device_id: str
    station: str
    port: str
    baudrate: int
    terminator: str | None
    enabled: bool = True


def parse_registration(data: Mapping[str, Any],
                       port_globs: Sequence[str] = DEFAULT_SERIAL_PORT_GLOBS,
                       ) -> SerialSpec | tuple[str, str]:
    """A registration body: a serial scanner (SerialSpec) or a handheld ((device_id, station)).
    A serial port must be a device path allowed by `port_globs`."""
    if not isinstance(data, Mapping):
        raise RegistrationError("invalid_payload", "A device is a JSON object.")
    device_id = _text(data, "device_id", _DEVICE_ID, "1–64 letters, digits, . _ : -")
    station = _text(data, "station", _STATION, "1–32 letters, digits, . _ -")
    kind = data.get("kind", "serial")
    if kind not in KINDS:
        raise RegistrationError("invalid_field", "kind is serial or handheld.", "kind")
    if kind == "handheld":
        return device_id, station
    port = data.get("port")
    if not isinstance(port, str) or not port.strip() or len(port) > 255 or any(
            ord(c) < 32 for c in port):
        raise RegistrationError("missing_field" if not port else "invalid_field",
                                "A serial scanner needs its port (e.g. /dev/ttyUSB0).", "port")
    baudrate = data.get("baudrate", 9600)
    if isinstance(baudrate, bool) or baudrate not in BAUDRATES:
        raise RegistrationError("invalid_field",
                                f"baudrate is one of {', '.join(map(str, BAUDRATES))}.", "baudrate")
    terminator = data.get("terminator")
    if terminator is not None and terminator not in TERMINATORS:
        raise RegistrationError("invalid_field", "terminator is CR, LF or CRLF (or absent: any).",
                                "terminator")
    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        raise RegistrationError("invalid_field", "enabled is true or false.", "enabled")
    return SerialSpec(device_id, station, check_port(port.strip(), port_globs), int(baudrate),
                      terminator, enabled)


def _text(data: Mapping[str, Any], name: str, pattern: re.Pattern[str], rule: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value.strip():
        raise RegistrationError("missing_field", f"Missing field: {name}.", name)
    if not pattern.match(value.strip()):
        raise RegistrationError("invalid_field", f"{name} must be {rule}.", name)
    return value.strip()


SCANNER_PROFILE_KEYS = ("gs_substitute",)


def parse_scanner_profile(data: Mapping[str, Any]) -> tuple[bool, dict[str, Any] | None]:
    """A registration's `scanner_profile`: (given, profile). Absent: not given (the device keeps
    its profile); null: cleared (the warehouse's setting applies); an object of known keys."""
    if "scanner_profile" not in data:
        return False, None
    profile = data["scanner_profile"]
    if profile is None:
        return True, None
    if not isinstance(profile, Mapping) or any(key not in SCANNER_PROFILE_KEYS for key in profile):
        raise RegistrationError("invalid_field", "scanner_profile is an object with "
                                f"{', '.join(SCANNER_PROFILE_KEYS)} (or null).", "scanner_profile")
    out: dict[str, Any] = {}
    if "gs_substitute" in profile:
        from floor.scan.domain import parse_gs_substitute
        try:
            out["gs_substitute"] = parse_gs_substitute(profile["gs_substitute"])
        except ValueError as exc:
            raise RegistrationError("invalid_field", str(exc), "scanner_profile") from None
    return True, out
