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
  var FLASH_MS = { ok: 600, bad: 1500, neutral: 450 };
  var NEUTRAL_CODES = { duplicate_read: true };

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
  var SYMBOLS = { ok: "✓", bad: "✕", neutral: "↻" };

  // `source`: the serial scanner that read the code (null: this handheld).
  function flash(kind, code, message, source) {
    window.clearTimeout(flashTimer);
    flashEl.hidden = true;
    flashEl.className = "flash";
    void flashEl.offsetWidth;  // restart the fade-in for back-to-back verdicts
    flashEl.classList.add(kind);
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
    if (progress.complete) showPacked(progress.order_no);
    followOrder(progress.order_no);
  }

  function markMissing() {
    var rows = kitEl.querySelectorAll("li.kit-line:not(.done)");
    Array.prototype.forEach.call(rows, function (li) {
      var role = li.getAttribute("data-role");
      if (role === "main" || role === "sample") li.classList.add("missing");
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
  // screen follow it but nothing flashes, beeps or buzzes.
  function showVerdict(v, opts) {
    opts = opts || {};
    var source = opts.source || null;
    var reader = source || deviceId;
    if (!source) window.clearTimeout(pendingTimer);
    var code = String(v.code || (v.ok ? "accepted" : "error"));
    var kind = NEUTRAL_CODES[code] ? "neutral" : (v.ok ? "ok" : "bad");
    var message = v.message || code;

    stateGen += 1;
    if (v.progress && typeof v.progress === "object") {
      setShownDevice(reader);
      render(v.progress);
    } else if (code === "waybill_required" && reader === shownDevice) {
      render(null);  // no order is open for this reader at this station any more
    }
    if (reader === shownDevice) {
      if (code === "giftbox_incomplete" && !opts.quiet) markMissing();
      if (v.status && orderEl) orderEl.setAttribute("data-status", String(v.status));
    }
    if (opts.quiet) return;

    if (code === "unauthenticated" && CFG.login_url && !source) {
      // The login ran out: after the red flash, off to the login page (it comes back here).
      window.setTimeout(function () { window.location.assign(CFG.login_url); }, FLASH_MS.bad);
    }

    verdictCount += 1;
    verdictEl.className = "verdict " + kind;
    setVerdictText(message, source);
    verdictEl.setAttribute("data-code", code);
    verdictEl.setAttribute("data-device", source || "");
    verdictEl.setAttribute("data-count", String(verdictCount));

    flash(kind, code, message, source);
    playSound(kind);
    vibrate(kind);
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
          return { ok: false, code: String(body.code), message: body.message || String(body.code) };
        }
        return { ok: false, code: "http_" + res.status, message: t("server_error", { status: res.status }) };
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

  // Scans go out one at a time, in the order they were read.
  var queue = [];
  var busy = false;

  function pump() {
    if (busy || !queue.length) return;
    busy = true;
    var payload = queue.shift();
    pendingTimer = window.setTimeout(function () {
      verdictEl.classList.add("pending");
      verdictEl.textContent = t("sending") + " " + payload.code;
    }, 400);
    send(payload).then(showVerdict, function () {
      showVerdict({ ok: false, code: "not_sent", message: t("not_sent") });
    }).then(function () {
      busy = false;
      pump();
    });
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
    queue.push({ scan_id: newScanId(), station: station, device_id: deviceId, code: code });
    pump();
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
        submitCode(codes[0].text);
      } else {
        verdictEl.textContent = t("several_codes");
        codes.forEach(function (c) {
          var b = document.createElement("button");
          b.type = "button";
          b.className = "camera-choice";
          b.textContent = c.text;
          b.addEventListener("click", function () { clearChoices(); submitCode(c.text); });
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
        render(body.progress || null);
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

  // Packed by someone else's action (an override closing the kit): say so here too.
  function onStatus(event) {
    trackSeq(event);
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
  });

  // ---- start -------------------------------------------------------------------------------

  updateConn();
  if (!station) {
    stationSel.classList.add("needs-choice");
    setHint(t("choose_station"));
  }
  restoreSession();
  focusInput();
})();
