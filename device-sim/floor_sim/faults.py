"""Injected faults: what goes wrong on a pack floor, and what the service must answer.

| fault | devices | what the packer (or the device) does | expected verdict |
| --- | --- | --- | --- |
| ``wrong_item`` | all | scans a catalogue product of another wave, in no order of this one | ``wrong_item`` |
| ``other_order`` | all | scans an item of another, not yet packed order of the same wave | ``other_order`` |
| ``missing_line`` | all | leaves the last unit of a sample or gift line out and goes on | see below |
| ``early_giftbox`` | all | scans the gift box while main, sample or gift units are still missing | ``giftbox_incomplete`` |
| ``double_read`` | all | the same code twice within the debounce window | ``accepted``, then ``duplicate_read`` |
| ``wifi_drop`` | handheld | the connection drops mid-scan; reconnect, send the same scan_id again | the first verdict, recorded once |
| ``unplug`` | serial | the cable comes out (sometimes mid-line) and goes back in | ``unreadable`` (``partial_line``) or nothing for the cut line |
| ``garbage`` | serial | bytes that are no barcode, then the terminator | ``unreadable`` |

``missing_line``: the packer withholds one unit until everything else is scanned. A missing
sample or gift holds the gift box back: the box answers ``giftbox_incomplete``, the packer
reads the screen, scans the withheld unit, then the box. In an order without a gift box the
last other unit is ``accepted`` without completing the order (``progress.complete`` false);
the packer then scans the withheld unit, which completes it.

`FaultScript` is a `PackScript` that, before each item scan, injects with probability
`fault_rate` one of the faults its device supports and that fit the moment (there must be
another order in the wave for ``other_order``, a gift box for ``early_giftbox``, ...). The kinds
take turns: the one injected least so far on that device goes first, ties drawn at random, so a
short shift still sees every kind.
"""
from __future__ import annotations

import random
from collections import Counter
from typing import Any, Iterable, Mapping, Sequence

from floor_sim.handheld import ROLES_BEFORE_GIFTBOX, PackScript, Step, _OrderProgress
from floor_sim.orders import SimOrder

FAULTS = ("wrong_item", "other_order", "missing_line", "early_giftbox", "double_read",
          "wifi_drop", "unplug", "garbage")
HANDHELD_FAULTS = frozenset(FAULTS) - {"unplug", "garbage"}
SERIAL_FAULTS = frozenset(FAULTS) - {"wifi_drop"}
GARBAGE_KINDS = ("invalid_encoding", "control_characters", "too_long")


def parse_faults(text: str | Iterable[str] | None) -> tuple[str, ...]:
    """``"wrong_item,garbage"`` or ``"all"`` -> the fault names, in the canonical order."""
    if text is None:
        return ()
    names = ([n.strip() for n in text.split(",")] if isinstance(text, str) else list(text))
    names = [n for n in names if n]
    if "all" in names:
        return FAULTS
    unknown = [n for n in names if n not in FAULTS]
    if unknown:
        raise ValueError(f"unknown fault(s): {', '.join(unknown)}; known: {', '.join(FAULTS)}")
    return tuple(f for f in FAULTS if f in names)


def garbage_line(rng: random.Random) -> tuple[bytes, str]:
    """Bytes that are no barcode (without terminator) and the reason the service should give."""
    kind = rng.choice(GARBAGE_KINDS)
    letters = b"ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
    if kind == "invalid_encoding":
        # 0xFF is never UTF-8; the rest is noise from a scanner at the wrong baud rate.
        noise = [rng.choice(range(0x80, 0x100)) for _ in range(rng.randint(4, 16))]
        noise += [rng.choice(letters) for _ in range(rng.randint(0, 6))]
        rng.shuffle(noise)
        return b"\xff" + bytes(noise), kind
    if kind == "control_characters":
        body = bytearray(rng.choice(letters) for _ in range(rng.randint(6, 14)))
        for ch in rng.sample([0x07, 0x08, 0x1B, 0x7F], rng.randint(1, 2)):
            body.insert(rng.randint(1, len(body) - 1), ch)
        return bytes(body), kind
    # A scanner stuck sending: past the service's 2048-byte line limit before the terminator.
    return bytes(rng.choice(b"0123456789") for _ in range(rng.randint(2100, 3000))), kind


class FaultScript(PackScript):
    """A packer who makes the mistakes in `faults` (and whose device has the faults in them).

    `device_kind` is ``"handheld"`` or ``"serial"``: it decides which faults apply and how a
    double read is made (a handheld rescans right after the verdict; a serial scanner writes
    the code twice in one go, as a scanner that triggers twice does). `foreign_codes` maps a
    wave number to barcodes the service knows that are in no order of that wave (for
    ``wrong_item``); `unknown_codes` are barcodes the service has never seen, used instead when
    a wave has no foreign product (a one-station shift), expecting ``unknown_code``.
    """

    def __init__(self, orders: Iterable[SimOrder], *, faults: Sequence[str], fault_rate: float,
                 device_kind: str = "handheld", rng: random.Random | None = None,
                 foreign_codes: Mapping[str | None, Sequence[str]] | None = None,
                 unknown_codes: Sequence[str] = (), open_by: str = "waybill") -> None:
        super().__init__(orders, rng=rng, open_by=open_by)
        if not 0.0 <= fault_rate < 1.0:
            raise ValueError("fault_rate is in [0, 1)")
        supported = SERIAL_FAULTS if device_kind == "serial" else HANDHELD_FAULTS
        self.device_kind = device_kind
        self.faults = [f for f in parse_faults(faults) if f in supported]
        self.fault_rate = fault_rate
        self.foreign_codes = {k: list(v) for k, v in (foreign_codes or {}).items()}
        self.unknown_codes = list(unknown_codes)
        self.injected: Counter[str] = Counter()
        self.withheld: str | None = None          # barcode of the unit left out (missing_line)
        self._roles: dict[str, str] = {}

    # -- what to scan next ---------------------------------------------------------------------
    def next_step(self) -> Step | None:
        cur = self.current
        if cur is None:
            self.withheld = None
            step = super().next_step()           # opens the next order
            if self.current is not None:
                self._roles = {l.product.barcode: l.product.role for l in self.current.order.lines}
            return step
        cur.steps += 1
        if self.faults and self.fault_rate and self.rng.random() < self.fault_rate:
            step = self._inject(cur)
            if step is not None:
                return self._remember(step)
        return self._remember(self._normal(cur))

    def _available(self, cur: _OrderProgress) -> dict[str, int]:
        """Units the packer will scan now, by barcode: items first (less the withheld unit)."""
        items = {c: n - (1 if c == self.withheld else 0) for c, n in cur.items.items()}
        items = {c: n for c, n in items.items() if n > 0}
        return items or {c: n for c, n in cur.giftbox.items() if n > 0}

    def _units_available(self, cur: _OrderProgress) -> int:
        items = sum(max(n - (1 if c == self.withheld else 0), 0) for c, n in cur.items.items())
        return items + sum(cur.giftbox.values())

    def _normal(self, cur: _OrderProgress) -> Step:
        order_no = cur.order.order_no
        available = self._available(cur)
        if not available:
            if self.withheld is not None and cur.items.get(self.withheld, 0) > 0:
                code, self.withheld = self.withheld, None    # nothing else left: scan it now
                return Step(code, "item", order_no)
            # Everything scanned, yet not complete: the waybill again (binds it if that is it).
            return Step(cur.order.waybill_no, "open", order_no)
        pending = list(available)
        if len(pending) > 1 and self._last is not None and self._last.code in pending:
            pending.remove(self._last.code)
        code = self.rng.choice(pending)
        if self.withheld is not None and self._units_available(cur) == 1:
            # The last unit but the withheld one: the screen must not say "complete".
            if code in cur.giftbox and self._roles.get(self.withheld) in ROLES_BEFORE_GIFTBOX:
                return Step(code, "missing_line", order_no, fault="missing_line",
                            expected=frozenset({"giftbox_incomplete"}))
            return Step(code, "missing_line", order_no, fault="missing_line",
                        expected=frozenset({"accepted"}), complete=False)
        return Step(code, "item", order_no)

    # -- faults --------------------------------------------------------------------------------
    def _inject(self, cur: _OrderProgress) -> Step | None:
        makers = {name: getattr(self, f"_fault_{name}") for name in self.faults}
        candidates = [name for name in self.faults if self._applies(name, cur)]
        self.rng.shuffle(candidates)
        candidates.sort(key=lambda name: self.injected[name])
        for name in candidates:
            step = makers[name](cur)
            if step is not None:
                self.injected[name] += 1
                return step
        return None

    def _applies(self, name: str, cur: _OrderProgress) -> bool:
        if name == "missing_line":
            return self.withheld is None and self._missing_candidates(cur) != []
        if name == "early_giftbox":
            return (any(n > 0 for n in cur.giftbox.values())
                    and any(cur.items[c] > 0 for c in cur.before_giftbox))
        return True

    def _fault_wrong_item(self, cur: _OrderProgress) -> Step | None:
        own = {c for l in cur.order.lines for c in l.product.barcodes}
        foreign = [c for c in self.foreign_codes.get(cur.order.wave_no, []) if c not in own]
        if foreign:
            return Step(self.rng.choice(foreign), "wrong_item", cur.order.order_no,
                        fault="wrong_item", expected=frozenset({"wrong_item"}))
        unknown = [c for c in self.unknown_codes if c not in own]
        if unknown:
            return Step(self.rng.choice(unknown), "wrong_item", cur.order.order_no,
                        fault="wrong_item", expected=frozenset({"unknown_code"}))
        return None

    def _fault_other_order(self, cur: _OrderProgress) -> Step | None:
        own = {l.product.sku for l in cur.order.lines}
        codes = sorted({l.product.barcode for o in self.queue
                        if o.wave_no == cur.order.wave_no for l in o.lines
                        if l.product.sku not in own})
        if not codes:
            return None
        return Step(self.rng.choice(codes), "other_order", cur.order.order_no,
                    fault="other_order", expected=frozenset({"other_order"}))

    def _missing_candidates(self, cur: _OrderProgress) -> list[str]:
        if self._units_available(cur) < 2:
            return []
        return sorted(c for c, n in cur.items.items()
                      if n > 0 and self._roles.get(c) in ("sample", "gift"))

    def _fault_missing_line(self, cur: _OrderProgress) -> Step | None:
        candidates = self._missing_candidates(cur)
        if not candidates:
            return None
        self.withheld = self.rng.choice(candidates)
        return self._normal(cur)

    def _fault_early_giftbox(self, cur: _OrderProgress) -> Step | None:
        early = sorted(c for c, n in cur.giftbox.items() if n > 0)
        return Step(self.rng.choice(early), "early_giftbox", cur.order.order_no,
                    fault="early_giftbox", expected=frozenset({"giftbox_incomplete"}))

    def _fault_double_read(self, cur: _OrderProgress) -> Step | None:
        last = self._last
        if self.device_kind == "serial":
            step = self._normal(cur)
            if step.kind != "item":
                return None
            # The first read is an ordinary item; the worker writes it twice in one go.
            return Step(step.code, "item", step.order_no, fault="double_read", action="burst")
        if (last is None or last.kind != "item" or last.order_no != cur.order.order_no
                or last.action is not None or last.fault is not None or not self._last_accepted):
            return None
        return Step(last.code, "double_read", cur.order.order_no, immediate=True,
                    fault="double_read", expected=frozenset({"duplicate_read"}))

    def _fault_wifi_drop(self, cur: _OrderProgress) -> Step | None:
        step = self._normal(cur)
        if step.kind != "item":
            return None
        return Step(step.code, "item", step.order_no, fault="wifi_drop", action="drop")

    def _fault_unplug(self, cur: _OrderProgress) -> Step | None:
        step = self._normal(cur)
        if step.kind != "item":
            return None
        # Every other unplug (the first included) comes mid-line: half a code on the wire.
        half = step.code[:len(step.code) // 2].encode() if self.injected["unplug"] % 2 == 0 else None
        return Step(step.code, "item", step.order_no, fault="unplug", action="unplug", raw=half)

    def _fault_garbage(self, cur: _OrderProgress) -> Step | None:
        data, reason = garbage_line(self.rng)
        return Step(data[:40].decode("utf-8", "backslashreplace"), "garbage", cur.order.order_no,
                    fault="garbage", expected=frozenset({"unreadable"}),
                    reasons=frozenset({reason}), raw=data)

    # -- reading the screen --------------------------------------------------------------------
    def observe(self, step: Step, verdict: dict[str, Any] | None) -> None:
        if step.kind == "missing_line" and self.current is not None \
                and step.order_no == self.current.order.order_no:
            self.withheld = None      # the packer saw what is missing and goes to get it
        super().observe(step, verdict)

    def _abandon(self, reason: str) -> None:
        self.withheld = None
        super()._abandon(reason)

    def _step_limit(self, cur: _OrderProgress) -> int:
        # Faults add scans: about units / (1 - rate), a few more per injected fault.
        return int((3 * cur.order.units() + 10) / max(1.0 - self.fault_rate, 0.05)) + 10


def foreign_codes_by_wave(orders: Sequence[SimOrder]) -> dict[str | None, list[str]]:
    """For each wave, the barcodes of products ordered in other waves and in none of its orders."""
    by_wave: dict[str | None, set[str]] = {}
    everything: dict[str, str] = {}
    for order in orders:
        skus = by_wave.setdefault(order.wave_no, set())
        for line in order.lines:
            skus.add(line.product.sku)
            everything[line.product.sku] = line.product.barcode
    return {wave: sorted(code for sku, code in everything.items() if sku not in skus)
            for wave, skus in by_wave.items()}
