"""The OpenAPI 3 document of /api/v1. A test checks it against the app's URL map."""
from __future__ import annotations

from typing import Any

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
DEVICE_IN = {"type": "object", "required": ["device_id", "station"], "properties": {
    "device_id": STR, "station": STR, "warehouse": STR,
    "kind": {"type": "string", "enum": ["serial", "handheld"], "default": "serial"},
    "port": {"type": "string", "description": "Serial port path or pyserial URL"},
    "baudrate": {"type": "integer", "default": 9600},
    "terminator": {"type": "string", "enum": ["CR", "LF", "CRLF"],
                   "description": "Absent: any of them"},
    "enabled": {"type": "boolean", "default": True}}}
DEVICE = {"type": "object", "properties": {
    "device_id": STR, "kind": STR, "station": {"type": ["string", "null"]},
    "state": {"type": "string", "enum": ["online", "offline", "error"]},
    "reason": {"type": ["string", "null"]},
    "last_seen_at": {"type": ["string", "null"], "format": "date-time"},
    "last_scan_at": {"type": ["string", "null"], "format": "date-time"},
    "port": {"type": ["string", "null"]}, "baudrate": {"type": ["integer", "null"]},
    "terminator": {"type": ["string", "null"]}, "enabled": {"type": "boolean"}}}
VERDICT = {"type": "object", "required": ["ok", "code", "message"], "properties": {
    "ok": {"type": "boolean"}, "code": STR, "message": STR, "scan_id": STR,
    "order_no": {"type": ["string", "null"]}, "status": {"type": ["string", "null"]},
    "progress": {"oneOf": [{"$ref": "#/components/schemas/Progress"}, {"type": "null"}]},
    "line_no": {"type": ["integer", "null"]}, "sku": {"type": ["string", "null"]}, "params": OBJ}}
PROGRESS = {"type": "object", "properties": {
    "order_no": STR, "wave_no": {"type": ["string", "null"]}, "lines": {"type": "array", "items": OBJ},
    "lines_done": {"type": "integer"}, "lines_total": {"type": "integer"},
    "units_left": {"type": "integer"}, "waybill_no": {"type": ["string", "null"]},
    "waybill_bound": {"type": "boolean"}, "complete": {"type": "boolean"}}}
ORDER_OUT = {"type": "object", "required": ["order_no", "status", "timeline", "snapshot", "scans"],
             "properties": {"order_no": STR, "channel": STR, "status": STR,
                            "waybill_no": {"type": ["string", "null"]},
                            "wave_no": {"type": ["string", "null"]},
                            "snapshot": {"type": ["object", "null"]},
                            "timeline": {"type": "array", "items": OBJ},
                            "scans": {"type": "array", "items": OBJ},
                            "sessions": {"type": "array", "items": OBJ},
                            "overrides": {"type": "array", "items": OBJ}}}


def openapi_document() -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/healthz": {"get": _op("Health: 200 when the database answers", [],
                                {"200": _resp("Healthy", OBJ), "503": _resp("Database down", ERROR)},
                                errors=(), tag="meta")},
        "/api/v1/openapi.json": {"get": _op("This document", [], {"200": _resp("OpenAPI 3", OBJ)},
                                            errors=(), tag="meta")},
        "/api/v1/orders": {"post": _op(
            "Create or update one order with its kit (idempotent on channel + order_no)",
            ["integration"], {"201": _resp("Created", OBJ), "200": _resp("Updated", OBJ)},
            ORDER_IN, errors=(400, 401, 403, 409, 413))},
        "/api/v1/orders/{order_no}": {"get": _op(
            "Status, micro-status timeline, kit snapshot with hash, scans with verdicts",
            ["packer", "qc", "supervisor", "integration"], {"200": _resp("The order", ORDER_OUT)},
            params=[_path("order_no", "Order number"),
                    _query("channel", "Sales channel, when the number exists in several")],
            errors=(400, 401, 403, 404, 409))},
        "/api/v1/waves": {"post": _op(
            "Assign orders to a wave; freezes each order's kit snapshot",
            ["integration", "supervisor"], {"200": _resp("The wave", OBJ)},
            {"type": "object", "required": ["wave_no", "order_nos"], "properties": {
                "wave_no": STR, "station": STR, "order_nos": {"type": "array", "items": STR}}},
            errors=(400, 401, 403, 404, 409))},
        "/api/v1/waves/{wave_no}": {"get": _op(
            "A wave and its orders", ["packer", "qc", "supervisor", "integration"],
            {"200": _resp("The wave", OBJ)}, params=[_path("wave_no", "Wave number")],
            errors=(401, 403, 404))},
        "/api/v1/scans": {"post": _op(
            "One scan; answers the verdict. Idempotent on scan_id", ["packer", "device"],
            {"200": _resp("The verdict (ok true or false)", VERDICT)}, SCAN_IN,
            errors=(400, 401, 403, 413), tag="scan")},
        "/api/v1/decode": {"post": {
            **_op("Barcodes in a photo (camera fallback): zxing-cpp and zbar, fused",
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
            params=[_path("order_no", "Order number"), _query("channel", "Sales channel")],
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
            "Per-warehouse rules: status flow, SLAs, carrier cut-off, alert thresholds",
            ["supervisor", "integration"], {"200": _resp("The merged settings", OBJ)},
            {"type": "object", "properties": {
                "slas": {"type": "object", "additionalProperties": {
                    "type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2}},
                "cutoff": STR, "tracking_alert_minutes": {"type": "integer"},
                "device_silent_minutes": {"type": "integer"},
                "error_rate_threshold": {"type": "number"},
                "error_rate_min_scans": {"type": "integer"},
                "error_rate_window_minutes": {"type": "integer"},
                "utc_offset_minutes": {"type": "integer"},
                "flow": {"type": "array", "items": STR},
                "optional_steps": {"type": "array", "items": STR}}},
            params=[_path("code", "Warehouse code")], errors=(400, 401, 403), tag="live")},
        "/api/v1/devices": {
            "post": _op(
                "Register or update a device; a serial scanner's port is then read by the service",
                ["supervisor", "integration"], {"200": _resp("Updated", DEVICE),
                                                "201": _resp("Registered", DEVICE)},
                DEVICE_IN, tag="devices"),
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
             "properties": {"device_id": STR, "station": STR}}, tag="devices")},
    }
    paths.update(_printing_paths())
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
                "folder inside the configured print root (file driver)",
                ["supervisor", "integration"], {"200": _resp("Updated", PRINTER),
                                                "201": _resp("Registered", PRINTER)},
                {"type": "object", "required": ["printer_id", "station", "driver", "address"],
                 "properties": {"printer_id": JOB_ID, "station": STR,
                                "driver": {"type": "string", "enum": ["tcp", "file"]},
                                "address": STR}}, tag="devices"),
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
            params=[_path("order_no", "Order number"), _query("channel", "Sales channel")],
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
