"""Live-server fixtures for the browser tests.

`live_server` runs the real `floor serve` (HTTP + Socket.IO) on a free port against a fresh
SQLite database in a temporary instance folder, migrated and seeded with the demo data.
`browser` is the system Chromium driven by Playwright; nothing is ever downloaded.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CHROMIUM = Path(os.environ.get("FLOOR_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
STARTUP_TIMEOUT_S = 30
DEMO_PASSWORD = "floor-demo"


def _floor_command() -> list[str]:
    for candidate in (BIN / "floor", ROOT / ".venv" / "bin" / "floor"):
        if candidate.exists():
            return [str(candidate)]
    found = shutil.which("floor")
    if found:
        return [found]
    return [sys.executable, "-m", "floor.cli"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveServer:
    url: str
    env: dict[str, str]
    token: str

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """Call the JSON API with the supervisor token."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10) as res:
                return res.status, json.loads(res.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")

    def get(self, path: str) -> Any:
        status, body = self.api("GET", path)
        assert status == 200, f"GET {path} answered {status}: {body}"
        return body

    def new_token(self, role: str, name: str) -> str:
        """A further API token for this server (e.g. `integration`, which pushes orders)."""
        proc = subprocess.run(_floor_command() + ["token", "create", "--role", role, "--name", name],
                              cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"floor token create failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc.stdout.strip().splitlines()[-1].strip()


def _run(cmd: list[str], env: dict[str, str], log: Path) -> str:
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    with log.open("a", encoding="utf-8") as fh:
        fh.write(f"$ {' '.join(cmd[-3:])}\n{proc.stdout}{proc.stderr}\n")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    last_error: object = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"floor serve exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as res:
                if res.status == 200:
                    return
        except Exception as exc:  # noqa: BLE001 - not up yet
            last_error = exc
        time.sleep(0.2)
    raise RuntimeError(f"floor serve not healthy after {STARTUP_TIMEOUT_S}s ({last_error}):\n"
                       f"{log.read_text()}")


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    instance = tmp_path_factory.mktemp("floor-instance")
    log = instance / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOOR_")}
    env["FLOOR_INSTANCE_PATH"] = str(instance)
    env["PYTHONUNBUFFERED"] = "1"
    # Serial scanners here are ptys behind links in each test's own folder (tmp_path/scn).
    from floor_sim.server import simulator_serial_globs
    env["FLOOR_SERIAL_PORT_GLOBS"] = simulator_serial_globs(f"{tmp_path_factory.getbasetemp()}/*")
    floor = _floor_command()
    _run(floor + ["db", "upgrade"], env, log)
    _run(floor + ["seed-demo"], env, log)
    token = _run(floor + ["token", "create", "--role", "supervisor", "--name", "e2e"],
                 env, log).strip().splitlines()[-1].strip()
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("a", encoding="utf-8") as out:
        proc = subprocess.Popen(floor + ["serve", "--host", "127.0.0.1", "--port", str(port)],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_healthy(url, proc, log)
        yield LiveServer(url, env, token)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: install the distribution's chromium package "
                    "(the tests never download a browser)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def handheld(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    """A fresh browser context the size of a 360 x 640 handheld (own cookies and storage)."""
    context = browser.new_context(viewport={"width": 360, "height": 640}, base_url=live_server.url,
                                  locale="zh-CN", has_touch=True)
    context.set_default_timeout(10_000)
    try:
        yield context
    finally:
        context.close()

