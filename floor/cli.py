"""The `floor` command: serve, db upgrade, seed-demo, token create, user create."""
from __future__ import annotations

import functools
import os
import sys

import click
from flask import Flask

ROLES = ("packer", "qc", "supervisor", "integration", "device")


def _app() -> Flask:
    from floor import create_app
    return create_app()


def _serving_app(capacity: int | None = None) -> Flask:
    from floor import create_app, start_background
    # The worker's capacity sizes the Socket.IO connection cap (FLOOR_SOCKET_MAX unset).
    return start_background(create_app({"WORKER_CAPACITY": capacity} if capacity else None))


@click.group(help="floor: warehouse-floor service for handhelds and scanners.")
def main() -> None:
    pass


@main.command(help="Serve HTTP and Socket.IO (gunicorn, threads; --dev for Werkzeug).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, type=int, show_default=True)
@click.option("--threads", default=256, type=int, show_default=True,
              help="Worker threads; each websocket holds one.")
@click.option("--worker", type=click.Choice(["gthread", "gevent"]), default="gthread",
              show_default=True, help="gunicorn worker class (gevent: pip install 'floor[gevent]').")
@click.option("--dev", is_flag=True, help="Werkzeug's development server instead of gunicorn.")
def serve(host: str, port: int, threads: int, worker: str, dev: bool) -> None:
    if dev:
        from floor.extensions import socketio
        socketio.run(_serving_app(), host=host, port=port, allow_unsafe_werkzeug=True)
        return
    if worker == "gevent":
        try:
            import gevent  # noqa: F401
        except ImportError:
            raise click.ClickException("the gevent worker needs: pip install 'floor[gevent]'") from None
    from floor.server import run_gunicorn, worker_capacity
    run_gunicorn(functools.partial(_serving_app, worker_capacity(worker, threads)), host, port,
                 threads, worker)


@main.group(help="Database schema.")
def db() -> None:
    pass


@db.command("upgrade", help="Create or migrate the database schema to the newest version.")
def db_upgrade() -> None:
    from floor.config import load_config
    from floor.migrate import upgrade
    settings = load_config()
    if settings["DATABASE_URL"].startswith("sqlite:///"):
        os.makedirs(settings["INSTANCE_PATH"], exist_ok=True)
    upgrade(settings["DATABASE_URL"])
    click.echo("database is at the newest schema")


@main.command("seed-demo", help="Load the demo warehouse (idempotent).")
def seed_demo() -> None:
    from floor.seed import seed_demo as run_seed
    app = _app()
    summary = run_seed(app)
    click.echo(summary)


@main.group(help="Bearer tokens for devices and integrations.")
def token() -> None:
    pass


@token.command("create", help="Print a new bearer token (last line of output).")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--name", required=True)
@click.option("--warehouse", default=None, help="Limit the token to one warehouse.")
def token_create(role: str, name: str, warehouse: str | None) -> None:
    from floor.auth.operations import create_token
    from floor.db import standalone_session
    app = _app()
    with app.app_context(), standalone_session(app) as s:
        value = create_token(s, role, name, warehouse)
    click.echo(f"created {role} token '{name}'" + (f" for warehouse {warehouse}" if warehouse else ""),
               err=True)
    click.echo(value)


@main.group(help="Users of the screens.")
def user() -> None:
    pass


@user.command("create", help="Create or reset a user; the password is read from stdin. "
                              "Resetting ends the user's logins.")
@click.option("--username", required=True)
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--display-name", default="")
@click.option("--warehouse", default=None,
              help="Limit the user to one warehouse (an existing user keeps its own without it).")
def user_create(username: str, role: str, display_name: str, warehouse: str | None) -> None:
    from floor.auth.operations import upsert_user
    from floor.db import standalone_session
    password = sys.stdin.readline().rstrip("\n")
    if len(password) < 8:
        raise click.ClickException("the password needs at least 8 characters")
    if warehouse is not None and not 0 < len(warehouse.strip()) <= 32:
        raise click.ClickException("--warehouse is a warehouse code of 1 to 32 characters")
    app = _app()
    with app.app_context(), standalone_session(app) as s:
        upsert_user(s, username, role, password, display_name,
                    warehouse=warehouse.strip() if warehouse is not None else None)
    click.echo(f"user {username} ({role}) saved" + (f" for warehouse {warehouse}" if warehouse else ""))


@user.command("deactivate", help="The user can no longer log in; its logins and sockets end.")
@click.option("--username", required=True)
def user_deactivate(username: str) -> None:
    from floor.auth.operations import deactivate_user
    from floor.db import standalone_session
    app = _app()
    with app.app_context(), standalone_session(app) as s:
        if deactivate_user(s, username) is None:
            raise click.ClickException(f"no user {username}")
    click.echo(f"user {username} deactivated")

