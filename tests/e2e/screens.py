"""What the browser tests share: the demo password and where screenshots go.

The README's screenshots are refreshed with FLOOR_UPDATE_SCREENSHOTS=1; otherwise they go to a
scratch folder, so a test run leaves the work tree clean (the board shows the time).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = (ROOT / "docs" / "screenshots" if os.environ.get("FLOOR_UPDATE_SCREENSHOTS") == "1"
               else Path(tempfile.gettempdir()) / "floor-screenshots")
DEMO_PASSWORD = "floor-demo"
