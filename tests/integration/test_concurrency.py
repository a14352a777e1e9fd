"""Two devices racing for one order, and scans racing on one scan_id, through real threads."""
from __future__ import annotations

import threading

from tests.conftest import Api

WAYBILL = "SF1000000000001"


def _race(app, tokens, bodies):
    results = [None] * len(bodies)
    barrier = threading.Barrier(len(bodies))

    def worker(i, body):
        api = Api(app.test_client(), tokens)
        barrier.wait()
        results[i] = api.post("/api/v1/scans", body, role="packer")

    threads = [threading.Thread(target=worker, args=(i, b)) for i, b in enumerate(bodies)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_two_devices_opening_one_order_at_once_only_one_holds_it(app, tokens, waved):
    waved("TB001")
    for round_ in range(3):
        waved(f"TB10{round_}", waybill=f"SF10000000001{round_}")
        bodies = [{"scan_id": f"r{round_}-{d}", "station": f"P0{d}", "device_id": f"PDA-{d}",
                   "code": f"SF10000000001{round_}"} for d in range(1, 5)]
        results = _race(app, tokens, bodies)
        assert all(r.status_code == 200 for r in results), [r.get_json() for r in results]
        codes = sorted(r.get_json()["code"] for r in results)
        assert codes == ["order_held"] * 3 + ["order_opened"], codes


def test_the_same_scan_id_sent_twice_at_once_is_recorded_once(app, tokens, waved):
    waved("TB001")
    Api(app.test_client(), tokens).scan(WAYBILL)
    body = {"scan_id": "twin", "station": "P01", "device_id": "PDA-01", "code": "6901234567892"}
    results = _race(app, tokens, [body, body, body])
    verdicts = [r.get_json() for r in results]
    assert all(r.status_code == 200 for r in results), verdicts
    assert verdicts[0] == verdicts[1] == verdicts[2]
    scans = Api(app.test_client(), tokens).get("/api/v1/orders/TB001").get_json()["scans"]
    assert [s["scan_id"] for s in scans].count("twin") == 1
