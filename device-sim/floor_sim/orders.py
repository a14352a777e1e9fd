"""Synthetic orders: a catalogue of kit products, orders built from it, and pushing them.

Every run gets a `tag` (five digits, from the seed when one is given) that goes into every
SKU, barcode, order number and waybill number it makes, so that several runs can share one
database without their catalogues or orders colliding:

- SKU codes: ``SIM<tag>-M0001`` (M main, S sample, G gift, B gift box);
- barcodes: EAN-13 in the in-store range, ``2<tag><6-digit index><check digit>``; main
  products also carry their SKU code as a second barcode, as OMS catalogues often do;
- order numbers: ``SM<tag><7-digit sequence>``; waybill numbers: ``SF<tag><7-digit sequence>``
  (``SF`` and 12 digits, the shape of a carrier label).

Orders are pushed with ``POST /api/v1/orders`` and grouped into waves, one station per wave,
with ``POST /api/v1/waves`` (integration token), which freezes their kits.
"""
from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import requests

ROLES = ("main", "sample", "gift", "giftbox")
_ROLE_LETTER = {"main": "M", "sample": "S", "gift": "G", "giftbox": "B"}
_ROLE_INDEX_BASE = {"main": 0, "sample": 200_000, "gift": 400_000, "giftbox": 600_000}

_MAIN_NAMES = ("Serum", "Toner", "Cream", "Cleanser", "Essence", "Lotion", "Eye cream", "Mask",
               "Sunscreen", "Lip balm", "Body wash", "Hand cream")
_SIZES = ("15ml", "30ml", "50ml", "100ml", "150ml", "200ml")


# --- barcodes --------------------------------------------------------------------------------

def ean13_check_digit(digits12: str) -> int:
    """The EAN-13 check digit of the first twelve digits (weights 1, 3, 1, 3, ... from the left)."""
    if len(digits12) != 12 or not digits12.isdigit():
        raise ValueError("an EAN-13 check digit needs exactly 12 digits")
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(digits12))
    return (10 - total % 10) % 10


def ean13(digits12: str) -> str:
    return digits12 + str(ean13_check_digit(digits12))


def is_valid_ean13(code: str) -> bool:
    return len(code) == 13 and code.isdigit() and ean13_check_digit(code[:12]) == int(code[12])


# --- catalogue and orders --------------------------------------------------------------------

@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    role: str
    barcodes: tuple[str, ...]

    @property
    def barcode(self) -> str:
        """The code a handheld scans: the EAN-13 on the pack."""
        return self.barcodes[0]


@dataclass(frozen=True)
class SimLine:
    product: Product
    qty: int

    def to_api(self) -> dict[str, Any]:
        p = self.product
        return {"sku": p.sku, "name": p.name, "qty": self.qty, "role": p.role,
                "barcodes": list(p.barcodes)}


@dataclass
class SimOrder:
    order_no: str
    waybill_no: str
    lines: list[SimLine]
    channel: str = "sim"
    warehouse: str = "SIM"
    station: str | None = None
    wave_no: str | None = None

    def to_api(self) -> dict[str, Any]:
        n = int(self.order_no[-4:]) if self.order_no[-4:].isdigit() else 0
        return {"order_no": self.order_no, "channel": self.channel, "warehouse": self.warehouse,
                "waybill_no": self.waybill_no,
                "customer": {"name": f"Customer {n:04d}", "phone": f"1380000{n:04d}",
                             "address": f"{n % 300 + 1} Simulation Road, Jiaxing"},
                "lines": [line.to_api() for line in self.lines]}

    def units(self) -> int:
        return sum(line.qty for line in self.lines)

    def scans_needed(self) -> int:
        """Scans to pack it without mistakes: the waybill, then every unit."""
        return 1 + self.units()

    @property
    def giftbox_lines(self) -> list[SimLine]:
        return [line for line in self.lines if line.product.role == "giftbox"]

    @property
    def item_lines(self) -> list[SimLine]:
        return [line for line in self.lines if line.product.role != "giftbox"]


@dataclass(frozen=True)
class KitProfile:
    """How big generated kits are: (min, max) ranges, inclusive, and probabilities."""
    main_lines: tuple[int, int] = (1, 3)
    main_qty: tuple[int, int] = (1, 2)
    sample_lines: tuple[int, int] = (0, 2)
    sample_qty: tuple[int, int] = (1, 3)
    gift_probability: float = 0.3
    giftbox_probability: float = 0.6


class OrderFactory:
    """Builds a catalogue and orders from it. Same seed, same catalogue and orders."""

    def __init__(self, seed: int | None = None, tag: str | None = None, *,
                 warehouse: str = "SIM", channel: str = "sim",
                 catalog: dict[str, int] | None = None,
                 profile: KitProfile | None = None) -> None:
        self.rng = random.Random(seed)
        self.tag = tag or f"{self.rng.randrange(100_000):05d}"
        if len(self.tag) != 5 or not self.tag.isdigit():
            raise ValueError("tag must be five digits")
        self.warehouse = warehouse
        self.channel = channel
        self.profile = profile or KitProfile()
        sizes = {"main": 120, "sample": 40, "gift": 12, "giftbox": 6, **(catalog or {})}
        self.catalog: dict[str, list[Product]] = {
            role: [self._product(role, i) for i in range(1, sizes[role] + 1)] for role in ROLES}
        self._seq = 0
        self._used: dict[str, Product] = {}

    def _product(self, role: str, index: int) -> Product:
        letter = _ROLE_LETTER[role]
        sku = f"SIM{self.tag}-{letter}{index:04d}"
        code = ean13(f"2{self.tag}{_ROLE_INDEX_BASE[role] + index:06d}")
        if role == "main":
            name = f"{self.rng.choice(_MAIN_NAMES)} {self.rng.choice(_SIZES)} #{index}"
            return Product(sku, name, role, (code, sku))
        name = {"sample": f"Sample 5ml #{index}", "gift": f"Gift pouch #{index}",
                "giftbox": f"Gift box #{index}"}[role]
        return Product(sku, name, role, (code,))

    def _pick(self, role: str, count: int) -> list[Product]:
        pool = self.catalog[role]
        return self.rng.sample(pool, min(count, len(pool)))

    def make_order(self) -> SimOrder:
        p, rng = self.profile, self.rng
        self._seq += 1
        lines = [SimLine(prod, rng.randint(*p.main_qty))
                 for prod in self._pick("main", rng.randint(*p.main_lines))]
        lines += [SimLine(prod, rng.randint(*p.sample_qty))
                  for prod in self._pick("sample", rng.randint(*p.sample_lines))]
        if rng.random() < p.gift_probability:
            lines += [SimLine(prod, 1) for prod in self._pick("gift", 1)]
        if rng.random() < p.giftbox_probability:
            lines += [SimLine(prod, 1) for prod in self._pick("giftbox", 1)]
        for line in lines:
            self._used[line.product.sku] = line.product
        return SimOrder(order_no=f"SM{self.tag}{self._seq:07d}",
                        waybill_no=f"SF{self.tag}{self._seq:07d}",
                        lines=lines, channel=self.channel, warehouse=self.warehouse)

    def make_orders(self, count: int) -> list[SimOrder]:
        return [self.make_order() for _ in range(count)]

    def used_products(self) -> list[Product]:
        """Products that appear in some order made so far (so the service knows their codes)."""
        return list(self._used.values())


def allocate(orders: Sequence[SimOrder], stations: Sequence[str]) -> dict[str, list[SimOrder]]:
    """Deal orders round-robin to stations (sets `order.station`)."""
    out: dict[str, list[SimOrder]] = {s: [] for s in stations}
    for i, order in enumerate(orders):
        station = stations[i % len(stations)]
        order.station = station
        out[station].append(order)
    return out


# --- pushing through the API -----------------------------------------------------------------

class ApiError(RuntimeError):
    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path} answered {status}: {body[:500]}")
        self.status = status
        self.body = body


class OrderPusher:
    """Pushes orders and waves with an integration token, a few requests at a time."""

    def __init__(self, url: str, token: str, *, concurrency: int = 4, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.concurrency = max(1, concurrency)
        self.timeout = timeout
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers["Authorization"] = f"Bearer {self.token}"
            self._local.session = session
        return session

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST, sent again on a dropped connection, a 5xx (e.g. 503 database_unavailable:
        nothing was recorded) or a 429, with backoff; the calls are idempotent."""
        last: Exception | None = None
        for attempt in range(8):
            if attempt:
                time.sleep(min(0.1 * 2 ** attempt, 2.0))
            try:
                resp = self._session().post(self.url + path, json=body, timeout=self.timeout)
            except requests.ConnectionError as exc:  # a dropped keep-alive connection
                last = exc
                continue
            if resp.status_code >= 500 or resp.status_code == 429:
                last = ApiError("POST", path, resp.status_code, resp.text)
                continue
            if resp.status_code >= 400:
                raise ApiError("POST", path, resp.status_code, resp.text)
            return resp.json() if resp.content else {}
        assert last is not None
        raise last

    def push_order(self, order: SimOrder) -> dict[str, Any]:
        return self._post("/api/v1/orders", order.to_api())

    def push_orders(self, orders: Iterable[SimOrder]) -> int:
        orders = list(orders)
        if self.concurrency == 1:
            for order in orders:
                self.push_order(order)
        else:
            with ThreadPoolExecutor(self.concurrency, thread_name_prefix="push") as pool:
                for _ in pool.map(self.push_order, orders):
                    pass
        return len(orders)

    def push_wave(self, wave_no: str, order_nos: Sequence[str], station: str) -> dict[str, Any]:
        return self._post("/api/v1/waves", {"wave_no": wave_no, "order_nos": list(order_nos),
                                            "station": station})

    def push_waves(self, by_station: dict[str, list[SimOrder]], prefix: str,
                   max_orders: int = 200) -> list[str]:
        """One wave per station (split above `max_orders`); sets `order.wave_no`."""
        jobs: list[tuple[str, list[SimOrder], str]] = []
        for station, orders in by_station.items():
            for start in range(0, len(orders), max_orders):
                chunk = orders[start:start + max_orders]
                if chunk:
                    jobs.append((f"{prefix}-{len(jobs) + 1:04d}", chunk, station))

        def run(job: tuple[str, list[SimOrder], str]) -> str:
            wave_no, chunk, station = job
            self.push_wave(wave_no, [o.order_no for o in chunk], station)
            for o in chunk:
                o.wave_no = wave_no
            return wave_no

        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="wave") as pool:
            return list(pool.map(run, jobs))


@dataclass
class PreparedOrders:
    """Orders pushed and waved, dealt to stations."""
    factory: OrderFactory
    orders: list[SimOrder]
    by_station: dict[str, list[SimOrder]] = field(default_factory=dict)
    waves: list[str] = field(default_factory=list)


def prepare_orders(url: str, integration_token: str, count: int, stations: Sequence[str], *,
                   factory: OrderFactory | None = None, seed: int | None = None,
                   wave_prefix: str | None = None, concurrency: int = 4) -> PreparedOrders:
    """Make `count` orders, push them, and put each station's share in its own wave."""
    factory = factory or OrderFactory(seed)
    orders = factory.make_orders(count)
    by_station = allocate(orders, stations)
    pusher = OrderPusher(url, integration_token, concurrency=concurrency)
    pusher.push_orders(orders)
    if not orders:
        return PreparedOrders(factory, [], by_station, [])
    # Distinct per batch, so that one factory can prepare several batches.
    prefix = wave_prefix or f"W-SIM{factory.tag}-{orders[0].order_no[-7:]}"
    waves = pusher.push_waves(by_station, prefix)
    return PreparedOrders(factory, orders, by_station, waves)
