/* Điểm danh's service worker, served at /sw.js after a line that sets self.DIEMDANH (this version's
   shell). Small and written for the job rather than Workbox: the outbox must be the one IndexedDB store
   that the pages show and count, and Workbox's background-sync queue would keep a second, opaque copy of
   each request; the shell's URLs already carry content hashes, so precaching is one cache.addAll.

   - The shell (CSS, scripts, icons, the offline pages) is cached at install under this version's name;
     the old version's cache goes at activation. The outbox is never touched by an update.
   - Pages: the network first, with a short timeout; a page that answered is kept for when there is no
     signal. A check-in link with no signal opens the offline check-in page, which queues the scan.
   - Never cached: POSTs, the API, htmx's fragment requests.
   - The outbox is sent on Background Sync, and whenever a page load shows that the network is back.
   - A message {type: "version"} with a port is answered with this version. */
/* global DIEMDANH, DiemdanhOutbox, importScripts */
"use strict";

importScripts.apply(self, DIEMDANH.scripts);

var SHELL_CACHE = "shell-" + DIEMDANH.version;
var KIOSK_CACHE = "kiosk-" + DIEMDANH.version; // the kiosk page and its decoder, on kiosk phones only
var PAGES_CACHE = "pages";
var NETWORK_TIMEOUT = 4000; // ms: weak 3G still gets a chance, no signal falls back quickly
var PAGES_KEPT = 40;
var NOT_KEPT = /^\/(c\/|login|logout|kiosk\/pair|offline|sw\.js|manifest)/;
var lastFlush = 0;

self.addEventListener("install", function (event) {
  event.waitUntil(
    caches.open(SHELL_CACHE).then(function (cache) { return cache.addAll(DIEMDANH.shell); }).then(function () {
      // A kiosk phone gets the new kiosk files before the new version takes over, so it stays usable
      // without signal across an update.
      return caches.keys().then(function (names) {
        if (names.some(function (name) { return name.indexOf("kiosk-") === 0; })) return keepKiosk();
      });
    }).then(function () {
      // Safe to take over at once: pages are network-first and every static URL names its version.
      return self.skipWaiting();
    })
  );
});

self.addEventListener("activate", function (event) {
  event.waitUntil(
    caches.keys().then(function (names) {
      return Promise.all(names.filter(function (name) {
        return (name.indexOf("shell-") === 0 && name !== SHELL_CACHE)
          || (name.indexOf("kiosk-") === 0 && name !== KIOSK_CACHE);
      }).map(function (name) { return caches.delete(name); }));
    }).then(function () { return self.clients.claim(); })
  );
});

self.addEventListener("sync", function (event) {
  if (event.tag !== "outbox") return;
  event.waitUntil(DiemdanhOutbox.flush({ force: true }).then(function (tally) {
    // Rejecting asks the browser to try this sync again later, with its own back-off.
    if (tally.waiting) throw new Error("outbox: " + tally.waiting + " still waiting");
  }));
});

self.addEventListener("message", function (event) {
  if (event.data && event.data.type === "flush") event.waitUntil(DiemdanhOutbox.flush({ force: true }));
  if (event.data && event.data.type === "kiosk") event.waitUntil(keepKiosk().catch(function () {}));
  // Which version runs here (the pages and the tests can tell an updated worker from the one before).
  if (event.data && event.data.type === "version" && event.ports[0]) {
    event.ports[0].postMessage(DIEMDANH.version);
  }
});

function keepKiosk() {
  return caches.open(KIOSK_CACHE).then(function (cache) { return cache.addAll(DIEMDANH.kiosk); });
}

self.addEventListener("fetch", function (event) {
  var request = event.request;
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.method !== "GET") {
    // Logging out: pages kept for this person go too (a shared phone must not show them to the next).
    if (request.method === "POST" && url.pathname === "/logout") event.waitUntil(caches.delete(PAGES_CACHE));
    return;
  }
  if (url.pathname.indexOf("/api/") === 0) return;
  if (url.pathname.indexOf("/static/") === 0) {
    event.respondWith(fromCacheFirst(request));
    return;
  }
  if (request.mode === "navigate") event.respondWith(page(event));
});

function fromCacheFirst(request) {
  return caches.match(request).then(function (hit) {
    return hit || fetch(request);
  });
}

function withTimeout(promise, ms) {
  return new Promise(function (resolve, reject) {
    var timer = setTimeout(function () { reject(new Error("timeout")); }, ms);
    promise.then(function (value) { clearTimeout(timer); resolve(value); },
                 function (error) { clearTimeout(timer); reject(error); });
  });
}

function page(event) {
  var request = event.request;
  var url = new URL(request.url);
  var checkIn = /^\/c\/[^/]+$/.test(url.pathname);
  return withTimeout(fetch(request), NETWORK_TIMEOUT).then(function (response) {
    if (response.ok && response.type === "basic" && !response.redirected && !NOT_KEPT.test(url.pathname)) {
      var copy = response.clone();
      event.waitUntil(keepPage(request, copy));
    }
    if (Date.now() - lastFlush > 10000) {
      lastFlush = Date.now();
      event.waitUntil(DiemdanhOutbox.flush({ force: true }).catch(function () {}));
    }
    return response;
  }, function () {
    if (checkIn) return caches.match(DIEMDANH.offlineCheckIn, { ignoreSearch: true });
    return caches.open(PAGES_CACHE).then(function (cache) {
      return cache.match(request, { ignoreVary: true });
    }).then(function (kept) {
      // The kiosk page is also kept in the kiosk's own cache (the pages kept go at logout).
      return kept || caches.match(url.pathname, { ignoreVary: true });
    }).then(function (kept) {
      return kept || caches.match(DIEMDANH.offlinePage);
    });
  });
}

function keepPage(request, response) {
  return caches.open(PAGES_CACHE).then(function (cache) {
    return cache.put(request, response).then(function () { return cache.keys(); }).then(function (keys) {
      // Oldest first: keep the pages most recently opened.
      return Promise.all(keys.slice(0, Math.max(0, keys.length - PAGES_KEPT)).map(function (key) {
        return cache.delete(key);
      }));
    });
  });
}
