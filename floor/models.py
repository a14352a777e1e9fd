"""Every table of every domain, imported in one place for migrations and tests."""
from floor.auth import models as auth_models  # noqa: F401
from floor.db import Base
from floor.devices import models as device_models  # noqa: F401
from floor.evidence import models as evidence_models  # noqa: F401
from floor.eventlog import EventCounter, EventLogEntry  # noqa: F401
from floor.live import models as live_models  # noqa: F401
from floor.packing import models as packing_models  # noqa: F401
from floor.returns import models as returns_models  # noqa: F401
from floor.scan import models as scan_models  # noqa: F401
from floor.stock import models as stock_models  # noqa: F401
from floor.webhooks import models as webhook_models  # noqa: F401

metadata = Base.metadata
