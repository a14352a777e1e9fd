/* floor: the webhooks page. Add, pause, resume and delete receivers; redeliver or discard dead
   letters (one, or all of a receiver's). Every change goes through the JSON API with the page's CSRF token, then the page
   reloads to show the server's state. No inline scripts (strict CSP). */
(function () {
  "use strict";

  function $(id) { return document.getElementById(id); }
  function readJson(id) {
    try { return JSON.parse($(id).textContent || "{}"); } catch (e) { return {}; }
  }
  var CFG = readJson("webhooks-config");
  var I18N = readJson("webhooks-i18n");
  var API = CFG.api || "/api/v1/webhooks";
  var DELIVERIES = CFG.deliveries_api || "/api/v1/webhook-deliveries";
  var message = $("wh-message");

  function t(key, params) {
    var text = I18N[key] || key;
    Object.keys(params || {}).forEach(function (name) {
      text = text.split("{" + name + "}").join(String(params[name]));
    });
    return text;
  }

  function say(text, bad) {
    message.textContent = text;
    message.setAttribute("data-bad", bad ? "true" : "false");
    message.hidden = false;
  }

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") || "" : "";
  }

  function call(method, url, body) {
    var options = { method: method, credentials: "same-origin",
                    headers: { "Accept": "application/json", "X-CSRFToken": csrfToken() } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(url, options).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (data) {
        if (!res.ok) {
          var err = new Error(data.message || ("HTTP " + res.status));
          err.code = data.code;
          throw err;
        }
        return data;
      });
    }, function () { throw new Error(t("no_connection")); });
  }

  function failed(err) {
    say(t("failed", { message: err.message }), true);
    busy(false);
  }

  function busy(on) {
    Array.prototype.forEach.call(document.querySelectorAll(".wh-button"), function (b) {
      b.disabled = on;
    });
    if (on) say(t("saving"), false);
  }

  function reload() { window.location.reload(); }

  // Buttons: redeliver, pause, resume, delete.
  document.addEventListener("click", function (ev) {
    var button = ev.target.closest ? ev.target.closest("button[data-action]") : null;
    if (!button) return;
    var id = encodeURIComponent(button.getAttribute("data-id"));
    var action = button.getAttribute("data-action");
    var done;
    if (action === "redeliver") {
      busy(true);
      done = call("POST", DELIVERIES + "/" + id + "/redeliver").then(function () {
        say(t("redelivered"), false);
        window.setTimeout(reload, 1500);    // the dispatcher sends within a second or so
      });
    } else if (action === "redeliver-dead") {
      busy(true);
      done = call("POST", API + "/" + id + "/redeliver-dead").then(function () {
        say(t("redelivered"), false);
        window.setTimeout(reload, 1500);
      });
    } else if (action === "disable" || action === "enable") {
      busy(true);
      done = call("PATCH", API + "/" + id, { enabled: action === "enable" }).then(reload);
    } else if (action === "delete") {
      if (!window.confirm(t("confirm_delete"))) return;
      busy(true);
      done = call("DELETE", API + "/" + id).then(reload);
    }
    if (done) done.catch(failed);
  });

  // Discard a dead letter, with the reason.
  Array.prototype.forEach.call(document.querySelectorAll("form.wh-discard"), function (form) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var reason = (form.elements.reason.value || "").trim();
      if (!reason) { form.elements.reason.focus(); return; }
      busy(true);
      call("POST", DELIVERIES + "/" + encodeURIComponent(form.getAttribute("data-id")) + "/discard",
           { reason: reason }).then(function () {
        say(t("discarded"), false);
        reload();
      }).catch(failed);
    });
  });

  // A new receiver; the secret is shown once, then the page reloads.
  var create = $("create-form");
  create.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var events = Array.prototype.filter.call(create.elements.events, function (box) {
      return box.checked;
    }).map(function (box) { return box.value; });
    if (!events.length) { say(t("pick_events"), true); return; }
    var body = { url: create.elements.url.value.trim(), events: events };
    var secret = create.elements.secret.value;
    if (secret) body.secret = secret;
    busy(true);
    call("POST", API, body).then(function (data) {
      busy(false);
      message.hidden = true;
      create.hidden = true;
      $("secret-value").textContent = data.secret || "";
      $("secret-once").hidden = false;
    }).catch(failed);
  });
  $("secret-done").addEventListener("click", reload);
})();
