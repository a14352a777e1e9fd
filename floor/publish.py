"""Publishing after commit: push recorded events to their Socket.IO rooms."""
from __future__ import annotations

import logging
from typing import Iterable

from floor.eventlog import PendingEvent
from floor.extensions import socketio

NAMESPACE = "/floor"
log = logging.getLogger(__name__)


def publish(events: Iterable[PendingEvent]) -> None:
    """Emit each event once per client, whatever number of its rooms the client is in.

    Called only after the transaction committed. A failure to push (say, the message queue is
    down) loses nothing: the event is in the event log and clients catch up by `seq`.
    """
    for event in events:
        try:
            socketio.emit(event.type, event.payload, to=event.rooms, namespace=NAMESPACE)
        except Exception:  # noqa: BLE001 - pushing is best effort; the log is the truth
            log.exception("could not push %s seq=%s", event.type, event.payload.get("seq"))
