"""URL converters shared by every blueprint."""
from __future__ import annotations

from werkzeug.routing import IntegerConverter

# Row ids are INTEGER columns: PostgreSQL's INTEGER is 32-bit, so this is the largest id any
# table can hold on either database.
MAX_ROW_ID = 2**31 - 1


class RowIdConverter(IntegerConverter):
    """`<int:...>` in every route: a number no database row id can have does not match the route
    (404), instead of overflowing the database driver (500)."""

    def __init__(self, map: object, *args: object, **kwargs: object) -> None:  # noqa: A002
        kwargs.setdefault("max", MAX_ROW_ID)
        super().__init__(map, *args, **kwargs)  # type: ignore[arg-type]


def init_app(app: object) -> None:
    app.url_map.converters["int"] = RowIdConverter  # type: ignore[attr-defined]
