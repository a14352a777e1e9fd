"""Human text for every verdict code, in the caller's language (Chinese by default).

The domain answers codes and parameters; entry points render them here. `N_` only marks the
strings for extraction; they are translated when rendered.
"""
from __future__ import annotations

from typing import Any

from flask_babel import gettext


def N_(text: str) -> str:
    return text


MESSAGES: dict[str, str] = {
    "accepted": N_("%(name)s ✓ %(scanned)s/%(qty)s — %(units_left)s unit(s) left"),
    "accepted_last_item": N_("All items in — now scan the waybill for %(order_no)s."),
    "accepted_packed": N_("Order %(order_no)s packed."),
    "order_opened": N_("Order %(order_no)s open (wave %(wave_no)s)."),
    "order_resumed": N_("Order %(order_no)s resumed (wave %(wave_no)s)."),
    "waybill_bound": N_("Waybill %(waybill_no)s bound to order %(order_no)s."),
    "wrong_item": N_("Wrong item: %(name)s (%(sku)s) is not in order %(order_no)s."),
    "other_order": N_("%(name)s belongs to order %(other_order_no)s (wave %(other_wave_no)s), not %(order_no)s."),
    "over_scan": N_("Too many: %(name)s needs only %(qty)s."),
    "unknown_code": N_("Unknown code %(code)s."),
    "duplicate_read": N_("Same code read twice — counted once."),
    "duplicate_read_refused": N_("Read twice, not counted: %(refusal)s"),
    "giftbox_incomplete": N_("Gift box too early: still missing %(missing_names)s."),
    "waybill_required": N_("Scan a waybill or order number first."),
    "already_packed": N_("Order %(order_no)s is already packed."),
    "not_in_wave": N_("Order %(order_no)s is not in a wave yet."),
    "order_held": N_("Order %(order_no)s is being packed at %(station)s by %(device_id)s."),
    "order_blocked": N_("Order %(order_no)s is %(status)s and cannot be packed."),
    "expired": N_("%(name)s expired on %(expiry)s: take another one."),
    "lot_mismatch": N_("%(name)s lot %(lot)s: this order needs lot %(pinned_lot)s."),
    "loaded": N_("Order %(order_no)s loaded."),
    "already_loaded": N_("Order %(order_no)s is already %(status)s."),
    "not_ready_for_loading": N_("Order %(order_no)s is %(status)s: not ready for loading."),
    "unreadable": N_("Unreadable scan (%(reason)s) — scan again."),
    "forbidden": N_("Your role may not scan."),
    "forbidden_subscribe": N_("Your role may not subscribe."),
    "server_error": N_("The scan was not recorded; send it again."),
    "invalid_payload": N_("The scan was not understood: %(detail)s"),
    "invalid_gs1": N_("GS1 label refused: AI (%(ai)s) %(reason)s. Nothing counted."),
    "logistic_unit": N_("%(sscc)s is a pallet or parcel label (SSCC), not an item: scan the items inside."),
    "case_over_scan": N_("Case of %(count)s × %(name)s: only %(left)s still needed — open the case and scan the units."),
    "accepted_case": N_("%(name)s ✓ case of %(count)s: %(scanned)s/%(qty)s — %(units_left)s unit(s) left"),
}


STATUS_LABELS: dict[str, str] = {
    "received": N_("received"), "wave_assigned": N_("wave assigned"), "picking": N_("picking"),
    "picked": N_("picked"), "packing": N_("packing"), "packed": N_("packed"),
    "labelling": N_("labelling"), "labelled": N_("labelled"),
    "awaiting_loading": N_("awaiting loading"), "loading": N_("loading"), "loaded": N_("loaded"),
    "handed_over": N_("handed over"), "on_hold": N_("on hold"), "exception": N_("exception"),
    "cancelled": N_("cancelled"),
}


UNREADABLE_REASONS: dict[str, str] = {
    "empty": N_("nothing read"), "too_long": N_("too long"),
    "control_characters": N_("control characters"), "not_text": N_("not text"),
    "invalid_encoding": N_("garbled bytes"), "partial_line": N_("cut off"),
    "no_terminator": N_("no line end: check the scanner's suffix setting"),
}


# What is wrong with the AI named by an `invalid_gs1` verdict.
GS1_REASONS: dict[str, str] = {
    "unknown_ai": N_("is not a GS1 AI"), "wrong_length": N_("has the wrong length"),
    "too_long": N_("is too long"), "not_digits": N_("must be digits only"),
    "invalid_characters": N_("holds characters GS1 does not allow"),
    "check_digit": N_("has a wrong check digit"), "invalid_date": N_("is not a real date"),
    "invalid_value": N_("has an invalid value"),
    "missing_association": N_("needs AI (%(requires)s) beside it"),
    "excluded_pair": N_("may not be used with AI (%(requires)s)"),
    "conflicting_values": N_("appears twice with different values"), "empty_element": N_("is empty"),
    "malformed_uri": N_("is not where a GS1 Digital Link allows it"),
}


def status_label(status: str) -> str:
    return gettext(STATUS_LABELS[status]) if status in STATUS_LABELS else status


class _Lenient(dict):  # type: ignore[type-arg]
    def __missing__(self, key: str) -> str:
        return "?"


def message_key(code: str, params: dict[str, Any]) -> str:
    if code == "accepted":
        if params.get("completes"):
            return "accepted_packed"
        if params.get("units_left") == 0 and params.get("waybill_missing"):
            return "accepted_last_item"
        if params.get("count"):
            return "accepted_case"
    if code == "order_opened" and params.get("resumed"):
        return "order_resumed"
    if code == "waybill_bound" and params.get("completes"):
        return "accepted_packed"
    if code == "duplicate_read" and _refusal_repeated(params) is not None:
        return "duplicate_read_refused"
    return code


def _refusal_repeated(params: dict[str, Any]) -> dict[str, Any] | None:
    """The refused first read a double read repeats, if that is what it repeats."""
    repeats = params.get("repeats")
    if isinstance(repeats, dict) and repeats.get("ok") is False and isinstance(repeats.get("code"), str):
        return repeats
    return None


def render(code: str, params: dict[str, Any]) -> str:
    template = MESSAGES.get(message_key(code, params))
    if template is None:
        return code
    values = _Lenient({k: ("—" if v is None else v) for k, v in params.items()})
    if isinstance(params.get("status"), str):
        values["status"] = status_label(params["status"])
    reason_text = UNREADABLE_REASONS.get(params.get("reason", "")) if code == "unreadable" else None
    if reason_text is not None:
        values["reason"] = gettext(reason_text)
    gs1_reason = GS1_REASONS.get(params.get("reason", "")) if code == "invalid_gs1" else None
    if gs1_reason is not None:
        values["reason"] = gettext(gs1_reason) % values
    refused = _refusal_repeated(params) if code == "duplicate_read" else None
    if refused is not None and refused["code"] != "duplicate_read":
        # The first read's refusal, said again in full: the double read must not hide it.
        first = refused.get("params")
        values["refusal"] = render(refused["code"], first if isinstance(first, dict) else {})
    try:
        return gettext(template) % values
    except (TypeError, ValueError):
        return template
