"""The README's fault table, run small so that its machinery cannot rot: `floor-sim
faults-table` runs every row (Redis down only with redis-server installed) against real
servers, and each row must add up and come out clean (nothing lost, doubled or escaped)."""
from __future__ import annotations

import json
import shutil

import pytest

from floor_sim.cli import main as floor_sim_main
from floor_sim.fault_table import FAULT_ROWS, format_table

pytestmark = pytest.mark.e2e


def test_every_fault_row_runs_and_comes_out_clean(capsys: pytest.CaptureFixture[str]) -> None:
    faults = [f for f in FAULT_ROWS if f != "redis_down" or shutil.which("redis-server")]
    status = floor_sim_main(["faults-table", "--faults", ",".join(faults), "--handhelds", "3",
                             "--orders", "8", "--kills", "2", "--outage", "2", "--seed", "5",
                             "--json"])
    rows = json.loads(capsys.readouterr().out)
    context = json.dumps(rows, default=str)
    assert status == 0, context
    assert [r["fault"] for r in rows] == faults, context
    for r in rows:
        assert r["sent"] > 8 and r["recorded"] == r["sent"], context
        assert r["lost"] == r["duplicated"] == r["escaped"] == 0, context
        assert r["unanswered"] == r["unaccounted"] == r["problems"] == 0, context
        assert r["packed"] == r["orders"] == 8, context
        assert "server_error" not in r["refusals"], context
    by_fault = {r["fault"]: r for r in rows}
    assert sum(r["mistakes"] for r in rows) > 0, context
    assert len(by_fault["kill_9"]["marks"]) == 2 and by_fault["kill_9"]["replays"] > 0, context
    assert by_fault["wifi_drop"]["replays"] > 0, context
    assert by_fault["none"]["replays"] == 0, context

    table = format_table(rows)
    lines = table.splitlines()
    assert lines[0].startswith("| fault | backend | scans sent | recorded | lost | duplicated")
    assert len(lines) == 2 + len(rows)
    assert "| server kill -9 ×2 | sqlite |" in table
