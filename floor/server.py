"""Production serving: gunicorn with the threaded worker, as Flask-SocketIO supports it.

One process (Socket.IO needs sticky sessions to go further; see docs/deploy.md), many threads:
each websocket connection holds a thread, each HTTP request borrows one.
"""
from __future__ import annotations

from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, app: Flask, options: dict[str, Any]) -> None:
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return self.application


def run_gunicorn(app: Flask, host: str, port: int, threads: int) -> None:
    _Gunicorn(app, {"bind": f"{host}:{port}", "workers": 1, "worker_class": "gthread",
                    "threads": threads, "timeout": 0, "graceful_timeout": 5, "keepalive": 30,
                    "accesslog": None, "errorlog": "-", "loglevel": "warning"}).run()
