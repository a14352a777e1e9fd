"""Crash safety: `kill -9` of a real `floor serve` during a simulated shift, several times.

20 simulated handhelds (Socket.IO and REST, taking turns) pack orders at a quick human pace
with the usual mistakes injected, over 2,000 scans in all. The server's whole process group
gets SIGKILL three times at random moments and is started again on the same database; the
handhelds replay every scan that was not answered, with the same scan_id, until it is.

Then, from the database and the API: every scan the simulator sent is recorded exactly once
(none missing, none twice, none the simulator did not send); no order is `packed` short; no
pack session is half-written (`floor_sim.fault_table.record_problems`); and each kill really
came mid-shift (scans on record before it, and more after it).

SQLite, and PostgreSQL too when FLOOR_TEST_POSTGRES_URL is set (in a schema of its own).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from floor_sim.fault_table import faulted_shift

pytestmark = pytest.mark.e2e
PG_URL = os.environ.get("FLOOR_TEST_POSTGRES_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
HANDHELDS = 20
ORDERS = 430          # about 3,000 scans with the injected mistakes
KILLS = 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_kill_9_three_times_mid_shift_loses_and_doubles_no_scan(backend: str,
                                                                tmp_path: Path) -> None:
    run = faulted_shift("kill_9", tmp_path, backend=backend, pg_url=PG_URL, handhelds=HANDHELDS,
                        orders=ORDERS, kills=KILLS, seed=20261204)
    assert run.result is not None
    row = run.row()
    s = run.result.summary()
    context = json.dumps({"row": row, "lost": run.lost()[:10], "extra": run.unaccounted()[:10],
                          "duplicated": run.duplicated()[:10], "problems": run.problems[:10],
                          "unexpected": s["unexpected_verdicts"], "errors": s["errors"]},
                         default=str)

    # The size of the shift, and that the kills came in the middle of it.
    assert s["devices"] == HANDHELDS and row["sent"] >= 2800, context
    assert len(run.marks) == KILLS, context
    assert 0 < run.marks[0] and all(a < b for a, b in zip(run.marks, run.marks[1:])), context
    assert run.marks[-1] < row["recorded"], context
    # Scans really were cut by the kills and replayed.
    assert row["replays"] > 0, context

    # Every scan answered, recorded exactly once; nothing on record the simulator did not send.
    assert run.unanswered() == 0 and s["no_answer"] == 0, context
    assert run.lost() == [] and run.duplicated() == [] and run.unaccounted() == [], context
    assert row["recorded"] == row["sent"] == len(set(run.sent_ids())), context
    # A crash is no excuse for a 500: what did not get through was a dropped connection.
    assert "server_error" not in run.refusals() and not any(
        code.startswith("http_5") for code in run.refusals()), context

    # Nothing packed short or wrong, no session half-written, every order packed, every
    # verdict the one the packer expected (the kit's units accepted once each).
    assert run.problems == [], context
    assert s["escaped_mistakes"] == 0 and s["lost_scans"] == 0, context
    assert s["duplicated_scans"] == 0 and s["verdict_mismatches"] == 0, context
    assert s["unexpected"] == 0, context
    assert s["orders_packed_by_service"] == ORDERS, context
    assert s["verdicts"]["accepted"] == sum(o.units() for o in run.result.orders), context
    assert row["mistakes"] > 0 and row["escaped"] == 0, context
