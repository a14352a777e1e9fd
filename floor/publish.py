"""Publishing after commit: wake the event pump, which pushes logged events in seq order."""
from __future__ import annotations

from typing import Iterable

from flask import current_app

from floor.eventlog import PendingEvent


def publish(events: Iterable[PendingEvent]) -> None:
    """Called only after the transaction committed. The events are already in the event log;
    the pump reads them from there, so a failed push loses nothing. A queued label also wakes
    the print queue."""
    events = list(events)
    if events:
        current_app.extensions["floor.pump"].notify()
        # Webhooks go out within moments of the commit (when this process dispatches; the
        # dispatching process polls the outbox otherwise).
        dispatcher = current_app.extensions.get("floor.webhooks")
        if dispatcher is not None:
            dispatcher.notify()
        if any(event.type == "print_queued" for event in events):
            queue = current_app.extensions.get("floor.printing")
            if queue is not None:
                queue.notify()
