"""The explicit registry of every blueprint and Socket.IO namespace."""
from __future__ import annotations

from flask import Flask
from flask_socketio import SocketIO


def register(app: Flask, socketio: SocketIO) -> None:
    from floor import meta
    from floor.auth import views as auth_views
    from floor.devices import print_views
    from floor.devices import views as device_views
    from floor.evidence import views as evidence_views
    from floor.live import views as live_views
    from floor.packing import views as packing_views
    from floor.returns import views as returns_views
    from floor.scan import sockets as scan_sockets
    from floor.scan import views as scan_views
    from floor.stock import views as stock_views
    from floor.web import views as web_views
    from floor.webhooks import views as webhook_views

    app.register_blueprint(meta.bp)
    app.register_blueprint(packing_views.bp)
    app.register_blueprint(scan_views.bp)
    app.register_blueprint(web_views.bp)
    app.register_blueprint(live_views.bp)
    app.register_blueprint(device_views.bp)
    app.register_blueprint(print_views.bp)
    app.register_blueprint(evidence_views.bp)
    app.register_blueprint(returns_views.bp)
    app.register_blueprint(stock_views.bp)
    app.register_blueprint(webhook_views.bp)
    app.register_blueprint(auth_views.bp)
    app.register_blueprint(auth_views.pages)
    namespace = scan_sockets.FloorNamespace("/floor")
    socketio.on_namespace(namespace)
    app.extensions["floor.sockets"] = namespace   # logout ends its login's sockets through it
    if app.config.get("BENCH_ENDPOINTS"):
        from floor import benchmark

        app.register_blueprint(benchmark.bp)
        benchmark.register_socket_handlers(socketio)
