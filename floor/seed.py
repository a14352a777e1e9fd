"""`floor seed-demo`: one warehouse, 3 stations, a user per role, 30 SKUs, 60 orders, 3 waves.

Deterministic and idempotent: it goes through the same use cases as the API, so running it
twice changes nothing.
"""
from __future__ import annotations

import random

from flask import Flask

from floor.auth.operations import upsert_user
from floor.db import standalone_session
from floor.labels import ean13_check_digit
from floor.packing import operations
from floor.packing.domain import Actor
from floor.packing.operations import station_by_code, warehouse_by_code

WAREHOUSE = "JX"
STATIONS = ("P01", "P02", "P03")
CHANNELS = ("taobao", "douyin", "pdd", "jd", "miniprogram")
CHANNEL_PREFIX = {"taobao": "TB", "douyin": "DY", "pdd": "PDD", "jd": "JD", "miniprogram": "MP"}
DEMO_PASSWORD = "floor-demo"
DEMO_USERS = (("packer1", "packer", "打包员一号"), ("packer2", "packer", "打包员二号"),
              ("packer3", "packer", "打包员三号"), ("qc1", "qc", "质检员"),
              ("super1", "supervisor", "现场主管"))

# (sku, name, role)
MAINS = [("ZY-SERUM-30", "精华液 30ml"), ("ZY-CREAM-50", "面霜 50g"), ("ZY-TONER-150", "爽肤水 150ml"),
         ("ZY-MASK-5P", "面膜 5片装"), ("ZY-LIP-01", "口红 #01 正红"), ("ZY-LIP-02", "口红 #02 豆沙"),
         ("ZY-EYE-15", "眼霜 15g"), ("ZY-SUN-40", "防晒乳 40ml"), ("ZY-OIL-100", "卸妆油 100ml"),
         ("ZY-FOAM-120", "洁面乳 120g"), ("ZY-ESS-100", "精华水 100ml"), ("ZY-BODY-200", "身体乳 200ml")]
SAMPLES = [("ZY-SAMPLE-5", "精华试用装 5ml"), ("ZY-CREAM-S3", "面霜试用装 3g"),
           ("ZY-TONER-S10", "爽肤水试用装 10ml"), ("ZY-EYE-S2", "眼霜试用装 2g"),
           ("ZY-SUN-S5", "防晒试用装 5ml"), ("ZY-OIL-S8", "卸妆油试用装 8ml"),
           ("ZY-MASK-S1", "面膜单片"), ("ZY-FOAM-S10", "洁面试用装 10g")]
GIFTS = [("ZY-POUCH", "化妆包"), ("ZY-MIRROR", "随身镜"), ("ZY-HEADBAND", "洗脸发带"),
         ("ZY-CARD", "手写感谢卡"), ("ZY-KEYCHAIN", "限定钥匙扣"), ("ZY-COTTON", "化妆棉 50片")]
GIFTBOXES = [("ZY-GIFTBOX", "限定礼盒"), ("ZY-GIFTBOX-XMAS", "圣诞限定礼盒"),
             ("ZY-GIFTBOX-SMALL", "小号礼盒"), ("ZY-BAG-PAPER", "品牌手提纸袋")]


def ean13(n: int) -> str:
    first12 = f"690{n:09d}"
    return first12 + ean13_check_digit(first12)


def catalogue() -> dict[str, dict[str, object]]:
    items: dict[str, dict[str, object]] = {}
    n = 1234560
    for role, group in (("main", MAINS), ("sample", SAMPLES), ("gift", GIFTS), ("giftbox", GIFTBOXES)):
        for sku, name in group:
            n += 7
            codes = [ean13(n)]
            if len(items) % 4 == 0:      # some SKUs carry a second barcode (old packaging)
                codes.append(ean13(n + 500000))
            items[sku] = {"sku": sku, "name": name, "role": role, "barcodes": codes}
    return items


def demo_orders() -> list[dict[str, object]]:
    rng = random.Random(20261122)
    items = catalogue()
    by_role = {r: [i for i in items.values() if i["role"] == r] for r in ("main", "sample", "gift", "giftbox")}
    orders = []
    for i in range(60):
        channel = CHANNELS[i % len(CHANNELS)]
        order_no = f"{CHANNEL_PREFIX[channel]}2026112200{i + 1:03d}"
        lines = []
        for item in rng.sample(by_role["main"], rng.choice((1, 1, 2))):
            lines.append({**item, "qty": rng.choice((1, 1, 2))})
        for item in rng.sample(by_role["sample"], rng.choice((1, 2, 2, 3))):
            lines.append({**item, "qty": rng.choice((1, 2))})
        if rng.random() < 0.6:
            lines.append({**rng.choice(by_role["gift"]), "qty": 1})
        elif i % 20 == 0:
            # The first order of each wave carries a gift, so the demo shows the gift box
            # waiting for it (drawn without the generator: the other orders stay as they were).
            lines.append({**by_role["gift"][i // 20], "qty": 1})
        if i % 4 != 3:                   # three orders in four come in a gift box
            lines.append({**rng.choice(by_role["giftbox"]), "qty": 1})
        order: dict[str, object] = {
            "order_no": order_no, "channel": channel, "warehouse": WAREHOUSE,
            "customer": {"name": f"顾客{i + 1:02d}", "phone": f"138{rng.randint(0, 99999999):08d}",
                         "address": f"江西省南昌市红谷滩区示例路 {i + 1} 号"},
            "lines": lines}
        if i % 5 != 4:                   # most orders arrive with a waybill already bought
            order["waybill_no"] = f"SF{1400000000000 + i * 7919}"
        orders.append(order)
    return orders


def seed_demo(app: Flask) -> str:
    actor = Actor("seed-demo", "integration")
    orders = demo_orders()
    with app.app_context(), standalone_session(app) as s:
        warehouse = warehouse_by_code(s, WAREHOUSE)
        warehouse.name = "江西仓 (demo)"
        for code in STATIONS:
            station_by_code(s, code, warehouse)
        for username, role, display in DEMO_USERS:
            # The supervisor manages the whole site (webhooks are site-wide); the floor staff
            # see only this warehouse.
            upsert_user(s, username, role, DEMO_PASSWORD, display,
                        None if role == "supervisor" else warehouse.id)
        for order in orders:
            operations.upsert_order(s, order, actor)
        for w, station in enumerate(STATIONS):
            wave_orders = [o["order_no"] for o in orders[w * 20:(w + 1) * 20]]
            operations.assign_wave(s, {"wave_no": f"W-{w + 1:04d}", "station": station,
                                       "order_nos": wave_orders}, actor)
    logins = "\n".join(f"  {u:<8} {r:<11} password: {DEMO_PASSWORD}" for u, r, _ in DEMO_USERS)
    return (f"demo warehouse {WAREHOUSE}: {len(STATIONS)} stations, {len(catalogue())} SKUs, "
            f"{len(orders)} orders in 3 waves\ndemo logins:\n{logins}")
