"""URL handling shared by every blueprint: id converters and a guard on query and path text."""
from __future__ import annotations

from typing import Any

from flask import Flask, request
from flask_babel import gettext as _
from werkzeug.routing import IntegerConverter

from floor.errors import ApiError

# Row ids are INTEGER columns: PostgreSQL's INTEGER is 32-bit, so this is the largest id any
# table can hold on either database.
MAX_ROW_ID = 2**31 - 1


class RowIdConverter(IntegerConverter):
    """`<int:...>` in every route: a number no database row id can have does not match the route
    (404), instead of overflowing the database driver (500)."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:  # noqa: A002
        kwargs.setdefault("max", MAX_ROW_ID)
        super().__init__(map, *args, **kwargs)


def _has_nul(values: Any) -> bool:
    return any("\x00" in value for value in values if isinstance(value, str))


def refuse_nul_in_url() -> None:
    """No query parameter or path segment legitimately holds a NUL, and PostgreSQL cannot even
    compare text with one: refuse it before any view runs (scan codes travel in bodies, where
    the scan rules answer `unreadable`)."""
    args = request.args.listvalues()
    if _has_nul(v for values in args for v in values) or _has_nul((request.view_args or {}).values()):
        raise ApiError("invalid_parameter",
                       _("A parameter in the address holds a NUL character."), 400)


def init_app(app: Flask) -> None:
    app.url_map.converters["int"] = RowIdConverter
    app.before_request(refuse_nul_in_url)
