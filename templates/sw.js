/* floor's service worker: the pack and returns screens keep opening through a network drop.
 *
 * Served at /sw.js (scope "/") by floor.web.views.service_worker, which fills in the asset
 * list and a version derived from the app version and the bytes of those assets: a deploy that
 * changes any of them changes this file, the browser installs the new worker, and the old
 * caches are deleted on activation.
 *
 * - The screens' assets (JS, CSS, the vendored Socket.IO client, the icon): cache first.
 * - The screens' pages (/pack, /returns): network first; the last good copy when the network
 *   fails, marked with the X-Floor-Offline-Copy header.
 * - Everything else, the API above all, is never touched: no answer is ever cached.
 */
"use strict";

var VERSION = {{ version | tojson }};
var ASSETS = {{ assets | tojson }};
var PAGES = {{ pages | tojson }};
var ASSET_CACHE = "floor-assets-" + VERSION;
// Not versioned: after a deploy the last good page stays available offline until the screen
// is next opened online (network first refreshes it).
var PAGE_CACHE = "floor-pages";
var PAGE_TIMEOUT_MS = 5000;

self.addEventListener("install", function (event) {
  event.waitUntil(
    caches.open(ASSET_CACHE)
      .then(function (cache) { return cache.addAll(ASSETS); })
      .then(function () { return self.skipWaiting(); })
  );
});

self.addEventListener("activate", function (event) {
  event.waitUntil(
    caches.keys().then(function (names) {
      return Promise.all(names.map(function (name) {
        if (/^floor-/.test(name) && name !== ASSET_CACHE && name !== PAGE_CACHE) {
          return caches.delete(name);
        }
        return null;
      }));
    }).then(function () { return self.clients.claim(); })
  );
});

function pageKey(url) {
  return url.origin + url.pathname;
}

function cachedPage(url) {
  return caches.open(PAGE_CACHE).then(function (cache) {
    return cache.match(pageKey(url));
  }).then(function (hit) {
    if (!hit) return null;
    var headers = new Headers(hit.headers);
    headers.set("X-Floor-Offline-Copy", "1");
    return hit.blob().then(function (body) {
      return new Response(body, { status: hit.status, statusText: hit.statusText, headers: headers });
    });
  });
}

function networkFirst(request, url) {
  var network = fetch(request).then(function (response) {
    // Only a real page: not a redirect to the login, not an error.
    if (response.ok && !response.redirected && response.type === "basic") {
      var copy = response.clone();
      caches.open(PAGE_CACHE).then(function (cache) { return cache.put(pageKey(url), copy); });
    }
    return response;
  });
  var slow = new Promise(function (resolve) {
    // Behind racking a request can hang for long: a copy after a few seconds, if there is one.
    setTimeout(function () { resolve(null); }, PAGE_TIMEOUT_MS);
  }).then(function () { return cachedPage(url); });
  return new Promise(function (resolve, reject) {
    var settled = false;
    network.then(function (response) {
      if (!settled) { settled = true; resolve(response); }
    }, function (err) {
      cachedPage(url).then(function (copy) {
        if (settled) return;
        settled = true;
        if (copy) resolve(copy);
        else reject(err);
      });
    });
    slow.then(function (copy) {
      if (copy && !settled) { settled = true; resolve(copy); }
    });
  });
}

function cacheFirst(request) {
  return caches.open(ASSET_CACHE).then(function (cache) {
    return cache.match(request, { ignoreSearch: true }).then(function (hit) {
      if (hit) return hit;
      return fetch(request).then(function (response) {
        if (response.ok) cache.put(request, response.clone());
        return response;
      });
    });
  });
}

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET") return;
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (ASSETS.indexOf(url.pathname) >= 0) {
    event.respondWith(cacheFirst(request));
  } else if (request.mode === "navigate" && PAGES.indexOf(url.pathname) >= 0) {
    event.respondWith(networkFirst(request, url));
  }
});
