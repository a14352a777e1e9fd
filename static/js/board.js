/* floor supervisor board: a snapshot from GET /api/v1/board, then live events over Socket.IO.
 *
 * The snapshot says up to which event it is true (`last_seq`); the board subscribes to the
 * warehouse (and its stations) after that seq, applies each pushed event once, in seq order, and
 * refetches the snapshot now and then for the aggregates only the server can compute. Events
 * newer than a refetched snapshot are applied again on top of it, so a refetch never steps back.
 * After a lost connection the board subscribes after the last seq it applied: the server sends
 * every missed event first, then live ones.
 *
 * Data comes from two JSON blocks in board.html: #board-config and #board-i18n (every UI
 * string, already translated by the server). No inline code anywhere.
 */
(function () {
  "use strict";

  var $ = function (id) { return document.getElementById(id); };
  var hasOwn = function (obj, key) { return Object.prototype.hasOwnProperty.call(obj, key); };

  function readJSON(id) {
    var el = $(id);
    if (!el) return {};
    try { return JSON.parse(el.textContent || "{}"); } catch (e) { return {}; }
  }

  var CFG = readJSON("board-config");
  var T = readJSON("board-i18n");
  var WAREHOUSE = String(CFG.warehouse || "");
  var STATUS_ORDER = CFG.statuses || [];
  var PACKED_OR_LATER = toSet(CFG.packed_or_later || []);
  var TERMINAL = toSet(CFG.terminal || ["handed_over", "cancelled"]);
  var UNTRACKED = toSet(CFG.untracked || ["received"]);    // statuses the server does not age
  var REFETCH_MIN_MS = CFG.refetch_min_ms || 5000;
  var AGEING_MS = CFG.ageing_ms || 30000;
  var IDLE_REFETCH_MS = CFG.idle_refetch_ms || 60000;
  var MAX_TILES = CFG.max_tiles || 300;
  var FEED_MAX = CFG.feed_max || 50;
  var MAX_ROOMS = 20;                                      // per subscribe call (server limit)
  var LEVEL_RANK = { green: 0, yellow: 1, red: 2 };
  var EVENT_TYPES = ["status", "scan_rejected", "alert", "alert_cleared", "alert_acked",
                     "override", "session_released", "device"];
  // A handheld is offline after 60 s without a heartbeat; the server says so with a `device`
  // event. Its last seen on the board moves only with snapshots (heartbeats are not pushed),
  // so the board itself calls a handheld offline only well past that: a missed event, or a
  // board whose snapshots stopped.
  var HANDHELD_STALE_MS = CFG.handheld_stale_ms || 150000;

  function toSet(list) {
    var set = {};
    list.forEach(function (x) { set[x] = true; });
    return set;
  }

  function t(key, params) {
    var text = hasOwn(T, key) ? T[key] : key;
    if (params) {
      text = String(text).replace(/\{(\w+)\}/g, function (m, name) {
        return hasOwn(params, name) && params[name] != null ? String(params[name]) : m;
      });
    }
    return text;
  }

  function statusLabel(code) {
    var map = T.statuses || {};
    return hasOwn(map, code) ? map[code] : String(code || "");
  }

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") || "" : "";
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = String(text);
    return node;
  }

  function orderUrl(orderNo) {
    return String(CFG.order_url || "/orders/{order_no}").replace("{order_no}", encodeURIComponent(orderNo));
  }

  // ---- time: the server's clock, shown in the warehouse's time zone -----------------------

  var clockOffsetMs = 0;           // server time minus browser time, from the last snapshot

  function serverNow() { return Date.now() + clockOffsetMs; }

  function parseTime(iso) {
    var ms = iso ? Date.parse(iso) : NaN;
    return isNaN(ms) ? null : ms;
  }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function localParts(ms) {
    var offset = model && model.settings && typeof model.settings.utc_offset_minutes === "number"
      ? model.settings.utc_offset_minutes : -new Date(ms).getTimezoneOffset();
    var d = new Date(ms + offset * 60000);
    return { h: d.getUTCHours(), m: d.getUTCMinutes(), s: d.getUTCSeconds() };
  }

  function hhmm(ms) {
    if (ms == null) return "—";
    var p = localParts(ms);
    return pad(p.h) + ":" + pad(p.m);
  }

  function hhmmss(ms) {
    if (ms == null) return "—";
    var p = localParts(ms);
    return pad(p.h) + ":" + pad(p.m) + ":" + pad(p.s);
  }

  function ago(ms) {
    if (ms == null) return "—";
    var s = Math.max(0, Math.round((serverNow() - ms) / 1000));
    if (s < 90) return t("seconds_ago", { n: s });
    if (s < 90 * 60) return t("minutes_ago", { n: Math.round(s / 60) });
    return t("hours_ago", { n: Math.round(s / 3600) });
  }

  function percent(ratio) {
    if (typeof ratio !== "number" || isNaN(ratio)) return "—";
    var p = ratio * 100;
    return (p >= 10 || p === 0 ? Math.round(p) : Math.round(p * 10) / 10) + "%";
  }

  function packTime(seconds) {
    if (typeof seconds !== "number" || isNaN(seconds)) return "—";
    var total = Math.round(seconds);
    if (total < 60) return t("pack_seconds_short", { s: total });
    return t("pack_seconds", { m: Math.floor(total / 60), s: total % 60 });
  }

  // ---- the model --------------------------------------------------------------------------

  var model = null;       // what the board shows; built from a snapshot plus events
  var lastSeq = 0;        // the highest seq applied (snapshot or event)
  var recent = [];        // events applied with a seq above the snapshot's, replayed on refetch
  var changedTiles = {};  // order_no -> true: flash these tiles on the next render
  var arrival = 0;        // ties in age keep the server's order, then the order of events

  function ageLevel(status, minutes) {
    var slas = (model && model.settings && model.settings.slas) || {};
    var limits = slas[status];
    if (!limits || TERMINAL[status]) return "green";
    if (minutes > limits[1]) return "red";
    if (minutes > limits[0]) return "yellow";
    return "green";
  }

  function fromSnapshot(snap) {
    var generated = parseTime(snap.generated_at) || Date.now();
    clockOffsetMs = generated - Date.now();
    var orders = {};
    (snap.orders || []).forEach(function (o) {
      orders[o.order_no] = {
        order_no: o.order_no, status: o.status, level: o.level || "green", rank: ++arrival,
        // The tiles carry whole minutes only: the start of that minute is the best guess.
        since: generated - (o.minutes || 0) * 60000
      };
    });
    (snap.over_sla || []).forEach(function (o) {
      var since = parseTime(o.since);
      var known = orders[o.order_no];
      if (known) {
        if (since != null) known.since = since;
      } else {
        orders[o.order_no] = { order_no: o.order_no, status: o.status, level: o.level || "green",
                               rank: ++arrival,
                               since: since != null ? since : generated - (o.minutes || 0) * 60000 };
      }
    });
    var alerts = {};
    (snap.alerts || []).forEach(function (a) { alerts[a.id] = a; });
    var counts = {};
    Object.keys(snap.status_counts || {}).forEach(function (k) { counts[k] = snap.status_counts[k]; });
    return {
      warehouse: snap.warehouse || WAREHOUSE,
      generatedAt: generated,
      lastSeq: snap.last_seq || 0,
      settings: snap.settings || {},
      counts: counts,
      kpis: snap.kpis || {},
      waves: (snap.waves || []).map(function (w) { return Object.assign({}, w); }),
      stations: snap.stations || [],
      orders: orders,
      alerts: alerts,
      feed: (snap.rejections || []).map(function (r) { return Object.assign({}, r); })
    };
  }

  // Apply one pushed event to the model. `replay`: the event is being applied again on top of
  // a newer snapshot, which may already reflect it.
  function applyEvent(type, ev, replay) {
    if (!model || !ev) return;
    if (type === "status") applyStatus(ev, replay);
    else if (type === "scan_rejected") applyRejection(ev);
    else if (type === "alert" || type === "alert_acked") {
      if (ev.cleared_at) delete model.alerts[ev.id];
      else model.alerts[ev.id] = ev;
    } else if (type === "alert_cleared") {
      delete model.alerts[ev.id];
    } else if (type === "device") {
      applyDevice(ev, replay);
    }
  }

  // A device registered, online or offline, or moved: its chip follows, to its new station's
  // row if it moved (a row is added for a station the snapshot did not list yet).
  function applyDevice(ev, replay) {
    var id = ev.device_id;
    if (!id) return;
    var previous = null;
    model.stations.forEach(function (st) {
      st.devices = (st.devices || []).filter(function (d) {
        if (d.device_id !== id) return true;
        previous = d;
        return false;
      });
    });
    if (!ev.station) return;
    var row = null;
    model.stations.forEach(function (st) { if (st.station === ev.station) row = st; });
    if (!row) {
      row = { station: ev.station, orders_per_hour: 0, scans_per_minute: 0, error_rate: 0,
              scans_last_hour: 0, devices: [] };
      model.stations.push(row);
      model.stations.sort(function (a, b) { return a.station < b.station ? -1 : a.station > b.station ? 1 : 0; });
    }
    var device = {
      device_id: id, kind: ev.kind || (previous && previous.kind) || "handheld",
      state: ev.state || "offline", reason: ev.reason || "",
      last_seen: ev.last_seen_at || (previous && previous.last_seen) || null, fresh: !replay
    };
    row.devices.push(device);
    row.devices.sort(function (a, b) { return a.device_id < b.device_id ? -1 : a.device_id > b.device_id ? 1 : 0; });
  }

  function applyStatus(ev, replay) {
    var no = ev.order_no;
    if (!no || !ev.status) return;
    var known = model.orders[no];
    // On a replay the snapshot may already count this change: don't count it twice.
    var already = replay && known && known.status === ev.status;
    if (!already) {
      if (ev.from && model.counts[ev.from] > 0) model.counts[ev.from] -= 1;
      model.counts[ev.status] = (model.counts[ev.status] || 0) + 1;
      if (ev.status === "packed" && !PACKED_OR_LATER[ev.from]) {
        model.kpis.packed_today = (model.kpis.packed_today || 0) + 1;
      }
      if (ev.wave_no) {
        var was = !!PACKED_OR_LATER[ev.from], now = !!PACKED_OR_LATER[ev.status];
        model.waves.forEach(function (w) {
          if (w.wave_no !== ev.wave_no || was === now) return;
          w.packed = Math.max(0, Math.min(w.total, (w.packed || 0) + (now ? 1 : -1)));
          w.progress = w.total ? w.packed / w.total : 0;
        });
      }
    }
    if (TERMINAL[ev.status] || UNTRACKED[ev.status]) {
      delete model.orders[no];
    } else {
      // The server ages an order from the latest `at` of its events (a back-dated event does
      // not make it older than its previous step), so the board does the same.
      var at = parseTime(ev.at);
      var since = Math.min(at != null ? at : serverNow(), serverNow());
      if (known && known.since > since) since = known.since;
      model.orders[no] = { order_no: no, status: ev.status, since: since, rank: ++arrival,
                           level: ageLevel(ev.status, (serverNow() - since) / 60000) };
    }
    if (!replay) changedTiles[no] = true;
  }

  function applyRejection(ev) {
    var id = ev.scan_id;
    for (var i = 0; i < model.feed.length; i++) {
      if (id && model.feed[i].scan_id === id) return;
    }
    model.feed.unshift({ scan_id: id, station: ev.station, device_id: ev.device_id, code: ev.code,
                         message: ev.message, at: ev.at, order_no: ev.order_no, raw: ev.raw,
                         fresh: true });
    if (model.feed.length > FEED_MAX) model.feed.length = FEED_MAX;
  }

  // Every 30 s: the ageing colours move on with the clock. A level only rises while an order
  // stays in one status (the server's level is kept if the local estimate is lower).
  function reage() {
    if (!model) return;
    var now = serverNow();
    Object.keys(model.orders).forEach(function (no) {
      var o = model.orders[no];
      var level = ageLevel(o.status, (now - o.since) / 60000);
      if (LEVEL_RANK[level] > (LEVEL_RANK[o.level] || 0)) o.level = level;
    });
  }

  // ---- rendering --------------------------------------------------------------------------

  var renderTimer = null;

  // For people and tests looking at the page: up to which event the board is current.
  function markSeq() {
    document.body.setAttribute("data-last-seq", String(lastSeq));
  }

  function scheduleRender() {
    if (renderTimer !== null) return;
    renderTimer = window.setTimeout(function () {
      renderTimer = null;
      render();
    }, 0);
  }

  function render() {
    if (!model) return;
    renderKpis();
    renderCounts();
    renderTiles();
    renderOverSla();
    renderWaves();
    renderStations();
    renderAlerts();
    renderFeed();
  }

  function exceptionRatio() {
    var active = 0, exceptions = 0;
    Object.keys(model.counts).forEach(function (k) {
      if (!TERMINAL[k]) active += model.counts[k] || 0;
    });
    exceptions = (model.counts.exception || 0) + (model.counts.on_hold || 0);
    return active ? exceptions / active : 0;
  }

  function renderKpis() {
    var k = model.kpis;
    $("kpi-packed-today").textContent = String(k.packed_today != null ? k.packed_today : "—");
    var ratio = exceptionRatio();
    $("kpi-exception-ratio").textContent = percent(ratio);
    $("kpi-exceptions").setAttribute("data-level", ratio >= 0.1 ? "red" : ratio >= 0.03 ? "yellow" : "green");
    $("kpi-avg-pack").textContent = packTime(k.avg_pack_seconds);
    var open = 0, unacked = 0;
    Object.keys(model.alerts).forEach(function (id) {
      open += 1;
      if (!model.alerts[id].acked_at) unacked += 1;
    });
    $("kpi-open-alerts").textContent = String(open);
    $("kpi-alerts").setAttribute("data-level", unacked ? "red" : open ? "yellow" : "green");
  }

  function renderCounts() {
    var list = $("counts");
    var seen = {};
    Array.prototype.forEach.call(list.querySelectorAll("[data-status-count]"), function (li) {
      seen[li.getAttribute("data-status-count")] = li;
    });
    var codes = STATUS_ORDER.slice();
    Object.keys(model.counts).forEach(function (k) { if (codes.indexOf(k) < 0) codes.push(k); });
    codes.forEach(function (code) {
      var li = seen[code];
      if (!li) {
        li = el("li", "count");
        li.setAttribute("data-status-count", code);
        li.appendChild(el("span", "count-label", statusLabel(code)));
        li.appendChild(el("strong", "count-value", "0"));
        list.appendChild(li);
      }
      var n = model.counts[code] || 0;
      if (li.getAttribute("data-count") !== String(n)) {
        li.setAttribute("data-count", String(n));
        li.querySelector(".count-value").textContent = String(n);
      }
    });
  }

  function sortedOrders() {
    return Object.keys(model.orders).map(function (no) { return model.orders[no]; })
      .sort(function (a, b) { return a.since - b.since || a.rank - b.rank; });
  }

  function minutesOf(o) {
    return Math.max(0, Math.floor((serverNow() - o.since) / 60000));
  }

  var tileEls = {};

  function renderTiles() {
    var box = $("tiles");
    var orders = sortedOrders().slice(0, MAX_TILES);
    var keep = {};
    var previous = null;
    orders.forEach(function (o) {
      var a = tileEls[o.order_no];
      if (!a) {
        a = el("a", "tile");
        a.setAttribute("role", "listitem");
        a.setAttribute("data-order", o.order_no);
        a.href = orderUrl(o.order_no);
        a.appendChild(el("span", "tile-no", o.order_no));
        a.appendChild(el("span", "tile-status"));
        a.appendChild(el("span", "tile-age"));
        tileEls[o.order_no] = a;
      }
      keep[o.order_no] = true;
      if (a.getAttribute("data-status") !== o.status) {
        a.setAttribute("data-status", o.status);
        a.querySelector(".tile-status").textContent = statusLabel(o.status);
      }
      if (a.getAttribute("data-level") !== o.level) a.setAttribute("data-level", o.level);
      var age = t("minutes", { n: minutesOf(o) });
      var ageEl = a.querySelector(".tile-age");
      if (ageEl.textContent !== age) ageEl.textContent = age;
      a.title = o.order_no + " · " + statusLabel(o.status) + " · " + age;
      if (changedTiles[o.order_no]) flashNode(a);
      // Move only what is out of place: the DOM keeps focus and hover on untouched tiles.
      var expected = previous ? previous.nextSibling : box.firstChild;
      if (expected !== a) box.insertBefore(a, expected);
      previous = a;
    });
    Object.keys(tileEls).forEach(function (no) {
      if (!keep[no]) {
        if (tileEls[no].parentNode) tileEls[no].parentNode.removeChild(tileEls[no]);
        delete tileEls[no];
      }
    });
    changedTiles = {};
    $("tiles-empty").hidden = orders.length > 0;
    $("tiles-count").textContent = t("orders_count", { n: Object.keys(model.orders).length });
  }

  function flashNode(node) {
    node.classList.remove("just");
    void node.offsetWidth;   // restart the animation
    node.classList.add("just");
    window.setTimeout(function () { node.classList.remove("just"); }, 2000);
  }

  function renderOverSla() {
    var list = $("over-sla");
    var late = sortedOrders().filter(function (o) { return o.level !== "green"; });
    var frag = document.createDocumentFragment();
    late.slice(0, 200).forEach(function (o) {
      var li = el("li", "over-sla-item");
      li.setAttribute("data-over-order", o.order_no);
      li.setAttribute("data-level", o.level);
      var a = el("a", "over-sla-no", o.order_no);
      a.href = orderUrl(o.order_no);
      li.appendChild(a);
      li.appendChild(el("span", "over-sla-status", statusLabel(o.status)));
      li.appendChild(el("span", "over-sla-age", t("minutes", { n: minutesOf(o) })));
      frag.appendChild(li);
    });
    list.textContent = "";
    list.appendChild(frag);
    $("over-sla-empty").hidden = late.length > 0;
    $("over-sla-count").textContent = late.length ? String(late.length) : "";
  }

  function renderWaves() {
    var list = $("waves");
    var frag = document.createDocumentFragment();
    model.waves.forEach(function (w) {
      var done = w.total > 0 && w.packed >= w.total;
      var li = el("li", "wave");
      li.setAttribute("data-wave", w.wave_no);
      li.setAttribute("data-late", w.late && !done ? "true" : "false");
      var head = el("div", "wave-head");
      head.appendChild(el("strong", "wave-no", w.wave_no));
      if (w.station) head.appendChild(el("span", "wave-station", w.station));
      head.appendChild(el("span", "wave-count", t("wave_progress", { packed: w.packed || 0, total: w.total || 0 })));
      li.appendChild(head);
      var bar = el("div", "bar");
      bar.setAttribute("role", "progressbar");
      bar.setAttribute("aria-valuemin", "0");
      bar.setAttribute("aria-valuemax", String(w.total || 0));
      bar.setAttribute("aria-valuenow", String(w.packed || 0));
      var fill = el("div", "bar-fill");
      fill.style.width = Math.round(Math.max(0, Math.min(1, w.progress || 0)) * 100) + "%";
      bar.appendChild(fill);
      li.appendChild(bar);
      var foot = el("div", "wave-foot");
      var eta;
      if (done) eta = el("span", "wave-eta done", t("wave_done"));
      else if (w.projected_finish) eta = el("span", "wave-eta", t("wave_eta", { time: hhmm(parseTime(w.projected_finish)) }));
      else eta = el("span", "wave-eta unknown", t("wave_no_eta"));
      foot.appendChild(eta);
      foot.appendChild(el("span", "wave-cutoff", t("wave_cutoff", { time: hhmm(parseTime(w.cutoff)) })));
      if (w.late && !done) foot.appendChild(el("strong", "wave-late", t("wave_late")));
      li.appendChild(foot);
      frag.appendChild(li);
    });
    list.textContent = "";
    list.appendChild(frag);
    $("waves-empty").hidden = model.waves.length > 0;
  }

  var stationRows = {};   // station -> <tr>, kept between renders
  var chipEls = {};       // device_id -> chip, kept between renders (and moved between rows)
  var SVG_NS = "http://www.w3.org/2000/svg";
  var KIND_ICONS = {
    // A scanner on a cable: head, trigger grip and beam. A handheld: a phone with its screen.
    serial: "M1 3h10.5L14 5.5V7H8.2l-1.1 6H3.6l1.1-6H1zM12.5 8.5h2.5v1h-2.5zM12.5 10.5h2.5v1h-2.5z",
    handheld: "M5 1h6a1.5 1.5 0 0 1 1.5 1.5v11A1.5 1.5 0 0 1 11 15H5a1.5 1.5 0 0 1-1.5-1.5v-11A1.5 1.5 0 0 1 5 1zm0 2v8.5h6V3zm3 9.3a.8.8 0 1 0 0 1.6.8.8 0 0 0 0-1.6z"
  };
  // Reasons the server gives in English, shortened for a chip in the board's language.
  var REASONS = [["no heartbeat", "reason_no_heartbeat"], ["disconnected", "reason_disconnected"],
                 ["cannot open", "reason_cannot_open"], ["waiting for the reader", "reason_waiting"],
                 ["disabled", "reason_disabled"], ["reader stopped", "reason_stopped"]];

  function setText(node, text) {
    text = String(text == null ? "" : text);
    if (node.textContent !== text) node.textContent = text;
  }

  function setAttr(node, name, value) {
    value = String(value == null ? "" : value);
    if (node.getAttribute(name) !== value) node.setAttribute(name, value);
  }

  function kindIcon(kind) {
    var svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("class", "device-kind");
    svg.setAttribute("viewBox", "0 0 16 16");
    svg.setAttribute("aria-hidden", "true");
    var path = document.createElementNS(SVG_NS, "path");
    path.setAttribute("fill", "currentColor");
    path.setAttribute("fill-rule", "evenodd");
    path.setAttribute("d", KIND_ICONS[kind] || KIND_ICONS.handheld);
    svg.appendChild(path);
    return svg;
  }

  // What a chip shows: the server's state, except a handheld not heard of for far too long.
  function deviceView(d) {
    var seen = parseTime(d.last_seen);
    var state = d.state || "offline";
    var reason = d.reason || "";
    if (d.kind === "handheld" && state === "online" && seen != null && serverNow() - seen > HANDHELD_STALE_MS) {
      state = "offline";
      reason = "no heartbeat";
    }
    return { state: state, reason: reason, seen: seen };
  }

  function shortReason(state, reason) {
    var text = String(reason || "").toLowerCase();
    for (var i = 0; i < REASONS.length; i++) {
      if (text.indexOf(REASONS[i][0]) === 0) return t(REASONS[i][1]);
    }
    return t("device_" + state);
  }

  function renderChip(d) {
    var chip = chipEls[d.device_id];
    if (!chip) {
      chip = el("span", "device-chip");
      chip.setAttribute("data-device", d.device_id);
      chip.appendChild(el("span", "device-dot"));
      chip.appendChild(el("span", "device-id", d.device_id));
      chip.appendChild(el("span", "device-note"));
      chip.appendChild(el("span", "device-seen"));
      chipEls[d.device_id] = chip;
    }
    var kind = d.kind === "serial" ? "serial" : "handheld";
    if (chip.getAttribute("data-kind") !== kind) {
      var old = chip.querySelector(".device-kind");
      if (old) chip.removeChild(old);
      chip.insertBefore(kindIcon(kind), chip.firstChild);
      chip.setAttribute("data-kind", kind);
    }
    var view = deviceView(d);
    setAttr(chip, "data-state", view.state);
    setAttr(chip, "data-reason", view.reason);
    var note = chip.querySelector(".device-note");
    setText(note, view.state === "online" ? "" : shortReason(view.state, view.reason));
    note.hidden = view.state === "online";
    setText(chip.querySelector(".device-seen"), ago(view.seen));
    var title = [d.device_id, t("kind_" + kind), t("device_" + view.state)];
    if (view.reason) title.push(view.reason);
    title.push(t("last_seen", { time: hhmmss(view.seen) }));
    setAttr(chip, "title", title.join(" · "));
    if (d.fresh) {
      d.fresh = false;
      flashNode(chip);
    }
    return chip;
  }

  // Rows and chips are kept and updated in place: the ages tick every second without the
  // table being rebuilt under the pointer.
  function renderStations() {
    var body = $("stations");
    var keepRows = {};
    var keepChips = {};
    var previousRow = null;
    model.stations.forEach(function (st) {
      var tr = stationRows[st.station];
      if (!tr) {
        tr = el("tr");
        tr.setAttribute("data-station", st.station);
        tr.appendChild(el("th", "station-code", st.station)).setAttribute("scope", "row");
        tr.appendChild(el("td", "num"));
        tr.appendChild(el("td", "num"));
        tr.appendChild(el("td", "num error-rate"));
        tr.appendChild(el("td", "devices"));
        stationRows[st.station] = tr;
      }
      keepRows[st.station] = true;
      var cells = tr.children;
      setText(cells[1], st.orders_per_hour);
      setText(cells[2], st.scans_per_minute);
      setText(cells[3], st.scans_last_hour ? percent(st.error_rate) : "—");
      setAttr(cells[3], "data-level", st.error_rate >= 0.3 ? "red" : st.error_rate >= 0.1 ? "yellow" : "green");
      var cell = cells[4];
      var devices = st.devices || [];
      var previous = null;
      devices.forEach(function (d) {
        var chip = renderChip(d);
        keepChips[d.device_id] = true;
        var expected = previous ? previous.nextSibling : cell.firstChild;
        if (expected !== chip) cell.insertBefore(chip, expected);
        previous = chip;
      });
      var extra = previous ? previous.nextSibling : cell.firstChild;
      if (!devices.length && extra && extra.classList.contains("no-devices") && !extra.nextSibling) extra = null;
      while (extra) {
        var next = extra.nextSibling;
        cell.removeChild(extra);
        extra = next;
      }
      if (!devices.length && !cell.firstChild) cell.appendChild(el("span", "muted no-devices", t("no_devices")));
      var expectedRow = previousRow ? previousRow.nextSibling : body.firstChild;
      if (expectedRow !== tr) body.insertBefore(tr, expectedRow);
      previousRow = tr;
    });
    Object.keys(stationRows).forEach(function (code) {
      if (!keepRows[code]) {
        if (stationRows[code].parentNode) stationRows[code].parentNode.removeChild(stationRows[code]);
        delete stationRows[code];
      }
    });
    Object.keys(chipEls).forEach(function (id) {
      if (!keepChips[id]) {
        if (chipEls[id].parentNode) chipEls[id].parentNode.removeChild(chipEls[id]);
        delete chipEls[id];
      }
    });
  }

  function alertText(a) {
    var p = Object.assign({}, a.params || {});
    if (p.order_no == null) p.order_no = a.order_no;
    if (p.station == null) p.station = a.station;
    if (p.device_id == null) p.device_id = a.device_id;
    if (p.status) p.status = statusLabel(p.status);
    if (typeof p.rate === "number") p.percent = percent(p.rate);
    var key = "alert_" + a.kind;
    if (hasOwn(T, key)) return t(key, p);
    return a.kind + " " + JSON.stringify(a.params || {});
  }

  function renderAlerts() {
    var list = $("alerts");
    var ids = Object.keys(model.alerts).map(function (id) { return model.alerts[id]; })
      .sort(function (a, b) {
        return (a.acked_at ? 1 : 0) - (b.acked_at ? 1 : 0) ||
          (LEVEL_RANK[b.level] || 0) - (LEVEL_RANK[a.level] || 0) ||
          (parseTime(b.raised_at) || 0) - (parseTime(a.raised_at) || 0);
      });
    var frag = document.createDocumentFragment();
    ids.forEach(function (a) {
      var li = el("li", "alert");
      li.setAttribute("data-alert-id", String(a.id));
      li.setAttribute("data-kind", a.kind);
      li.setAttribute("data-level", a.level);
      li.setAttribute("data-acked", a.acked_at ? "true" : "false");
      var text = el("div", "alert-text");
      if (a.order_no) {
        var link = el("a", "alert-order", alertText(a));
        link.href = orderUrl(a.order_no);
        text.appendChild(link);
      } else {
        text.textContent = alertText(a);
      }
      li.appendChild(text);
      var meta = el("div", "alert-meta");
      meta.appendChild(el("span", "alert-level", t("level_" + a.level)));
      meta.appendChild(el("span", "alert-raised", t("alert_raised", { time: hhmm(parseTime(a.raised_at)) })));
      if (a.acked_at) {
        var acked = el("span", "alert-acked", t("acked_by", { by: a.acked_by || "" }));
        if (a.ack_note) acked.textContent += ": " + a.ack_note;
        meta.appendChild(acked);
      } else {
        var btn = el("button", "ack-button", t("ack"));
        btn.type = "button";
        btn.setAttribute("data-ack", String(a.id));
        meta.appendChild(btn);
      }
      li.appendChild(meta);
      frag.appendChild(li);
    });
    list.textContent = "";
    list.appendChild(frag);
    $("alerts-empty").hidden = ids.length > 0;
    $("alerts-count").textContent = ids.length ? String(ids.length) : "";
  }

  function renderFeed() {
    var list = $("feed");
    var frag = document.createDocumentFragment();
    model.feed.forEach(function (r) {
      var li = el("li", "feed-item");
      li.setAttribute("data-scan-id", r.scan_id || "");
      li.setAttribute("data-code", r.code || "");
      if (r.fresh) {
        li.classList.add("just");
        r.fresh = false;
      }
      var head = el("div", "feed-head");
      head.appendChild(el("time", "feed-at", hhmmss(parseTime(r.at))));
      head.appendChild(el("span", "feed-station", r.station || ""));
      head.appendChild(el("span", "feed-device", r.device_id || ""));
      head.appendChild(el("code", "feed-code", r.code || ""));
      li.appendChild(head);
      var body = el("div", "feed-body");
      body.appendChild(el("span", "feed-message", r.message || r.code || ""));
      if (r.order_no) {
        var a = el("a", "feed-order", r.order_no);
        a.href = orderUrl(r.order_no);
        body.appendChild(a);
      }
      li.appendChild(body);
      frag.appendChild(li);
    });
    list.textContent = "";
    list.appendChild(frag);
    $("feed-empty").hidden = model.feed.length > 0;
  }

  function renderClock() {
    $("clock").textContent = hhmmss(serverNow()).slice(0, 5);
  }

  // ---- the snapshot -----------------------------------------------------------------------

  var fetching = null;
  var fetchAgain = false;
  var lastFetchAt = 0;
  var refetchTimer = null;
  var loadError = $("load-error");

  function fetchSnapshot() {
    return fetch(CFG.board_url, { credentials: "same-origin", headers: { "Accept": "application/json" },
                                  cache: "no-store" })
      .then(function (res) {
        if (res.status === 401 && CFG.login_url) {
          window.location.assign(CFG.login_url);
          throw new Error("unauthenticated");
        }
        if (!res.ok) {
          var err = new Error("http " + res.status);
          err.status = res.status;
          throw err;
        }
        return res.json();
      });
  }

  function adopt(snap) {
    var next = fromSnapshot(snap);
    var base = next.lastSeq;
    recent = recent.filter(function (e) { return e.seq > base; });
    var previous = model;
    model = next;
    // The feed keeps live entries the snapshot does not list (older than its 30 latest).
    if (previous) {
      previous.feed.forEach(function (r) {
        if (!model.feed.some(function (x) { return x.scan_id === r.scan_id; })) model.feed.push(r);
      });
      model.feed.sort(function (a, b) { return (parseTime(b.at) || 0) - (parseTime(a.at) || 0); });
      if (model.feed.length > FEED_MAX) model.feed.length = FEED_MAX;
    }
    recent.forEach(function (e) { applyEvent(e.type, e.data, true); });
    if (base > lastSeq) lastSeq = base;
    markSeq();
    $("updated-at").textContent = hhmmss(model.generatedAt);
    loadError.hidden = true;
    render();
    renderClock();
    afterSnapshot();
  }

  function refetch() {
    if (fetching) {
      fetchAgain = true;
      return fetching;
    }
    lastFetchAt = Date.now();
    fetching = fetchSnapshot().then(adopt, function (err) {
      if (err && err.status) {
        loadError.textContent = t("load_failed", { status: err.status });
        loadError.hidden = false;
      }
      if (!model) {    // nothing on screen yet: keep trying
        window.setTimeout(function () { refetch().catch(function () {}); }, 3000);
      }
      throw err;
    }).finally(function () {
      fetching = null;
      if (fetchAgain) {
        fetchAgain = false;
        scheduleRefetch();
      }
    });
    return fetching;
  }

  // At most one refetch every REFETCH_MIN_MS; the first one a second after the event that asked.
  function scheduleRefetch(delay) {
    if (refetchTimer !== null) return;
    var wait = Math.max(delay == null ? 1000 : delay, lastFetchAt + REFETCH_MIN_MS - Date.now());
    refetchTimer = window.setTimeout(function () {
      refetchTimer = null;
      refetch().catch(function () {});
    }, wait);
  }

  // ---- live events ------------------------------------------------------------------------

  function onEvent(type) {
    return function (ev) {
      if (!ev || typeof ev.seq !== "number" || !model) return;
      if (ev.seq <= lastSeq) return;       // had it already (snapshot or earlier push)
      lastSeq = ev.seq;
      recent.push({ type: type, seq: ev.seq, data: ev });
      if (recent.length > 5000) recent.splice(0, recent.length - 5000);
      applyEvent(type, ev, false);
      markSeq();
      scheduleRender();
      scheduleRefetch();
      if (type === "device") ensureStationRooms();   // a station new to the board
    };
  }

  var sock = null;
  var joined = {};           // rooms this connection is in
  var subGen = 0;            // a newer (re)connect makes older subscribe answers moot
  var everConnected = false;
  var subscribing = false;   // a subscribeAll is waiting for its answer
  var connectedOnce = false;
  var banner = $("offline-banner");
  var connEl = $("conn");
  var connLabel = $("conn-label");

  function updateConn() {
    var state = sock && sock.connected ? "online" : (everConnected || !navigator.onLine ? "offline" : "connecting");
    if (connEl.getAttribute("data-state") !== state) {
      connEl.setAttribute("data-state", state);
      connLabel.textContent = t(state);
    }
    banner.hidden = state !== "offline";
    document.body.classList.toggle("is-offline", state === "offline");
  }

  function stationRooms() {
    if (!model) return [];
    return model.stations.map(function (st) { return "station:" + st.station; });
  }

  function subscribe(rooms, gen) {
    return new Promise(function (resolve) {
      if (!sock || !sock.connected) {
        resolve(false);
        return;
      }
      sock.timeout(15000).emit("subscribe", { rooms: rooms, after_seq: lastSeq }, function (err, ack) {
        if (gen !== subGen) {
          resolve(false);
          return;
        }
        if (err || !ack) {
          resolve(false);
          return;
        }
        if (!ack.ok) {
          if (ack.code === "backlog_too_large") {
            // Too much was missed: take a fresh snapshot and subscribe after it.
            refetch().then(function () { resolve(subscribe(rooms, gen)); }, function () { resolve(false); });
            return;
          }
          resolve(false);
          return;
        }
        (ack.rooms || rooms).forEach(function (r) { joined[r] = true; });
        if (typeof ack.last_seq === "number" && ack.last_seq > lastSeq) lastSeq = ack.last_seq;
        markSeq();
        document.body.setAttribute("data-subscribed", "true");
        resolve(true);
      });
    });
  }

  // The warehouse room carries every status and alert; scans refused before any order is open
  // at a device reach only their station's room, so the board joins those too.
  function subscribeAll() {
    var gen = ++subGen;
    var rooms = ["warehouse:" + WAREHOUSE].concat(stationRooms());
    subscribing = true;
    return subscribe(rooms.slice(0, MAX_ROOMS), gen).then(function (ok) {
      if (gen !== subGen) return false;
      subscribing = false;
      if (!ok) {
        window.setTimeout(function () { if (gen === subGen && sock.connected) subscribeAll(); }, 2000);
        return false;
      }
      return ensureStationRooms().then(function () { return true; });
    });
  }

  // A new snapshot: subscribe if that has not happened yet, else join new stations' rooms.
  function afterSnapshot() {
    if (!sock || !sock.connected || subscribing) return;
    if (!joined["warehouse:" + WAREHOUSE]) subscribeAll();
    else ensureStationRooms();
  }

  function ensureStationRooms() {
    if (!sock || !sock.connected || !joined["warehouse:" + WAREHOUSE]) return Promise.resolve();
    var missing = stationRooms().filter(function (r) { return !joined[r]; });
    var gen = subGen;
    var chain = Promise.resolve();
    for (var i = 0; i < missing.length; i += MAX_ROOMS) {
      (function (chunk) {
        chain = chain.then(function () { return subscribe(chunk, gen); });
      })(missing.slice(i, i + MAX_ROOMS));
    }
    return chain;
  }

  function onConnect() {
    joined = {};                 // rooms do not survive a reconnect
    var again = connectedOnce;
    connectedOnce = true;
    everConnected = true;
    updateConn();
    if (!model) return;          // the first snapshot subscribes when it arrives
    subscribeAll().then(function (ok) {
      // Missed events came before the ack; the aggregates come with a fresh snapshot.
      if (ok && again) refetch().catch(function () {});
    });
  }

  function connectSocket() {
    if (typeof window.io !== "function") return;
    sock = window.io(CFG.socket_namespace || "/floor", { transports: ["websocket"] });
    sock.on("connect", onConnect);
    sock.on("disconnect", function () {
      subGen += 1;
      document.body.setAttribute("data-subscribed", "false");
      subscribing = false;
      updateConn();
    });
    sock.on("connect_error", updateConn);
    EVENT_TYPES.forEach(function (type) { sock.on(type, onEvent(type)); });
    // The browser knows first when the network is gone: close the socket then, and connect
    // again when it is back (the reconnect subscribes after the last seq applied).
    window.addEventListener("offline", function () {
      if (sock.connected) sock.disconnect();
      else updateConn();
    });
    window.addEventListener("online", function () {
      if (!sock.connected) sock.connect();
      updateConn();
    });
    // A socket that neither connects nor fails (a proxy swallowing websockets) is offline too.
    window.setTimeout(function () {
      if (!sock.connected) {
        everConnected = true;
        updateConn();
      }
    }, 8000);
  }

  // ---- acknowledging alerts ---------------------------------------------------------------

  var alertsStatus = $("alerts-status");
  var statusTimer = null;

  function say(text, bad) {
    window.clearTimeout(statusTimer);
    alertsStatus.textContent = text;
    alertsStatus.classList.toggle("bad", !!bad);
    alertsStatus.hidden = false;
    statusTimer = window.setTimeout(function () { alertsStatus.hidden = true; }, 6000);
  }

  function ack(id, button) {
    var note = window.prompt(t("ack_prompt"), "");
    if (note === null) return;     // cancelled
    button.disabled = true;
    fetch(String(CFG.ack_url).replace("{id}", encodeURIComponent(id)), {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json",
                 "X-CSRFToken": csrfToken() },
      body: JSON.stringify({ note: note.slice(0, 500) })
    }).then(function (res) {
      return res.json().catch(function () { return null; }).then(function (body) {
        if (res.ok && body && body.id != null) {
          if (model) {
            model.alerts[body.id] = body;
            scheduleRender();
          }
          say(t("ack_done"), false);
          return;
        }
        button.disabled = false;
        say(t("ack_failed", { message: (body && body.message) || res.status }), true);
        if (body && body.code === "already_acked") scheduleRefetch(0);
      });
    }, function (err) {
      button.disabled = false;
      say(t("ack_failed", { message: err && err.message ? err.message : "" }), true);
    });
  }

  $("alerts").addEventListener("click", function (e) {
    var btn = e.target && e.target.closest ? e.target.closest("button[data-ack]") : null;
    if (btn) ack(btn.getAttribute("data-ack"), btn);
  });

  // ---- start ------------------------------------------------------------------------------

  updateConn();
  connectSocket();
  refetch().catch(function () {});

  window.setInterval(function () {
    reage();
    render();
  }, AGEING_MS);
  window.setInterval(function () {
    renderClock();
    if (model) renderStations();    // the devices' "last seen" ages
  }, 1000);
  window.setInterval(function () { scheduleRefetch(0); }, IDLE_REFETCH_MS);
})();
