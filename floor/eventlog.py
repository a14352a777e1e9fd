"""The event log: every pushed event gets a global, gap-free, commit-ordered `seq`.

The counter row is updated inside the writing transaction, so two transactions that both
emit events are serialised and `seq` order is commit order: a client catching up with
`after_seq` can never miss an event that commits later with a smaller number.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import String, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from floor.db import Base, utcnow


class EventCounter(Base):
    __tablename__ = "event_counter"
    id: Mapped[int] = mapped_column(primary_key=True)
    last_seq: Mapped[int] = mapped_column(default=0)


class EventLogEntry(Base):
    __tablename__ = "event_log"
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    type: Mapped[str] = mapped_column(String(32))
    rooms: Mapped[list[Any]]
    payload: Mapped[dict[str, Any]]
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class EventRoom(Base):
    """Which rooms an event went to: catch-up reads one room's events by index."""
    __tablename__ = "event_rooms"
    room: Mapped[str] = mapped_column(String(100), primary_key=True)
    seq: Mapped[int] = mapped_column(primary_key=True)


@dataclass
class PendingEvent:
    """An event recorded in the transaction, emitted by the entry point after commit."""
    type: str
    rooms: list[str]
    payload: dict[str, Any] = field(default_factory=dict)


_counter, _log, _rooms = EventCounter.__table__, EventLogEntry.__table__, EventRoom.__table__
# Built once; plain Core statements: events are written on the scan's hot path.
_NEXT_SEQ = (update(_counter).where(_counter.c.id == 1)
             .values(last_seq=_counter.c.last_seq + 1).returning(_counter.c.last_seq))
_LOG_INSERT = _log.insert()
_ROOM_INSERT = _rooms.insert()


def next_seq(session: Session) -> int:
    seq = session.connection().execute(_NEXT_SEQ).scalar_one_or_none()
    if seq is None:
        session.add(EventCounter(id=1, last_seq=1))
        session.flush()
        return 1
    return int(seq)


def record_event(session: Session, type_: str, rooms: list[str], payload: dict[str, Any],
                 at: dt.datetime | None = None) -> PendingEvent:
    seq = next_seq(session)
    body = {"seq": seq, **payload}
    rooms = list(dict.fromkeys(rooms))
    session.connection().execute(_LOG_INSERT, {"seq": seq, "type": type_, "rooms": rooms, "payload": body,
                                  "at": at or utcnow()})
    session.connection().execute(_ROOM_INSERT, [{"room": room[:100], "seq": seq} for room in rooms])
    return PendingEvent(type_, rooms, body)
