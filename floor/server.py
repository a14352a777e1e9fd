"""Production serving: gunicorn, one process, with the worker class chosen at start.

- `gthread` (default): the mode Flask-SocketIO supports with simple-websocket; every open
  websocket holds one of `threads` threads. Measured best up to a hundred or so clients.
- `gevent`: gunicorn patches the standard library in the worker, so the same code runs on
  greenlets; measured faster with hundreds of boards (see the README's benchmark). Needs the
  `gevent` extra. The app is created inside the worker, after the patching.
"""
from __future__ import annotations

from typing import Any, Callable

from flask import Flask
from gunicorn.app.base import BaseApplication

WORKERS = ("gthread", "gevent")


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, factory: Callable[[], Flask], options: dict[str, Any]) -> None:
        self.factory = factory
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return self.factory()


def worker_capacity(worker: str, threads: int) -> int:
    """Requests and sockets one worker serves at once: its threads, or gevent's connections."""
    return threads if worker == "gthread" else max(threads, 1000)


def run_gunicorn(factory: Callable[[], Flask], host: str, port: int, threads: int,
                 worker: str = "gthread") -> None:
    if worker not in WORKERS:
        raise ValueError(f"worker must be one of {', '.join(WORKERS)}")
    options: dict[str, Any] = {
        "bind": f"{host}:{port}", "workers": 1, "worker_class": worker, "timeout": 0,
        "graceful_timeout": 5, "keepalive": 30, "accesslog": None, "errorlog": "-",
        "loglevel": "warning"}
    if worker == "gthread":
        options["threads"] = threads
    else:
        options["worker_connections"] = worker_capacity(worker, threads)
    _Gunicorn(factory, options).run()
