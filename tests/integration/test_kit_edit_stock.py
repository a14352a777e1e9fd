"""A kit edited by the OMS after its wave was released is checked against the stock again, with
the release's rule (on hand less what the other released orders reserve): when it no longer
fits, an alert names the order (alerts API, board, pushed); an edit that fits raises nothing,
and the alert clears when the order fits again."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from floor.db import standalone_session, utcnow
from floor.eventlog import EventLogEntry
from floor.live import operations as live_ops
from tests.conftest import make_order

KIND = "kit_short_of_stock"


def kit(giftboxes: int = 1, gifts: int = 0) -> list[dict[str, Any]]:
    lines = [
        {"sku": "SERUM", "name": "精华液 30ml", "qty": 1, "role": "main", "barcodes": ["6901234567892"]},
        {"sku": "GIFTBOX", "name": "限定礼盒", "qty": giftboxes, "role": "giftbox",
         "barcodes": ["6901234567915"]}]
    if gifts:
        lines.insert(1, {"sku": "POUCH", "name": "化妆包", "qty": gifts, "role": "gift",
                         "barcodes": ["6900000000024"]})
    return lines


def upsert(api, order_no: str, n: int, **kw: Any) -> dict[str, Any]:
    response = api.post("/api/v1/orders", make_order(order_no, waybill=f"SF{n:013d}", lines=kit(**kw)))
    assert response.status_code in (200, 201), response.get_json()
    return response.get_json()


def put_stock(api, items: list[dict[str, Any]]) -> None:
    response = api.client.put("/api/v1/stock", json={"warehouse": "JX", "items": items},
                              headers={"Authorization": f"Bearer {api.tokens['supervisor']}"})
    assert response.status_code == 200, response.get_json()


def open_alerts(api) -> list[dict[str, Any]]:
    return [a for a in api.get("/api/v1/alerts?warehouse=JX").get_json()["alerts"] if a["kind"] == KIND]


def evaluate(app) -> None:
    """The periodic evaluation, as the alert schedule runs it."""
    with app.app_context(), standalone_session(app) as s:
        live_ops.evaluate_alerts(s, utcnow())


def release(api, order_nos: list[str], wave_no: str) -> None:
    response = api.post("/api/v1/waves", {"wave_no": wave_no, "order_nos": order_nos, "station": "P01"},
                        role="supervisor")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["stock"]["shortfall"] == []


def test_a_kit_edit_that_no_longer_fits_raises_an_alert_naming_the_order(app, api):
    put_stock(api, [{"sku": "GIFTBOX", "on_hand": 3}, {"sku": "POUCH", "on_hand": 1}])
    upsert(api, "TB001", 1)
    upsert(api, "TB002", 2)
    release(api, ["TB001", "TB002"], "W-1")          # 2 of 3 gift boxes reserved: it fits

    # TB001 now wants 3 gift boxes: 3 on hand, TB002 (released too) reserves 1.
    answer = upsert(api, "TB001", 1, giftboxes=3)
    assert answer["snapshot"]["version"] == 2
    assert answer["stock_check"]["fits"] is False
    assert answer["stock_check"]["missing"] == [{"sku": "GIFTBOX", "qty": 3, "left": 2}]
    (alert,) = open_alerts(api)
    assert alert["order_no"] == "TB001" and alert["level"] == "red"
    assert alert["params"]["wave_no"] == "W-1" and alert["params"]["skus"] == "GIFTBOX"
    board = api.get("/api/v1/board?warehouse=JX").get_json()
    assert [a["order_no"] for a in board["alerts"] if a["kind"] == KIND] == ["TB001"]
    with app.app_context(), standalone_session(app, write=False) as s:
        pushed = s.scalars(select(EventLogEntry).where(EventLogEntry.type.in_(("alert", "kit_changed")))
                           .order_by(EventLogEntry.seq)).all()
    assert [(e.type, e.payload["order_no"]) for e in pushed] == [("kit_changed", "TB001"),
                                                                ("alert", "TB001")]
    assert "order:TB001" in pushed[1].rooms and "warehouse:JX" in pushed[1].rooms

    # The periodic evaluation keeps it while the order still does not fit ...
    evaluate(app)
    assert [a["order_no"] for a in open_alerts(api)] == ["TB001"]
    # ... and an edit that fits again clears it at once.
    again = upsert(api, "TB001", 1, giftboxes=2)
    assert again["stock_check"]["fits"] is True
    assert open_alerts(api) == []


def test_a_kit_edit_that_still_fits_raises_nothing(api):
    put_stock(api, [{"sku": "GIFTBOX", "on_hand": 3}, {"sku": "POUCH", "on_hand": 1}])
    upsert(api, "TB001", 1)
    upsert(api, "TB002", 2)
    release(api, ["TB001", "TB002"], "W-1")
    answer = upsert(api, "TB001", 1, giftboxes=2, gifts=1)       # 3 boxes, 1 pouch: exactly
    assert answer["snapshot"]["version"] == 2
    assert answer["stock_check"] == {"checked": True, "fits": True, "shortfall": [], "missing": []}
    assert open_alerts(api) == []
    # An edit before the release is checked by the release itself, not here.
    upsert(api, "TB003", 3, giftboxes=9)
    assert api.post("/api/v1/orders", make_order("TB003", waybill="SF0000000000003",
                                                 lines=kit(giftboxes=8))).get_json()["stock_check"] is None
    assert open_alerts(api) == []


def test_stock_coming_in_clears_the_alert_at_the_next_evaluation(app, api):
    put_stock(api, [{"sku": "GIFTBOX", "on_hand": 1}])
    upsert(api, "TB001", 1)
    release(api, ["TB001"], "W-1")
    assert upsert(api, "TB001", 1, giftboxes=2)["stock_check"]["fits"] is False
    assert [a["order_no"] for a in open_alerts(api)] == ["TB001"]
    put_stock(api, [{"sku": "GIFTBOX", "on_hand": 2}])
    evaluate(app)
    assert open_alerts(api) == []
    cleared = api.get("/api/v1/alerts?warehouse=JX&all=1").get_json()["alerts"]
    assert [(a["kind"], a["order_no"], a["cleared_at"] is not None) for a in cleared
            if a["kind"] == KIND] == [(KIND, "TB001", True)]


def test_the_board_names_the_alert_in_the_viewers_language(api):
    for lang, text in (("zh", "放行后套装被修改，库存已不够（短缺：{skus}）"),
                       ("en", "no longer fits the stock (short: {skus})")):
        page = api.client.get("/board?warehouse=JX", headers={
            "Authorization": f"Bearer {api.tokens['supervisor']}", "Accept-Language": lang})
        page = page.get_data(as_text=True)
        assert text in page, lang
