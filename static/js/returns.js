/* floor: the returns QC screen. Scan a trace code (or a waybill) to open a return, scan each
   returned item with its condition, see the comparison with what was packed live, close it
   into the inspection report; a QC lead confirms the outcome. No inline scripts (strict CSP). */
(function () {
  "use strict";

  function $(id) { return document.getElementById(id); }
  function readJson(id) {
    try { return JSON.parse($(id).textContent || "{}"); } catch (e) { return {}; }
  }
  var CFG = readJson("returns-config");
  var I18N = readJson("returns-i18n");
  var API = CFG.api || "/api/v1/returns";
  var DIFFERENCES = { missing: 1, foreign_item: 1, lot_mismatch: 1, over_returned: 1 };

  function t(key, params) {
    var text = I18N[key] || key;
    if (params) {
      Object.keys(params).forEach(function (name) {
        text = text.split("{" + name + "}").join(params[name] == null ? "" : String(params[name]));
      });
    }
    return text;
  }

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") || "" : "";
  }

  function newId() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
    return "r-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 12);
  }

  var deviceId = (function () {
    var key = "floor.returns.device";
    var id = null;
    try { id = window.localStorage.getItem(key); } catch (e) { /* private mode */ }
    if (!id) {
      id = "QC-" + Math.random().toString(36).slice(2, 8).toUpperCase();
      try { window.localStorage.setItem(key, id); } catch (e) { /* fine */ }
    }
    return id;
  })();

  // ---- elements ----------------------------------------------------------------------------

  var input = $("scan-input");
  var form = $("scan-form");
  var verdictEl = $("verdict");
  var returnEl = $("return");
  var reportEl = $("report");
  var linesEl = $("lines");
  var summaryEl = $("summary");
  var queueEl = $("queue");
  var closeBtn = $("close-button");
  var photoBtn = $("photo-button");
  var photoInput = $("photo-input");
  var connEl = $("conn");
  var connLabel = $("conn-label");
  var lineTpl = $("line-template");

  var current = null;          // the return on screen (GET /returns/<rma_no>)
  var thumbs = {};             // packing scan_id -> thumbnail URL (evidence), when there is one
  var lastScanId = null;       // the item a photo is for
  var busy = false;
  var verdictCount = 0;

  // ---- HTTP --------------------------------------------------------------------------------

  function call(method, url, body) {
    var options = { method: method, credentials: "same-origin",
                    headers: { "Accept": "application/json" } };
    if (method !== "GET") options.headers["X-CSRFToken"] = csrfToken();
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(url, options).then(function (res) {
      return res.json().catch(function () { return null; }).then(function (data) {
        return { status: res.status, ok: res.ok, body: data || {} };
      });
    });
  }

  // ---- sound -------------------------------------------------------------------------------

  var audioCtx = null;
  function ensureAudio() {
    var AC = window.AudioContext || window.webkitAudioContext;
    if (!AC) return null;
    if (!audioCtx) { try { audioCtx = new AC(); } catch (e) { return null; } }
    if (audioCtx.state === "suspended" && typeof audioCtx.resume === "function") {
      audioCtx.resume().catch(function () {});
    }
    return audioCtx;
  }
  ["pointerdown", "touchstart", "keydown"].forEach(function (type) {
    document.addEventListener(type, ensureAudio, { capture: true, passive: true });
  });
  function tone(ctx, freq, type, start, dur, peak) {
    var osc = ctx.createOscillator();
    var gain = ctx.createGain();
    osc.type = type;
    osc.frequency.setValueAtTime(freq, start);
    gain.gain.setValueAtTime(0.0001, start);
    gain.gain.exponentialRampToValueAtTime(peak, start + 0.008);
    gain.gain.setValueAtTime(peak, Math.max(start + 0.01, start + dur - 0.025));
    gain.gain.exponentialRampToValueAtTime(0.0001, start + dur);
    osc.connect(gain);
    gain.connect(ctx.destination);
    osc.start(start);
    osc.stop(start + dur + 0.03);
  }
  function playSound(kind) {
    var ctx = audioCtx;
    if (!ctx || ctx.state !== "running") return;
    try {
      var now = ctx.currentTime + 0.01;
      if (kind === "ok") tone(ctx, 1000, "sine", now, 0.12, 0.35);
      else if (kind === "bad") { tone(ctx, 220, "square", now, 0.2, 0.22); tone(ctx, 220, "square", now + 0.3, 0.2, 0.22); }
      else tone(ctx, 650, "triangle", now, 0.035, 0.12);
    } catch (e) { /* sound is a bonus */ }
    if (typeof navigator.vibrate === "function") {
      try { navigator.vibrate(kind === "bad" ? [200, 100, 200] : kind === "ok" ? 60 : 0); } catch (e) { /* ignore */ }
    }
  }

  // ---- verdict -----------------------------------------------------------------------------

  function showVerdict(text, kind, verdict) {
    verdictCount += 1;
    verdictEl.removeAttribute("data-provisional");
    verdictEl.removeAttribute("data-reconciled");
    verdictEl.textContent = text;
    verdictEl.className = "verdict " + kind;
    verdictEl.setAttribute("data-verdict", verdict || "");
    verdictEl.setAttribute("data-count", String(verdictCount));
    if (kind === "ok" || kind === "bad" || kind === "neutral") playSound(kind);
  }

  function hint(text) {
    verdictEl.textContent = text;
    verdictEl.className = "verdict idle";
    verdictEl.setAttribute("data-verdict", "");
  }

  function verdictText(answer) {
    var params = answer.params || {};
    var text = t("v_" + answer.verdict, { lot: answer.lot || "-", serial: answer.serial || "-",
                                          packed: (params.packed_lots || []).join(", ") || "-" });
    var what = answer.name || answer.sku || "";
    return what ? text + " · " + what : text;
  }

  // ---- rendering ---------------------------------------------------------------------------

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text != null) node.textContent = text;
    return node;
  }

  function conditionLabel(c) { return c === "opened" ? t("opened_c") : t(c); }

  function shortTime(iso) {
    if (!iso) return "";
    var d = new Date(iso);
    if (isNaN(d.getTime())) return iso;
    function two(n) { return (n < 10 ? "0" : "") + n; }
    return (d.getMonth() + 1) + "-" + two(d.getDate()) + " " + two(d.getHours()) + ":" + two(d.getMinutes());
  }

  function renderReturn() {
    if (!current) {
      returnEl.hidden = true;
      reportEl.hidden = true;
      document.body.removeAttribute("data-rma");
      return;
    }
    returnEl.hidden = false;
    document.body.setAttribute("data-rma", current.rma_no);
    $("rma-no").textContent = current.rma_no;
    $("order-no").textContent = current.order_no;
    $("trace-code").textContent = current.trace_code;
    $("reason").textContent = current.reason || "";
    $("customer-note").textContent = current.customer_note || "";
    $("note-row").hidden = !current.customer_note;
    var stateEl = $("return-state");
    stateEl.textContent = t("state_" + current.state);
    stateEl.setAttribute("data-state", current.state);
    $("label-link").setAttribute("href", (current.links || {}).label_svg || "#");
    $("evidence-button").setAttribute("href", (current.links || {}).evidence_page || "#");
    closeBtn.hidden = current.state !== "open";
    photoBtn.hidden = current.state !== "open";
    photoBtn.setAttribute("aria-disabled", lastScanId ? "false" : "true");
    renderComparison(current.comparison || { lines: [] });
    renderReport(current.report);
  }

  function packedByLine() {
    var out = {};
    (current.packed || []).forEach(function (p) {
      (out[p.sku] = out[p.sku] || []).push(p);
    });
    return out;
  }

  function renderComparison(comparison) {
    var packed = packedByLine();
    linesEl.textContent = "";
    (comparison.lines || []).forEach(function (line) {
      var node = lineTpl.content.firstElementChild.cloneNode(true);
      var diff = !!DIFFERENCES[line.result] || !!(line.issues && line.issues.length);
      node.setAttribute("data-result", line.result);
      if (line.provisional) node.classList.add("rq-provisional");
      node.setAttribute("data-sku", line.sku || "");
      if (diff) node.classList.add("rq-diff");
      var role = line.role || "foreign";
      var badge = node.querySelector(".role-badge");
      badge.textContent = t("role_" + role);
      badge.setAttribute("data-role", role);
      badge.classList.add("role-" + role);
      node.querySelector(".rq-line-name").textContent =
        (line.name || line.sku || t("unknown_item")) + (line.sku && line.name ? " · " + line.sku : "");
      node.querySelector(".rq-line-qty").textContent = line.returned_qty + "/" + line.expected_qty;
      var result = node.querySelector(".rq-result");
      var label = t(line.result);
      if (line.result === "missing" || (line.missing_qty && line.result !== "matched")) {
        label += " · " + t("missing_qty", { n: line.missing_qty });
      }
      if (line.result === "lot_mismatch") {
        label += " · " + (line.mismatched_lots || []).join(", ") + " ≠ " + (line.packed_lots || []).join(", ");
      }
      if ((line.mismatched_serials || []).length) {
        label += " · " + t("serial_mismatch") + " " + line.mismatched_serials.join(", ");
      }
      if (line.waived_qty) label += " · " + t("waived_qty", { n: line.waived_qty });
      result.textContent = label;
      result.setAttribute("data-result", line.result);
      // What was packed for this line: lots, serials, who, where, when, the frame.
      var packedEl = node.querySelector(".rq-packed");
      (packed[line.sku] || []).forEach(function (p) {
        var row = el("div", "rq-packed-unit");
        if (thumbs[p.scan_id]) {
          var img = el("img", "rq-thumb");
          img.src = thumbs[p.scan_id];
          img.alt = "";
          img.loading = "lazy";
          row.appendChild(img);
        }
        var facts = el("span", "rq-packed-facts");
        facts.appendChild(el("span", "rq-lot", p.lot ? t("lot") + " " + p.lot : t("no_lot")));
        if (p.serial) facts.appendChild(el("span", "rq-serial", t("serial") + " " + p.serial));
        if (p.override) {
          facts.appendChild(el("span", "rq-override", t("credited_by", {
            by: p.override.by, reason: p.override.reason_code, code: p.code })));
        }
        facts.appendChild(el("span", "rq-who", t("packed_by", { by: p.by, station: p.station, at: shortTime(p.at) })));
        row.appendChild(facts);
        packedEl.appendChild(row);
      });
      var backEl = node.querySelector(".rq-back");
      if (!line.scans || !line.scans.length) {
        if (line.line_no) backEl.appendChild(el("span", "rq-nothing", t("nothing_back")));
      } else {
        line.scans.forEach(function (scan) {
          var chip = el("span", "rq-scan");
          chip.setAttribute("data-condition", scan.condition);
          var bad = (scan.lot && (line.mismatched_lots || []).indexOf(scan.lot) >= 0) ||
            (scan.serial && (line.mismatched_serials || []).indexOf(scan.serial) >= 0);
          if (bad || line.result === "foreign_item") chip.classList.add("rq-scan-bad");
          if (scan.provisional) chip.classList.add("rq-scan-provisional");
          chip.textContent = (scan.lot ? scan.lot : scan.code) + " · " + conditionLabel(scan.condition);
          backEl.appendChild(chip);
        });
      }
      linesEl.appendChild(node);
    });
    var diffs = (comparison.lines || []).filter(function (l) {
      return DIFFERENCES[l.result] || (l.issues && l.issues.length);
    }).length;
    summaryEl.textContent = t("summary", { diff: diffs, outcome: t(comparison.suggested_outcome || "refund") });
    summaryEl.setAttribute("data-differences", String(diffs));
    summaryEl.className = "rq-summary" + (diffs ? " rq-summary-bad" : "");
  }

  function renderReport(report) {
    if (!report) { reportEl.hidden = true; return; }
    reportEl.hidden = false;
    var outcome = $("suggested-outcome");
    outcome.textContent = t(report.suggested_outcome);
    outcome.setAttribute("data-outcome", report.suggested_outcome);
    $("content-hash").textContent = report.content_hash;
    $("snapshot-hash").textContent = report.snapshot_hash;
    $("evidence-link").setAttribute("href", "/orders/" + encodeURIComponent(report.order_no) + "/evidence");
    var list = $("report-lines");
    list.textContent = "";
    (report.lines || []).forEach(function (line) {
      var differs = DIFFERENCES[line.result] || (line.issues && line.issues.length);
      var li = el("li", "rq-report-line" + (differs ? " rq-diff" : ""));
      li.setAttribute("data-result", line.result);
      var res = el("span", "rq-result", t(line.result));
      res.setAttribute("data-result", line.result);
      li.appendChild(res);
      var what = (line.name || line.sku || (line.scans && line.scans[0] && line.scans[0].code) || "");
      var extra = "";
      if (line.missing_qty) extra += " · " + t("missing_qty", { n: line.missing_qty });
      if (line.result === "lot_mismatch") extra += " · " + (line.mismatched_lots || []).join(", ") + " ≠ " + (line.packed_lots || []).join(", ");
      if ((line.mismatched_serials || []).length) extra += " · " + t("serial_mismatch") + " " + line.mismatched_serials.join(", ");
      li.appendChild(el("span", "rq-report-what", what + extra));
      list.appendChild(li);
    });
    var confirmed = $("confirmed");
    if (report.confirmed_outcome) {
      confirmed.hidden = false;
      confirmed.textContent = t("confirmed_by", { outcome: t(report.confirmed_outcome), by: report.confirmed_by,
                                                 note: report.confirm_note || "" });
    } else {
      confirmed.hidden = true;
    }
    var confirmForm = $("confirm-form");
    if (confirmForm) {
      confirmForm.hidden = !!report.confirmed_outcome;
      $("confirm-outcome").value = report.suggested_outcome;
    }
  }

  function renderQueue(rows, target) {
    var list = target || queueEl;
    list.textContent = "";
    rows.forEach(function (r) {
      var li = el("li", "rq-queue-item");
      var btn = el("button", "rq-queue-open");
      btn.type = "button";
      btn.setAttribute("data-rma", r.rma_no);
      btn.appendChild(el("strong", "rq-queue-rma", r.rma_no));
      btn.appendChild(el("span", "rq-queue-order", r.order_no));
      btn.appendChild(el("span", "rq-queue-reason", r.reason || ""));
      btn.addEventListener("click", function () { openReturn(API + "/" + encodeURIComponent(r.rma_no)); });
      li.appendChild(btn);
      list.appendChild(li);
    });
    if (target) {
      $("closed-count").textContent = String(rows.length);
      return;
    }
    $("queue-count").textContent = String(rows.length);
    $("queue-empty").hidden = rows.length > 0;
  }

  // ---- loading -----------------------------------------------------------------------------

  var queueTimer = null;
  function loadQueue() {
    var url = API + "?state=open";
    var where = "";
    if ((CFG.warehouses || []).length === 1) where = "&warehouse=" + encodeURIComponent(CFG.warehouses[0]);
    url += where;
    var closedList = $("closed-queue");
    if (closedList) {
      // A QC lead also sees the closed returns waiting for the outcome's confirmation.
      call("GET", API + "?state=closed" + where).then(function (res) {
        if (res.ok) renderQueue(res.body.returns || [], closedList);
      }, function () {});
    }
    return call("GET", url).then(function (res) {
      if (res.ok) {
        renderQueue(res.body.returns || []);
        if (baseSeq === null && typeof res.body.last_seq === "number") {
          baseSeq = res.body.last_seq;
          if (lastSeq < baseSeq) lastSeq = baseSeq;
          follow();
        }
      }
    }, function () { /* the next event */ });
  }
  function loadQueueSoon() {
    window.clearTimeout(queueTimer);
    queueTimer = window.setTimeout(loadQueue, 150);
  }

  function loadEvidence(orderNo) {
    thumbs = {};
    fetch("/api/v1/orders/" + encodeURIComponent(orderNo) + "/evidence",
          { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (res) { return res.ok ? res.json() : null; })
      .then(function (body) {
        if (!body || !Array.isArray(body.clips) || !current || current.order_no !== orderNo) return;
        body.clips.forEach(function (clip) {
          (clip && Array.isArray(clip.scans) ? clip.scans : []).forEach(function (s) {
            if (s && s.scan_id && s.thumbnail_url && !thumbs[s.scan_id]) thumbs[s.scan_id] = s.thumbnail_url;
          });
        });
        if (Object.keys(thumbs).length) renderReturn();
      })
      .catch(function () { /* no evidence: nothing to show */ });
  }

  function setCurrent(detail, announce) {
    var orderChanged = !current || current.order_no !== detail.order_no;
    if (!current || current.rma_no !== detail.rma_no) lastScanId = null;
    current = detail;
    confirmedComparison = detail.comparison;
    resetClose();
    if (pending.length) current.comparison = overlaid();   // the queued scans on top
    renderReturn();
    persist();
    if (orderChanged) loadEvidence(detail.order_no);
    if (announce) {
      showVerdict(t("opened", { rma_no: detail.rma_no }) + " " + t("item_hint"), "neutral", "opened");
    }
    focusInput();
  }

  function openReturn(url) {
    return call("GET", url).then(function (res) {
      if (res.ok) {
        setCurrent(res.body, true);
        return true;
      }
      return res;
    });
  }

  function refreshCurrent() {
    if (!current) return;
    call("GET", API + "/" + encodeURIComponent(current.rma_no)).then(function (res) {
      if (res.ok && current && res.body.rma_no === current.rma_no) setCurrent(res.body, false);
    }, function () {});
  }

  // ---- scanning ----------------------------------------------------------------------------

  function condition() {
    var checked = document.querySelector('input[name="condition"]:checked');
    return checked ? checked.value : "resellable";
  }
  function resetCondition() {
    var first = document.querySelector('input[name="condition"][value="resellable"]');
    if (first) first.checked = true;
  }

  function looksLikeReturnCode(code) {
    return /^RT-/.test(code) || /^RMA\d/.test(code);
  }

  function isThisReturnsOrder(code) {
    return current && (code === current.order_no || code === current.waybill_no || code === current.trace_code);
  }

  function lookUp(code) {
    return openReturn(API + "/by-code/" + encodeURIComponent(code)).then(function (res) {
      if (res === true) return;
      if (res.status === 404) {
        showVerdict(t("no_open_return", { code: code }), "bad", "no_open_return");
        $("create").open = true;
        if (!looksLikeReturnCode(code)) $("create-order").value = code;
      } else {
        showVerdict(res.body.message || t("server_error", { status: res.status }), "bad", res.body.code);
      }
    });
  }

  function scanItem(code) {
    return queueItem(code);
  }

  function submit(code) {
    if (busy) return Promise.resolve();
    busy = true;
    var work;
    if (!current || current.state !== "open" || looksLikeReturnCode(code)) {
      if (current && current.state !== "open" && !looksLikeReturnCode(code) && isThisReturnsOrder(code)) {
        work = Promise.resolve(showVerdict(t("closed_already"), "neutral", "return_closed"));
      } else {
        work = lookUp(code);
      }
    } else if (isThisReturnsOrder(code)) {
      work = Promise.resolve(hint(t("item_hint")));
    } else {
      work = scanItem(code);
    }
    return work.catch(function () {
      // Offline a return cannot be opened: only the one on screen takes scans.
      showVerdict(offlineMode || !navigator.onLine ? t("offline_no_open", { code: code }) : t("not_sent"),
                  "bad", "not_sent");
    }).then(function () { busy = false; focusInput(); });
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var code = input.value.replace(/^[\s\r\n]+|[\s\r\n]+$/g, "");
    input.value = "";
    if (code) submit(code);
  });

  function focusInput() {
    var active = document.activeElement;
    if (active && active !== input && active !== document.body &&
        (active.closest("#create-form") || active.closest("#confirm-form"))) return;
    try { input.focus({ preventScroll: true }); } catch (e) { input.focus(); }
  }
  document.querySelectorAll('input[name="condition"]').forEach(function (radio) {
    radio.addEventListener("change", function () { window.setTimeout(focusInput, 0); });
  });

  // ---- offline: the durable queue, the provisional check, reconciliation --------------------
  //
  // Item scans go through the durable queue (offline-queue.js): sent oldest first with their
  // scan_id, deleted only with the server's final answer. While the server cannot be reached a
  // scan gets at once a provisional verdict from the return on screen (what was packed, what
  // came back so far), by the rules of floor/returns/domain.py; the server's answer is final.

  var offline = window.FloorOffline ? new window.FloorOffline.Store("floor-returns") : null;
  var pending = [];            // queued item scans, oldest first
  var offlineMode = false;
  var confirmedComparison = null;   // the server's comparison of the return on screen
  var offlineBanner = $("offline-banner");
  var pendingCountEl = $("pending-count");
  var offlineLogEl = $("offline-log");
  var STATE_KEY = "returns:" + deviceId;

  function clone(value) { return value == null ? value : JSON.parse(JSON.stringify(value)); }

  function persist() {
    if (!offline || !current) return;
    // The server's comparison, not the one with the provisional scans on top.
    var kept = {};
    Object.keys(current).forEach(function (k) { kept[k] = current[k]; });
    kept.comparison = confirmedComparison || current.comparison;
    offline.setMeta(STATE_KEY, { current: kept, saved_at: Date.now() }).catch(function () {});
  }

  // The code's item keys, lot and serial (static/js/gs1.js); `unsure` for a GS1 read this
  // handheld cannot check whole.
  function readCode(raw) { return window.FloorGs1.read(raw); }

  function snapshotLineFor(keys) {
    var lines = (current && current.snapshot && current.snapshot.lines) || [];
    for (var k = 0; k < keys.length; k++) {
      for (var i = 0; i < lines.length; i++) {
        if ((lines[i].barcodes || []).indexOf(keys[k]) >= 0) return lines[i];
      }
    }
    // A code a supervisor credited to a line when packing counts for that line.
    var packed = (current && current.packed) || [];
    for (var j = 0; j < packed.length; j++) {
      if (packed[j].override && keys.indexOf(packed[j].code) >= 0) {
        for (var n = 0; n < lines.length; n++) if (lines[n].sku === packed[j].sku) return lines[n];
      }
    }
    return null;
  }

  // The provisional verdict of one returned unit against `comparison` (advanced in place).
  function checkOffline(comparison, raw, conditionValue) {
    var read = readCode(raw);
    if (!read.text) return { verdict: "unreadable", message: t("v_unreadable") };
    // Never half-read: a GS1 label the handheld cannot check whole waits for the server.
    if (read.unsure) return { verdict: "unknown_offline", name: read.text, message: t("offline_gs1") };
    var snap = snapshotLineFor(read.keys);
    var unit = { scan_id: "", code: read.text, condition: conditionValue, lot: read.lot, serial: read.serial,
                 provisional: true };
    if (!snap) {
      comparison.lines.push({ result: "foreign_item", issues: ["foreign_item"], line_no: null, sku: null,
                              name: null, role: null, expected_qty: 0, returned_qty: 1, missing_qty: 0,
                              over_qty: 1, scans: [unit], provisional: true });
      return { verdict: "foreign_item", name: read.text, message: t("v_foreign_item") + " · " + read.text };
    }
    var line = null;
    comparison.lines.forEach(function (l) { if (l.line_no === snap.line_no) line = l; });
    if (!line) return { verdict: "foreign_item", name: read.text, message: t("v_foreign_item") };
    var lots = line.packed_lots || [];
    var serials = line.packed_serials || [];
    var before = line.returned_qty || 0;
    var verdict = "matched";
    if (lots.length && read.lot && lots.indexOf(read.lot) < 0) verdict = "lot_mismatch";
    else if (serials.length && read.serial && serials.indexOf(read.serial) < 0) verdict = "serial_mismatch";
    else if (before >= line.expected_qty) verdict = "over_returned";
    line.returned_qty = before + 1;
    line.missing_qty = Math.max(line.expected_qty - line.returned_qty, 0);
    line.over_qty = Math.max(line.returned_qty - line.expected_qty, 0);
    line.scans = (line.scans || []).concat([unit]);
    line.provisional = true;
    if (verdict === "lot_mismatch") {
      line.mismatched_lots = (line.mismatched_lots || []).concat([read.lot]);
      line.result = "lot_mismatch";
    } else if (line.result !== "lot_mismatch") {
      line.result = line.over_qty ? "over_returned" : (line.missing_qty ? "missing" : "matched");
    }
    line.issues = line.result === "matched" ? [] : [line.result];
    var name = snap.name || snap.sku;
    var said = t("v_" + verdict, { lot: read.lot || "-", serial: read.serial || "-", packed: lots.join(", ") || "-" });
    return { verdict: verdict, name: name, sku: snap.sku, message: said + " · " + name };
  }

  // What the comparison shows: the server's last word, then the queued provisional scans.
  function overlaid() {
    if (!current) return null;
    var comparison = clone(confirmedComparison || current.comparison || { lines: [] });
    pending.forEach(function (entry) {
      if (entry.provisional && entry.payload.rma_no === current.rma_no) {
        checkOffline(comparison, entry.payload.code, entry.payload.condition);
      }
    });
    return comparison;
  }

  function renderOverlay() {
    if (!current) return;
    current.comparison = overlaid();
    renderReturn();
  }

  function updateBanner() {
    var show = offlineMode || pending.some(function (e) { return !!e.provisional; });
    offlineBanner.hidden = !show;
    offlineBanner.setAttribute("data-pending", String(pending.length));
    document.body.setAttribute("data-pending", String(pending.length));
    pendingCountEl.textContent = t("pending_count", { n: pending.length });
  }

  function logItem(entry) {
    var li = offlineLogEl.querySelector('li[data-scan-id="' + entry.scan_id + '"]');
    if (!li) {
      li = el("li", "offline-item");
      li.setAttribute("data-scan-id", entry.scan_id);
      li.appendChild(el("span", "offline-what"));
      li.appendChild(el("span", "offline-said"));
      offlineLogEl.insertBefore(li, offlineLogEl.firstChild);
      while (offlineLogEl.children.length > 20) offlineLogEl.removeChild(offlineLogEl.lastChild);
    }
    offlineLogEl.hidden = false;
    return li;
  }

  function logProvisional(entry) {
    var li = logItem(entry);
    var ok = entry.provisional.verdict === "matched";
    li.setAttribute("data-state", "pending");
    li.setAttribute("data-provisional-code", entry.provisional.verdict);
    li.className = "offline-item pending " + (ok ? "ok" : "bad");
    li.querySelector(".offline-what").textContent = entry.provisional.name || entry.payload.code;
    li.querySelector(".offline-said").textContent = t("provisional_short") + " · " + entry.provisional.message;
  }

  function logAnswer(entry, answer, state) {
    var li = logItem(entry);
    li.setAttribute("data-state", state);
    li.setAttribute("data-server-code", String(answer.verdict || answer.code || ""));
    li.className = "offline-item " + state + " " + (answer.verdict === "matched" ? "ok" : "bad");
    li.querySelector(".offline-said").textContent = t("server_said") + " · " +
      (answer.verdict ? verdictText(answer) : (answer.message || answer.code));
  }

  function sendEntry(entry) {
    if (entry.user && CFG.user && entry.user !== CFG.user) return Promise.resolve({ code: "other_user" });
    var body = { scan_id: entry.scan_id, code: entry.payload.code, condition: entry.payload.condition,
                 device_id: entry.payload.device_id };
    return call("POST", API + "/" + encodeURIComponent(entry.payload.rma_no) + "/scans", body).then(function (res) {
      var answer = res.body || {};
      if (res.ok) return answer;
      // A 5xx is no answer about the scan: the queue keeps it.
      return { ok: false, code: answer.code || ("http_" + res.status), message: answer.message, httpStatus: res.status };
    }).then(function (answer) {
      if (window.FloorOffline && !window.FloorOffline.isFinal(answer)) goOffline(entry);
      return answer;
    }, function (err) {
      goOffline(entry);
      throw err;
    });
  }

  function goOffline(entry) {
    offlineMode = true;
    if (!entry.provisional && current && entry.payload.rma_no === current.rma_no) {
      entry.provisional = checkOffline(overlaidWithout(entry), entry.payload.code, entry.payload.condition);
      if (offline) offline.update(entry).catch(function () {});
      logProvisional(entry);
      renderOverlay();
      showProvisional(entry);
    }
    updateBanner();
  }

  function overlaidWithout(entry) {
    var comparison = clone(confirmedComparison || { lines: [] });
    pending.forEach(function (e) {
      if (e !== entry && e.provisional && e.payload.rma_no === current.rma_no) {
        checkOffline(comparison, e.payload.code, e.payload.condition);
      }
    });
    return comparison;
  }

  function showProvisional(entry) {
    var v = entry.provisional;
    showVerdict(v.message, v.verdict === "matched" ? "ok" : "bad", v.verdict);
    verdictEl.classList.add("provisional");
    verdictEl.setAttribute("data-provisional", "1");
  }

  function onAnswer(entry, answer) {
    pending = pending.filter(function (e) { return e.scan_id !== entry.scan_id; });
    var forCurrent = current && answer.rma_no === current.rma_no;
    if (forCurrent && answer.comparison) confirmedComparison = answer.comparison;
    if (forCurrent && answer.state && answer.state !== current.state) current.state = answer.state;
    if (answer.scan_id) lastScanId = answer.scan_id;
    var prov = entry.provisional;
    if (current) renderOverlay();
    persist();
    if (!prov) {
      if (!answer.verdict) {
        showVerdict(answer.message || t("server_error", { status: answer.httpStatus || "" }), "bad", answer.code || "error");
        if (answer.code === "return_closed") refreshCurrent();
        return;
      }
      resetCondition();
      showVerdict(verdictText(answer), answer.verdict === "matched" ? "ok" : "bad", answer.verdict);
      return;
    }
    var serverOk = answer.verdict === "matched";
    var provOk = prov.verdict === "matched";
    var state = serverOk === provOk ? "confirmed" : (provOk ? "refused" : "corrected");
    logAnswer(entry, answer, state);
    if (state !== "confirmed") {
      var reason = answer.verdict ? verdictText(answer) : (answer.message || answer.code);
      showVerdict(t(state === "refused" ? "refused_after_offline" : "corrected_after_offline",
                    { item: prov.name || entry.payload.code, reason: reason }),
                  serverOk ? "ok" : "bad", answer.verdict || answer.code);
      verdictEl.setAttribute("data-reconciled", state);
    }
  }

  function onQueueChange(count, failing) {
    if (!failing && count === 0 && offlineMode) {
      offlineMode = false;
      // A refusal on screen stays there until the inspector acts: the all-clear never covers it.
      if (!offlineLogEl.querySelector('li[data-state="refused"]') &&
          verdictEl.getAttribute("data-reconciled") !== "corrected" &&
          !verdictEl.classList.contains("bad")) {
        hint(t("all_confirmed"));
      }
    }
    updateBanner();
  }

  var replayer = offline ? new window.FloorOffline.Replayer(offline, {
    send: sendEntry, onAnswer: onAnswer, onChange: onQueueChange
  }) : null;

  function queueItem(code) {
    var entry = { scan_id: newId(), at: Date.now(), user: CFG.user || null, provisional: null,
                  payload: { rma_no: current.rma_no, code: code, condition: condition(), device_id: deviceId } };
    resetCondition();
    if (offlineMode || !navigator.onLine) {
      offlineMode = true;
      entry.provisional = checkOffline(overlaid(), code, entry.payload.condition);
      pending.push(entry);
      logProvisional(entry);
      updateBanner();
      renderOverlay();
      showProvisional(entry);
    } else {
      if (!pending.length) {
        Array.prototype.forEach.call(offlineLogEl.querySelectorAll('li:not([data-state="pending"])'),
                                     function (li) { li.parentNode.removeChild(li); });
        offlineLogEl.hidden = !offlineLogEl.children.length;
      }
      pending.push(entry);
      showVerdict(t("sending"), "pending", "");
    }
    if (!replayer) {
      return sendEntry(entry).then(function (answer) { onAnswer(entry, answer); });
    }
    return offline.add(entry).then(function () { replayer.kick(); }, function () { replayer.kick(); });
  }

  // Back from a reload: the return on screen and the scans still queued.
  function loadOffline() {
    if (!offline) return;
    Promise.all([offline.getMeta(STATE_KEY), offline.all()]).then(function (got) {
      var saved = got[0];
      pending = (got[1] || []).concat(pending.filter(function (e) { return !e.seq; }));
      if (saved && saved.current && !current) {
        current = saved.current;
        confirmedComparison = current.comparison;
      }
      pending.forEach(function (e) { if (e.provisional) logProvisional(e); });
      if (pending.some(function (e) { return !!e.provisional; }) || !navigator.onLine) offlineMode = true;
      updateBanner();
      if (current) renderOverlay();
      replayer.kick();
    }, function () {});
  }

  // ---- closing, confirming, photos, creating -----------------------------------------------

  var closeArmed = null;
  function resetClose() {
    window.clearTimeout(closeArmed);
    closeArmed = null;
    closeBtn.classList.remove("rq-armed");
    closeBtn.textContent = closeBtn.getAttribute("data-label") || closeBtn.textContent;
  }
  closeBtn.setAttribute("data-label", closeBtn.textContent);
  closeBtn.addEventListener("click", function () {
    if (!current || current.state !== "open") return;
    if (pending.length) {
      // Closing now would refuse the scans still queued: they go first.
      showVerdict(t("wait_for_queue", { n: pending.length }), "bad", "scans_pending");
      return;
    }
    if (!closeArmed) {
      // Closing is for good: a second tap confirms it.
      closeBtn.classList.add("rq-armed");
      closeBtn.textContent = t("close_again");
      closeArmed = window.setTimeout(resetClose, 4000);
      return;
    }
    resetClose();
    closeBtn.disabled = true;
    hint(t("closing"));
    call("POST", API + "/" + encodeURIComponent(current.rma_no) + "/close").then(function (res) {
      closeBtn.disabled = false;
      if (!res.ok && res.body.code !== "return_closed") {
        showVerdict(res.body.message || t("server_error", { status: res.status }), "bad", res.body.code);
        return;
      }
      if (res.ok) showVerdict(t(res.body.suggested_outcome), res.body.suggested_outcome === "refund" ? "ok" : "neutral", "closed");
      var queued = queueEl.querySelector('[data-rma="' + (current ? current.rma_no : "") + '"]');
      if (queued && queued.parentNode) queued.parentNode.remove();
      refreshCurrent();
      loadQueueSoon();
    }, function () {
      closeBtn.disabled = false;
      showVerdict(t("not_sent"), "bad", "not_sent");
    });
  });

  var confirmForm = $("confirm-form");
  if (confirmForm) {
    confirmForm.addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (!current) return;
      call("POST", API + "/" + encodeURIComponent(current.rma_no) + "/confirm",
           { outcome: $("confirm-outcome").value, note: $("confirm-note").value }).then(function (res) {
        if (!res.ok) {
          showVerdict(res.body.message || t("server_error", { status: res.status }), "bad", res.body.code);
          return;
        }
        refreshCurrent();
      }, function () { showVerdict(t("not_sent"), "bad", "not_sent"); });
    });
  }

  photoInput.addEventListener("change", function () {
    var file = photoInput.files && photoInput.files[0];
    photoInput.value = "";
    if (!file || !current || !lastScanId) return;
    var data = new FormData();
    data.append("photo", file);
    fetch(API + "/" + encodeURIComponent(current.rma_no) + "/scans/" + encodeURIComponent(lastScanId) + "/photo",
          { method: "POST", credentials: "same-origin", body: data,
            headers: { "X-CSRFToken": csrfToken(), "Accept": "application/json" } })
      .then(function (res) { return res.json().catch(function () { return {}; }).then(function (b) { return [res, b]; }); })
      .then(function (pair) {
        if (pair[0].ok) hint(t("photo_saved"));
        else showVerdict(t("photo_failed", { code: pair[1].code || pair[0].status }), "bad", "photo_failed");
      }, function () { showVerdict(t("not_sent"), "bad", "not_sent"); });
  });
  photoBtn.addEventListener("click", function (ev) {
    if (!lastScanId) ev.preventDefault();
  });

  $("back-button").addEventListener("click", function () {
    current = null;
    lastScanId = null;
    renderReturn();
    hint(t("open_hint"));
    loadQueue();
    focusInput();
  });

  $("create-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var err = $("create-error");
    err.hidden = true;
    var body = { order_no: $("create-order").value.trim(), reason: $("create-reason").value.trim(),
                 customer_note: $("create-note").value.trim() };
    if (CFG.station) body.station = CFG.station;
    call("POST", API, body).then(function (res) {
      if (!res.ok) {
        err.textContent = res.body.message || t("server_error", { status: res.status });
        err.hidden = false;
        return;
      }
      $("create-form").reset();
      $("create").open = false;
      setCurrent(res.body, true);
      loadQueueSoon();
    }, function () {
      err.textContent = t("not_sent");
      err.hidden = false;
    });
  });

  // ---- live --------------------------------------------------------------------------------

  var lastSeq = 0;
  var baseSeq = null;          // the seq the first queue answer was read at
  var sock = null;
  function trackSeq(ev) {
    if (ev && typeof ev.seq === "number" && ev.seq > lastSeq) lastSeq = ev.seq;
  }
  function updateConn(state) {
    connEl.setAttribute("data-state", state);
    connLabel.textContent = t(state);
  }
  function onReturnEvent(ev) {
    trackSeq(ev);
    loadQueueSoon();
    // Another screen changed the return shown here: show its new state.
    if (current && ev && ev.rma_no === current.rma_no && ev.by !== CFG.user) refreshCurrentSoon();
  }
  var detailTimer = null;
  function refreshCurrentSoon() {
    window.clearTimeout(detailTimer);
    detailTimer = window.setTimeout(refreshCurrent, 300);
  }

  // The QC queue's rooms, joined after the seq the queue was read at (then after the last seq
  // seen, on a reconnect): what changed meanwhile arrives, nothing older.
  function follow() {
    if (!sock || !sock.connected || baseSeq === null) return;
    var rooms = (CFG.warehouses || []).map(function (w) { return "warehouse:" + w; });
    if (CFG.station) rooms.push("station:" + CFG.station);
    if (!rooms.length) return;
    sock.emit("subscribe", { rooms: rooms.slice(0, 20), after_seq: lastSeq }, function (ack) {
      if (ack && ack.ok) {
        trackSeq({ seq: ack.last_seq });
        document.body.setAttribute("data-live", "1");
      }
    });
  }

  if (typeof window.io === "function") {
    sock = window.io(CFG.socket_namespace || "/floor", { transports: ["websocket"] });
    sock.on("connect", function () {
      updateConn("online");
      if (replayer) replayer.kick();   // the scans queued while away, in order
      follow();
      if (baseSeq !== null) loadQueueSoon();
    });
    ["return_created", "return_scanned", "return_closed", "return_confirmed"].forEach(function (name) {
      sock.on(name, onReturnEvent);
    });
    sock.on("disconnect", function () {
      document.body.removeAttribute("data-live");
      updateConn("offline");
    });
    sock.on("connect_error", function () { updateConn("offline"); });
  }

  // ---- start -------------------------------------------------------------------------------

  window.addEventListener("online", function () {
    if (sock && !sock.connected) sock.connect();
    if (replayer) replayer.kick();
  });
  window.addEventListener("offline", function () {
    if (sock && sock.connected) sock.disconnect();
    updateConn("offline");
    updateBanner();
  });

  loadQueue();
  renderReturn();
  loadOffline();
  updateBanner();
  if (CFG.sw_url && navigator.serviceWorker && typeof navigator.serviceWorker.register === "function") {
    navigator.serviceWorker.register(CFG.sw_url, { scope: "/" }).catch(function () { /* http: no worker */ });
  }
  focusInput();
})();
