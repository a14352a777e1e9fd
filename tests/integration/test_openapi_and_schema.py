"""The OpenAPI document matches the real endpoints; migrations match the models."""
from __future__ import annotations

import re

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from openapi_spec_validator import validate

from floor.db import get_db
from floor.models import metadata


def _api_rules(app):
    found = set()
    for rule in app.url_map.iter_rules():
        if not (rule.rule.startswith("/api/") or rule.rule == "/healthz"):
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            found.add((method.lower(), path, rule.endpoint))
    return found


def test_openapi_document_is_valid_and_matches_the_url_map(app, api):
    doc = api.client.get("/api/v1/openapi.json").get_json()
    validate(doc)
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    served = {(m, p) for m, p, _ in _api_rules(app)}
    assert documented == served
    for method, path, endpoint in _api_rules(app):
        roles = set(app.view_functions[endpoint].floor_roles)
        assert set(doc["paths"][path][method]["x-roles"]) == roles, (method, path)


def test_migrations_produce_exactly_the_models(app):
    with get_db(app).engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
