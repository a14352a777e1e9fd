/* floor pack screen: one scan field, verdicts over Socket.IO with an HTTP fallback.
 *
 * Data comes from two JSON blocks in pack.html: #pack-config (stations, URLs, timeouts) and
 * #pack-i18n (every UI string, already translated by the server). No inline code anywhere.
 */
(function () {
  "use strict";

  var $ = function (id) { return document.getElementById(id); };

  function readJSON(id) {
    var el = $(id);
    if (!el) return {};
    try { return JSON.parse(el.textContent || "{}"); } catch (e) { return {}; }
  }

  var CFG = readJSON("pack-config");
  var T = readJSON("pack-i18n");
  var ACK_TIMEOUT_MS = CFG.ack_timeout_ms || 3000;
  var HTTP_TIMEOUT_MS = CFG.http_timeout_ms || 8000;
  var SCAN_URL = CFG.scan_url || "/api/v1/scans";
  var SESSION_URL = CFG.session_url || "/api/v1/stations/{station}/session";
  var HEARTBEAT_URL = CFG.heartbeat_url || "/api/v1/devices/heartbeat";
  var HEARTBEAT_MS = CFG.heartbeat_ms || 20000;
  // A serial scanner's verdict older than this when it arrives in a catch-up (after a lost
  // connection) updates the order on screen without a flash or a tone: it is news no more.
  var CATCHUP_QUIET_MS = CFG.catchup_quiet_ms || 10000;
  var FLASH_MS = { ok: 600, bad: 1500, neutral: 450, unknown: 1500 };
  var NEUTRAL_CODES = { duplicate_read: true };

  // The refusal a double read repeats (the first read's code), or null: a double read of a
  // refused item is that refusal still, red with its message, never a grey "counted once".
  function repeatedRefusal(v) {
    var first = v && v.code === "duplicate_read" && v.repeats && typeof v.repeats === "object" ? v.repeats : null;
    return first && first.ok === false ? String(first.code || "error") : null;
  }
  // The server counts the same code from the same device inside this window once.
  var DEBOUNCE_MS = typeof CFG.debounce_ms === "number" ? CFG.debounce_ms : 500;
  var VERDICT_TEXTS = readJSON("pack-verdicts");
  var STATUS_LABELS = readJSON("pack-statuses");

  function t(key, params) {
    var text = Object.prototype.hasOwnProperty.call(T, key) ? T[key] : key;
    if (params) {
      text = text.replace(/\{(\w+)\}/g, function (m, name) {
        return Object.prototype.hasOwnProperty.call(params, name) ? String(params[name]) : m;
      });
    }
    return text;
  }

  // ---- small helpers -----------------------------------------------------------------------

  var store = {
    get: function (key) {
      try { return window.localStorage.getItem(key); } catch (e) { return null; }
    },
    set: function (key, value) {
      try { window.localStorage.setItem(key, value); } catch (e) { /* private mode: keep going */ }
    }
  };

  function randomBytes(n) {
    var bytes = new Uint8Array(n);
    if (window.crypto && typeof window.crypto.getRandomValues === "function") {
      window.crypto.getRandomValues(bytes);
    } else {
      for (var i = 0; i < n; i++) bytes[i] = Math.floor(Math.random() * 256);
    }
    return bytes;
  }

  function hex(bytes) {
    var out = "";
    for (var i = 0; i < bytes.length; i++) out += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16);
    return out;
  }

  // crypto.randomUUID exists only in secure contexts (https, localhost); a handheld on the
  // warehouse LAN over plain http gets the getRandomValues version 4 UUID instead.
  function newScanId() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      try { return window.crypto.randomUUID(); } catch (e) { /* fall through */ }
    }
    var b = randomBytes(16);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = hex(b);
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" +
      h.slice(16, 20) + "-" + h.slice(20);
  }

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") || "" : "";
  }

  // ---- elements ----------------------------------------------------------------------------

  var input = $("scan-input");
  var form = $("scan-form");
  var stationSel = $("station");
  var deviceEl = $("device-id");
  var keyboardBtn = $("keyboard-toggle");
  var cameraBtn = $("camera-button");
  var cameraInput = $("camera-input");
  var cameraChoices = $("camera-choices");
  var connEl = $("conn");
  var connLabel = $("conn-label");
  var verdictEl = $("verdict");
  var orderEl = $("order");
  var orderNoEl = $("order-no");
  var waveEl = $("wave-no");
  var linesProgressEl = $("lines-progress");
  var unitsLeftEl = $("units-left");
  var waybillEl = $("waybill");
  var waybillNoEl = $("waybill-no");
  var kitEl = $("kit");
  var lineTpl = $("kit-line-template");
  var packedEl = $("packed-panel");
  var packedNoEl = $("packed-order-no");
  var flashEl = $("flash");
  var flashSymbol = $("flash-symbol");
  var flashMessage = $("flash-message");
  var flashSource = $("flash-source");
  var stopEl = $("stop-panel");
  var stopMessage = $("stop-message");
  var stopReason = $("stop-reason");
  var stopAck = $("stop-ack");

  // ---- device id and station ---------------------------------------------------------------

  var deviceId = store.get("floor.device_id");
  if (!deviceId) {
    deviceId = "PDA-" + hex(randomBytes(2)).toUpperCase();
    store.set("floor.device_id", deviceId);
  }
  deviceEl.textContent = deviceId;

  var stations = Array.isArray(CFG.stations) ? CFG.stations : [];
  var station = store.get("floor.station") || "";
  if (stations.indexOf(station) < 0) station = stations.length === 1 ? stations[0] : "";
  stationSel.value = station;

  // ---- focus: the scan field always has it -------------------------------------------------

  var CONTROLS = "select, button, a, textarea, input:not(#scan-input), label";

  function focusInput() {
    if (document.activeElement === input) return;
    try { input.focus({ preventScroll: true }); } catch (e) { input.focus(); }
  }

  function refocusSoon() {
    window.setTimeout(function () {
      var active = document.activeElement;
      // Leave the station picker and the buttons usable; everything else gives focus back.
      if (active && active !== input && active !== document.body && active.matches &&
          active.matches(CONTROLS)) {
        return;
      }
      focusInput();
    }, 0);
  }

  input.addEventListener("blur", refocusSoon);
  document.addEventListener("click", function (e) {
    var target = e.target;
    if (target && target.closest && target.closest(CONTROLS)) return;
    focusInput();
  });
  stationSel.addEventListener("blur", refocusSoon);
  window.addEventListener("focus", refocusSoon);
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) refocusSoon();
  });

  // The built-in scanner types like a keyboard, so the on-screen keyboard stays hidden
  // (inputmode=none) unless the packer asks for it to type a code by hand.
  function setKeyboard(on) {
    input.setAttribute("inputmode", on ? "text" : "none");
    keyboardBtn.setAttribute("aria-pressed", on ? "true" : "false");
    keyboardBtn.title = on ? t("keyboard_on") : t("keyboard_off");
    store.set("floor.keyboard", on ? "1" : "0");
  }
  setKeyboard(store.get("floor.keyboard") === "1");
  keyboardBtn.addEventListener("click", function () {
    setKeyboard(input.getAttribute("inputmode") === "none");
    input.blur();
    focusInput();
  });

  // ---- sound and vibration -----------------------------------------------------------------

  var audioCtx = null;

  function ensureAudio() {
    var AC = window.AudioContext || window.webkitAudioContext;
    if (!AC) return null;
    if (!audioCtx) {
      try { audioCtx = new AC(); } catch (e) { return null; }
    }
    if (audioCtx.state === "suspended" && typeof audioCtx.resume === "function") {
      audioCtx.resume().catch(function () {});
    }
    return audioCtx;
  }

  // Browsers only start audio after a user gesture: unlock it on the first one.
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
      if (kind === "ok") {
        tone(ctx, 1000, "sine", now, 0.12, 0.35);
      } else if (kind === "bad") {
        tone(ctx, 220, "square", now, 0.2, 0.22);
        tone(ctx, 220, "square", now + 0.3, 0.2, 0.22);
      } else {
        tone(ctx, 650, "triangle", now, 0.035, 0.12);
      }
    } catch (e) { /* sound is a bonus, never a failure */ }
  }

  function vibrate(kind) {
    if (typeof navigator.vibrate !== "function") return;
    try {
      if (kind === "ok") navigator.vibrate(60);
      else if (kind === "bad") navigator.vibrate([200, 100, 200]);
    } catch (e) { /* not allowed without a gesture: ignore */ }
  }

  // ---- flash overlay -----------------------------------------------------------------------

  var flashTimer = null;
  var SYMBOLS = { ok: "✓", bad: "✕", neutral: "↻", unknown: "?" };
  var flashTag = $("flash-tag");

  // `source`: the serial scanner that read the code (null: this handheld). `provisional`: a
  // verdict of the offline check, not yet the server's.
  function flash(kind, code, message, source, provisional) {
    window.clearTimeout(flashTimer);
    flashEl.hidden = true;
    flashEl.className = "flash";
    void flashEl.offsetWidth;  // restart the fade-in for back-to-back verdicts
    flashEl.classList.add(kind);
    flashEl.classList.toggle("provisional", !!provisional);
    flashEl.setAttribute("data-provisional", provisional ? "1" : "");
    if (flashTag) flashTag.hidden = !provisional;
    flashEl.setAttribute("data-code", code || "");
    flashEl.setAttribute("data-device", source || "");
    flashSymbol.textContent = SYMBOLS[kind] || "";
    flashMessage.textContent = message || "";
    flashSource.textContent = source ? t("scanner_label", { device_id: source }) : "";
    flashSource.hidden = !source;
    flashEl.hidden = false;
    flashTimer = window.setTimeout(function () {
      flashEl.hidden = true;
      flashEl.className = "flash";
    }, FLASH_MS[kind] || 600);
  }

  // ---- connection indicator ----------------------------------------------------------------

  var sock = null;
  var socketSettled = false;   // false until the first connect or connect error
  var httpHealthy = true;

  function updateConn() {
    var state;
    if (sock && sock.connected) state = "online";
    else if (!navigator.onLine || !httpHealthy) state = "offline";
    else if (sock && !socketSettled) state = "connecting";
    else state = "http";
    if (connEl.getAttribute("data-state") === state) return;
    connEl.setAttribute("data-state", state);
    connLabel.textContent = t(state);
  }

  // The server's clock (from the Date header of its answers) minus ours: how old an event is.
  var clockOffsetMs = 0;

  function noteServerTime(res) {
    var date = res && res.headers && typeof res.headers.get === "function" ? res.headers.get("Date") : null;
    var ms = date ? Date.parse(date) : NaN;
    if (!isNaN(ms)) clockOffsetMs = ms + 500 - Date.now();   // the header has whole seconds
  }

  function ageMs(iso) {
    var at = iso ? Date.parse(iso) : NaN;
    return isNaN(at) ? 0 : Date.now() + clockOffsetMs - at;
  }

  // ---- rendering the pack session ----------------------------------------------------------

  var current = null;          // the progress on screen
  var refusedLines = {};       // line_no -> code: offline accepts the server refused (red)
  var verdictCount = 0;
  var stateGen = 0;            // bumped by every verdict that may change what is on screen

  // Whose pack session is on screen: this handheld's, or a serial scanner's at the station
  // (the screen doubles as its display). Kept over a reload, per station.
  var shownDevice = deviceId;
  (function () {
    var kept = String(store.get("floor.shown_device") || "").split(" ");
    if (kept.length === 2 && kept[0] === station && kept[1]) shownDevice = kept[1];
  })();

  function setShownDevice(id) {
    if (shownDevice === id) return;
    shownDevice = id;
    store.set("floor.shown_device", id === deviceId ? "" : station + " " + id);
  }

  function roleLabel(role) {
    var key = "role_" + role;
    return Object.prototype.hasOwnProperty.call(T, key) ? T[key] : role;
  }

  function scannedOf(progress) {
    var map = {};
    if (progress && Array.isArray(progress.lines)) {
      progress.lines.forEach(function (l) { map[l.line_no] = l.scanned || 0; });
    }
    return map;
  }

  function renderLine(line, previous) {
    var li = lineTpl.content.firstElementChild.cloneNode(true);
    var scanned = Math.min(line.scanned || 0, line.qty);
    var done = !!line.waived || scanned >= line.qty;
    li.setAttribute("data-sku", line.sku);
    li.setAttribute("data-line-no", String(line.line_no));
    li.setAttribute("data-role", line.role);
    li.setAttribute("data-scanned", String(scanned));
    li.setAttribute("data-qty", String(line.qty));
    li.classList.toggle("done", done);
    li.classList.toggle("partial", !done && scanned > 0);
    if (line.waived) {
      li.classList.add("waived");
      li.setAttribute("data-waived-label", t("waived"));
    }
    if (previous !== undefined && scanned > previous) li.classList.add("just");
    if (line.provisional) li.classList.add("provisional");
    if (refusedLines[line.line_no]) {
      li.classList.add("refused");
      li.setAttribute("data-refused", refusedLines[line.line_no]);
    }
    var badge = li.querySelector(".role-badge");
    badge.textContent = roleLabel(line.role);
    badge.classList.add("role-" + line.role);
    li.querySelector(".line-name").textContent = line.name || line.sku;
    li.querySelector(".line-sku").textContent = line.sku;
    li.querySelector(".line-scanned").textContent = String(scanned);
    li.querySelector(".line-qty").textContent = String(line.qty);
    li.querySelector(".line-tick").textContent = done ? "✓" : "";
    return li;
  }

  function render(progress) {
    if (!progress) {
      current = null;
      orderEl.hidden = true;
      kitEl.textContent = "";
      orderNoEl.textContent = "";
      return;
    }
    var previous = current && current.order_no === progress.order_no ? scannedOf(current) : null;
    current = progress;
    orderEl.hidden = false;
    orderNoEl.textContent = progress.order_no || "";
    waveEl.textContent = progress.wave_no || "—";
    linesProgressEl.textContent = (progress.lines_done || 0) + "/" + (progress.lines_total || 0);
    unitsLeftEl.textContent = String(progress.units_left != null ? progress.units_left : "");
    var bound = !!progress.waybill_bound;
    waybillEl.setAttribute("data-bound", bound ? "true" : "false");
    waybillNoEl.textContent = bound ? (progress.waybill_no || "") : t("no_waybill");

    var frag = document.createDocumentFragment();
    var just = null;
    (progress.lines || []).forEach(function (line) {
      var li = renderLine(line, previous ? previous[line.line_no] : undefined);
      if (li.classList.contains("just")) just = li;
      frag.appendChild(li);
    });
    kitEl.textContent = "";
    kitEl.appendChild(frag);
    if (just && typeof just.scrollIntoView === "function") {
      just.scrollIntoView({ block: "nearest" });
    }
    // A kit complete only by provisional scans is not packed until the server says so.
    if (progress.complete && !progress.provisional) showPacked(progress.order_no);
    followOrder(progress.order_no);
  }

  function markMissing() {
    var rows = kitEl.querySelectorAll("li.kit-line:not(.done)");
    Array.prototype.forEach.call(rows, function (li) {
      if (beforeGiftbox(current)[li.getAttribute("data-role")]) li.classList.add("missing");
    });
  }

  function showPacked(orderNo) {
    packedNoEl.textContent = orderNo || "";
    packedEl.hidden = false;
  }

  function hidePacked() {
    packedEl.hidden = true;
  }

  function setHint(text) {
    verdictEl.className = "verdict idle";
    verdictEl.textContent = text;
  }

  var pendingTimer = null;

  function setVerdictText(message, source) {
    verdictEl.textContent = "";
    if (source) {
      var tag = document.createElement("span");
      tag.className = "source-tag";
      tag.title = t("scanner_label", { device_id: source });
      tag.textContent = source;
      verdictEl.appendChild(tag);
      verdictEl.appendChild(document.createTextNode(" "));
    }
    verdictEl.appendChild(document.createTextNode(message));
  }

  // A verdict: this handheld's own (the ack of its scan), or with `opts.source` one of a serial
  // scanner at this station. `opts.quiet`: old news from a catch-up, so the order and kit on
  // screen follow it but nothing flashes, beeps or buzzes. `opts.provisional`: the offline
  // check's verdict, shown as such. `opts.keepScreen`: the caller renders the kit itself.
  function showVerdict(v, opts) {
    opts = opts || {};
    var source = opts.source || null;
    var reader = source || deviceId;
    if (!source) window.clearTimeout(pendingTimer);
    var code = String(v.code || (v.ok ? "accepted" : "error"));
    var refusal = repeatedRefusal(v);
    var kind = v.kind || (NEUTRAL_CODES[code] && !refusal ? "neutral" : (v.ok ? "ok" : "bad"));
    var message = v.message || code;

    stateGen += 1;
    if (opts.keepScreen) {
      // the kit on screen is drawn by the caller
    } else if (v.progress && typeof v.progress === "object") {
      setShownDevice(reader);
      render(v.progress);
    } else if (code === "waybill_required" && reader === shownDevice) {
      render(null);  // no order is open for this reader at this station any more
    }
    if (reader === shownDevice) {
      if ((code === "giftbox_incomplete" || refusal === "giftbox_incomplete") && !opts.quiet) markMissing();
      if (v.status && orderEl) orderEl.setAttribute("data-status", String(v.status));
    }
    if (opts.quiet) return;

    if (code === "unauthenticated" && CFG.login_url && !source) {
      // The login ran out: after the red flash, off to the login page (it comes back here).
      window.setTimeout(function () { window.location.assign(CFG.login_url); }, FLASH_MS.bad);
    }

    verdictCount += 1;
    verdictEl.className = "verdict " + kind + (opts.provisional ? " provisional" : "");
    setVerdictText(message, source);
    verdictEl.setAttribute("data-code", code);
    verdictEl.setAttribute("data-repeats", v.repeats && v.repeats.code ? String(v.repeats.code) : "");
    verdictEl.setAttribute("data-device", source || "");
    verdictEl.setAttribute("data-count", String(verdictCount));
    verdictEl.setAttribute("data-provisional", opts.provisional ? "1" : "");
    verdictEl.setAttribute("data-reconciled", opts.reconciled || "");

    flash(kind, code, message, source, opts.provisional);
    var loud = kind === "unknown" ? "bad" : kind;
    playSound(loud);
    vibrate(loud);
    focusInput();
  }

  // ---- sending scans -----------------------------------------------------------------------

  function viaSocket(payload) {
    return new Promise(function (resolve, reject) {
      if (!sock || !sock.connected) {
        reject(new Error("disconnected"));
        return;
      }
      sock.timeout(ACK_TIMEOUT_MS).emit("scan", payload, function (err, verdict) {
        if (err) reject(err);
        else resolve(verdict);
      });
    });
  }

  function fetchWithTimeout(url, options) {
    var ctl = typeof AbortController === "function" ? new AbortController() : null;
    var timer = null;
    if (ctl) {
      options.signal = ctl.signal;
      timer = window.setTimeout(function () { ctl.abort(); }, HTTP_TIMEOUT_MS);
    }
    return fetch(url, options).finally(function () { window.clearTimeout(timer); });
  }

  function viaHttp(payload) {
    return fetchWithTimeout(SCAN_URL, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "X-CSRFToken": csrfToken()
      },
      body: JSON.stringify(payload)
    }).then(function (res) {
      httpHealthy = true;
      noteServerTime(res);
      updateConn();
      return res.json().catch(function () { return null; }).then(function (body) {
        if (res.ok && body && typeof body.ok === "boolean") return body;
        if (body && body.code) {
          // A 5xx is no answer about the scan, whatever its code says: the queue keeps it.
          return { ok: false, code: String(body.code), message: body.message || String(body.code),
                   httpStatus: res.status };
        }
        return { ok: false, code: "http_" + res.status, message: t("server_error", { status: res.status }),
                 httpStatus: res.status };
      });
    }, function () {
      httpHealthy = false;
      updateConn();
      return { ok: false, code: "not_sent", message: t("not_sent") };
    });
  }

  function send(payload) {
    return viaSocket(payload).then(function (verdict) {
      if (verdict && typeof verdict.ok === "boolean") return verdict;
      if (verdict && verdict.code) {
        return { ok: false, code: String(verdict.code), message: verdict.message || String(verdict.code) };
      }
      return viaHttp(payload);
    }, function () {
      // Disconnected or no ack in time: the same scan_id over HTTP, so it counts once.
      return viaHttp(payload);
    });
  }

  // ---- offline: the durable queue, the provisional check, reconciliation --------------------
  //
  // Every scan goes into the durable queue (offline-queue.js) and is sent from there, oldest
  // first, one at a time; it leaves the queue only with the server's final answer. While the
  // server cannot be reached, each scan gets at once a provisional verdict from the kit snapshot
  // this screen holds (the same rules as floor/packing/domain.py, as far as a snapshot tells);
  // what the kit shows is the server's last word plus the provisional scans still queued.

  var offline = window.FloorOffline ? new window.FloorOffline.Store("floor-pack") : null;
  var pending = [];            // the queued scans, oldest first (a copy of the store's rows)
  var offlineMode = false;     // the last try reached no server: new scans get a provisional verdict
  var confirmed = null;        // this handheld's session as the server last told it
  var confirmedStatus = null;
  var knownOrders = {};        // order_no -> { progress, status }: snapshots held for offline opening
  var MAX_KNOWN_ORDERS = 30;
  var offlineLogEl = $("offline-log");
  var offlineBanner = $("offline-banner");
  var pendingCountEl = $("pending-count");
  var offlineNoteEl = $("offline-note");
  var waitingUser = null;      // queued scans of another login on this device

  function stateKey() { return "pack:" + (station || "-") + ":" + deviceId; }

  function clone(value) { return value == null ? value : JSON.parse(JSON.stringify(value)); }

  function remember(progress, status) {
    if (!progress || !progress.order_no) return;
    knownOrders[progress.order_no] = { progress: clone(progress), status: status || null };
    var names = Object.keys(knownOrders);
    if (names.length > MAX_KNOWN_ORDERS) delete knownOrders[names[0]];
  }

  function persistState() {
    if (!offline) return;
    offline.setMeta(stateKey(), { confirmed: confirmed, status: confirmedStatus, orders: knownOrders,
                                  saved_at: Date.now() }).catch(function () {});
  }

  // The server's word about this handheld's own session.
  function setConfirmed(progress, status) {
    if (progress && current && progress.order_no !== (confirmed && confirmed.order_no)) refusedLines = {};
    confirmed = progress || null;
    if (status !== undefined) confirmedStatus = status || null;
    if (confirmed) remember(confirmed, confirmedStatus);
    persistState();
  }

  // -- the offline check: a mirror of the server's pure rules, against the snapshot held --

  var WAYBILL = /^[A-Z]{2,4}\d{9,16}$/;
  var PACKED_OR_LATER = { packed: 1, labelling: 1, labelled: 1, awaiting_loading: 1, loading: 1,
                          loaded: 1, handed_over: 1 };
  var BLOCKED = { on_hold: 1, exception: 1, cancelled: 1 };
  // What the gift box waits for: the server's default (main items, samples and gifts) unless
  // the kit's progress carries its warehouse's rule (`giftbox_requires`).
  var BEFORE_GIFTBOX = { main: 1, sample: 1, gift: 1 };

  function beforeGiftbox(progress) {
    if (!progress || !Array.isArray(progress.giftbox_requires)) return BEFORE_GIFTBOX;
    var roles = {};
    progress.giftbox_requires.forEach(function (role) { roles[role] = 1; });
    return roles;
  }

  // What a scan says (static/js/gs1.js): text, item keys, lot and expiry; `unsure` for a GS1
  // read this handheld cannot check whole.
  function readCode(raw) { return window.FloorGs1.read(raw); }

  function expired(yymmdd, now) {
    var date = window.FloorGs1.dateOf(yymmdd, now);
    if (!date) return false;
    var today = new Date(now);
    var todayKey = today.getUTCFullYear() * 10000 + (today.getUTCMonth() + 1) * 100 + today.getUTCDate();
    return date.y * 10000 + date.m * 100 + date.d < todayKey;
  }

  function lineFor(progress, keys) {
    if (!progress) return null;
    for (var k = 0; k < keys.length; k++) {
      for (var i = 0; i < progress.lines.length; i++) {
        if ((progress.lines[i].barcodes || []).indexOf(keys[k]) >= 0) return progress.lines[i];
      }
    }
    return null;
  }

  function packedOf(line) { return line.waived ? line.qty : (line.scanned || 0); }

  function knownOrderFor(code) {
    var names = Object.keys(knownOrders);
    for (var i = 0; i < names.length; i++) {
      var known = knownOrders[names[i]];
      if (names[i] === code || (known.progress && known.progress.waybill_no === code)) return known;
    }
    return null;
  }

  function recount(progress) {
    var done = 0, left = 0;
    progress.lines.forEach(function (l) {
      if (packedOf(l) >= l.qty) done += 1;
      left += Math.max(l.qty - packedOf(l), 0);
    });
    progress.lines_done = done;
    progress.units_left = left;
    progress.complete = left === 0 && !!progress.waybill_bound;
  }

  function text(code, params) {
    var template = VERDICT_TEXTS[code] || code;
    return template.replace(/%\((\w+)\)s/g, function (m, name) {
      return params && params[name] != null ? String(params[name]) : "";
    });
  }

  // The provisional verdict of one scan against `st` ({ progress, status, lastCode, lastAt,
  // lastVerdict }), which it advances as the server would. Answers { ok, code, message, kind,
  // name, line_no } (and `repeats` for a double read).
  function checkOffline(st, raw, at) {
    var verdict = checkRead(st, raw, at);
    if (verdict.code !== "duplicate_read" && verdict.code !== "unreadable") {
      // An "unknown offline" read is no refusal: the server decides it.
      st.lastVerdict = { code: verdict.code, ok: !!verdict.ok || verdict.kind === "unknown",
                         unknown: verdict.kind === "unknown",
                         message: verdict.message, name: verdict.name, line_no: verdict.line_no };
    }
    return verdict;
  }

  function checkRead(st, raw, at) {
    var read = readCode(raw);
    var code = read.text;
    if (!code) return { ok: false, code: "unreadable", message: text("unreadable", { reason: "" }) };
    if (st.lastCode === code && st.lastAt != null && at - st.lastAt >= 0 && at - st.lastAt < DEBOUNCE_MS) {
      st.lastAt = at;
      var first = st.lastVerdict;
      if (first && first.unknown) {
        // The first read waits for the server, nothing was counted: the repeat says that again,
        // never a grey "counted once" (the server may refuse the first read).
        return { ok: false, kind: "unknown", code: "duplicate_read", repeats: { code: first.code, ok: false },
                 message: text("duplicate_read_refused", { refusal: first.message }) };
      }
      if (first && !first.ok) {
        return { ok: false, code: "duplicate_read", repeats: { code: first.code, ok: false },
                 message: text("duplicate_read_refused", { refusal: first.message }),
                 name: first.name, line_no: first.line_no };
      }
      return { ok: false, code: "duplicate_read", repeats: first ? { code: first.code, ok: true } : null,
               message: text("duplicate_read", {}) };
    }
    st.lastCode = code;
    st.lastAt = at;
    if (read.unsure) {
      // Never half-read: a GS1 label the handheld cannot check whole waits for the server.
      return { ok: false, kind: "unknown", code: "unknown_offline", message: t("offline_gs1", { code: code }) };
    }
    var p = st.progress;
    var line = lineFor(p, read.keys);
    if (!line) {
      var known = knownOrderFor(code);
      if (known) {
        var params = { order_no: known.progress.order_no, wave_no: known.progress.wave_no || "—",
                       status: STATUS_LABELS[known.status] || known.status };
        if (known.status && PACKED_OR_LATER[known.status]) {
          return { ok: false, code: "already_packed", message: text("already_packed", params) };
        }
        if (known.status && BLOCKED[known.status]) {
          return { ok: false, code: "order_blocked", message: text("order_blocked", params) };
        }
        st.progress = clone(known.progress);
        st.status = known.status;
        return { ok: true, code: "order_opened", message: text("order_opened", params),
                 opened: st.progress.order_no };
      }
    }
    if (!p) {
      if (WAYBILL.test(code) || !/^\d+$/.test(read.gtin || code)) {
        return { ok: false, kind: "unknown", code: "unknown_offline",
                 message: t("unknown_offline", { code: code }) };
      }
      return { ok: false, code: "waybill_required", message: text("waybill_required", {}) };
    }
    var base = { order_no: p.order_no };
    if (st.status && BLOCKED[st.status]) {
      return { ok: false, code: "order_blocked",
               message: text("order_blocked", { order_no: p.order_no, status: STATUS_LABELS[st.status] || st.status }) };
    }
    if (line) {
      var item = { order_no: p.order_no, name: line.name || line.sku, sku: line.sku, qty: line.qty };
      var refusal = function (why, params) {
        return { ok: false, code: why, message: text(why, params), name: item.name, line_no: line.line_no };
      };
      if (expired(read.expiry, at)) return refusal("expired", { name: item.name, expiry: read.expiry });
      if (line.lot && read.lot && read.lot !== line.lot) {
        return refusal("lot_mismatch", { name: item.name, lot: read.lot, pinned_lot: line.lot });
      }
      if (packedOf(line) >= line.qty) return refusal("over_scan", item);
      if (line.role === "giftbox") {
        var waits = beforeGiftbox(p);
        var missing = p.lines.filter(function (l) { return waits[l.role] && packedOf(l) < l.qty; });
        if (missing.length) {
          return refusal("giftbox_incomplete", { missing_names: missing.map(function (l) {
            return (l.name || l.sku) + "×" + (l.qty - packedOf(l));
          }).join(", ") });
        }
      }
      line.scanned = (line.scanned || 0) + 1;
      line.provisional = true;
      p.provisional = true;
      recount(p);
      var said = p.complete ? t("offline_kit_complete", base)
        : (p.units_left === 0 ? text("accepted_last_item", base)
           : text("accepted", { name: item.name, scanned: line.scanned, qty: line.qty, units_left: p.units_left }));
      return { ok: true, code: "accepted", message: said, name: item.name, line_no: line.line_no };
    }
    if (WAYBILL.test(code) && !p.waybill_bound) {
      p.waybill_no = code;
      p.waybill_bound = true;
      p.provisional = true;
      recount(p);
      return { ok: true, code: p.complete ? "accepted" : "waybill_bound",
               message: p.complete ? t("offline_kit_complete", base)
                 : text("waybill_bound", { order_no: p.order_no, waybill_no: code }) };
    }
    if (WAYBILL.test(code) || !/^\d+$/.test(read.gtin || code)) {
      // Maybe another order's waybill or number: the server may open that order, whose kit this
      // handheld does not hold. From here on the screen cannot check offline.
      st.progress = null;
      st.status = null;
      return { ok: false, kind: "unknown", code: "unknown_offline", message: t("unknown_offline", { code: code }) };
    }
    return { ok: false, code: "wrong_item", message: t("offline_wrong_item", { code: code, order_no: p.order_no }) };
  }

  function baseState() {
    return { progress: clone(confirmed), status: confirmedStatus, lastCode: null, lastAt: null,
             lastVerdict: null };
  }

  // What the kit shows: the server's last word, then every queued provisional scan on top.
  function overlay() {
    var st = baseState();
    pending.forEach(function (entry) {
      if (entry.provisional) checkOffline(st, entry.payload.code, entry.at);
    });
    return st;
  }

  function renderDisplay() {
    if (shownDevice !== deviceId) return;
    var st = overlay();
    render(st.progress);
    if (orderEl && st.status) orderEl.setAttribute("data-status", String(st.status));
  }

  // -- the list of offline scans and the banner --

  function logItem(entry) {
    var li = offlineLogEl.querySelector('li[data-scan-id="' + entry.scan_id + '"]');
    if (li) return li;
    li = document.createElement("li");
    li.className = "offline-item";
    li.setAttribute("data-scan-id", entry.scan_id);
    var what = document.createElement("span");
    what.className = "offline-what";
    var said = document.createElement("span");
    said.className = "offline-said";
    li.appendChild(what);
    li.appendChild(said);
    offlineLogEl.insertBefore(li, offlineLogEl.firstChild);
    while (offlineLogEl.children.length > 20) offlineLogEl.removeChild(offlineLogEl.lastChild);
    offlineLogEl.hidden = false;
    return li;
  }

  function logProvisional(entry) {
    var li = logItem(entry);
    var prov = entry.provisional;
    li.setAttribute("data-state", "pending");
    li.setAttribute("data-provisional-code", prov.code);
    li.setAttribute("data-provisional-ok", prov.ok ? "1" : "0");
    li.className = "offline-item pending " + (prov.kind || (prov.ok ? "ok" : "bad"));
    li.querySelector(".offline-what").textContent = prov.name || entry.payload.code;
    li.querySelector(".offline-said").textContent = t("provisional_short") + " · " + prov.message;
  }

  function logAnswer(entry, answer, state) {
    var li = logItem(entry);
    li.setAttribute("data-state", state);
    li.setAttribute("data-server-code", String(answer.code || ""));
    li.className = "offline-item " + state + " " + (answer.ok ? "ok" : (NEUTRAL_CODES[answer.code] && !repeatedRefusal(answer) ? "neutral" : "bad"));
    if (answer.params && answer.params.name) li.querySelector(".offline-what").textContent = answer.params.name;
    li.querySelector(".offline-said").textContent = t("server_said") + " · " + (answer.message || answer.code);
  }

  function clearSettledLog() {
    Array.prototype.forEach.call(offlineLogEl.querySelectorAll('li:not([data-state="pending"])'), function (li) {
      li.parentNode.removeChild(li);
    });
    offlineLogEl.hidden = !offlineLogEl.children.length;
  }

  function updateBanner() {
    var waiting = pending.length;
    var show = offlineMode || pending.some(function (e) { return !!e.provisional; });
    offlineBanner.hidden = !show;
    offlineBanner.setAttribute("data-pending", String(waiting));
    document.body.setAttribute("data-offline", offlineMode ? "1" : "");
    document.body.setAttribute("data-pending", String(waiting));
    pendingCountEl.textContent = t("pending_count", { n: waiting });
    var note = "";
    if (offline && !offline.durable) note = t("not_durable");
    if (waitingUser) note = t("other_user", { user: waitingUser });
    offlineNoteEl.textContent = note;
    offlineNoteEl.hidden = !note;
  }

  // -- the replay --

  function sendEntry(entry) {
    if (entry.user && CFG.user && entry.user !== CFG.user) {
      waitingUser = entry.user;
      return Promise.resolve({ ok: false, code: "other_user" });
    }
    waitingUser = null;
    busy = true;
    if (!entry.provisional) {
      pendingTimer = window.setTimeout(function () {
        verdictEl.classList.add("pending");
        verdictEl.textContent = t("sending") + " " + entry.payload.code;
      }, 400);
    }
    return send(entry.payload).then(function (answer) {
      busy = false;
      if (window.FloorOffline && !window.FloorOffline.isFinal(answer)) {
        goOffline(entry);
        needsPage(answer);
      }
      return answer;
    }, function (err) {
      busy = false;
      goOffline(entry);
      throw err;
    });
  }

  // The login ran out, or the page's form token is stale (a copy the service worker kept): the
  // queue is safe in IndexedDB, so go and get a fresh page (the login comes back here).
  function needsPage(answer) {
    var code = answer && answer.code;
    if ((code !== "unauthenticated" && code !== "csrf_failed") || !navigator.onLine) return;
    var last = 0;
    try { last = Number(window.sessionStorage.getItem("floor.pack.fresh_page_at")) || 0; } catch (e) { /* none */ }
    if (Date.now() - last < 60000) return;   // once a minute at most, should the answer persist
    try { window.sessionStorage.setItem("floor.pack.fresh_page_at", String(Date.now())); } catch (e) { /* none */ }
    window.setTimeout(function () {
      if (code === "unauthenticated" && CFG.login_url) window.location.assign(CFG.login_url);
      else window.location.reload();
    }, FLASH_MS.bad);
  }

  // A scan that waits is recorded at the time it was made (the handheld's clock), not when it
  // reaches the server; a scan answered at once keeps the server's time, as it always had.
  function stampTime(entry) {
    if (!entry.payload.at) entry.payload.at = new Date(entry.at).toISOString();
  }

  // No server for this scan: it and every scan after it get the offline check's verdict.
  function goOffline(entry) {
    window.clearTimeout(pendingTimer);
    offlineMode = true;
    var st = null;
    var last = null;
    pending.forEach(function (e) {
      if (!st) st = baseState();
      if (!e.provisional) {
        stampTime(e);
        e.provisional = checkOffline(st, e.payload.code, e.at);
        if (offline) offline.update(e).catch(function () {});
        logProvisional(e);
        last = e;
      } else {
        checkOffline(st, e.payload.code, e.at);
      }
    });
    updateBanner();
    if (last && last.scan_id === entry.scan_id) {
      renderDisplay();
      showVerdict(last.provisional, { provisional: true, keepScreen: true });
    }
  }

  function onAnswer(entry, answer) {
    stateGen += 1;
    pending = pending.filter(function (e) { return e.scan_id !== entry.scan_id; });
    if (answer.progress && typeof answer.progress === "object") setShownDevice(deviceId);
    if (answer.progress !== undefined) setConfirmed(answer.progress || null, answer.status || null);
    else if (answer.status) { confirmedStatus = answer.status; persistState(); }
    if (!entry.provisional) {
      renderDisplay();
      showVerdict(answer, { keepScreen: true });
      return;
    }
    var prov = entry.provisional;
    // Yes and yes, or no and no (whatever the reason's code), is the verdict the packer acted on.
    var state = !!answer.ok === !!prov.ok ? "confirmed" : (prov.ok ? "refused" : "corrected");
    logAnswer(entry, answer, state);
    var lineNo = answer.line_no != null ? answer.line_no : prov.line_no;
    if (state === "refused" && lineNo != null) refusedLines[lineNo] = String(answer.code);
    renderDisplay();
    if (state === "refused") {
      // The packer put this item in the box on a provisional yes: say it loud, name it.
      showVerdict({ ok: false, code: answer.code, message: t("refused_after_offline", {
        item: prov.name || entry.payload.code, reason: answer.message || answer.code }) },
        { keepScreen: true, reconciled: "refused" });
    } else if (state === "corrected") {
      showVerdict({ ok: !!answer.ok, code: answer.code, kind: answer.ok ? "ok" : "bad",
                    message: t("corrected_after_offline", { item: prov.name || entry.payload.code,
                                                            reason: answer.message || answer.code }) },
                  { keepScreen: true, reconciled: "corrected" });
    }
  }

  function onQueueChange(count, failing) {
    if (!failing && count === 0 && offlineMode) {
      offlineMode = false;
      var refused = offlineLogEl.querySelectorAll('li[data-state="refused"]').length;
      // A refusal on screen stays there until the packer acts: the all-clear never covers it.
      if (!refused && verdictEl.getAttribute("data-reconciled") !== "corrected" &&
          !verdictEl.classList.contains("bad")) {
        setHint(t("all_confirmed"));
      }
    }
    if (!failing && count === 0) waitingUser = null;
    updateBanner();
  }

  var replayer = offline ? new window.FloorOffline.Replayer(offline, {
    send: sendEntry,
    onAnswer: onAnswer,
    onChange: onQueueChange,
    // Two reads of one code made further apart than the debounce window are two units: sent
    // back to back they would look like one double read, so they go out that far apart.
    spacing: function (previous, entry) {
      if (previous.payload.code !== entry.payload.code) return 0;
      return Math.abs(entry.at - previous.at) >= DEBOUNCE_MS ? DEBOUNCE_MS + 150 : 0;
    }
  }) : null;

  var busy = false;

  function isOffline() {
    return offlineMode || !navigator.onLine;
  }

  function submitCode(raw) {
    var code = String(raw || "").trim();
    if (!code) return;
    if (!station) {
      stationSel.classList.add("needs-choice");
      showVerdict({ ok: false, code: "no_station", message: t("choose_station") });
      return;
    }
    hidePacked();
    var at = Date.now();
    var entry = {
      scan_id: newScanId(), at: at, user: CFG.user || null, provisional: null,
      payload: { scan_id: null, station: station, device_id: deviceId, code: code }
    };
    entry.payload.scan_id = entry.scan_id;
    if (isOffline()) {
      offlineMode = true;
      stampTime(entry);
      var st = overlay();
      entry.provisional = checkOffline(st, code, at);
      pending.push(entry);
      setShownDevice(deviceId);
      logProvisional(entry);
      updateBanner();
      renderDisplay();
      showVerdict(entry.provisional, { provisional: true, keepScreen: true });
    } else {
      if (!pending.length) clearSettledLog();
      pending.push(entry);
    }
    if (!replayer) {
      // No offline-queue.js (an old cached page): straight to the server, as before.
      send(entry.payload).then(function (answer) { onAnswer(entry, answer); });
      return;
    }
    offline.add(entry).then(function () { replayer.kick(); }, function () { replayer.kick(); });
  }

  // Back from a reload: the snapshot held and the scans still queued, before the server answers.
  function loadOffline() {
    if (!offline) return;
    var seen = stateGen;
    Promise.all([offline.getMeta(stateKey()), offline.all()]).then(function (got) {
      var saved = got[0];
      var rows = got[1] || [];
      if (saved && saved.orders) {
        Object.keys(saved.orders).forEach(function (no) {
          if (!knownOrders[no]) knownOrders[no] = saved.orders[no];
        });
      }
      if (saved && confirmed === null && stateGen === seen) {
        confirmed = saved.confirmed || null;
        confirmedStatus = saved.status || null;
      }
      var mine = {};
      pending.forEach(function (e) { mine[e.scan_id] = true; });
      pending = rows.filter(function (e) { return !mine[e.scan_id]; }).concat(pending);
      pending.sort(function (a, b) { return (a.seq || Infinity) - (b.seq || Infinity); });
      pending.forEach(function (e) { if (e.provisional) logProvisional(e); });
      if (pending.some(function (e) { return !!e.provisional; }) || !navigator.onLine) offlineMode = true;
      updateBanner();
      if (stateGen === seen && (pending.length || confirmed)) renderDisplay();
      replayer.kick();
    }, function () { /* no store: nothing was kept */ });
  }

  function submitField() {
    var value = input.value;
    input.value = "";
    submitCode(value);
  }

  // ---- camera fallback: a photo of a label the scanner cannot read ----------------------------

  function clearChoices() {
    cameraChoices.hidden = true;
    while (cameraChoices.firstChild) cameraChoices.removeChild(cameraChoices.firstChild);
  }

  // A photo's GS1 symbol is sent as a scanner would send it, behind its AIM identifier: the
  // data of a GS1-128 or DataBar that opens with another AI is GS1 only by that identifier.
  function decodedRaw(c) {
    var text = String(c.text || "");
    return window.FloorGs1.GS1_SYMBOLOGIES[c.symbology_id] && text.charAt(0) !== "]" ? c.symbology_id + text : text;
  }

  cameraBtn.addEventListener("click", function () {
    clearChoices();
    cameraInput.click();
  });
  cameraInput.addEventListener("change", function () {
    var file = cameraInput.files && cameraInput.files[0];
    cameraInput.value = "";
    if (!file) return;
    var body = new FormData();
    body.append("image", file);
    verdictEl.textContent = t("reading_photo");
    fetch("/api/v1/decode", {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), "Accept": "application/json" }
    }).then(function (res) {
      return res.json().then(function (answer) { return { status: res.status, body: answer }; });
    }).then(function (res) {
      var codes = (res.body && res.body.codes) || [];
      if (res.status !== 200) {
        showVerdict({ ok: false, code: (res.body && res.body.code) || "decode_failed",
                      message: (res.body && res.body.message) || t("no_barcode") });
      } else if (!codes.length) {
        showVerdict({ ok: false, code: "no_barcode", message: t("no_barcode") });
      } else if (codes.length === 1) {
        submitCode(decodedRaw(codes[0]));
      } else {
        verdictEl.textContent = t("several_codes");
        codes.forEach(function (c) {
          var b = document.createElement("button");
          b.type = "button";
          b.className = "camera-choice";
          b.textContent = c.text;
          b.addEventListener("click", function () { clearChoices(); submitCode(decodedRaw(c)); });
          cameraChoices.appendChild(b);
        });
        cameraChoices.hidden = false;
      }
    }, function () {
      showVerdict({ ok: false, code: "not_sent", message: t("not_sent") });
    }).then(focusInput);
  });

  input.addEventListener("keydown", function (e) {
    // Keyboard-wedge scanners end a read with Enter (some with Tab).
    if (e.key === "Enter" || e.keyCode === 13 || (e.key === "Tab" && input.value.trim())) {
      e.preventDefault();
      submitField();
    }
  });
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    submitField();
  });
  input.addEventListener("paste", function (e) {
    var data = e.clipboardData || window.clipboardData;
    var text = data ? data.getData("text") : "";
    if (!text || !/[\r\n]/.test(text)) return;  // one code: it waits for Enter like typed input
    e.preventDefault();
    var parts = (input.value + text).split(/\r\n|\r|\n/);
    var rest = parts.pop();  // what follows the last line break stays in the field
    input.value = rest || "";
    parts.forEach(submitCode);
  });

  // ---- restoring the session after a reload or reconnect -----------------------------------

  var restoreSeq = 0;
  // The event seq the station's first session answer was true up to: its room is followed
  // from there (older events are in that answer already).
  var baseStation = null;
  var baseSeq = 0;
  var restoring = 0;           // session requests under way

  // The session on screen (this handheld's, or the serial scanner's it last showed), from the
  // server; with no open session for a scanner, this handheld's own.
  function restoreSession(keepIfGone, who) {
    if (!station) return;
    var mine = ++restoreSeq;
    var seen = stateGen;
    var forStation = station;
    who = who || shownDevice;
    var url = SESSION_URL.replace("{station}", encodeURIComponent(station)) +
      "?device_id=" + encodeURIComponent(who);
    restoring += 1;
    fetchWithTimeout(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .finally(function () { restoring = Math.max(0, restoring - 1); })
      .then(function (res) {
        httpHealthy = true;
        noteServerTime(res);
        updateConn();
        return res.ok ? res.json() : null;
      }, function () {
        httpHealthy = false;
        updateConn();
        return null;
      })
      .then(function (body) {
        if (body && forStation === station && baseStation !== station && typeof body.last_seq === "number") {
          baseStation = station;
          baseSeq = body.last_seq;
          followStation();
        }
        // A verdict that came in meanwhile is newer than this answer.
        if (!body || mine !== restoreSeq || stateGen !== seen || busy || forStation !== station) return;
        if (!body.progress && who !== deviceId) {
          setShownDevice(deviceId);     // the scanner's order is closed: back to our own
          restoreSession(keepIfGone, deviceId);
          return;
        }
        if (!body.progress && keepIfGone === true) return;
        if (who === deviceId) {
          setConfirmed(body.progress || null, body.status || null);
          renderDisplay();   // the scans still queued show on top of the server's word
        } else {
          render(body.progress || null);
        }
        if (body.status) orderEl.setAttribute("data-status", String(body.status));
        if (!body.progress && verdictCount === 0) setHint(t("start_hint"));
      })
      .catch(function () { /* a bad answer leaves the screen as it is */ });
  }

  // A supervisor's override or release changes the session from elsewhere: the screen follows
  // the open order's room and reloads the session then. The first subscription asks from 0
  // (an order's room holds a handful of events); its ack tells the newest seq for later ones.
  var lastSeq = 0;
  var orderRooms = {};
  var refreshTimer = null;

  function trackSeq(event) {
    if (event && typeof event.seq === "number" && event.seq > lastSeq) lastSeq = event.seq;
  }

  // The station's room carries the verdicts of its serial scanners (`scan_verdict`). Joined
  // after the seq of the station's session answer, then after the last seq seen, so a reconnect
  // brings what was missed meanwhile and nothing older.
  var stationRooms = {};       // joined on this connection
  var stationFollowed = null;  // the station whose room was joined before (this one or an earlier connection)
  var catchingUp = 0;          // station subscriptions waiting for their ack

  function followStation() {
    if (!sock || !sock.connected || !station) return;
    var room = "station:" + station;
    if (stationRooms[room]) return;
    if (baseStation !== station) {
      // The session answer tells from which seq; it calls back here.
      if (!restoring) restoreSession(true);
      return;
    }
    var after = stationFollowed === station ? lastSeq : baseSeq;
    var forStation = station;
    stationRooms[room] = true;
    catchingUp += 1;
    sock.emit("subscribe", { room: room, after_seq: after }, function (ack) {
      catchingUp = Math.max(0, catchingUp - 1);
      if (ack && ack.ok) {
        trackSeq({ seq: ack.last_seq });
        if (forStation === station) {
          stationFollowed = station;
          // For people and tests looking at the page: whose scanners' verdicts show here.
          document.body.setAttribute("data-station-room", station);
        }
      } else {
        delete stationRooms[room];   // again with the next heartbeat
      }
    });
  }

  // A serial scanner at this station read a code: its verdict, shown as if scanned here.
  var verdictSeq = 0;

  function onScanVerdict(ev) {
    trackSeq(ev);
    if (!ev || typeof ev !== "object") return;
    if (typeof ev.seq === "number") {
      if (ev.seq <= verdictSeq) return;     // had it already
      verdictSeq = ev.seq;
    }
    var source = String(ev.device_id || "");
    if (!source || source === deviceId || !station || ev.station !== station) return;
    // The service renders a scanner's verdict in every screen language: show this screen's.
    var lang = (document.documentElement.lang || "zh").slice(0, 2);
    if (ev.messages && typeof ev.messages[lang] === "string") ev.message = ev.messages[lang];
    var quiet = catchingUp > 0 && ageMs(ev.at) > CATCHUP_QUIET_MS;
    if (!quiet) hidePacked();
    showVerdict(ev, { source: source, quiet: quiet });
  }

  function followOrder(orderNo) {
    if (!sock || !sock.connected || !orderNo || orderRooms[orderNo]) return;
    orderRooms[orderNo] = true;
    sock.emit("subscribe", { room: "order:" + orderNo, after_seq: lastSeq }, function (ack) {
      if (ack && ack.ok) trackSeq({ seq: ack.last_seq });
      else delete orderRooms[orderNo];   // try again with the next verdict
    });
  }

  function onSessionChanged(keepIfGone) {
    return function (event) {
      trackSeq(event);
      if (!event || !current || event.order_no !== current.order_no) return;
      window.clearTimeout(refreshTimer);
      refreshTimer = window.setTimeout(function () { restoreSession(keepIfGone); }, 200);
    };
  }

  // An order held, cancelled or put in exception while this handheld packs it (or shows it):
  // announced at once, red, and the panel stays until the packer taps it, whatever comes next.
  var STOP_TEXTS = { cancelled: "stopped_cancelled", on_hold: "stopped_on_hold",
                     exception: "stopped_exception" };
  var stopSeq = null;

  function stopsHere(event) {
    var at = event.packing_at;
    if (at && typeof at === "object" && at.station === station &&
        (at.device_id === deviceId || at.device_id === shownDevice)) return true;
    return !!(current && event.order_no === current.order_no);
  }

  function announceStop(event) {
    if (typeof event.seq === "number" && event.seq === stopSeq) return;   // via two rooms
    stopSeq = typeof event.seq === "number" ? event.seq : null;
    var message = t(STOP_TEXTS[event.status], { order_no: event.order_no || "" });
    var reason = event.reason ? t("stopped_reason", { reason: event.reason }) : "";
    stopEl.setAttribute("data-order-no", String(event.order_no || ""));
    stopEl.setAttribute("data-status", String(event.status));
    stopMessage.textContent = message;
    stopReason.textContent = reason;
    stopReason.hidden = !reason;
    stopEl.hidden = false;
    hidePacked();
    if (confirmed && confirmed.order_no === event.order_no) {
      confirmedStatus = event.status;   // the offline check refuses its items from now on
      persistState();
    }
    if (current && current.order_no === event.order_no && orderEl) orderEl.setAttribute("data-status", String(event.status));
    showVerdict({ ok: false, code: "order_" + event.status, message: reason ? message + " " + reason : message },
                { keepScreen: true });
  }

  // A catch-up (page load, reconnect) replays an order's past in one burst: a hold already
  // released again is old news. So the announcement waits a moment for a release behind it.
  var STOP_SETTLE_MS = 150;
  var stopTimer = null;
  var stopWaiting = null;

  function onStop(event) {
    if (!event || typeof event !== "object" || !STOP_TEXTS[event.status] || !stopsHere(event)) return false;
    window.clearTimeout(stopTimer);
    stopWaiting = event;
    stopTimer = window.setTimeout(function () {
      stopWaiting = null;
      announceStop(event);
    }, STOP_SETTLE_MS);
    return true;
  }

  // Released again by a supervisor: the red panel of that order gives way to a plain word.
  function onStopLifted(event) {
    if (!event || STOP_TEXTS[event.status] || !STOP_TEXTS[event.from]) return;
    if (stopWaiting && stopWaiting.order_no === event.order_no) {
      window.clearTimeout(stopTimer);
      stopWaiting = null;
      return;
    }
    var announced = !stopEl.hidden && stopEl.getAttribute("data-order-no") === event.order_no;
    if (!announced && !(current && current.order_no === event.order_no)) return;
    if (announced) stopEl.hidden = true;
    if (confirmed && confirmed.order_no === event.order_no) {
      confirmedStatus = event.status;
      persistState();
    }
    setHint(t("stop_lifted", { order_no: event.order_no, status: STATUS_LABELS[event.status] || event.status }));
    verdictEl.setAttribute("data-code", "order_released");
  }

  stopAck.addEventListener("click", function () {
    stopEl.hidden = true;
    focusInput();
  });

  // Packed by someone else's action (an override closing the kit): say so here too.
  function onStatus(event) {
    trackSeq(event);
    if (onStop(event)) return;
    onStopLifted(event);
    if (!event || !current || event.order_no !== current.order_no) return;
    // A scanner's own verdict follows its status events: that one says it.
    if (event.status === "packed" && event.by !== CFG.user && event.by !== shownDevice) {
      render(null);   // its session is closed: the counts on screen are no longer the truth
      showPacked(event.order_no);
      verdictEl.className = "verdict ok";
      verdictEl.textContent = t("packed_by", { order_no: event.order_no, by: event.by || "" });
    }
  }

  stationSel.addEventListener("change", function () {
    station = stationSel.value;
    store.set("floor.station", station);
    stationSel.classList.toggle("needs-choice", !station);
    setShownDevice(deviceId);
    document.body.setAttribute("data-station-room",
                               station && sock && sock.connected && stationRooms["station:" + station] ? station : "");
    hidePacked();
    confirmed = null;
    confirmedStatus = null;
    refusedLines = {};
    render(null);
    setHint(station ? t("station_changed", { station: station }) : t("choose_station"));
    restoreSession();
    sendHeartbeat();
    focusInput();
  });

  // ---- heartbeats: this screen is open at this station (the boards show it online) ----------

  function sendHeartbeat() {
    if (!station) return;
    var body = { device_id: deviceId, station: station };
    if (sock && sock.connected) {
      sock.emit("heartbeat", body, function () { /* nothing to do with the ack */ });
      followStation();
      return;
    }
    if (!navigator.onLine) return;
    // No socket (a proxy without websockets): the scans go over HTTP, so do the heartbeats.
    fetchWithTimeout(HEARTBEAT_URL, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json",
                 "X-CSRFToken": csrfToken() },
      body: JSON.stringify(body)
    }).then(noteServerTime, function () { /* the next one, in 20 s */ });
  }

  window.setInterval(sendHeartbeat, HEARTBEAT_MS);

  // ---- socket ------------------------------------------------------------------------------

  if (typeof window.io === "function") {
    sock = window.io(CFG.socket_namespace || "/floor", { transports: ["websocket"] });
    var connectedBefore = false;
    sock.on("connect", function () {
      socketSettled = true;
      orderRooms = {};   // rooms do not survive a reconnect
      stationRooms = {};
      catchingUp = 0;
      if (current) followOrder(current.order_no);
      sendHeartbeat();   // also joins the station's room
      updateConn();
      if (connectedBefore) restoreSession();
      connectedBefore = true;
      if (replayer) replayer.kick();   // the scans queued while away, in order
    });
    sock.on("override", onSessionChanged(true));
    sock.on("session_released", onSessionChanged(false));
    sock.on("status", onStatus);
    sock.on("scan_verdict", onScanVerdict);
    sock.on("scan_rejected", trackSeq);
    sock.on("device", trackSeq);
    // A socket that neither connects nor fails (a proxy swallowing websockets) is no better
    // than none: after a few seconds say that scans go over HTTP.
    window.setTimeout(function () {
      socketSettled = true;
      updateConn();
    }, 4000);
    sock.on("disconnect", function () {
      catchingUp = 0;
      document.body.setAttribute("data-station-room", "");
      updateConn();
    });
    sock.on("connect_error", function () {
      socketSettled = true;
      updateConn();
    });
  }

  // The browser knows first when the network is gone: close the socket then, and connect again
  // when it is back (the reconnect catches up on the station's room after the last seq seen).
  window.addEventListener("offline", function () {
    if (sock && sock.connected) sock.disconnect();
    updateConn();
  });
  window.addEventListener("online", function () {
    httpHealthy = true;
    if (sock && !sock.connected) sock.connect();
    updateConn();
    if (replayer) replayer.kick();
  });

  // ---- start -------------------------------------------------------------------------------

  updateConn();
  if (!station) {
    stationSel.classList.add("needs-choice");
    setHint(t("choose_station"));
  }
  restoreSession();
  loadOffline();
  updateBanner();
  // The service worker keeps this screen and its assets for opening offline (sw.js at the root,
  // so that its scope covers /pack and /returns).
  if (CFG.sw_url && navigator.serviceWorker && typeof navigator.serviceWorker.register === "function") {
    navigator.serviceWorker.register(CFG.sw_url, { scope: "/" }).catch(function () { /* http: no worker */ });
  }
  focusInput();
})();
