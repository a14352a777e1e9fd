"""The service worker of the handheld screens: served at the root for anyone (the login page
registers nothing, but an expired session must still get the worker's update), its scope
allowed over the whole site, never cached by HTTP, listing assets that exist, and its cache
name changing when an asset's bytes change."""
from __future__ import annotations

import re

from floor.web import views as web_views


def test_service_worker_is_public_root_scoped_and_lists_real_assets(app) -> None:  # type: ignore[no-untyped-def]
    client = app.test_client()
    res = client.get("/sw.js")
    assert res.status_code == 200
    assert res.headers["Content-Type"].startswith("text/javascript")
    assert res.headers["Service-Worker-Allowed"] == "/"
    assert res.headers["Cache-Control"] == "no-cache"
    assert "script-src 'self'" in res.headers["Content-Security-Policy"]
    body = res.get_data(as_text=True)
    assets = re.search(r"var ASSETS = (\[.*?\]);", body).group(1)
    for url in re.findall(r'"([^"]+)"', assets):
        assert client.get(url).status_code == 200, url
    assert '"/pack"' in body and '"/returns"' in body
    # The API is never answered from a cache: the worker only touches the listed paths.
    assert "/api/" not in body.split('"use strict";', 1)[1]


def test_cache_version_follows_the_asset_bytes(app, tmp_path) -> None:  # type: ignore[no-untyped-def]
    static = tmp_path / "static"
    for name in web_views.OFFLINE_ASSETS:
        (static / name).parent.mkdir(parents=True, exist_ok=True)
        (static / name).write_text("v1")
    template = tmp_path / "sw.js"
    template.write_text("worker")
    first = web_views._asset_version(str(static), str(template))
    assert web_views._asset_version(str(static), str(template)) == first
    web_views._asset_version.cache_clear()
    (static / "js" / "pack.js").write_text("v2")
    assert web_views._asset_version(str(static), str(template)) != first
    web_views._asset_version.cache_clear()
