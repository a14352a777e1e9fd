/* floor order timeline: times in the viewer's local time, and the supervisor's actions.
 *
 * Every action posts one event to /api/v1/orders/<no>/events (hold, release, exception and
 * cancel ask for a reason), then reloads the page, which shows the new status and node.
 * Data comes from #timeline-config and #timeline-i18n in timeline.html. No inline code.
 */
(function () {
  "use strict";

  var $ = function (id) { return document.getElementById(id); };

  function readJSON(id) {
    var el = $(id);
    if (!el) return {};
    try { return JSON.parse(el.textContent || "{}"); } catch (e) { return {}; }
  }

  var CFG = readJSON("timeline-config");
  var T = readJSON("timeline-i18n");

  function t(key, params) {
    var text = Object.prototype.hasOwnProperty.call(T, key) ? T[key] : key;
    if (params) {
      text = String(text).replace(/\{(\w+)\}/g, function (m, name) {
        return Object.prototype.hasOwnProperty.call(params, name) ? String(params[name]) : m;
      });
    }
    return text;
  }

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") || "" : "";
  }

  // ---- local times ------------------------------------------------------------------------

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  // Warehouse time (the board shows the same), from the warehouse's UTC offset.
  var titleEl = document.getElementById("order-title");
  var offsetAttr = titleEl ? titleEl.getAttribute("data-utc-offset") : null;
  var offsetMinutes = offsetAttr !== null && offsetAttr !== "" ? Number(offsetAttr) : NaN;

  function localStamp(ms) {
    if (isNaN(offsetMinutes)) {
      var d = new Date(ms);
      return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
        pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
    }
    var w = new Date(ms + offsetMinutes * 60000);
    return w.getUTCFullYear() + "-" + pad(w.getUTCMonth() + 1) + "-" + pad(w.getUTCDate()) + " " +
      pad(w.getUTCHours()) + ":" + pad(w.getUTCMinutes()) + ":" + pad(w.getUTCSeconds());
  }

  Array.prototype.forEach.call(document.querySelectorAll("time[datetime]"), function (el) {
    var iso = el.getAttribute("datetime");
    var ms = Date.parse(iso);
    if (isNaN(ms)) return;
    el.title = iso;
    el.textContent = localStamp(ms);
  });

  // ---- actions ----------------------------------------------------------------------------

  var actions = $("actions");
  var statusEl = $("action-status");
  if (!actions) return;

  function showError(text) {
    statusEl.textContent = text;
    statusEl.hidden = false;
  }

  function setBusy(busy) {
    Array.prototype.forEach.call(actions.querySelectorAll("button"), function (b) { b.disabled = busy; });
  }

  function send(event, reason) {
    setBusy(true);
    statusEl.hidden = true;
    var body = { event: event };
    if (reason) body.reason = reason;
    fetch(CFG.events_url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json",
                 "X-CSRFToken": csrfToken() },
      body: JSON.stringify(body)
    }).then(function (res) {
      return res.json().catch(function () { return null; }).then(function (data) {
        if (res.ok) {
          window.location.reload();
          return;
        }
        setBusy(false);
        showError(t("failed", { message: (data && (data.message || data.code)) || res.status }));
      });
    }, function () {
      setBusy(false);
      showError(t("network"));
    });
  }

  actions.addEventListener("click", function (e) {
    var btn = e.target && e.target.closest ? e.target.closest("button[data-event]") : null;
    if (!btn || btn.disabled) return;
    var event = btn.getAttribute("data-event");
    var label = (btn.textContent || event).trim();
    if (btn.getAttribute("data-reason") === "required") {
      var reason = window.prompt(label + " · " + (CFG.order_no || "") + "\n" + t("reason_prompt"), "");
      if (reason === null) return;               // cancelled
      reason = reason.trim();
      if (!reason) {
        showError(t("reason_required"));
        return;
      }
      send(event, reason.slice(0, 500));
    } else {
      if (!window.confirm(t("confirm", { action: label, order_no: CFG.order_no || "" }))) return;
      send(event, "");
    }
  });
})();
