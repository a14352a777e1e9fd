"""The offline tests run against the session's SQLite live server, and against a PostgreSQL one
too when FLOOR_TEST_POSTGRES_URL is set (a fresh schema, migrated and seeded with the demo
data, dropped afterwards)."""
from __future__ import annotations

import contextlib
import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Iterator

import pytest

PG_URL = os.environ.get("FLOOR_TEST_POSTGRES_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


@dataclass
class Server:
    """What the offline tests need of a live server: its URL, the supervisor's API, tokens."""
    url: str
    token: str
    sim: Any

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
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
        return str(self.sim.token(role, name))


@contextlib.contextmanager
def postgres_server() -> Iterator[Server]:
    server_mod = pytest.importorskip("floor_sim.server")
    assert PG_URL
    with server_mod.postgres_schema(PG_URL, "floor_offline") as url:
        sim = server_mod.LiveServer(database_url=url).start()
        try:
            sim.floor("seed-demo")
            yield Server(sim.url, sim.token("supervisor", "e2e-offline"), sim)
        finally:
            sim.stop()


@contextlib.contextmanager
def server_for(request: Any) -> Iterator[Any]:
    """The live server of this backend (`request.param`)."""
    if request.param == "sqlite":
        yield request.getfixturevalue("live_server")
        return
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="module", params=BACKENDS)
def server(request: Any) -> Iterator[Any]:
    """The live server of each backend; a module importing this fixture runs on each."""
    with server_for(request) as live:
        yield live


@pytest.fixture
def device(browser: Any, server: Any) -> Iterator[Any]:
    """A fresh handheld browser context on that server."""
    context = handheld_context(browser, server)
    try:
        yield context
    finally:
        context.close()


def handheld_context(browser: Any, server: Any) -> Any:
    """A fresh 360 x 640 browser context on this server (own cookies, storage, service worker)."""
    context = browser.new_context(viewport={"width": 360, "height": 640}, base_url=server.url,
                                  locale="zh-CN", has_touch=True)
    context.set_default_timeout(10_000)
    return context


WORKER_STATE_JS = """() => Promise.race([
  navigator.serviceWorker.ready.then(reg => reg.active ? reg.active.state : "none"),
  new Promise(resolve => setTimeout(() => resolve("not ready"), 20000))])"""


def wait_for_service_worker(page: Any) -> None:
    """Until the screen's service worker is active; then a reload puts the page under it (and
    the page goes through it, so that its copy is kept for offline)."""
    state = page.evaluate(WORKER_STATE_JS)
    # An activating worker takes the next navigation once it is activated.
    assert state in ("activating", "activated"), f"the service worker is {state}"
    page.reload()
    assert page.evaluate("() => navigator.serviceWorker.controller !== null"), "the page is not under the worker"
