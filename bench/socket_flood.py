"""Anonymous Socket.IO connections against `/healthz`: can a client without credentials hold
the server's threads?

    .venv/bin/python bench/socket_flood.py [--anonymous 300] [--workers gthread,gevent]

(`make bench` runs it last, writing bench/results/sockets.md.)

For each worker class it starts `floor serve` (one process, the default `--threads 256`) on a
free loopback port, opens `--anonymous` raw Engine.IO websockets without any credential (the
handshake an attacker sends: `/socket.io/?EIO=4&transport=websocket`), holds every one that
was accepted, and then asks `/healthz` (10 s timeout). It then opens authenticated websockets
(a bearer token in the handshake's Authorization header) until one is refused, which measures
the total cap. Prints a Markdown table; loopback only.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import requests
import websocket

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "device-sim"))
from floor_sim.server import LiveServer  # noqa: E402


def _open(url: str, headers: list[str] | None = None) -> tuple[Any, int]:
    """A raw Engine.IO websocket: (the connection or None, the HTTP status of the handshake)."""
    try:
        ws = websocket.create_connection(url, timeout=3, header=headers or [])
        return ws, 101
    except websocket.WebSocketBadStatusException as exc:
        return None, exc.status_code
    except (OSError, websocket.WebSocketException):
        return None, 0


ANSWER = {101: "101 (a session)", 0: "no answer in 3 s", -1: "not tried (server stuck)"}


def _healthz(base: str) -> tuple[int | str, float]:
    started = time.monotonic()
    try:
        status: int | str = requests.get(f"{base}/healthz", timeout=10).status_code
    except requests.RequestException as exc:
        status = type(exc).__name__
    return status, (time.monotonic() - started) * 1000


def run(worker: str, anonymous: int, authenticated: int) -> dict[str, Any]:
    with LiveServer(serve_args=["--worker", worker],
                    env={"FLOOR_ALERT_INTERVAL_S": "0"}) as server:
        token = server.token("supervisor", "flood")
        ws_url = f"ws://{server.host}:{server.port}/socket.io/?EIO=4&transport=websocket"
        held: list[Any] = []
        statuses: dict[int, int] = {}
        unanswered = 0
        for _ in range(anonymous):
            ws, status = _open(ws_url)
            statuses[status] = statuses.get(status, 0) + 1
            if ws is not None:
                held.append(ws)
            unanswered = unanswered + 1 if status == 0 else 0
            if unanswered == 5:    # the server no longer answers: no need to wait out the rest
                statuses[-1] = anonymous - sum(statuses.values())
                break
        health_status, health_ms = _healthz(server.url)
        for ws in held:
            ws.close()
        held.clear()
        auth_ok, refused_with = 0, None
        for _ in range(authenticated):
            ws, status = _open(ws_url, [f"Authorization: Bearer {token}"])
            if ws is None:
                refused_with = status
                break
            held.append(ws)
            auth_ok += 1
        health_auth_status, health_auth_ms = _healthz(server.url)
        for ws in held:
            ws.close()
        return {"worker": worker, "anonymous": anonymous, "statuses": statuses,
                "healthz": health_status, "healthz_ms": health_ms,
                "authenticated_open": auth_ok, "refused_with": refused_with,
                "healthz_full": health_auth_status, "healthz_full_ms": health_auth_ms}


def add_arguments(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    parser.add_argument(f"--{prefix}anonymous", type=int, default=300)
    parser.add_argument(f"--{prefix}authenticated", type=int, default=1200)
    parser.add_argument(f"--{prefix}workers", default="gthread,gevent")


def run_all(args: argparse.Namespace, out: Path | None = None) -> str:
    """Every worker class in turn; answer the Markdown table (and write it to `out`)."""
    rows = [run(w, args.anonymous, args.authenticated) for w in args.workers.split(",")]
    lines = ["### Anonymous sockets", "",
             "| worker | anonymous websockets | handshake answers | /healthz while held | "
             "authenticated websockets open | the next one | /healthz at the cap |",
             "|---|---:|---|---|---:|---|---|"]
    for r in rows:
        answers = ", ".join(f"{n}× {ANSWER.get(s, s)}" for s, n in sorted(r["statuses"].items()) if n)
        lines.append(f"| {r['worker']} | {r['anonymous']} | {answers} | {r['healthz']} in "
                     f"{r['healthz_ms']:.0f} ms | {r['authenticated_open']} | {r['refused_with'] or '—'} | "
                     f"{r['healthz_full']} in {r['healthz_full_ms']:.0f} ms |")
    text = "\n".join(lines) + "\n"
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    print(run_all(parser.parse_args()))


if __name__ == "__main__":
    main()
