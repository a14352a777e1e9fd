"""What the browser tests share: the demo password and where screenshots go.

The README's screenshots are refreshed with FLOOR_UPDATE_SCREENSHOTS=1; otherwise they go to a
scratch folder, so a test run leaves the work tree clean (the board shows the time).
"""
from __future__ import annotations

import json
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = (ROOT / "docs" / "screenshots" if os.environ.get("FLOOR_UPDATE_SCREENSHOTS") == "1"
               else Path(tempfile.gettempdir()) / "floor-screenshots")
DEMO_PASSWORD = "floor-demo"


def ean13(body12: str) -> str:
    """A valid EAN-13 from its first 12 digits (the check digit added)."""
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body12))
    return body12 + str((10 - total % 10) % 10)


def call(server: Any, token: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """A JSON call to a live server with a bearer token: (status, body)."""
    req = urllib.request.Request(server.url + path, method=method,
                                 data=None if body is None else json.dumps(body).encode())
    req.add_header("Authorization", f"Bearer {token}")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            return res.status, json.loads(res.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")
