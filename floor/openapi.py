"""The OpenAPI 3 document of /api/v1. A test checks it against the app's URL map."""
from __future__ import annotations

from typing import Any

from floor.webhooks import domain as webhook_domain

ERROR = {"$ref": "#/components/schemas/Error"}


def _resp(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"description": description}
    if schema is not None:
        body["content"] = {"application/json": {"schema": schema}}
    return body


def _op(summary: str, roles: list[str], ok: dict[str, Any], body: dict[str, Any] | None = None,
        params: list[dict[str, Any]] | None = None, errors: tuple[int, ...] = (400, 401, 403),
        tag: str = "packing") -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "tags": [tag],
                          "description": f"Roles: {', '.join(roles) or 'public'}.",
                          "x-roles": roles, "responses": dict(ok)}
    for status in errors:
        op["responses"][str(status)] = _resp("Error", ERROR)
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if params:
        op["parameters"] = params
    if roles:
        op["security"] = [{"bearer": []}, {"session": []}]
    else:
        op["security"] = []
    return op


def _path(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string"}}


def _query(name: str, description: str, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": description,
            "schema": {"type": "string"}}


OBJ = {"type": "object", "additionalProperties": True}
STR = {"type": "string"}
# Order numbers are per warehouse: an account of every warehouse says which one it means.
ORDER_WAREHOUSE = _query("warehouse", "Warehouse code: for an account of every warehouse, which "
                         "warehouse's order (a number several use is 409 ambiguous_order "
                         "without it); a one-warehouse account's own by default")

KIT_LINE = {"type": "object", "required": ["sku", "qty", "role", "barcodes"], "properties": {
    "sku": STR, "name": STR, "qty": {"type": "integer", "minimum": 1},
    "role": {"type": "string", "enum": ["main", "sample", "gift", "giftbox"]},
    "barcodes": {"type": "array", "items": STR, "minItems": 1}, "lot": STR}}
ORDER_IN = {"type": "object", "required": ["order_no", "channel", "warehouse", "lines"], "properties": {
    "order_no": STR, "channel": STR, "warehouse": STR, "waybill_no": STR, "customer": OBJ,
    "lines": {"type": "array", "items": KIT_LINE, "minItems": 1}}}
SCAN_IN = {"type": "object", "required": ["scan_id", "station", "device_id", "code"], "properties": {
    "scan_id": STR, "station": STR, "device_id": STR, "code": STR,
    "at": {"type": "string", "format": "date-time"}}}
SCANNER_PROFILE = {"type": ["object", "null"], "properties": {
    "gs_substitute": {"type": "string", "maxLength": 8,
                      "description": "What this keyboard-wedge scanner types for the GS1 separator "
                                     "(FNC1), e.g. <GS>; \"\" for none. Absent profile: the "
                                     "warehouse's gs_substitute setting"}},
                   "additionalProperties": False}
DEVICE_IN = {"type": "object", "required": ["device_id", "station"], "properties": {
    "device_id": STR, "station": STR, "warehouse": STR,
    "kind": {"type": "string", "enum": ["serial", "handheld"], "default": "serial"},
    "port": {"type": "string", "description": "Serial device path allowed by "
             "FLOOR_SERIAL_PORT_GLOBS (e.g. /dev/serial/by-id/..., /dev/ttyUSB0); a URL or any "
             "other path is 400 invalid_port"},
    "baudrate": {"type": "integer", "default": 9600},
    "terminator": {"type": "string", "enum": ["CR", "LF", "CRLF"],
                   "description": "Absent: any of them"},
    "enabled": {"type": "boolean", "default": True},
    "scanner_profile": SCANNER_PROFILE}}
DEVICE = {"type": "object", "properties": {
    "device_id": STR, "kind": STR, "station": {"type": ["string", "null"]},
    "state": {"type": "string", "enum": ["online", "offline", "error"]},
    "reason": {"type": ["string", "null"]},
    "last_seen_at": {"type": ["string", "null"], "format": "date-time"},
    "last_scan_at": {"type": ["string", "null"], "format": "date-time"},
    "port": {"type": ["string", "null"]}, "baudrate": {"type": ["integer", "null"]},
    "terminator": {"type": ["string", "null"]}, "enabled": {"type": "boolean"},
    "scanner_profile": SCANNER_PROFILE}}
VERDICT = {"type": "object", "required": ["ok", "code", "message"], "properties": {
    "ok": {"type": "boolean"}, "code": STR, "message": STR, "scan_id": STR,
    "order_no": {"type": ["string", "null"]}, "status": {"type": ["string", "null"]},
    "progress": {"oneOf": [{"$ref": "#/components/schemas/Progress"}, {"type": "null"}]},
    "line_no": {"type": ["integer", "null"]}, "sku": {"type": ["string", "null"]}, "params": OBJ,
    "repeats": {"type": "object", "required": ["code", "ok"],
                "properties": {"code": STR, "ok": {"type": "boolean"}},
                "description": "Only on a duplicate_read: the first read's verdict. ok false: the "
                               "refusal stands (its message is said again, nothing counted)"}}}
PROGRESS = {"type": "object", "properties": {
    "order_no": STR, "wave_no": {"type": ["string", "null"]}, "lines": {"type": "array", "items": OBJ},
    "lines_done": {"type": "integer"}, "lines_total": {"type": "integer"},
    "units_left": {"type": "integer"}, "waybill_no": {"type": ["string", "null"]},
    "waybill_bound": {"type": "boolean"}, "complete": {"type": "boolean"},
    "giftbox_requires": {"type": "array", "items": {"type": "string", "enum": ["main", "sample", "gift"]},
                         "description": "The roles the gift box waits for (the warehouse's setting)"}}}
ORDER_UPSERTED = {"type": "object", "additionalProperties": True, "properties": {
    "order_no": STR, "channel": STR, "status": STR, "created": {"type": "boolean"},
    "waybill_no": {"type": ["string", "null"]}, "snapshot": {"type": ["object", "null"]},
    "stock_check": {"oneOf": [{"type": "null"}, {"type": "object", "properties": {
        "checked": {"type": "boolean"}, "fits": {"type": "boolean"},
        "shortfall": {"type": "array", "items": OBJ}, "missing": {"type": "array", "items": OBJ}}}],
        "description": "The release's stock check of a kit changed after its wave was released"}}}
ORDER_OUT = {"type": "object", "required": ["order_no", "status", "timeline", "snapshot", "scans"],
             "properties": {"order_no": STR, "channel": STR, "status": STR,
                            "waybill_no": {"type": ["string", "null"]},
                            "wave_no": {"type": ["string", "null"]},
                            "snapshot": {"type": ["object", "null"]},
                            "timeline": {"type": "array", "items": OBJ},
                            "scans": {"type": "array", "items": OBJ},
                            "sessions": {"type": "array", "items": OBJ},
                            "overrides": {"type": "array", "items": OBJ}}}


STOCK_ITEM_IN = {"type": "object", "required": ["sku", "on_hand"], "properties": {
    "sku": STR, "on_hand": {"type": "integer", "minimum": 0},
    "low_threshold": {"type": ["integer", "null"], "minimum": 0,
                      "description": "Absent: kept; null: the warehouse default"}}}
STOCK_ITEM = {"type": "object", "properties": {
    "sku": STR, "name": {"type": ["string", "null"]}, "on_hand": {"type": "integer"},
    "low_threshold": {"type": ["integer", "null"]}, "effective_threshold": {"type": ["integer", "null"]},
    "reserved": {"type": "integer"}, "available": {"type": "integer"}, "low": {"type": "boolean"},
    "level": {"type": ["string", "null"], "enum": ["yellow", "red", None]},
    "updated_at": STR, "updated_by": STR}}
STOCK_SET = {"type": "object", "properties": {
    "warehouse": STR, "received": {"type": "integer"}, "created": {"type": "integer"},
    "changed": {"type": "integer"}, "unchanged": {"type": "integer"},
    "items": {"type": "array", "items": STOCK_ITEM},
    "ignored_columns": {"type": "array", "items": STR}}}
SHORTFALL = {"type": "object", "required": ["sku", "needed", "on_hand", "order_nos"], "properties": {
    "sku": STR, "needed": {"type": "integer"}, "on_hand": {"type": "integer"},
    "reserved": {"type": "integer"}, "available": {"type": "integer"},
    "short_by": {"type": "integer"}, "order_nos": {"type": "array", "items": STR}}}
WAVE_IN = {"type": "object", "required": ["wave_no", "order_nos"], "properties": {
    "wave_no": STR, "station": STR, "order_nos": {"type": "array", "items": STR},
    "warehouse": {"type": "string", "description": "Whose order numbers (an account of every "
                                                   "warehouse; else the station's breaks a tie)"},
    "release_anyway": {"type": "boolean", "description": "Release although tracked stock is "
                                                         "short (needs reason)"},
    "hold_short": {"type": "boolean", "description": "Put the short orders on hold (needs "
                                                     "reason), release the rest"},
    "split": {"type": "boolean", "description": "Release the orders that can be served; the "
                                                "short ones are left out"},
    "reason": STR}}


def _waves_post() -> dict[str, Any]:
    op = _op("Assign orders to a wave; freezes each order's kit snapshot. The new orders are first "
             "checked against tracked stock: short → 409 stock_shortfall (nothing changes) unless "
             "one of release_anyway, hold_short, split is chosen",
             ["integration", "supervisor"],
             {"200": _resp("The wave, with `stock` (the check), `left_out` and `held`", OBJ)},
             WAVE_IN, errors=(400, 401, 403, 404))
    op["responses"]["409"] = _resp(
        "stock_shortfall (with `shortfall` and `short_orders`), nothing_to_release, "
        "order_not_waveable, mixed_warehouses, ambiguous_order",
        {"type": "object", "required": ["code", "message"], "properties": {
            "code": STR, "message": STR, "shortfall": {"type": "array", "items": SHORTFALL},
            "short_orders": {"type": "array", "items": OBJ}}})
    return op


def _stock_paths() -> dict[str, Any]:
    writers = ["supervisor", "integration"]
    return {
        "/api/v1/orders/{order_no}/waybill": {"post": _op(
            "Tracking numbers in: bind or replace the order's waybill (audited, a `waybill` "
            "event; an order complete but for its waybill becomes packed; the missing-tracking "
            "alert clears). The same number again changes nothing. 409 waybill_in_use, "
            "waybill_is_item_code, order_closed; 400 invalid_waybill",
            ["integration", "supervisor"], {"200": _resp("The order's waybill", OBJ)},
            {"type": "object", "required": ["waybill_no"], "properties": {
                "waybill_no": STR, "reason": STR, "channel": STR, "device_id": STR,
                "warehouse": STR}},
            params=[_path("order_no", "Order number"), _query("channel", "Sales channel"), ORDER_WAREHOUSE],
            errors=(400, 401, 403, 404, 409))},
        "/api/v1/stock": {
            "put": _op(
                "Set counted stock levels of tracked SKUs (a movement per change; SKUs with no "
                "stock record are not checked)", writers, {"200": _resp("What changed", STOCK_SET)},
                {"type": "object", "required": ["warehouse", "items"], "properties": {
                    "warehouse": STR, "note": STR,
                    "items": {"type": "array", "items": STOCK_ITEM_IN, "maxItems": 5000}}},
                errors=(400, 401, 403, 413), tag="stock"),
            "get": _op(
                "A warehouse's tracked SKUs (on hand, reserved by released waves, available, "
                "low) and the last movements", writers,
                {"200": _resp("Stock", {"type": "object", "properties": {
                    "warehouse": STR, "items": {"type": "array", "items": STOCK_ITEM},
                    "movements": {"type": "array", "items": OBJ},
                    "last_seq": {"type": "integer"}}})},
                params=[_query("warehouse", "Warehouse code (default: the caller's, else the first)"),
                        _query("sku", "One SKU")], errors=(400, 401, 403, 404), tag="stock")},
        "/api/v1/stock/upload": {"post": {
            **_op("Set levels from a CSV (sku,on_hand[,low_threshold]; UTF-8, BOM or not): every "
                  "line applied or none (400 invalid_csv with each bad line's number)", writers,
                  {"200": _resp("What changed", STOCK_SET)}, errors=(400, 401, 403, 413),
                  params=[_query("warehouse", "Warehouse code (or the form field)")], tag="stock"),
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": ["file"], "properties": {
                    "file": {"type": "string", "format": "binary"}, "warehouse": STR}}}}}}},
        "/api/v1/stock/adjustments": {"post": _op(
            "A relative correction of one tracked SKU (found, broken, lost), with a note",
            writers, {"200": _resp("The SKU's level", STOCK_ITEM)},
            {"type": "object", "required": ["warehouse", "sku", "delta", "note"], "properties": {
                "warehouse": STR, "sku": STR, "delta": {"type": "integer"}, "note": STR,
                "device_id": STR}}, errors=(400, 401, 403, 404), tag="stock")},
    }


def openapi_document() -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/healthz": {"get": _op("Health: 200 when the database answers", [],
                                {"200": _resp("Healthy", OBJ), "503": _resp("Database down", ERROR)},
                                errors=(), tag="meta")},
        "/api/v1/openapi.json": {"get": _op("This document", [], {"200": _resp("OpenAPI 3", OBJ)},
                                            errors=(), tag="meta")},
        "/api/v1/orders": {"post": _op(
            "Create or update one order with its kit (idempotent on warehouse + channel + "
            "order_no: the same number in another warehouse is another order); a kit "
            "changed after its wave's release is checked against the stock again (stock_check; "
            "a kit_short_of_stock alert names the order when it no longer fits)",
            ["integration"], {"201": _resp("Created", ORDER_UPSERTED),
                              "200": _resp("Updated", ORDER_UPSERTED)},
            ORDER_IN, errors=(400, 401, 403, 409, 413))},
        "/api/v1/orders/{order_no}": {"get": _op(
            "Status, micro-status timeline, kit snapshot with hash, scans with verdicts",
            ["packer", "qc", "supervisor", "integration"], {"200": _resp("The order", ORDER_OUT)},
            params=[_path("order_no", "Order number"),
                    _query("channel", "Sales channel, when the number exists in several"),
                    ORDER_WAREHOUSE],
            errors=(400, 401, 403, 404, 409))},
        "/api/v1/waves": {"post": _waves_post()},
        **_stock_paths(),
        "/api/v1/waves/{wave_no}": {"get": _op(
            "A wave and its orders", ["packer", "qc", "supervisor", "integration"],
            {"200": _resp("The wave", OBJ)}, params=[_path("wave_no", "Wave number")],
            errors=(401, 403, 404))},
        "/api/v1/scans": {"post": _op(
            "One scan; answers the verdict. Idempotent on scan_id (409 scan_id_in_use / "
            "device_id_in_use: another warehouse's scan or device, for a one-warehouse account)",
            ["packer", "device"],
            {"200": _resp("The verdict (ok true or false)", VERDICT)}, SCAN_IN,
            errors=(400, 401, 403, 409, 413, 503), tag="scan")},
        "/api/v1/decode": {"post": {
            **_op("Barcodes in a photo (camera fallback): zxing-cpp and zbar, fused; an engine "
                  "failing drops only its reads; a JPEG, PNG, WebP, GIF, BMP or TIFF declaring "
                  "more than IMAGE_MAX_PIXELS in its header is 413 image_too_large (params: "
                  "max_pixels, width, height) before decoding; busy decoders 503 decoder_busy",
                  ["packer", "qc", "device"], {"200": _resp("Codes read", {
                      "type": "object", "properties": {"codes": {"type": "array", "items": {
                          "type": "object", "properties": {
                              "text": STR, "format": STR,
                              "symbology_id": {"type": ["string", "null"]},
                              "gs1": {"type": ["object", "null"]}, "engine": STR}}}}})},
                  errors=(400, 401, 403, 413, 503), tag="scan"),
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": ["image"],
                "properties": {"image": {"type": "string", "format": "binary"}}}}}}}},
        "/api/v1/scans/{scan_id}/override": {"post": _op(
            "A supervisor accepts a refused scan with a reason code", ["supervisor"],
            {"200": _resp("Progress after the override", OBJ)},
            {"type": "object", "required": ["reason_code"], "properties": {
                "reason_code": {"type": "string", "enum": [
                    "label_damaged", "substitute_approved", "stock_out_waived",
                    "customer_request", "scanner_fault", "other"]},
                "note": STR, "line_no": {"type": "integer"}}},
            params=[_path("scan_id", "The refused scan")], errors=(400, 401, 403, 404, 409))},
        "/api/v1/stations/{station}/session": {"get": _op(
            "The order open at a station for one device, with progress",
            ["packer", "device", "supervisor"], {"200": _resp("Session or nulls", OBJ)},
            params=[_path("station", "Station id"), _query("device_id", "Device id", True)],
            errors=(400, 401, 403))},
        "/api/v1/stations/{station}": {"put": _op(
            "Create or change a station: kind pack (the pack session) or dock (a waybill scan "
            "loads the parcel)", ["supervisor", "integration"], {"200": _resp("The station", OBJ)},
            {"type": "object", "properties": {"kind": {"type": "string", "enum": ["pack", "dock"]},
                                              "warehouse": STR}},
            params=[_path("station", "Station id")], errors=(400, 401, 403))},
        "/api/v1/pack-sessions": {"get": _op(
            "Every open pack session", ["supervisor"], {"200": _resp("Open sessions", OBJ)},
            errors=(401, 403))},
        "/api/v1/pack-sessions/{session_id}/release": {"post": _op(
            "Free an order held by a device that is gone", ["supervisor"],
            {"200": _resp("Released", OBJ)},
            {"type": "object", "required": ["reason"], "properties": {"reason": STR}},
            params=[{"name": "session_id", "in": "path", "required": True,
                     "schema": {"type": "integer"}}], errors=(400, 401, 403, 404))},
        "/api/v1/orders/{order_no}/events": {"post": _op(
            "Move an order on: an event from the OMS, a carrier or a screen (hold, release, "
            "exception and cancel need a reason and a supervisor or integration)",
            ["integration", "supervisor"], {"200": _resp("The order's new status and its seq", OBJ)},
            {"type": "object", "properties": {
                "event": {"type": "string", "enum": [
                    "picking_started", "picked", "labelling_started", "label_printed",
                    "staged_for_loading", "loading_started", "loaded", "carrier_pickup",
                    "hold", "exception", "cancel", "release"]},
                "status": STR, "reason": STR, "at": {"type": "string", "format": "date-time"},
                "station": STR, "device_id": STR}},
            params=[_path("order_no", "Order number"), _query("channel", "Sales channel"), ORDER_WAREHOUSE],
            errors=(400, 401, 403, 404, 409), tag="live")},
        "/api/v1/alerts": {"get": _op(
            "Open alerts (all=1: cleared ones too)", ["supervisor", "integration"],
            {"200": _resp("Alerts", OBJ)},
            params=[_query("warehouse", "Warehouse code"), _query("all", "1 to include cleared")],
            errors=(401, 403), tag="live")},
        "/api/v1/alerts/{alert_id}/ack": {"post": _op(
            "Acknowledge an alert (recorded)", ["supervisor"], {"200": _resp("The alert", OBJ)},
            {"type": "object", "properties": {"note": STR}},
            params=[{"name": "alert_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
            errors=(400, 401, 403, 404, 409), tag="live")},
        "/api/v1/board": {"get": _op(
            "Everything the supervisor board shows, with the last_seq to subscribe after",
            ["supervisor"], {"200": _resp("Board snapshot", OBJ)},
            params=[_query("warehouse", "Warehouse code (default: the first)")],
            errors=(401, 403, 404), tag="live")},
        "/api/v1/warehouses/{code}/settings": {"put": _op(
            "Per-warehouse rules: status flow, SLAs, carrier cut-off, alert thresholds, what the "
            "gift box waits for; every change is audited (settings_changed)",
            ["supervisor", "integration"], {"200": _resp("The merged settings", OBJ)},
            {"type": "object", "properties": {
                "slas": {"type": "object", "additionalProperties": {
                    "type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2}},
                "cutoff": STR, "tracking_alert_minutes": {"type": "integer"},
                "device_silent_minutes": {"type": "integer"},
                "error_rate_threshold": {"type": "number"},
                "error_rate_min_scans": {"type": "integer"},
                "error_rate_window_minutes": {"type": "integer"},
                "utc_offset_minutes": {"type": "integer", "minimum": -720, "maximum": 840},
                "flow": {"type": "array", "items": STR},
                "optional_steps": {"type": "array", "items": STR},
                "giftbox_requires": {"type": "string", "enum": ["main_samples_gifts", "main_samples"],
                                     "description": "main_samples_gifts (default): the gift box is "
                                                    "refused while a main, sample or gift line is "
                                                    "short; main_samples: gifts may follow the box"},
                "gs_substitute": {"type": "string", "maxLength": 8,
                                  "description": "What the warehouse's keyboard-wedge scanners "
                                                 "type for the GS1 separator, e.g. <GS> (a "
                                                 "device's scanner_profile comes first); \"\": none"}}},
            params=[_path("code", "Warehouse code")], errors=(400, 401, 403), tag="live")},
        "/api/v1/devices": {
            "post": _op(
                "Register or update a device; a serial scanner's port is then read by the "
                "service. 409 device_id_in_use: another warehouse's device; 409 port_in_use: "
                "another warehouse's serial scanner's port",
                ["supervisor", "integration"], {"200": _resp("Updated", DEVICE),
                                                "201": _resp("Registered", DEVICE)},
                DEVICE_IN, errors=(400, 401, 403, 409), tag="devices"),
            "get": _op(
                "Every device with its state (online, offline, error) and last seen",
                ["supervisor", "integration"],
                {"200": _resp("Devices", {"type": "object", "properties": {
                    "devices": {"type": "array", "items": DEVICE}}})},
                params=[_query("warehouse", "Warehouse code"), _query("station", "Station")],
                errors=(400, 401, 403), tag="devices")},
        "/api/v1/devices/heartbeat": {"post": _op(
            "A handheld screen is open (every 20 s; also the Socket.IO event `heartbeat`)",
            ["packer", "qc", "device"], {"200": _resp("Seen", OBJ)},
            {"type": "object", "required": ["device_id", "station"],
             "properties": {"device_id": STR, "station": STR}}, errors=(400, 401, 403, 409),
            tag="devices")},
    }
    paths.update(_printing_paths())
    paths.update(_evidence_paths())
    paths.update(_returns_paths())
    paths.update(_webhook_paths())
    return {
        "openapi": "3.1.0",
        "info": {"title": "floor API", "version": "1",
                 "description": "Warehouse-floor service: orders and kits in, scans verified "
                                "against frozen kit snapshots. Errors are JSON "
                                "{code, message} with a 4xx status. Socket.IO namespace "
                                "/floor carries `scan` (ack = verdict), `subscribe`, and pushed "
                                "`status`, `scan_rejected`, `override` events."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "Token from `floor token create`"},
                "session": {"type": "apiKey", "in": "cookie", "name": "session",
                            "description": "Logged-in user; writes also need X-CSRFToken"}},
            "schemas": {
                "Error": {"type": "object", "required": ["code", "message"],
                          "properties": {"code": STR, "message": STR}},
                "Progress": PROGRESS}},
    }


CAMERA = {"type": "object", "properties": {
    "camera_id": STR, "station": STR, "recordings": {"type": "integer"},
    "nvr": {"oneOf": [{"type": "null"}, {"type": "object", "properties": {
        "host": STR, "port": {"type": "integer"}, "channel": {"type": "integer"}}}]},
    "registered_by": {"type": ["string", "null"]},
    "registered_at": {"type": "string", "format": "date-time"}}}
EVIDENCE_SCAN = {"type": "object", "required": ["scan_id", "code", "frame", "thumbnail_url"],
                 "properties": {
    "scan_id": STR, "code": STR, "frame": {"type": "integer", "minimum": 0},
    "at": {"type": "string", "format": "date-time"},
    "offset_s": {"type": "number", "description": "Seconds from the clip's start_frame"},
    "verdict": OBJ, "station": STR, "device_id": STR, "sku": {"type": ["string", "null"]},
    "thumbnail_url": STR}}
EVIDENCE_EVENT = {"type": "object", "required": ["seq", "status", "frame", "thumbnail_url"],
                  "properties": {
    "seq": {"type": "integer"}, "status": STR, "from_status": {"type": ["string", "null"]},
    "at": {"type": "string", "format": "date-time"}, "by": STR,
    "device_id": {"type": ["string", "null"]}, "station": STR, "reason": STR,
    "frame": {"type": "integer", "minimum": 0}, "offset_s": {"type": "number"},
    "thumbnail_url": STR}}
EVIDENCE = {"type": "object", "required": ["clips", "snapshot_hash"], "properties": {
    "order_no": STR, "snapshot_hash": {"type": ["string", "null"]},
    "clip_url": {"type": ["string", "null"]},
    # Why clip_url is null with recordings: the first camera's clip is too long to export.
    "clip_refused": {"type": "object", "properties": {"code": {"const": "clip_too_long"},
                                                      "params": {"type": "object", "properties": {
                                                          "max_s": {"type": "number"},
                                                          "length_s": {"type": "number"}}}}},
    "window": {"oneOf": [{"type": "null"}, {"type": "object", "properties": {
        "from": STR, "to": STR, "opened_at": STR, "sealed_at": STR}}]},
    "clips": {"type": "array", "items": {"type": "object", "required": [
        "camera_id", "path", "start_frame", "end_frame", "scans"], "properties": {
        "camera_id": STR, "station": STR, "recording_id": {"type": "integer"}, "path": STR,
        "start_frame": {"type": "integer"}, "end_frame": {"type": "integer"},
        "started_at": {"type": "string", "format": "date-time"}, "fps": {"type": "number"},
        "from": STR, "to": STR, "clip_offset_frames": {"type": "integer"},
        "scans": {"type": "array", "items": EVIDENCE_SCAN},
        "events": {"type": "array", "items": EVIDENCE_EVENT},
        "playback_url": {"type": ["string", "null"]}}}}}}


def _evidence_paths() -> dict[str, Any]:
    readers = ["supervisor", "qc", "integration"]
    order = [_path("order_no", "Order number"), _query("channel", "Sales channel"), ORDER_WAREHOUSE]
    return {
        "/api/v1/cameras": {
            "post": _op(
                "Register or change a camera at a station, with its NVR playback reference",
                ["supervisor", "integration"], {"200": _resp("Updated", CAMERA),
                                                "201": _resp("Registered", CAMERA)},
                {"type": "object", "required": ["camera_id", "station"], "properties": {
                    "camera_id": JOB_ID, "station": STR, "nvr": {"type": "object", "properties": {
                        "host": STR, "port": {"type": "integer", "default": 554},
                        "channel": {"type": "integer", "default": 1}}}}},
                errors=(400, 401, 403, 409, 413), tag="evidence"),
            "get": _op("Every camera", readers, {"200": _resp("Cameras", {
                "type": "object", "properties": {"cameras": {"type": "array", "items": CAMERA}}})},
                errors=(401, 403), tag="evidence")},
        "/api/v1/cameras/{camera_id}/recordings": {"post": _op(
            "Register a recording file of a camera (under the recordings folder): frames and fps "
            "are read from the file. 400 path_not_allowed, video_not_found, unreadable_video; 409 "
            "path_in_use: a one-warehouse account naming a file of another warehouse's camera",
            ["supervisor", "integration"],
            {"200": _resp("Updated", OBJ), "201": _resp("Registered: frames, fps, ends_at", {
                "type": "object", "required": ["frames", "fps", "ends_at"], "properties": {
                    "frames": {"type": "integer"}, "fps": {"type": "number"}, "ends_at": STR,
                    "recording_id": {"type": "integer"}}})},
            {"type": "object", "required": ["path", "started_at"], "properties": {
                "path": STR, "started_at": {"type": "string", "format": "date-time"}}},
            params=[_path("camera_id", "Camera id")], errors=(400, 401, 403, 404, 413),
            tag="evidence")},
        "/api/v1/orders/{order_no}/evidence": {"get": _op(
            "The recordings covering the order's packing, each scan at its exact frame",
            readers, {"200": _resp("Evidence", EVIDENCE)}, params=order,
            errors=(401, 403, 404, 409), tag="evidence")},
        "/api/v1/orders/{order_no}/evidence/clip.mp4": {"get": {
            **_op("The order's packing as one H.264 MP4 (one camera; gaps left out); range "
                  "requests supported; longer than EVIDENCE_CLIP_MAX_S: 422 clip_too_long "
                  "(params: max_s, length_s); every export slot busy: 503 clip_export_busy",
                  readers, {},
                  params=order + [_query("camera", "Camera id (default: the first)")],
                  errors=(400, 401, 403, 404, 409, 422, 503), tag="evidence"),
            "responses": {"200": _binary("MP4", "video/mp4"),
                          "206": _binary("Part of the MP4", "video/mp4"),
                          **{str(c): _resp("Error", ERROR)
                             for c in (400, 401, 403, 404, 409, 422, 503)}}}},
        "/api/v1/evidence/frames/{recording_id}/{frame}.jpg": {"get": {
            **_op("Exactly one frame of a recording as a JPEG", readers, {},
                  params=[_path("recording_id", "Recording id"),
                          _path("frame", "0-based frame index in the file"),
                          _query("width", "80 to 1280 pixels (default 320; never enlarged)")],
                  errors=(400, 401, 403, 404, 409), tag="evidence"),
            "responses": {"200": _binary("JPEG", "image/jpeg"),
                          **{str(c): _resp("Error", ERROR) for c in (400, 401, 403, 404, 409)}}}},
    }


PRINTER = {"type": "object", "properties": {
    "printer_id": STR, "station": STR, "driver": {"type": "string", "enum": ["tcp", "file"]},
    "address": STR, "state": {"type": "string", "enum": ["online", "offline", "error"]},
    "state_reason": {"type": ["string", "null"]}, "queue_depth": {"type": "integer"},
    "last_error": {"type": ["string", "null"]}, "registered_by": {"type": ["string", "null"]},
    "registered_at": {"type": ["string", "null"], "format": "date-time"}}}
PRINT_JOB = {"type": "object", "required": ["job_id", "state", "printer_id"], "properties": {
    "job_id": STR, "state": {"type": "string", "enum": ["queued", "printed", "failed"]},
    "kind": {"type": "string", "enum": ["waybill", "trace", "station", "location"]},
    "order_no": {"type": ["string", "null"]}, "printer_id": STR, "station": STR,
    "attempts": {"type": "integer"}, "last_error": {"type": ["string", "null"]},
    "next_attempt_at": {"type": ["string", "null"], "format": "date-time"},
    "created_by": STR, "created_at": {"type": "string", "format": "date-time"},
    "printed_at": {"type": ["string", "null"], "format": "date-time"},
    "order_status": STR}}
JOB_ID = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"}


def _binary(description: str, media_type: str) -> dict[str, Any]:
    return {"description": description,
            "content": {media_type: {"schema": {"type": "string", "format": "binary"}}}}


def _printing_paths() -> dict[str, Any]:
    everyone = ["packer", "qc", "supervisor", "integration", "device"]
    barcode_params = [_query("text", "The text to encode (Code 128: printable ASCII; EAN-13: "
                                     "12 digits or 13 with a valid check digit)", True),
                      _query("symbology", "code128 or ean13 (default: EAN-13 for a valid "
                                          "13-digit code, else Code 128)")]
    return {
        "/api/v1/printers": {
            "post": _op(
                "Register or change a label printer at a station: raw TCP (port 9100, ZPL) or a "
                "folder inside the configured print root (file driver). A TCP address in a "
                "blocked network (FLOOR_PRINTER_BLOCKED_NETWORKS) is 400 blocked_destination; "
                "409 printer_id_in_use: another warehouse's printer",
                ["supervisor", "integration"], {"200": _resp("Updated", PRINTER),
                                                "201": _resp("Registered", PRINTER)},
                {"type": "object", "required": ["printer_id", "station", "driver", "address"],
                 "properties": {"printer_id": JOB_ID, "station": STR,
                                "driver": {"type": "string", "enum": ["tcp", "file"]},
                                "address": STR}}, errors=(400, 401, 403, 409), tag="devices"),
            "get": _op(
                "Every label printer with its state, queue depth and last error",
                ["supervisor", "integration"],
                {"200": _resp("Printers", {"type": "object", "properties": {
                    "printers": {"type": "array", "items": PRINTER}}})},
                errors=(401, 403), tag="devices")},
        "/api/v1/printers/{printer_id}/labels": {"post": _op(
            "Queue a station or location label on a printer", ["supervisor"],
            {"202": _resp("Queued", PRINT_JOB)},
            {"type": "object", "required": ["kind", "code"], "properties": {
                "kind": {"type": "string", "enum": ["station", "location"]}, "code": STR,
                "job_id": JOB_ID}},
            params=[_path("printer_id", "Printer id")], errors=(400, 401, 403, 404, 409),
            tag="devices")},
        "/api/v1/orders/{order_no}/label": {"post": _op(
            "Queue the order's waybill label on the station's printer. The order must be packed "
            "(packed → labelling; labelled once printed) or later (a reprint moves nothing). "
            "Idempotent on job_id. 409 not_packed, waybill_required, no_printer",
            ["packer", "supervisor", "device"], {"202": _resp("Queued", PRINT_JOB)},
            {"type": "object", "required": ["station"], "properties": {
                "station": STR, "job_id": JOB_ID, "printer_id": STR, "device_id": STR}},
            params=[_path("order_no", "Order number"), _query("channel", "Sales channel"), ORDER_WAREHOUSE],
            errors=(400, 401, 403, 404, 409), tag="devices")},
        "/api/v1/print-jobs/{job_id}": {"get": _op(
            "A print job's state: queued, printed or failed", ["packer", "supervisor", "device",
                                                               "integration"],
            {"200": _resp("The job", PRINT_JOB)}, params=[_path("job_id", "Job id")],
            errors=(401, 403, 404), tag="devices")},
        "/api/v1/warehouses/{code}/printing": {"put": _op(
            "Label printing settings of a warehouse: auto_print_waybill queues the waybill label "
            "when a pack session completes", ["supervisor", "integration"],
            {"200": _resp("The setting", OBJ)},
            {"type": "object", "required": ["auto_print_waybill"],
             "properties": {"auto_print_waybill": {"type": "boolean"}}},
            params=[_path("code", "Warehouse code")], errors=(400, 401, 403), tag="devices")},
        "/api/v1/labels/{kind}.zpl": {"get": {
            **_op("ZPL of a 4×6 in station or location label (203 dpi)", ["supervisor"], {},
                  params=[_path("kind", "station or location"),
                          _query("code", "The station or location code", True)],
                  errors=(400, 401, 403, 404), tag="devices"),
            "responses": {"200": _binary("ZPL (UTF-8, ^CI28)", "text/plain"),
                          **{str(c): _resp("Error", ERROR) for c in (400, 401, 403, 404)}}}},
        "/api/v1/labels/barcode.svg": {"get": {
            **_op("A barcode as SVG, for screens and sheets", everyone, {},
                  params=barcode_params, tag="devices"),
            "responses": {"200": _binary("SVG", "image/svg+xml"),
                          **{str(c): _resp("Error", ERROR) for c in (400, 401, 403)}}}},
        "/api/v1/labels/barcode.png": {"get": {
            **_op("A barcode as a 300 dpi PNG, for A4 sheets", everyone, {},
                  params=barcode_params, tag="devices"),
            "responses": {"200": _binary("PNG", "image/png"),
                          **{str(c): _resp("Error", ERROR) for c in (400, 401, 403)}}}},
    }


RETURN_LINE = {"type": "object", "required": ["result"], "properties": {
    "result": {"type": "string", "enum": ["matched", "missing", "lot_mismatch", "over_returned",
                                          "foreign_item"]},
    "issues": {"type": "array", "items": STR}, "line_no": {"type": ["integer", "null"]},
    "sku": {"type": ["string", "null"]}, "snapshot_line": {"type": ["object", "null"]},
    "expected_qty": {"type": "integer"}, "returned_qty": {"type": "integer"},
    "missing_qty": {"type": "integer"}, "over_qty": {"type": "integer"},
    "packed_lots": {"type": "array", "items": STR}, "mismatched_lots": {"type": "array", "items": STR},
    "scans": {"type": "array", "items": OBJ}}}
RETURN_REPORT = {"type": "object", "required": ["lines", "content_hash", "snapshot_hash",
                                                "suggested_outcome"], "properties": {
    "rma_no": STR, "order_no": STR, "lines": {"type": "array", "items": RETURN_LINE},
    "content_hash": STR, "snapshot_hash": STR,
    "suggested_outcome": {"type": "string", "enum": ["refund", "partial", "manual_review"]},
    "confirmed_outcome": {"type": ["string", "null"]}, "confirmed_by": {"type": ["string", "null"]},
    "confirmed_at": {"type": ["string", "null"]}, "confirm_note": {"type": ["string", "null"]},
    "state": STR}}
RETURN_OUT = {"type": "object", "required": ["rma_no", "trace_code", "state"], "properties": {
    "rma_no": STR, "trace_code": STR, "order_no": STR, "state": STR, "station": STR,
    "snapshot": OBJ, "packed": {"type": "array", "items": OBJ},
    "scans": {"type": "array", "items": OBJ}, "comparison": OBJ,
    "report": {"oneOf": [RETURN_REPORT, {"type": "null"}]}}}


def _returns_paths() -> dict[str, Any]:
    rma = _path("rma_no", "RMA number")
    label_errors = {str(c): _resp("Error", ERROR) for c in (401, 403, 404, 409)}
    paths: dict[str, Any] = {
        "/api/v1/returns": {
            "post": _op(
                "Open a return of a packed (or later) order; answers its RMA number and trace "
                "code (溯源码). 409 not_packed, return_open (with its rma_no)", ["qc", "integration"],
                {"201": _resp("The return", RETURN_OUT)},
                {"type": "object", "required": ["order_no", "reason"], "properties": {
                    "order_no": STR, "reason": STR, "customer_note": STR, "channel": STR,
                    "warehouse": STR,
                    "station": {"type": "string", "description": "The returns station (default: the "
                                "warehouse setting returns_station, else R01)"},
                    "print": {"type": "boolean", "default": True}}},
                errors=(400, 401, 403, 404, 409), tag="returns"),
            "get": _op(
                "The QC queue: returns by state (open by default)", ["qc", "supervisor"],
                {"200": _resp("Returns", OBJ)},
                params=[_query("state", "open, closed, confirmed or all"),
                        _query("warehouse", "Warehouse code")], errors=(400, 401, 403), tag="returns")},
        "/api/v1/returns/by-code/{code}": {"get": _op(
            "The open return a trace code, RMA number, waybill or order number names",
            ["qc"], {"200": _resp("The return", RETURN_OUT)},
            params=[_path("code", "Trace code, RMA, waybill or order number")],
            errors=(401, 403, 404), tag="returns")},
        "/api/v1/returns/{rma_no}": {"get": _op(
            "A return: the snapshot, what was packed (lots, serials, packer, station, time), the "
            "returned scans, the live comparison, the report once closed",
            ["qc", "supervisor", "integration"], {"200": _resp("The return", RETURN_OUT)},
            params=[rma], errors=(401, 403, 404), tag="returns")},
        "/api/v1/returns/{rma_no}/scans": {"post": _op(
            "One returned item with its condition: the live verdict (matched, lot_mismatch, "
            "foreign_item, over_returned, unreadable) and the comparison. Idempotent on scan_id; "
            "409 return_closed", ["qc"], {"200": _resp("Verdict and comparison", OBJ)},
            {"type": "object", "required": ["scan_id", "code"], "properties": {
                "scan_id": STR, "code": STR, "note": STR, "device_id": STR,
                "condition": {"type": "string", "enum": ["resellable", "opened", "damaged"],
                              "default": "resellable"}}},
            params=[rma], errors=(400, 401, 403, 404, 409), tag="returns")},
        "/api/v1/returns/{rma_no}/scans/{scan_id}/photo": {
            "post": {
                **_op("Attach a photo to a returned item (≤ 5 MB; a JPEG, PNG, WebP, GIF, BMP "
                      "or TIFF within IMAGE_MAX_PIXELS, checked from its header before decoding, "
                      "else 413 image_too_large; busy decoders 503 decoder_busy; stored as JPEG)",
                      ["qc"], {"200": _resp("Stored", OBJ)},
                      params=[rma, _path("scan_id", "The return scan")],
                      errors=(400, 401, 403, 404, 409, 413, 503), tag="returns"),
                "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                    "type": "object", "required": ["photo"],
                    "properties": {"photo": {"type": "string", "format": "binary"}}}}}}},
            "get": {
                **_op("A returned item's photo", ["qc", "supervisor"], {},
                      params=[rma, _path("scan_id", "The return scan")], errors=(401, 403, 404),
                      tag="returns"),
                "responses": {"200": _binary("JPEG", "image/jpeg"),
                              **{str(c): _resp("Error", ERROR) for c in (401, 403, 404)}}}},
        "/api/v1/returns/{rma_no}/close": {"post": _op(
            "Close the inspection: the immutable report, its content hash chained to the snapshot "
            "hash, the suggested outcome. 409 return_closed", ["qc"],
            {"200": _resp("The report", RETURN_REPORT)}, params=[rma],
            errors=(401, 403, 404, 409), tag="returns")},
        "/api/v1/returns/{rma_no}/confirm": {"post": _op(
            "A QC lead confirms the outcome (recorded beside the report). 409 return_not_closed, "
            "already_confirmed", ["supervisor"], {"200": _resp("The report", RETURN_REPORT)},
            {"type": "object", "required": ["outcome"], "properties": {
                "outcome": {"type": "string", "enum": ["refund", "partial", "manual_review"]},
                "note": STR}},
            params=[rma], errors=(400, 401, 403, 404, 409), tag="returns")},
    }
    for ext, media, what in (("svg", "image/svg+xml", "SVG"), ("png", "image/png", "300 dpi PNG"),
                             ("zpl", "text/plain", "ZPL (4×6 in, 203 dpi)")):
        paths[f"/api/v1/returns/{{rma_no}}/label.{ext}"] = {"get": {
            **_op(f"The trace-code label as {what}", ["qc", "supervisor"], {}, params=[rma],
                  errors=(401, 403, 404, 409), tag="returns"),
            "responses": {"200": _binary(what, media), **label_errors}}}
    return paths


WEBHOOK_TYPES = list(webhook_domain.WEBHOOK_TYPES)
WEBHOOK_STATES = list(webhook_domain.STATES)
WEBHOOK_COUNTS = {"type": "object", "description": "Deliveries per state", "properties": {
    state: {"type": "integer"} for state in WEBHOOK_STATES}}
WEBHOOK = {"type": "object", "required": ["id", "url", "events", "secret_hint", "enabled"],
           "properties": {
    "id": {"type": "integer"}, "url": STR,
    "events": {"type": "array", "items": {"type": "string", "enum": WEBHOOK_TYPES}},
    "secret_hint": {"type": "string", "description": "The secret's last characters, masked"},
    "secret": {"type": "string", "description": "Only in the answer that set it (creation, "
                                                "rotation); never shown again"},
    "enabled": {"type": "boolean"},
    "cursor": {"type": "integer", "description": "The last event-log seq fanned out"},
    "created_by": STR, "created_at": {"type": "string", "format": "date-time"},
    "updated_by": {"type": ["string", "null"]}, "updated_at": {"type": ["string", "null"]},
    "deleted_by": {"type": ["string", "null"]}, "deleted_at": {"type": ["string", "null"]},
    "counts": WEBHOOK_COUNTS}}
WEBHOOK_DELIVERY = {"type": "object", "required": ["id", "event_id", "type", "seq", "state"],
                    "properties": {
    "id": {"type": "integer"}, "subscription_id": {"type": "integer"},
    "event_id": {"type": "string", "description": "The event's id as sent (X-Floor-Event-Id): "
                                                  "stable across retries, dedupe on it"},
    "type": {"type": "string", "enum": WEBHOOK_TYPES}, "seq": {"type": "integer"},
    "order_no": {"type": ["string", "null"]},
    "state": {"type": "string", "enum": WEBHOOK_STATES},
    "attempts": {"type": "integer"},
    "next_attempt_at": {"type": ["string", "null"], "format": "date-time"},
    "last_status_code": {"type": ["integer", "null"]}, "last_error": {"type": ["string", "null"]},
    "created_at": STR, "last_attempt_at": {"type": ["string", "null"]},
    "delivered_at": {"type": ["string", "null"]}, "dead_at": {"type": ["string", "null"]},
    "body": {"type": "object", "description": "The JSON sent (in the single delivery's answer)"},
    "attempt_history": {"type": "array", "items": OBJ}}}


def _webhook_paths() -> dict[str, Any]:
    managers = ["supervisor", "integration"]
    sub_id = [{"name": "sub_id", "in": "path", "required": True, "schema": {"type": "integer"}}]
    delivery_id = [{"name": "delivery_id", "in": "path", "required": True,
                    "schema": {"type": "integer"}}]
    events = {"type": "array", "items": {"type": "string", "enum": WEBHOOK_TYPES}, "minItems": 1}
    secret = {"type": "string", "minLength": 16, "maxLength": 128,
              "description": "HMAC key of X-Floor-Signature; generated (and answered once) "
                             "when absent"}
    return {
        "/api/v1/webhooks": {
            "post": _op(
                "Subscribe a receiver to events (status, pack_result, waybill). Each delivery is "
                "a signed POST (see docs/webhooks.md); it gets the events committed from now on. "
                "400 invalid_url, invalid_events, invalid_secret", managers,
                {"201": _resp("The subscription, with its secret (this once)", WEBHOOK)},
                {"type": "object", "required": ["url"], "properties": {
                    "url": {"type": "string", "maxLength": 2000,
                            "description": "http or https, no credentials"},
                    "events": {**events, "default": ["status"]}, "secret": secret,
                    "enabled": {"type": "boolean", "default": True}}},
                tag="webhooks"),
            "get": _op(
                "Every subscription with its delivery counts per state (all=1: deleted ones "
                "too); secrets are never shown, only a hint", managers,
                {"200": _resp("Subscriptions", {"type": "object", "properties": {
                    "subscriptions": {"type": "array", "items": WEBHOOK},
                    "event_types": {"type": "array", "items": STR}}})},
                params=[_query("all", "1 to include deleted subscriptions")],
                errors=(401, 403), tag="webhooks")},
        "/api/v1/webhooks/{sub_id}": {
            "get": _op("One subscription with its counts", managers,
                       {"200": _resp("The subscription", WEBHOOK)}, params=sub_id,
                       errors=(401, 403, 404), tag="webhooks"),
            "patch": _op(
                "Change url, events or enabled (disabled: nothing is sent; enabled again, it "
                "catches up from where it stopped), or the secret (`secret`, or "
                "`rotate_secret: true` for a generated one, answered once). 409 webhook_deleted",
                managers, {"200": _resp("The subscription", WEBHOOK)},
                {"type": "object", "properties": {
                    "url": STR, "events": events, "enabled": {"type": "boolean"},
                    "secret": secret, "rotate_secret": {"type": "boolean"}}},
                params=sub_id, errors=(400, 401, 403, 404, 409), tag="webhooks"),
            "delete": _op(
                "Delete a subscription: nothing more is sent; it and its history stay on record "
                "(GET with all=1)", managers, {"200": _resp("The subscription", WEBHOOK)},
                params=sub_id, errors=(401, 403, 404, 409), tag="webhooks")},
        "/api/v1/webhooks/{sub_id}/deliveries": {"get": _op(
            "A subscription's deliveries, newest first", managers,
            {"200": _resp("Deliveries", {"type": "object", "properties": {
                "deliveries": {"type": "array", "items": WEBHOOK_DELIVERY}}})},
            params=sub_id + [
                _query("state", "pending, held, dead, delivered, discarded (comma-separated)"),
                _query("order_no", "Only this order's"), _query("limit", "1 to 500 (50)")],
            errors=(400, 401, 403, 404), tag="webhooks")},
        "/api/v1/webhooks/{sub_id}/redeliver-dead": {"post": _op(
            "Redeliver every dead delivery of a subscription (after a long outage of its "
            "receiver); each is recorded. 409 webhook_deleted", managers,
            {"200": _resp("What was sent again", {"type": "object", "properties": {
                "subscription_id": {"type": "integer"}, "redelivered": {"type": "integer"},
                "delivery_ids": {"type": "array", "items": {"type": "integer"}}}})},
            params=sub_id, errors=(401, 403, 404, 409), tag="webhooks")},
        "/api/v1/webhook-deliveries/{delivery_id}": {"get": _op(
            "One delivery: the body sent and every attempt (time, status code, latency, error)",
            managers, {"200": _resp("The delivery", WEBHOOK_DELIVERY)}, params=delivery_id,
            errors=(401, 403, 404), tag="webhooks")},
        "/api/v1/webhook-deliveries/{delivery_id}/redeliver": {"post": _op(
            "Send a dead delivery again from its first attempt; its order's held events follow "
            "it in order once it is acknowledged. 409 not_dead", managers,
            {"200": _resp("The delivery", WEBHOOK_DELIVERY)}, params=delivery_id,
            errors=(401, 403, 404, 409), tag="webhooks")},
        "/api/v1/webhook-deliveries/{delivery_id}/discard": {"post": _op(
            "Give up on a dead delivery (recorded with the reason); its order's held events go "
            "on. 409 not_dead", ["supervisor"], {"200": _resp("The delivery", WEBHOOK_DELIVERY)},
            {"type": "object", "required": ["reason"], "properties": {"reason": STR}},
            params=delivery_id, errors=(400, 401, 403, 404, 409), tag="webhooks")},
        **_access_paths(),
    }


TOKEN = {"type": "object", "properties": {
    "id": {"type": "integer"}, "name": STR, "role": STR, "warehouse": {"type": ["string", "null"]},
    "created_at": {"type": "string", "format": "date-time"}, "created_by": {"type": ["string", "null"]},
    "last_used_at": {"type": ["string", "null"], "format": "date-time"},
    "revoked_at": {"type": ["string", "null"], "format": "date-time"},
    "revoked_by": {"type": ["string", "null"]}}}
AUDIT_ENTRY = {"type": "object", "properties": {
    "id": {"type": "integer"}, "at": {"type": "string", "format": "date-time"}, "actor": STR,
    "role": {"type": ["string", "null"]}, "via": {"type": ["string", "null"]},
    "token_id": {"type": ["integer", "null"]}, "warehouse": {"type": ["string", "null"]},
    "remote_addr": STR, "action": STR, "target": STR,
    "outcome": {"type": "string", "enum": ["ok", "refused", "failed"]}, "detail": OBJ}}


def _access_paths() -> dict[str, Any]:
    """Tokens and the audit log (docs/security.md). A supervisor limited to one warehouse
    sees only that warehouse's."""
    sup = ["supervisor"]
    token_id = [{"name": "token_id", "in": "path", "required": True, "description": "The token's id",
                 "schema": {"type": "integer"}}]
    return {
        "/api/v1/tokens": {
            "post": _op(
                "Make a bearer token; the secret is in this answer only. A supervisor of one "
                "warehouse makes tokens of that warehouse only (403 warehouse_forbidden)", sup,
                {"201": _resp("The token, with `token` (the secret)", {**TOKEN, "properties": {
                    **TOKEN["properties"], "token": STR}})},
                {"type": "object", "required": ["name", "role"], "properties": {
                    "name": STR, "role": {"type": "string", "enum": ["packer", "qc", "supervisor",
                                                                      "integration", "device"]},
                    "warehouse": {"type": "string", "description": "Absent: every warehouse "
                                  "(or the supervisor's own, when it has one)"}}},
                tag="access"),
            "get": _op("Every token (no secrets); revoked=0 leaves out revoked ones", sup,
                       {"200": _resp("Tokens", {"type": "object", "properties": {
                           "tokens": {"type": "array", "items": TOKEN}}})},
                       params=[_query("revoked", "0 to leave out revoked tokens")],
                       errors=(401, 403), tag="access")},
        "/api/v1/tokens/{token_id}/revoke": {"post": _op(
            "Revoke a token: refused at once by this process, by other server processes within "
            "10 s. Idempotent", sup, {"200": _resp("The token", TOKEN)}, params=token_id,
            errors=(401, 403, 404), tag="access")},
        "/api/v1/audit": {"get": _op(
            "The audit log, newest first: logins, failures and lockouts, logouts, expired "
            "sessions, tokens made, revoked and used, overrides, refusals", sup,
            {"200": _resp("Entries", {"type": "object", "properties": {
                "entries": {"type": "array", "items": AUDIT_ENTRY},
                "next_before_id": {"type": ["integer", "null"]}}})},
            params=[_query("action", "Only this action"), _query("actor", "Only this actor"),
                    _query("since", "ISO 8601, inclusive"), _query("until", "ISO 8601, exclusive"),
                    _query("before_id", "The next page: the last id of the previous one"),
                    _query("limit", "1 to 500 (100)")],
            tag="access")},
    }
