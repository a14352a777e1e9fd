"""floor: warehouse-floor service for handheld and scanner work."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from flask import Flask, request

ROOT = Path(__file__).resolve().parent.parent


def select_locale() -> str:
    lang = request.cookies.get("lang")
    if lang in ("zh", "en"):
        return lang
    return request.accept_languages.best_match(["zh", "en"]) or "zh"


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The app factory. Runs no migrations, prompts or network calls."""
    from floor import blueprints
    from floor.config import load_config
    from floor.db import Database
    from floor.errors import register_error_handlers
    from floor.extensions import babel, csrf, socketio

    settings = load_config(config)
    app = Flask(__name__, instance_path=settings["INSTANCE_PATH"],
                template_folder=str(ROOT / "templates"), static_folder=str(ROOT / "static"))
    app.config.update(settings)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]

    Database(app.config["DATABASE_URL"], sqlite_synchronous=app.config["SQLITE_SYNCHRONOUS"],
             sqlite_busy_timeout_ms=app.config["SQLITE_BUSY_TIMEOUT_MS"]).init_app(app)
    babel.init_app(app, locale_selector=select_locale,
                   default_translation_directories=str(Path(__file__).parent / "translations"))
    csrf.init_app(app)
    socketio.init_app(app, message_queue=app.config["MESSAGE_QUEUE"], async_mode="threading",
                      cors_allowed_origins=app.config.get("CORS_ALLOWED_ORIGINS"))
    # Before Engine.IO makes a session: credentials checked, connections counted and capped.
    from floor.auth.admission import SocketGate
    gate = SocketGate(app, app.wsgi_app, socketio.server)
    app.wsgi_app = gate  # type: ignore[method-assign]
    app.extensions["floor.socket_gate"] = gate
    if app.config["PROXY_HOPS"]:
        from werkzeug.middleware.proxy_fix import ProxyFix
        hops = app.config["PROXY_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    register_error_handlers(app)
    from floor.live.pump import EventPump
    from floor.live.scheduler import AlertScheduler
    # Background threads start on first use, never here.
    app.extensions["floor.pump"] = EventPump(app, socketio)
    app.extensions["floor.alerts"] = AlertScheduler(app, app.config["ALERT_INTERVAL_S"])
    # What a serving process starts (`start_background`); tests start them one by one.
    from floor.devices.serial_readers import ReaderSupervisor
    app.extensions["floor.serial"] = ReaderSupervisor(app)
    app.extensions["floor.background"] = ["floor.alerts", "floor.serial"]
    from floor.devices.printing import PrintQueue
    app.extensions["floor.printing"] = PrintQueue(app)
    app.extensions["floor.background"].append("floor.printing")
    from floor.webhooks.dispatcher import WebhookDispatcher
    app.extensions["floor.webhooks"] = WebhookDispatcher(app)
    app.extensions["floor.background"].append("floor.webhooks")
    if app.config.get("RECORDINGS_WATCH"):
        from floor.evidence.watcher import RecordingWatcher
        app.extensions["floor.recordings"] = RecordingWatcher(app)
        app.extensions["floor.background"].append("floor.recordings")
    from floor import routing
    routing.init_app(app)        # before any route is added: the converters bind at add time
    blueprints.register(app, socketio)
    return app


def start_background(app: Flask) -> Flask:
    """Start the process's background work (alert evaluation, serial readers, print queue,
    webhook dispatch).
    Called by `floor serve` in the serving process, never by create_app()."""
    for name in app.extensions["floor.background"]:
        app.extensions[name].ensure_started()
    return app
