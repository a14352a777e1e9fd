"""Configuration from the environment.

Nothing here runs at import time: `load_config()` is called by `create_app()`.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any, Mapping

DEFAULT_DEBOUNCE_MS = 500


def _instance_path(environ: Mapping[str, str]) -> Path:
    return Path(environ.get("FLOOR_INSTANCE_PATH") or Path.cwd() / "instance").resolve()


def _secret_key(instance: Path, environ: Mapping[str, str]) -> str:
    """FLOOR_SECRET_KEY, else a key generated once and kept in the instance folder."""
    if environ.get("FLOOR_SECRET_KEY"):
        return environ["FLOOR_SECRET_KEY"]
    path = instance / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    # O_EXCL: two processes starting together agree on one key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


def _serial_port_globs(text: str | None) -> list[str]:
    from floor.devices.domain import parse_port_globs
    return list(parse_port_globs(text))


def _networks(text: str | None) -> tuple[Any, ...]:
    from floor.destinations import parse_networks
    return parse_networks(text)


def load_config(overrides: Mapping[str, Any] | None = None,
                environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    env = os.environ if environ is None else environ
    overrides = dict(overrides or {})
    instance = Path(overrides.get("INSTANCE_PATH") or _instance_path(env))
    config: dict[str, Any] = {
        "INSTANCE_PATH": str(instance),
        "DATABASE_URL": env.get("FLOOR_DATABASE_URL") or f"sqlite:///{instance / 'floor.db'}",
        "MESSAGE_QUEUE": env.get("FLOOR_MESSAGE_QUEUE") or None,
        "SCAN_DEBOUNCE_MS": int(env.get("FLOOR_SCAN_DEBOUNCE_MS", DEFAULT_DEBOUNCE_MS)),
        # SQLite only (docs/durability.md): NORMAL survives a kill -9, FULL a power loss too;
        # how long a writer waits for the lock before answering 503 database_unavailable.
        "SQLITE_SYNCHRONOUS": env.get("FLOOR_SQLITE_SYNCHRONOUS") or "NORMAL",
        "SQLITE_BUSY_TIMEOUT_MS": int(env.get("FLOOR_SQLITE_BUSY_TIMEOUT_MS", 10_000)),
        "WEBHOOK_MAX_BACKOFF_S": int(env.get("FLOOR_WEBHOOK_MAX_BACKOFF_S", 300)),
        # Status webhooks (floor.webhooks): whether this process may dispatch (one process at a
        # time does, by lease), tries before the dead-letter list, each POST's timeout, the
        # parallel sends, how often the outbox is looked at without a wake-up.
        "WEBHOOKS": env.get("FLOOR_WEBHOOKS", "1") != "0",
        "WEBHOOK_MAX_ATTEMPTS": int(env.get("FLOOR_WEBHOOK_MAX_ATTEMPTS", 12)),
        "WEBHOOK_TIMEOUT_S": float(env.get("FLOOR_WEBHOOK_TIMEOUT_S", 5)),
        "WEBHOOK_WORKERS": int(env.get("FLOOR_WEBHOOK_WORKERS", 8)),
        "WEBHOOK_POLL_S": float(env.get("FLOOR_WEBHOOK_POLL_S", 0.5)),
        # Networks webhooks never reach (comma-separated CIDRs); unset: the default in
        # floor.webhooks.domain, "" blocks nothing.
        "WEBHOOK_BLOCKED_NETWORKS": env.get("FLOOR_WEBHOOK_BLOCKED_NETWORKS"),
        "WEBHOOK_KEEP_DAYS": float(env.get("FLOOR_WEBHOOK_KEEP_DAYS", 30)),
        # Scans and API bodies are small; anything larger is refused with 413.
        "MAX_CONTENT_LENGTH": 256 * 1024,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        # Behind TLS: the session cookie is sent over HTTPS only.
        "SESSION_COOKIE_SECURE": env.get("FLOOR_COOKIE_SECURE") == "1",
        # A login lasts one shift at most, and ends after this long untouched (a handheld left
        # on a shelf does not keep a supervisor's rights); see docs/security.md.
        "SESSION_LIFETIME_H": float(env.get("FLOOR_SESSION_LIFETIME_H", 12)),
        "SESSION_IDLE_MIN": float(env.get("FLOOR_SESSION_IDLE_MIN", 30)),
        "PERMANENT_SESSION_LIFETIME": int(float(env.get("FLOOR_SESSION_LIFETIME_H", 12)) * 3600),
        "WTF_CSRF_CHECK_DEFAULT": False,  # checked by floor.auth after the role check
        "WTF_CSRF_TIME_LIMIT": None,
        "BABEL_DEFAULT_LOCALE": "zh",
        # Failed logins within LOGIN_LOCKOUT_S (docs/security.md, "Login throttling"): one
        # address and one name; one address, whatever the user names (one client guessing many
        # accounts); then the name itself is only slowed down (base doubling to the maximum),
        # so a flood from one address cannot lock a supervisor out everywhere.
        "LOGIN_MAX_FAILURES": 5,
        "LOGIN_MAX_FAILURES_PER_ADDRESS": 20,
        "LOGIN_LOCKOUT_S": 300,
        "LOGIN_NAME_BACKOFF_AFTER": 5,
        "LOGIN_NAME_BACKOFF_BASE_S": 1.0,
        "LOGIN_NAME_BACKOFF_MAX_S": float(env.get("FLOOR_LOGIN_NAME_BACKOFF_MAX_S", 60)),
        # Socket.IO admission (floor/auth/admission.py): open connections in all (unset: the
        # worker's capacity less a reserve for HTTP, set by `floor serve`), per address, those
        # still without a credential (they authenticate in their CONNECT within the grace).
        "SOCKET_MAX": int(env["FLOOR_SOCKET_MAX"]) if env.get("FLOOR_SOCKET_MAX") else None,
        "WORKER_CAPACITY": None,
        "SOCKET_MAX_PER_ADDRESS": int(env.get("FLOOR_SOCKET_MAX_PER_ADDRESS", 128)),
        "SOCKET_PENDING_MAX": int(env.get("FLOOR_SOCKET_PENDING_MAX", 64)),
        "SOCKET_PENDING_PER_ADDRESS": int(env.get("FLOOR_SOCKET_PENDING_PER_ADDRESS", 16)),
        "SOCKET_AUTH_GRACE_S": float(env.get("FLOOR_SOCKET_AUTH_GRACE_S", 5)),
        # Proxies in front that set X-Forwarded-For (nginx: 1): the client's address, not the
        # proxy's, is what login throttling and socket caps count by.
        "PROXY_HOPS": int(env.get("FLOOR_PROXY_HOPS", 0)),
        # A token's use is audited on first use, then at most once per this many minutes.
        "TOKEN_USE_AUDIT_MIN": float(env.get("FLOOR_TOKEN_USE_AUDIT_MIN", 15)),
        "ALERT_INTERVAL_S": float(env.get("FLOOR_ALERT_INTERVAL_S", 30)),
        # Serial scanners to register at start (TOML); the API registers them too.
        "DEVICES_FILE": env.get("FLOOR_DEVICES_FILE") or None,
        # Whether this process reads serial ports: only on the host the scanners are plugged into.
        "SERIAL_READERS": env.get("FLOOR_SERIAL_READERS", "1") != "0",
        # The only paths a serial scanner may be opened on (comma-separated patterns, `*` within
        # one path component); unset: /dev/serial/by-id/*, /dev/ttyUSB* ... (floor.devices.domain).
        "SERIAL_PORT_GLOBS": _serial_port_globs(env.get("FLOOR_SERIAL_PORT_GLOBS")),
        "BENCH_ENDPOINTS": env.get("FLOOR_BENCH_ENDPOINTS") == "1",
        # Label printers: file-driver printers may write only under these folders (os.pathsep
        # separated); the font ^A@ uses for non-ASCII text; the raw TCP send timeout.
        "PRINT_FILE_ROOTS": [p for p in (env.get("FLOOR_PRINT_FILE_ROOT") or str(instance / "labels"))
                             .split(os.pathsep) if p],
        "LABEL_CJK_FONT": env.get("FLOOR_LABEL_CJK_FONT") or "E:SIMSUN.TTF",
        "PRINT_TIMEOUT_S": float(env.get("FLOOR_PRINT_TIMEOUT_S", 5)),
        # Networks a TCP label printer may not be (comma-separated CIDRs, checked at registration
        # and on every address the host resolves to at each send); unset: the webhooks' default
        # list in floor.destinations (link-local/metadata, 0.0.0.0/8 and ::, multicast), "" none.
        "PRINTER_BLOCKED_NETWORKS": _networks(env.get("FLOOR_PRINTER_BLOCKED_NETWORKS")),
        # CCTV evidence: recordings are read only from under this folder; the watcher (off by
        # default) registers new files dropped there; the margin before and after packing.
        "RECORDINGS_ROOT": env.get("FLOOR_RECORDINGS_ROOT") or str(instance / "recordings"),
        "RECORDINGS_WATCH": env.get("FLOOR_RECORDINGS_WATCH") == "1",
        "RECORDINGS_WATCH_INTERVAL_S": float(env.get("FLOOR_RECORDINGS_WATCH_INTERVAL_S", 30)),
        "EVIDENCE_MARGIN_S": float(env.get("FLOOR_EVIDENCE_MARGIN_S", 5)),
        # An evidence clip export (MP4) covers at most this long; at most this many are built at
        # once, more wait EVIDENCE_CLIP_WAIT_S, then get 503 clip_export_busy.
        "EVIDENCE_CLIP_MAX_S": float(env.get("FLOOR_EVIDENCE_CLIP_MAX_S", 1800)),
        "EVIDENCE_CLIP_EXPORTS": max(1, int(env.get("FLOOR_EVIDENCE_CLIP_EXPORTS", 2))),
        "EVIDENCE_CLIP_WAIT_S": float(env.get("FLOOR_EVIDENCE_CLIP_WAIT_S", 2)),
        # Photos (/decode, return photos): the pixels an image may declare in its header; a larger
        # one is refused (413 image_too_large) before it is decoded.
        "IMAGE_MAX_PIXELS": int(env.get("FLOOR_IMAGE_MAX_PIXELS", 40_000_000)),
        # Frame JPEGs and clips are rebuilt on demand: the cache keeps the recently used ones.
        "EVIDENCE_CACHE_MB": float(env.get("FLOOR_EVIDENCE_CACHE_MB", 2048)),
    }
    config.update(overrides)
    if config["SOCKET_MAX"] is None:
        from floor.auth.admission import socket_max_for
        config["SOCKET_MAX"] = socket_max_for(config["WORKER_CAPACITY"])
    if "SECRET_KEY" not in config:
        config["SECRET_KEY"] = _secret_key(instance, env)
    return config
